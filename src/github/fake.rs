//! An in-memory GitHub for unit tests: keeps statuses, counts reads, and refuses or rate-limits
//! posts on request.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{CommitStatus, GithubApi, GithubError, Posted, Repo};

#[derive(Default)]
pub struct FakeGithub {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    posts: Vec<(Repo, CommitStatus)>,
    reads: usize,
    rate_limited: usize,
    retry_after: Duration,
    refuse: Option<u16>,
}

impl FakeGithub {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn posts(&self) -> Vec<(Repo, CommitStatus)> {
        self.lock().posts.clone()
    }

    pub fn reads(&self) -> usize {
        self.lock().reads
    }

    /// The next `n` posts are refused with a rate limit lifting after `retry_after`.
    pub fn rate_limit_next(&self, n: usize, retry_after: Duration) {
        let mut s = self.lock();
        s.rate_limited = n;
        s.retry_after = retry_after;
    }

    pub fn refuse_posts(&self, status: u16) {
        self.lock().refuse = Some(status);
    }
}

#[async_trait]
impl GithubApi for FakeGithub {
    async fn statuses(
        &self,
        repo: &Repo,
        sha: &str,
    ) -> Result<BTreeMap<String, Posted>, GithubError> {
        let mut s = self.lock();
        s.reads += 1;
        let mut latest = BTreeMap::new();
        for (r, status) in s.posts.iter().rev() {
            if r == repo && status.sha == sha {
                latest
                    .entry(status.context.clone())
                    .or_insert_with(|| status.posted());
            }
        }
        Ok(latest)
    }

    async fn post(&self, repo: &Repo, status: &CommitStatus) -> Result<(), GithubError> {
        let mut s = self.lock();
        if s.rate_limited > 0 {
            s.rate_limited -= 1;
            return Err(GithubError::RateLimited {
                retry_after: s.retry_after,
            });
        }
        if let Some(code) = s.refuse {
            return Err(GithubError::Refused {
                operation: "CreateCommitStatus",
                status: code,
                message: "refused by the test".into(),
            });
        }
        s.posts.push((repo.clone(), status.clone()));
        Ok(())
    }
}
