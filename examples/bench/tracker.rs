//! The execution tracker's AWS reads (issue 12), counted apart from the reconciles'.
//!
//! Issue 11's "at most 4 AWS reads per object per pass" was set for reconciles, before the
//! tracker existed; the tracker has its own budget from issue 12: with no runs, at most one
//! ListPipelineExecutions per pipeline per `--execution-poll-interval`, and nothing else. The
//! bench shows both budgets side by side, each with its verdict, so that no read goes uncounted.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::support::AwsRequest;

/// The tracker's poll: one a pipeline, stopping at the cursor, so its cost does not grow with N.
pub const POLL: &str = "ListPipelineExecutions";

/// Every read the tracker makes. Only a poll that lists executions not yet settled reads the
/// others, so a steady pass (no runs) should have none of them. Reconciles also list executions
/// before they update a pipeline, but a steady pass updates nothing (its own target).
const READS: [&str; 4] = [
    POLL,
    "GetPipelineState",
    "ListActionExecutions",
    "GetPipelineExecution",
];

pub fn is_tracker_read(operation: &str) -> bool {
    READS.contains(&operation)
}

/// The same pipeline can be listed a little early by moto's clock: it stamps a request when its
/// handler runs, which under load lags the arrival by up to some hundreds of milliseconds, more
/// for one request than the next. A tracker polling twice an interval shows gaps near half of
/// it, far beyond this.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// What moto saw of the tracker's polls in a window.
#[derive(Debug, Clone, Default)]
pub struct Polls {
    /// Pipelines listed at least once.
    pub pipelines: usize,
    /// The shortest time between two polls of the same pipeline, if any was polled twice.
    pub closest: Option<Duration>,
}

/// The polls in moto's log, by pipeline.
pub fn polls(log: &[AwsRequest]) -> Polls {
    let mut times: HashMap<&str, Vec<f64>> = HashMap::new();
    for request in log.iter().filter(|r| r.action.as_deref() == Some(POLL)) {
        let pipeline = request.resource.as_deref().unwrap_or("");
        times.entry(pipeline).or_default().push(request.time);
    }
    let closest = times
        .values_mut()
        .flat_map(|t| {
            t.sort_by(f64::total_cmp);
            t.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
        })
        .min_by(f64::total_cmp)
        .map(|gap| Duration::from_secs_f64(gap.max(0.0)));
    Polls {
        pipelines: times.len(),
        closest,
    }
}

/// The tracker's reads in a pass against its budget: what to print, and whether it holds.
pub struct Budget {
    /// Polls a pipeline per poll interval, averaged over the window.
    pub per_interval: f64,
    pub polls: Polls,
    /// Tracker reads other than the poll, by operation.
    pub others: BTreeMap<String, f64>,
    pub met: bool,
}

/// `calls` are the controller's AWS requests over a window of `window`, `pipelines` those it
/// manages. The verdict is per pipeline, from moto's log: no two polls of one pipeline closer
/// than the interval. The average alone could hide a pipeline polled twice as often as another.
pub fn budget(
    calls: &BTreeMap<String, f64>,
    polls: &Polls,
    pipelines: f64,
    window: Duration,
    interval: Duration,
) -> Budget {
    let count = calls.get(POLL).copied().unwrap_or(0.0);
    let intervals = window.as_secs_f64() / interval.as_secs_f64();
    let others: BTreeMap<String, f64> = calls
        .iter()
        .filter(|(op, n)| is_tracker_read(op) && op.as_str() != POLL && **n != 0.0)
        .map(|(op, n)| (op.clone(), *n))
        .collect();
    let spaced = polls
        .closest
        .is_none_or(|gap| gap + CLOCK_SLACK >= interval);
    Budget {
        per_interval: count / pipelines.max(1.0) / intervals,
        polls: polls.clone(),
        met: spaced && others.is_empty(),
        others,
    }
}

impl Budget {
    /// E.g. `0.99 ListPipelineExecutions a pipeline per 60 s over the 600 s window (2000 of 2000
    /// pipelines polled, closest 61.0 s apart); no other reads`. The average is only a guide,
    /// noisy over a window not much longer than the interval; the verdict is per pipeline.
    pub fn describe(&self, pipelines: f64, interval: Duration, window: Duration) -> String {
        let closest = self.polls.closest.map_or_else(
            || "none polled twice".to_owned(),
            |gap| format!("closest {:.1} s apart", gap.as_secs_f64()),
        );
        let others: Vec<String> = (self.others.iter())
            .map(|(op, n)| format!("{op} {n:.0}"))
            .collect();
        let others = if others.is_empty() {
            "no other reads".to_owned()
        } else {
            others.join(", ")
        };
        format!(
            "{:.2} {POLL} a pipeline per {} s over the {:.0} s window ({} of {pipelines:.0} pipelines polled, {closest}); {others}",
            self.per_interval,
            interval.as_secs(),
            window.as_secs_f64(),
            self.polls.pipelines,
        )
    }
}
