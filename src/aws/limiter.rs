//! Client-side rate limiting: one token bucket per AWS service, shared by every reconcile, in
//! front of every HTTP request the SDK sends (retries and pages included).
//!
//! AWS publishes no per-API request rate for CodePipeline or CodeBuild ("Quotas in AWS
//! CodePipeline" and "Quotas for AWS CodeBuild" list resource quotas only); both throttle with
//! `ThrottlingException` when an account sends too much. So the controller keeps its own rate
//! well below what one account's other tools leave free (`--aws-max-tps`, default 10 per
//! service); throttling responses are retried by the SDK and counted in
//! `branchpipeline_aws_throttled_total`.
//!
//! Two lanes share each bucket. Reconciles reserve the next slot, as a queue. Background reads
//! (the execution tracker's polls) take only a slot nobody is waiting for, and keep half the
//! burst free: a poll of every pipeline at once must not put an edit's reconcile behind it
//! (the benchmark measured edits during a busy pass at p95 7.6 s with one lane).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// A token bucket as a generic cell rate algorithm: requests leave at most every `interval`,
/// after a burst of `burst`.
pub struct TokenBucket {
    interval: Duration,
    /// How far ahead of its theoretical time a request may leave: the burst.
    tolerance: Duration,
    /// The theoretical arrival time of the next request.
    next: Mutex<Option<Instant>>,
}

impl TokenBucket {
    /// `per_second` requests a second (at least one), in bursts of up to `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_second.max(1);
        Self {
            interval,
            tolerance: interval * (burst.max(1) - 1),
            next: Mutex::new(None),
        }
    }

    /// Waits for this request's turn; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let wait = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let theoretical = next.map_or(now, |n| n.max(now));
            *next = Some(theoretical + self.interval);
            // Leaves at `theoretical - tolerance`, or now if that has passed.
            theoretical.saturating_duration_since(now + self.tolerance)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }

    /// Waits for a slot no request of the reconcile lane is queued for, keeping half the burst
    /// for that lane; returns how long it waited. Under sustained reconcile load it waits as
    /// long as that load lasts: background reads are the ones that can be late.
    pub async fn acquire_spare(&self) -> Duration {
        let start = Instant::now();
        loop {
            let wait = {
                let mut next = self.next.lock().await;
                let now = Instant::now();
                let theoretical = next.map_or(now, |n| n.max(now));
                let wait = theoretical.saturating_duration_since(now + self.tolerance / 2);
                if wait.is_zero() {
                    *next = Some(theoretical + self.interval);
                    return start.elapsed();
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Which lane of the bucket a client's requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Reconciles and runs: queued in order of arrival.
    Reconcile,
    /// Execution polls: only slots the reconcile lane leaves unused.
    Background,
}

impl Lane {
    async fn acquire(self, bucket: &TokenBucket) -> Duration {
        match self {
            Lane::Reconcile => bucket.acquire().await,
            Lane::Background => bucket.acquire_spare().await,
        }
    }
}

/// An SDK HTTP client that takes a token before each request and times the wait.
pub struct Limited {
    inner: SharedHttpClient,
    bucket: Arc<TokenBucket>,
    lane: Lane,
    service: &'static str,
    metrics: Option<Arc<Metrics>>,
}

impl Limited {
    pub fn new(
        inner: SharedHttpClient,
        bucket: Arc<TokenBucket>,
        lane: Lane,
        service: &'static str,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            inner,
            bucket,
            lane,
            service,
            metrics,
        }
    }
}

impl fmt::Debug for Limited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Limited({})", self.service)
    }
}

impl HttpClient for Limited {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(LimitedConnector {
            inner: self.inner.http_connector(settings, components),
            bucket: self.bucket.clone(),
            lane: self.lane,
            service: self.service,
            metrics: self.metrics.clone(),
        })
    }
}

struct LimitedConnector {
    inner: SharedHttpConnector,
    bucket: Arc<TokenBucket>,
    lane: Lane,
    service: &'static str,
    metrics: Option<Arc<Metrics>>,
}

impl fmt::Debug for LimitedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LimitedConnector({})", self.service)
    }
}

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, bucket, metrics, service, lane) = (
            self.inner.clone(),
            self.bucket.clone(),
            self.metrics.clone(),
            self.service,
            self.lane,
        );
        HttpConnectorFuture::new(async move {
            let waited = lane.acquire(&bucket).await;
            if let Some(metrics) = metrics {
                metrics.aws_rate_wait(service, waited);
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_lets_a_burst_through_then_paces() {
        let bucket = TokenBucket::new(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(bucket.acquire().await, Duration::ZERO, "the burst");
        }
        let mut waits = Vec::new();
        for _ in 0..5 {
            waits.push(bucket.acquire().await);
        }
        assert!(waits.iter().all(|w| *w > Duration::ZERO), "{waits:?}");
        // 8 requests at 10 a second after a burst of 3: at least 0.5 s.
        assert!(
            start.elapsed() >= Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        assert!(
            start.elapsed() <= Duration::from_millis(600),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn background_requests_never_go_ahead_of_queued_reconciles() {
        let bucket = Arc::new(TokenBucket::new(10, 4));
        // A poll of many pipelines at once, then an edit's reads a moment later.
        let polls: Vec<_> = (0..20)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    bucket.acquire_spare().await;
                    Instant::now()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let start = Instant::now();
        for _ in 0..3 {
            bucket.acquire().await;
        }
        let edit_done = start.elapsed();
        assert!(
            edit_done <= Duration::from_millis(300),
            "the edit waited {edit_done:?} behind background polls"
        );
        let mut finished = Vec::new();
        for poll in polls {
            finished.push(poll.await.expect("poll"));
        }
        // The polls still all get through, paced at the bucket's rate.
        let last = finished.iter().max().expect("polls");
        assert!(
            last.duration_since(start) >= Duration::from_millis(1500),
            "{:?}",
            last.duration_since(start)
        );
        assert!(
            last.duration_since(start) <= Duration::from_secs(3),
            "{:?}",
            last.duration_since(start)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn background_requests_keep_half_the_burst_free() {
        let bucket = TokenBucket::new(10, 4);
        assert_eq!(bucket.acquire_spare().await, Duration::ZERO);
        assert_eq!(bucket.acquire_spare().await, Duration::ZERO);
        assert!(
            bucket.acquire_spare().await > Duration::ZERO,
            "half of the burst of 4"
        );
        // The reconcile lane still has a burst waiting for it after the polls paused.
        let bucket = TokenBucket::new(10, 4);
        bucket.acquire_spare().await;
        bucket.acquire_spare().await;
        assert_eq!(bucket.acquire().await, Duration::ZERO);
        assert_eq!(bucket.acquire().await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_to_its_burst_only() {
        let bucket = TokenBucket::new(10, 2);
        bucket.acquire().await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(bucket.acquire().await, Duration::ZERO);
        assert_eq!(bucket.acquire().await, Duration::ZERO);
        assert!(
            bucket.acquire().await > Duration::ZERO,
            "no more than the burst after a rest"
        );
    }
}
