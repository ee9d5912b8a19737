//! Posts commit statuses once per change. What GitHub already holds for a commit is read once
//! (after a restart too) and remembered; a status equal to it is not posted again. A rate limit
//! holds every post until it lifts; the statuses not posted are reported back so the caller
//! tries again later, and none is lost.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{CommitStatus, GithubApi, GithubError, Operation, Outcome, Posted, Repo, RequestLog};
use crate::metrics::Metrics;

/// Commits remembered before the memory is cleared and GitHub is read again.
const REMEMBERED: usize = 10_000;

pub struct Reporter {
    api: Arc<dyn GithubApi>,
    known: Mutex<HashMap<(Repo, String), BTreeMap<String, Posted>>>,
    blocked_until: Mutex<Option<Instant>>,
    metrics: Option<Arc<Metrics>>,
}

/// What one call achieved.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    pub posted: usize,
    /// Statuses not posted yet (rate limit, or a failure worth retrying).
    pub waiting: usize,
    /// When to try the waiting ones again.
    pub retry_after: Option<Duration>,
    /// A failure retrying will not fix (no installation, bad credentials, a refused status).
    pub error: Option<GithubError>,
}

impl Reporter {
    pub fn new(api: Arc<dyn GithubApi>, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            api,
            known: Mutex::default(),
            blocked_until: Mutex::default(),
            metrics,
        }
    }

    /// Posts what differs from what GitHub holds.
    pub async fn report(&self, repo: &Repo, wanted: &[CommitStatus]) -> Report {
        let mut report = Report::default();
        for status in wanted {
            if let Some(wait) = self.blocked().await {
                report.waiting += 1;
                report.retry_after = Some(wait);
                continue;
            }
            match self.post_if_changed(repo, status).await {
                Ok(true) => report.posted += 1,
                Ok(false) => {}
                Err(GithubError::RateLimited { retry_after }) => {
                    warn!(repository = %repo, wait_s = retry_after.as_secs(), "GitHub rate limit; holding posts");
                    *self.blocked_until.lock().await = Some(Instant::now() + retry_after);
                    report.waiting += 1;
                    report.retry_after = Some(retry_after);
                }
                Err(e) if e.is_retryable() => {
                    report.waiting += 1;
                    report.retry_after = Some(Duration::from_secs(10));
                    report.error.get_or_insert(e);
                }
                Err(e) => {
                    report.error.get_or_insert(e);
                }
            }
        }
        report
    }

    /// Until when posting must wait, if it must.
    async fn blocked(&self) -> Option<Duration> {
        let until = (*self.blocked_until.lock().await)?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    async fn post_if_changed(
        &self,
        repo: &Repo,
        status: &CommitStatus,
    ) -> Result<bool, GithubError> {
        let key = (repo.clone(), status.sha.clone());
        let known = self.known.lock().await.get(&key).cloned();
        let known = match known {
            Some(known) => known,
            None => {
                let read = self.api.statuses(repo, &status.sha, self).await?;
                let mut all = self.known.lock().await;
                if all.len() >= REMEMBERED {
                    all.clear();
                }
                all.insert(key.clone(), read.clone());
                read
            }
        };
        if known.get(&status.context) == Some(&status.posted()) {
            return Ok(false);
        }
        self.api.post(repo, status, self).await?;
        debug!(repository = %repo, sha = %status.sha, context = %status.context, state = status.state.as_str(), "posted a commit status");
        self.known
            .lock()
            .await
            .entry(key)
            .or_default()
            .insert(status.context.clone(), status.posted());
        Ok(true)
    }
}

