//! What the bench prints: each phase's figures as it ends, then the targets.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::edits::{EditReport, percentile};
use crate::metrics::{self, Sample, is_mutating};
use crate::phases::{Cold, Pass};
use crate::plain::{Boto3Run, PlainRun};
use crate::results::Build;
use crate::tracker::{self, is_tracker_read};
use crate::{Args, PRODUCTION_MAX_TPS};

pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

pub fn millis(d: Option<Duration>) -> String {
    d.map(|d| format!("{} ms", d.as_millis()))
        .unwrap_or_else(|| "-".to_owned())
}

pub fn setup(args: &Args, dir: &Path, build: &Build) {
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!(
        "N={} objects on {cores} cores; controller --aws-max-tps {} {}, --execution-poll-interval {}s; resync 600s (cold), {}s (steady), {}s (busy); logs in {}",
        args.n,
        args.max_tps(),
        limit_meaning(args),
        args.poll_interval.as_secs(),
        args.idle_interval().as_secs(),
        args.busy_interval().as_secs(),
        dir.display()
    );
    println!("Measuring {}", build.describe());
}

/// What the client limit the controller runs at means for the figures.
fn limit_meaning(args: &Args) -> String {
    if args.unthrottled() {
        "(unthrottled: the bed's moto never throttles and the plain loops have no limit; \
         `--aws-max-tps 10` measures the production default)"
            .to_owned()
    } else if args.max_tps() == PRODUCTION_MAX_TPS {
        "(the production default: cold convergence then measures this limit, which the plain \
         loops do not have)"
            .to_owned()
    } else {
        "(a client limit the plain loops do not have)".to_owned()
    }
}

/// The sum of some counts (0, not the -0.0 of an empty float `Sum`).
pub fn sum<'a>(counts: impl Iterator<Item = &'a f64>) -> f64 {
    counts.fold(0.0, |a, b| a + b)
}

pub fn plain(run: &PlainRun) {
    let calls: usize = run.calls.values().map(|(n, _)| n).sum();
    println!(
        "  {} Create calls in {} ({} object(s) at a time)",
        calls,
        secs(run.elapsed),
        run.concurrency
    );
    for (op, (n, took)) in &run.calls {
        println!(
            "    {op:<16} {n:>6} calls, mean {:.1} ms",
            took.as_secs_f64() * 1000.0 / *n as f64
        );
    }
}

pub fn boto3(run: &Boto3Run) {
    let calls: usize = run.calls.values().sum();
    println!("  {calls} Create calls in {}", secs(run.elapsed()));
}

/// The least time the client-side rate limit allows for `calls`: per service, requests over
/// the limit, and the slower of the two.
fn rate_limit_floor(calls: &BTreeMap<String, f64>, tps: u32) -> Duration {
    let (build, pipeline): (Vec<_>, Vec<_>) =
        calls.iter().partition(|(op, _)| op.contains("Project"));
    let total = |v: Vec<(&String, &f64)>| sum(v.into_iter().map(|(_, n)| n));
    Duration::from_secs_f64(total(build).max(total(pipeline)) / f64::from(tps.max(1)))
}

/// Cold convergence over the Rust plain loop's time, and over the boto3 loop's.
pub fn ratios(cold: &Cold, plain: &PlainRun) -> (f64, Option<f64>) {
    let over = |d: Duration| cold.elapsed.as_secs_f64() / d.as_secs_f64();
    (
        over(plain.elapsed),
        plain.boto3.as_ref().map(|b| over(b.elapsed())),
    )
}

pub fn cold(args: &Args, cold: &Cold, plain: &PlainRun) {
    let n = args.n as f64;
    let median = cold
        .ready
        .get(cold.ready.len() / 2)
        .copied()
        .unwrap_or_default();
    println!(
        "Cold convergence: {} from the first apply until all {} are Ready (applies done at {}, first Ready at {}, half at {})",
        secs(cold.elapsed),
        args.n,
        secs(cold.applied),
        secs(cold.ready.first().copied().unwrap_or_default()),
        secs(median)
    );
    let (rust, boto3) = ratios(cold, plain);
    println!(
        "  plain loop (Rust SDK): {}; ratio {rust:.2}",
        secs(plain.elapsed)
    );
    if let (Some(run), Some(ratio)) = (&plain.boto3, boto3) {
        println!(
            "  plain boto3 loop (the issue's baseline): {}; ratio {ratio:.2}",
            secs(run.elapsed())
        );
    }
    let creates: BTreeMap<String, f64> = (plain.calls.iter())
        .map(|(op, (count, _))| (op.to_string(), *count as f64))
        .collect();
    let floor = rate_limit_floor(&creates, args.max_tps());
    println!(
        "  the plain loop's Create calls alone would need at least {} at the controller's client limit; ratio to that {:.2}",
        secs(floor),
        cold.elapsed.as_secs_f64() / floor.as_secs_f64()
    );
    let calls = cold.metrics.aws_by_operation();
    println!("  AWS calls per object (controller metrics | moto log):");
    for (op, count) in &calls {
        let moto = cold.moto.get(op).copied().unwrap_or(0) as f64;
        println!("    {op:<20} {:>6.2} | {:>6.2}", count / n, moto / n);
    }
    println!("  API server requests per object (the bench's applies and the controller's):");
    for (request, count) in cold.api_server.api_server_by_request() {
        println!("    {request:<40} {:>6.2}", count / n);
    }
    // A GetPipeline of a pipeline not created yet answers PipelineNotFoundException (400).
    failures(&cold.metrics, cold.moto_failed);
    rate_limit(args, &cold.metrics, &calls, cold.elapsed);
    cpu(&cold.cpu);
}

