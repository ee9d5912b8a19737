//! The controller's Prometheus text (`/metrics`), parsed into series that can be subtracted:
//! what a phase cost is the difference between a sample after it and one before.

use std::collections::BTreeMap;

pub const AWS_REQUESTS: &str = "branchpipeline_aws_requests_total";
pub const RECONCILE_SUM: &str = "branchpipeline_reconcile_duration_seconds_sum";
pub const RECONCILE_COUNT: &str = "branchpipeline_reconcile_duration_seconds_count";
/// The API server's requests, by verb, resource and subresource (kube-apiserver 1.20).
pub const API_SERVER_REQUESTS: &str = "apiserver_request_total";
pub const RATE_WAIT_SUM: &str = "branchpipeline_aws_rate_limit_wait_seconds_sum";
/// A gauge: the pipelines the controller manages.
pub const MANAGED_PIPELINES: &str = "branchpipeline_managed_pipelines";

type Labels = BTreeMap<String, String>;

/// Every series of one scrape: `(name, labels) -> value`.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    series: BTreeMap<(String, Vec<(String, String)>), f64>,
}

impl Sample {
    pub fn parse(text: &str) -> Self {
        let series = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(parse_line)
            .map(|(name, labels, value)| ((name, labels.into_iter().collect()), value))
            .collect();
        Self { series }
    }

    /// `self - before`, series by series (a series missing before counts from 0).
    pub fn minus(&self, before: &Sample) -> Sample {
        let series = self
            .series
            .iter()
            .map(|(key, value)| (key.clone(), value - before.series.get(key).unwrap_or(&0.0)))
            .collect();
        Sample { series }
    }

    /// Every series of `name`, with its labels.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (Labels, f64)> + 'a {
        self.series
            .iter()
            .filter(move |((n, _), _)| n == name)
            .map(|((_, labels), value)| (labels.iter().cloned().collect(), *value))
    }

    /// The sum of every series of `name`.
    pub fn total(&self, name: &str) -> f64 {
        self.series(name).map(|(_, value)| value).sum()
    }

    /// Sums of `name`'s series by the value of `label`, keeping the series `keep` accepts.
    pub fn by_label(
        &self,
        name: &str,
        label: &str,
        keep: impl Fn(&Labels) -> bool,
    ) -> BTreeMap<String, f64> {
        let mut sums = BTreeMap::new();
        for (labels, value) in self.series(name).filter(|(labels, _)| keep(labels)) {
            let key = labels.get(label).cloned().unwrap_or_default();
            *sums.entry(key).or_insert(0.0) += value;
        }
        sums.retain(|_, v| *v != 0.0);
        sums
    }

    /// AWS requests by operation, all outcomes.
    pub fn aws_by_operation(&self) -> BTreeMap<String, f64> {
        self.by_label(AWS_REQUESTS, "operation", |_| true)
    }

    /// API server requests by `VERB resource[/subresource]`, watches and the bench's reads of
    /// `/metrics` left out.
    pub fn api_server_by_request(&self) -> BTreeMap<String, f64> {
        let mut sums = BTreeMap::new();
        for (labels, value) in self.series(API_SERVER_REQUESTS) {
            let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let (verb, resource, sub) = (get("verb"), get("resource"), get("subresource"));
            if value == 0.0 || verb == "WATCH" || resource.is_empty() {
                continue;
            }
            let key = if sub.is_empty() {
                format!("{verb} {resource}")
            } else {
                format!("{verb} {resource}/{sub}")
            };
            *sums.entry(key).or_insert(0.0) += value;
        }
        sums
    }

    /// AWS requests that did not succeed, by operation and outcome (`op/outcome`).
    pub fn aws_failures(&self) -> BTreeMap<String, f64> {
        let mut failures = BTreeMap::new();
        for (labels, value) in self.series(AWS_REQUESTS) {
            let outcome = labels.get("outcome").map(String::as_str).unwrap_or("");
            if outcome != "success" && value != 0.0 {
                let op = labels.get("operation").cloned().unwrap_or_default();
                failures.insert(format!("{op}/{outcome}"), value);
            }
        }
        failures
    }
}

/// `name{a="x",b="y"} 1.5` or `name 1.5`.
fn parse_line(line: &str) -> Option<(String, Labels, f64)> {
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.trim().parse().ok()?;
    let Some((name, rest)) = head.split_once('{') else {
        return Some((head.trim().to_owned(), Labels::new(), value));
    };
    let labels = rest
        .trim_end()
        .trim_end_matches('}')
        .split("\",")
        .filter_map(|pair| pair.split_once("=\""))
        .map(|(k, v)| (k.to_owned(), v.trim_end_matches('"').to_owned()))
        .collect();
    Some((name.to_owned(), labels, value))
}

/// Whether an AWS operation writes.
pub fn is_mutating(operation: &str) -> bool {
    [
        "Create", "Update", "Delete", "Tag", "Untag", "Start", "Stop", "Put",
    ]
    .iter()
    .any(|prefix| operation.starts_with(prefix))
}

/// Whether an AWS operation lists the account (its cost grows with everything in it).
pub fn is_account_listing(operation: &str) -> bool {
    matches!(operation, "ListPipelines" | "ListProjects")
}
