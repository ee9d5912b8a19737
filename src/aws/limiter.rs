//! Client-side rate limiting: one token bucket per AWS service, shared by every reconcile, in
//! front of every HTTP request the SDK sends (retries and pages included).
//!
//! AWS publishes no per-API request rate for CodePipeline or CodeBuild ("Quotas in AWS
//! CodePipeline" and "Quotas for AWS CodeBuild" list resource quotas only); both throttle with
//! `ThrottlingException` when an account sends too much. So the controller keeps its own rate
//! well below what one account's other tools leave free (`--aws-max-tps`, default 10 per
//! service); throttling responses are retried by the SDK and counted in
//! `branchpipeline_aws_throttled_total`.

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
}

/// An SDK HTTP client that takes a token before each request and times the wait.
pub struct Limited {
    inner: SharedHttpClient,
    bucket: Arc<TokenBucket>,
    service: &'static str,
    metrics: Option<Arc<Metrics>>,
}

impl Limited {
    pub fn new(
        inner: SharedHttpClient,
        bucket: Arc<TokenBucket>,
        service: &'static str,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            inner,
            bucket,
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
            service: self.service,
            metrics: self.metrics.clone(),
        })
    }
}

struct LimitedConnector {
    inner: SharedHttpConnector,
    bucket: Arc<TokenBucket>,
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
        let (inner, bucket, metrics, service) = (
            self.inner.clone(),
            self.bucket.clone(),
            self.metrics.clone(),
            self.service,
        );
        HttpConnectorFuture::new(async move {
            let waited = bucket.acquire().await;
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