fn failures(metrics: &Sample, moto_failed: usize) {
    let failed = metrics.aws_failures();
    println!("  failed AWS requests: {failed:?} (moto: {moto_failed} not 2xx)");
}

/// The client limit's floor for these calls and the time requests waited for tokens. At the
/// bench's unthrottled default, waits must be nil: otherwise the limit, not the controller,
/// shaped the phase, and the report says so.
fn rate_limit(args: &Args, metrics: &Sample, calls: &BTreeMap<String, f64>, elapsed: Duration) {
    let tps = args.max_tps();
    let waits = metrics.by_label(metrics::RATE_WAIT_SUM, "service", |_| true);
    let waited = sum(waits.values());
    let waits: Vec<String> = waits.iter().map(|(s, w)| format!("{s} {w:.1} s")).collect();
    println!(
        "  client rate limit ({tps}/s a service): these calls need at least {}; time requests waited for it, summed: {}",
        secs(rate_limit_floor(calls, tps)),
        if waits.is_empty() {
            "none".to_owned()
        } else {
            waits.join(", ")
        }
    );
    // A hundredth of the phase, summed over requests in flight together: a limit that binds
    // makes many requests wait at once, so it shows far above this.
    if args.unthrottled() && waited > 0.01 * elapsed.as_secs_f64() {
        println!(
            "  WARNING: the limit bound at --aws-max-tps {tps}; raise it to measure the controller alone"
        );
    }
}

pub fn cpu(used: &[(String, f64)]) {
    let parts: Vec<String> = used.iter().map(|(p, s)| format!("{p} {s:.1}")).collect();
    println!("  CPU seconds: {}", parts.join(", "));
}

/// Reads, writes and reconcile work over a pass, in all and per object.
pub fn pass(label: &str, args: &Args, pass: &Pass) {
    let n = args.n as f64;
    let calls = pass.metrics.aws_by_operation();
    let reconciles = pass.metrics.total(metrics::RECONCILE_COUNT);
    let work = pass.metrics.total(metrics::RECONCILE_SUM);
    println!(
        "{label}: {} window, {reconciles:.0} reconciles, work (sum of reconcile durations) {work:.2} s = {:.1} ms an object",
        secs(pass.window),
        work * 1000.0 / n
    );
    let (writes, reads): (Vec<_>, Vec<_>) = calls.iter().partition(|(op, _)| is_mutating(op));
    let (tracker, reconciles): (Vec<_>, Vec<_>) =
        reads.into_iter().partition(|(op, _)| is_tracker_read(op));
    let groups = [
        ("reads by reconciles", reconciles),
        ("reads by the execution tracker", tracker),
        ("writes", writes),
    ];
    for (kind, list) in groups {
        let total = sum(list.iter().map(|(_, c)| *c));
        let ops: Vec<String> = list.iter().map(|(op, c)| format!("{op} {c:.0}")).collect();
        println!(
            "  AWS {kind}: {total:.0} = {:.2} an object ({})",
            total / n,
            ops.join(", ")
        );
    }
    let budget = pass_tracker_budget(args, pass);
    println!(
        "  execution tracker: {}",
        budget.describe(pass.pipelines, args.poll_interval, pass.window)
    );
    if let Some(moto) = pass.moto_requests {
        println!("  moto answered {moto} requests in the window");
    }
    println!(
        "  status writes (objects whose resourceVersion changed): {}",
        pass.status_writes
    );
    failures(&pass.metrics, 0);
    cpu(&pass.cpu);
}

/// The execution tracker's reads over a pass against its budget (see [`tracker`]).
pub fn pass_tracker_budget(args: &Args, pass: &Pass) -> tracker::Budget {
    tracker::budget(
        &pass.metrics.aws_by_operation(),
        &pass.polls,
        pass.pipelines,
        pass.window,
        args.poll_interval,
    )
}

pub fn edits(label: &str, report: &EditReport) {
    let l = &report.latencies;
    println!(
        "{label}: {} timed, p50 {}, p95 {}, max {}; lost {}",
        l.len(),
        millis(percentile(l, 0.5)),
        millis(percentile(l, 0.95)),
        millis(l.last().copied()),
        report.lost
    );
    println!(
        "  UpdateProject calls per edit: {:?}; other AWS writes meanwhile: {:?}",
        report.updates_per_edit, report.other_writes
    );
}

pub fn rss(peaks: &[(String, u64)]) {
    let parts: Vec<String> = peaks
        .iter()
        .map(|(label, kib)| format!("{label} {:.1} MiB", *kib as f64 / 1024.0))
        .collect();
    println!("Controller peak RSS (VmHWM): {}", parts.join(", "));
}
