//! Prometheus metrics, served on `--metrics-addr` at `/metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The reconcile step that failed (`observe`, `apply`, `cleanup`, ...).
    pub step: String,
    /// `retryable` or `terminal`.
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabels {
    pub shard: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsLabels {
    pub operation: String,
    /// `success`, `retryable_error` or `terminal_error`.
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    reconcile_failures: Family<FailureLabels, Counter>,
    reconcile_panics: Counter,
    aws: AwsMetrics,
    drift_repairs: Counter,
    github_requests: Family<AwsLabels, Counter>,
    managed_pipelines: Gauge,
    managed_projects: Gauge,
    leader: Gauge,
    shard: Family<ShardLabels, Gauge>,
    /// Pipelines and projects per resource, summed into the gauges.
    managed: Mutex<HashMap<String, (i64, i64)>>,
    updates: UpdateMetrics,
}

/// Pipeline updates held back for running executions, and executions cancelled.
struct UpdateMetrics {
    deferred: Counter,
    cancelled: Counter,
    oldest_wait: Gauge,
    /// Seconds waited per resource with an update held back; the gauge is their maximum.
    waits: Mutex<HashMap<String, i64>>,
}

impl UpdateMetrics {
    fn register(reg: &mut Registry) -> Self {
        Self {
            deferred: register(
                reg,
                "pipeline_updates_deferred",
                "Pipeline updates held back because executions were in flight",
            ),
            cancelled: register(
                reg,
                "executions_cancelled",
                "Executions the controller cancelled by updating or deleting their pipeline",
            ),
            oldest_wait: register(
                reg,
                "pipeline_update_deferral_age_seconds",
                "How long the oldest pipeline update still held back has waited",
            ),
            waits: Mutex::default(),
        }
    }
}

/// What the controller asks of AWS, and what AWS holds.
struct AwsMetrics {
    requests: Family<AwsLabels, Counter>,
    rate_wait: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    throttled: Family<OperationLabels, Counter>,
    account_pipelines: Gauge,
    account_projects: Gauge,
    quota: Family<ResourceLabels, Gauge>,
}

impl AwsMetrics {
    fn register(reg: &mut Registry) -> Self {
        Self {
            requests: register(
                reg,
                "aws_requests",
                "AWS API calls by operation and outcome",
            ),
            rate_wait: register_with(
                reg,
                "aws_rate_limit_wait_seconds",
                "Time AWS requests waited for the client-side rate limit, by service",
                Family::new_with_constructor(rate_wait_histogram),
            ),
            throttled: register(
                reg,
                "aws_throttled",
                "AWS throttling responses seen, by operation",
            ),
            account_pipelines: register(
                reg,
                "account_pipelines",
                "Pipelines in the account and region at the last listing (any owner)",
            ),
            account_projects: register(
                reg,
                "account_projects",
                "CodeBuild projects in the account and region at the last listing (any owner)",
            ),
            quota: register(reg, "quota", "Configured per-region quota, by resource"),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("branchpipeline");
        let reg = &mut r;
        Self {
            reconciles: register(reg, "reconciles", "Reconciles by result (ok, error)"),
            reconcile_duration: register_with(
                reg,
                "reconcile_duration_seconds",
                "Time spent in one reconcile",
                Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            ),
            reconcile_failures: register(
                reg,
                "reconcile_failures",
                "Failed reconciles by step and class (retryable, terminal)",
            ),
            reconcile_panics: register(
                reg,
                "reconcile_panics",
                "Reconciles that panicked (a bug); the resource is retried, the controller keeps running",
            ),
            aws: AwsMetrics::register(reg),
            github_requests: register(
                reg,
                "github_requests",
                "GitHub API requests by operation and outcome (success, rate_limited, retryable_error, terminal_error)",
            ),
            drift_repairs: register(
                reg,
                "drift_repairs",
                "AWS resources changed outside the controller and put back",
            ),
            managed_pipelines: register(reg, "managed_pipelines", "CodePipeline pipelines managed"),
            managed_projects: register(reg, "managed_projects", "CodeBuild projects managed"),
            leader: register(reg, "leader", "1 when this replica holds the leader lease"),
            shard: register(
                reg,
                "shard",
                "1, labelled with the shard this process serves (N/M, or all)",
            ),
            managed: Mutex::default(),
            updates: UpdateMetrics::register(reg),
            registry: r,
        }
    }

    pub fn reconciled(&self, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    pub fn reconcile_failed(&self, step: &str, class: &str) {
        self.reconcile_failures
            .get_or_create(&FailureLabels {
                step: step.into(),
                class: class.into(),
            })
            .inc();
    }

    pub fn reconcile_panicked(&self) {
        self.reconcile_panics.inc();
    }

    pub fn aws_request(&self, operation: &str, outcome: &str) {
        self.aws
            .requests
            .get_or_create(&AwsLabels {
                operation: operation.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn aws_rate_wait(&self, service: &str, waited: Duration) {
        self.aws
            .rate_wait
            .get_or_create(&ServiceLabels {
                service: service.into(),
            })
            .observe(waited.as_secs_f64());
    }

    pub fn aws_throttled(&self, operation: &str) {
        self.aws
            .throttled
            .get_or_create(&OperationLabels {
                operation: operation.into(),
            })
            .inc();
    }

    pub fn github_request(&self, operation: &str, outcome: &str) {
        self.github_requests
            .get_or_create(&AwsLabels {
                operation: operation.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn drift_repaired(&self) {
        self.drift_repairs.inc();
    }

    pub fn drift_repairs(&self) -> u64 {
        self.drift_repairs.get()
    }

    /// Records what one resource manages; `None` when it is gone.
    pub fn set_managed(&self, key: &str, counts: Option<(usize, usize)>) {
        let mut managed = self.managed.lock().unwrap_or_else(|e| e.into_inner());
        match counts {
            Some((p, j)) => managed.insert(
                key.to_string(),
                (
                    i64::try_from(p).unwrap_or(i64::MAX),
                    i64::try_from(j).unwrap_or(i64::MAX),
                ),
            ),
            None => managed.remove(key),
        };
        self.managed_pipelines
            .set(managed.values().map(|v| v.0).sum());
        self.managed_projects
            .set(managed.values().map(|v| v.1).sum());
    }

    /// Records one pass's held-back updates and cancellations for resource `key`.
    pub fn record_updates(&self, key: &str, report: &crate::reconcile::outcome::UpdateReport) {
        let u = &self.updates;
        u.deferred
            .inc_by(u64::try_from(report.newly_deferred).unwrap_or(u64::MAX));
        u.cancelled
            .inc_by(u64::try_from(report.cancelled_executions).unwrap_or(u64::MAX));
        let mut waits = u.waits.lock().unwrap_or_else(|e| e.into_inner());
        match report.oldest_wait {
            Some(wait) => waits.insert(
                key.to_string(),
                i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
            ),
            None => waits.remove(key),
        };
        u.oldest_wait
            .set(waits.values().copied().max().unwrap_or(0));
    }

    pub fn set_account(&self, pipelines: usize, projects: usize) {
        self.aws
            .account_pipelines
            .set(i64::try_from(pipelines).unwrap_or(i64::MAX));
        self.aws
            .account_projects
            .set(i64::try_from(projects).unwrap_or(i64::MAX));
    }

    pub fn set_quotas(&self, pipelines: usize, projects: usize) {
        for (resource, limit) in [("pipelines", pipelines), ("projects", projects)] {
            self.aws
                .quota
                .get_or_create(&ResourceLabels {
                    resource: resource.into(),
                })
                .set(i64::try_from(limit).unwrap_or(i64::MAX));
        }
    }

    pub fn set_shard(&self, shard: &str) {
        self.shard
            .get_or_create(&ShardLabels {
                shard: shard.into(),
            })
            .set(1);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

fn rate_wait_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// Registers a default-constructed metric and returns a handle to it.
fn register<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: Default + Clone + prometheus_client::registry::Metric,
{
    register_with(registry, name, help, M::default())
}

fn register_with<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: Clone + prometheus_client::registry::Metric,
{
    registry.register(name, help, metric.clone());
    metric
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_every_series() {
        let m = Metrics::new();
        m.reconciled(true, Duration::from_millis(20));
        m.aws_request("GetPipeline", "success");
        m.drift_repaired();
        m.reconcile_failed("cleanup", "terminal");
        m.reconcile_panicked();
        m.set_managed("a/b", Some((2, 8)));
        m.set_managed("c/d", Some((1, 4)));
        m.set_managed("c/d", None);
        let held = |newly_deferred, secs: Option<u64>, cancelled_executions| {
            crate::reconcile::outcome::UpdateReport {
                newly_deferred,
                oldest_wait: secs.map(Duration::from_secs),
                cancelled_executions,
            }
        };
        m.record_updates("a/b", &held(2, Some(90), 0));
        m.record_updates("c/d", &held(1, Some(30), 0));
        m.record_updates("a/b", &held(0, None, 3));
        let text = m.encode();
        for needle in [
            "branchpipeline_reconciles_total{result=\"ok\"} 1",
            "branchpipeline_reconcile_duration_seconds_count 1",
            "branchpipeline_aws_requests_total{operation=\"GetPipeline\",outcome=\"success\"} 1",
            "branchpipeline_drift_repairs_total 1",
            "branchpipeline_reconcile_failures_total{step=\"cleanup\",class=\"terminal\"} 1",
            "branchpipeline_reconcile_panics_total 1",
            "branchpipeline_managed_pipelines 2",
            "branchpipeline_managed_projects 8",
            "branchpipeline_leader 0",
            "branchpipeline_pipeline_updates_deferred_total 3",
            "branchpipeline_executions_cancelled_total 3",
            // a/b's wait ended; c/d's is the oldest still held.
            "branchpipeline_pipeline_update_deferral_age_seconds 30",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
