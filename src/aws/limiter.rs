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
//! Three lanes share each bucket, each allowed a different part of the burst: edits (a spec not
//! yet in AWS, a run start) all of it, other reconciles three quarters, background reads (the
//! execution tracker's polls) half. So when requests wait at once, edits go first and polls
//! last: a poll of every pipeline, or a resync pass, must not put an edit behind it (the
//! benchmark measured edits during a busy pass at p95 7.6 s with one lane, 1.1 to 2.1 s with
//! polls apart).

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

    /// Waits for this request's turn with the whole burst to draw on; returns how long it
    /// waited.
    pub async fn acquire(&self) -> Duration {
        self.acquire_within(self.tolerance).await
    }

    /// Waits until a slot is free within `headroom` of now, then takes it; returns how long it
    /// waited. Nothing is reserved while waiting, so among requests waiting at once, the one
    /// allowed the most headroom goes first: that is what orders the lanes. The rate over time
    /// stays one request per `interval` whatever the mix.
    async fn acquire_within(&self, headroom: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let wait = {
                let mut next = self.next.lock().await;
                let now = Instant::now();
                let theoretical = next.map_or(now, |n| n.max(now));
                let wait = theoretical.saturating_duration_since(now + headroom);
                if wait.is_zero() {
                    *next = Some(theoretical + self.interval);
                    return start.elapsed();
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// For the reconcile lane: three quarters of the burst, so an edit finds room ahead of it.
    pub async fn acquire_reconcile(&self) -> Duration {
        self.acquire_within(self.tolerance * 3 / 4).await
    }

    /// For background reads: half the burst, so they take only slots no reconcile or edit is
    /// waiting for. Under sustained load they wait as long as that load lasts: background reads
    /// are the ones that can be late.
    pub async fn acquire_spare(&self) -> Duration {
        self.acquire_within(self.tolerance / 2).await
    }
}

/// Which lane of the bucket a client's requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Reconciles of a spec not yet in AWS, and run starts: someone is waiting for them.
    Edit,
    /// Other reconciles (resyncs, drift checks) and following runs.
    Reconcile,
    /// Execution polls: only slots the other lanes leave unused.
    Background,
}

impl Lane {
    async fn acquire(self, bucket: &TokenBucket) -> Duration {
        match self {
            Lane::Edit => bucket.acquire().await,
            Lane::Reconcile => bucket.acquire_reconcile().await,
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

    /// A bucket of 10 a second (burst 10) that 7 requests have just drawn on.
    async fn seven_deep() -> TokenBucket {
        let bucket = TokenBucket::new(10, 10);
        for _ in 0..7 {
            assert_eq!(bucket.acquire().await, Duration::ZERO);
        }
        bucket
    }

    #[tokio::test(start_paused = true)]
    async fn edits_go_at_once_where_reconciles_wait_and_polls_wait_longer() {
        // The next free slot is 700 ms ahead; the lanes may draw 900, 675 and 450 ms ahead.
        let edit = seven_deep().await.acquire().await;
        let reconcile = seven_deep().await.acquire_reconcile().await;
        let poll = seven_deep().await.acquire_spare().await;
        assert_eq!(edit, Duration::ZERO);
        assert_eq!(reconcile, Duration::from_millis(25));
        assert_eq!(poll, Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn the_lanes_together_keep_the_rate() {
        let bucket = Arc::new(TokenBucket::new(10, 4));
        let start = Instant::now();
        let requests: Vec<_> = (0..30)
            .map(|i| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    match i % 3 {
                        0 => bucket.acquire().await,
                        1 => bucket.acquire_reconcile().await,
                        _ => bucket.acquire_spare().await,
                    };
                    Instant::now()
                })
            })
            .collect();
        let mut finished = Vec::new();
        for request in requests {
            finished.push(request.await.expect("request").duration_since(start));
        }
        finished.sort();
        // 30 requests at 10 a second after a burst of at most 4: no faster than 2.6 s.
        assert!(finished[29] >= Duration::from_millis(2600), "{finished:?}");
        assert!(finished[29] <= Duration::from_secs(3), "{finished:?}");
        // No second holds more than 10 plus the burst.
        for w in finished.windows(14) {
            assert!(w[13] - w[0] >= Duration::from_millis(900), "{finished:?}");
        }
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
