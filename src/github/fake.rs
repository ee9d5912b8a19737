//! An in-memory GitHub for unit tests: keeps statuses, counts reads, refuses or rate-limits
//! posts on request, and logs the HTTP requests the real client would send for each call.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{CommitStatus, GithubApi, GithubError, Operation, Outcome, Posted, Repo, RequestLog};

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
    /// Pages a read of a commit's statuses takes (at least one).
    pages: usize,
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

    /// Each read of a commit's statuses takes `pages` requests, as a commit with that many
    /// pages of contexts does.
    pub fn paged(&self, pages: usize) {
        self.lock().pages = pages;
    }
}

#[async_trait]
impl GithubApi for FakeGithub {
    async fn statuses(
        &self,
        repo: &Repo,
        sha: &str,
        log: &dyn RequestLog,
    ) -> Result<BTreeMap<String, Posted>, GithubError> {
        let mut s = self.lock();
        s.reads += 1;
        for _ in 0..s.pages.max(1) {
            log.request(Operation::GetCombinedStatus, Outcome::Success);
        }
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

    async fn post(
        &self,
        repo: &Repo,
        status: &CommitStatus,
        log: &dyn RequestLog,
    ) -> Result<(), GithubError> {
        let mut s = self.lock();
        let result = if s.rate_limited > 0 {
            s.rate_limited -= 1;
            Err(GithubError::RateLimited {
                retry_after: s.retry_after,
            })
        } else if let Some(code) = s.refuse {
            Err(GithubError::Refused {
                operation: "CreateCommitStatus",
                status: code,
                message: "refused by the test".into(),
            })
        } else {
            s.posts.push((repo.clone(), status.clone()));
            Ok(())
        };
        log.request(Operation::CreateCommitStatus, Outcome::of(&result));
        result
    }
}

/// A [`RequestLog`] that keeps what it is told, in order.
#[derive(Default)]
pub struct RecordingLog(Mutex<Vec<(Operation, Outcome)>>);

impl RecordingLog {
    pub fn requests(&self) -> Vec<(Operation, Outcome)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn operations(&self) -> Vec<Operation> {
        self.requests().into_iter().map(|(o, _)| o).collect()
    }
}

impl RequestLog for RecordingLog {
    fn request(&self, operation: Operation, outcome: Outcome) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((operation, outcome));
    }
}