/// `branchpipeline_github_requests_total`: the API tells of each HTTP request it sends (each
/// page, installation lookup and token), not of each call made here.
impl RequestLog for Reporter {
    fn request(&self, operation: Operation, outcome: Outcome) {
        if let Some(metrics) = &self.metrics {
            metrics.github_request(operation.as_str(), outcome.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::State;
    use crate::github::fake::FakeGithub;

    fn status(sha: &str, context: &str, state: State) -> CommitStatus {
        CommitStatus::new(sha, context, state, "d")
    }

    fn repo() -> Repo {
        Repo("acme/orders-api".into())
    }

    #[tokio::test]
    async fn posts_only_what_changed() {
        let github = Arc::new(FakeGithub::default());
        let reporter = Reporter::new(github.clone(), None);
        let pending = status("a", "branchpipeline/dev", State::Pending);
        assert_eq!(
            reporter
                .report(&repo(), std::slice::from_ref(&pending))
                .await
                .posted,
            1
        );
        assert_eq!(reporter.report(&repo(), &[pending]).await.posted, 0);
        let done = status("a", "branchpipeline/dev", State::Success);
        assert_eq!(reporter.report(&repo(), &[done]).await.posted, 1);
        assert_eq!(github.posts().len(), 2);
        assert_eq!(github.reads(), 1, "GitHub is read once per commit");
    }

    #[tokio::test]
    async fn a_restart_does_not_repost_what_github_has() {
        let github = Arc::new(FakeGithub::default());
        let first = Reporter::new(github.clone(), None);
        let s = status("a", "branchpipeline/build", State::Success);
        first.report(&repo(), std::slice::from_ref(&s)).await;
        let after_restart = Reporter::new(github.clone(), None);
        assert_eq!(after_restart.report(&repo(), &[s]).await.posted, 0);
        assert_eq!(github.posts().len(), 1);
    }

    #[tokio::test]
    async fn a_rate_limit_holds_posts_without_losing_them() {
        let github = Arc::new(FakeGithub::default());
        github.rate_limit_next(1, Duration::from_millis(50));
        let reporter = Reporter::new(github.clone(), None);
        let wanted = [
            status("a", "branchpipeline/build", State::Success),
            status("a", "branchpipeline/dev", State::Pending),
        ];
        let held = reporter.report(&repo(), &wanted).await;
        assert_eq!((held.posted, held.waiting), (0, 2));
        assert!(held.retry_after.is_some());
        tokio::time::sleep(Duration::from_millis(60)).await;
        let later = reporter.report(&repo(), &wanted).await;
        assert_eq!((later.posted, later.waiting), (2, 0));
        assert_eq!(github.posts().len(), 2);
    }

    #[tokio::test]
    async fn a_refusal_is_reported_and_not_retried() {
        let github = Arc::new(FakeGithub::default());
        github.refuse_posts(422);
        let reporter = Reporter::new(github.clone(), None);
        let report = reporter
            .report(
                &repo(),
                &[status("a", "branchpipeline/dev", State::Success)],
            )
            .await;
        assert_eq!(report.waiting, 0);
        assert!(matches!(
            report.error,
            Some(GithubError::Refused { status: 422, .. })
        ));
    }

    #[tokio::test]
    async fn the_metric_counts_each_http_request_the_api_sends() {
        let github = Arc::new(FakeGithub::default());
        github.paged(3);
        github.rate_limit_next(1, Duration::from_secs(60));
        let metrics = Arc::new(Metrics::new());
        let reporter = Reporter::new(github.clone(), Some(metrics.clone()));
        let wanted = [
            status("a", "branchpipeline/build", State::Success),
            status("a", "branchpipeline/dev", State::Pending),
        ];
        let held = reporter.report(&repo(), &wanted).await;
        assert_eq!((held.posted, held.waiting), (0, 2));
        let text = metrics.encode();
        let series = |operation: &str, outcome: &str| {
            format!(
                "branchpipeline_github_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}} "
            )
        };
        for (operation, outcome, count) in [
            ("GetCombinedStatus", "success", 3),
            ("CreateCommitStatus", "rate_limited", 1),
        ] {
            let line = format!("{}{count}\n", series(operation, outcome));
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains(&series("CreateCommitStatus", "success")),
            "the held status sent nothing: {text}"
        );
    }
}
