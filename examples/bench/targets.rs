//! The summary: a verdict for each acceptance item of issue 11, stated for
//! `scripts/bench.sh 1000` on a 2-core machine. An item this run cannot decide alone (the pass
//! scaling, which needs a run at N/10; the 2-shard split, a run of its own) is decided from the
//! recorded result of that run when it measured the same build (see [`crate::results`]), and
//! otherwise says which run to make.

use std::path::Path;
use std::time::Duration;

use crate::edits::percentile;
use crate::metrics::{is_account_listing, is_mutating};
use crate::phases::{Cold, Pass, Results};
use crate::plain::PlainRun;
use crate::report::{millis, pass_tracker_budget, ratios, secs, sum};
use crate::results::{self, Build, Record, ShardsRecord};
use crate::tracker::{POLL, is_tracker_read};
use crate::{Args, UNTHROTTLED_MAX_TPS};

enum Verdict {
    Met,
    NotMet,
    /// This run cannot decide it; the measured text says which run would.
    NotEvaluated,
}

impl Verdict {
    fn of(met: bool) -> Self {
        if met { Self::Met } else { Self::NotMet }
    }
}

/// One item: its verdict first, so a column of them reads at a glance.
fn row(target: &str, measured: &str, verdict: Verdict) {
    let verdict = match verdict {
        Verdict::Met => "met",
        Verdict::NotMet => "NOT met",
        Verdict::NotEvaluated => "not evaluated",
    };
    println!("  {verdict:<14} {target}: {measured}");
}

/// A remark on the rows next to it, aligned with the targets.
fn note(text: &str) {
    println!("  {:<14} ({text})", "");
}

pub fn print(args: &Args, r: &Results, record: &Record, root: &Path) {
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!(
        "\nIssue 11's acceptance (stated for N=1000 on 2 cores; this run: N={}, {cores} cores, --aws-max-tps {}):",
        args.n,
        args.max_tps()
    );
    cold_row(args, &r.cold, &r.plain);
    steady_rows(args, &r.pass);
    scaling_row(args, record, root);
    for (label, e) in [("idle", &r.idle_edits), ("during a pass", &r.busy_edits)] {
        let p95 = percentile(&e.latencies, 0.95);
        let met = e.lost == 0 && p95.is_some_and(|p| p < Duration::from_secs(2));
        let measured = format!("{} ({} lost)", millis(p95), e.lost);
        row(
            &format!("edit latency p95 < 2 s, {label}"),
            &measured,
            Verdict::of(met),
        );
    }
    rss_row(&r.rss);
    compute_edit_row(r);
    shards_row(args, &record.build, root);
}

/// `--cold-only`: the items a cold phase decides, and what the others need.
pub fn print_cold_only(args: &Args, cold: &Cold, plain: &PlainRun, rss: &[(String, u64)]) {
    println!(
        "\nIssue 11's acceptance, the items a cold phase decides (stated for N=1000 on 2 cores; this run: N={}):",
        args.n
    );
    cold_row(args, cold, plain);
    rss_row(rss);
    note(&format!(
        "the steady, edit, scaling and compute-edit items need the whole run: scripts/bench.sh {}",
        args.n
    ));
}

fn rss_row(rss: &[(String, u64)]) {
    let peak = rss.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
    let mib = peak as f64 / 1024.0;
    row(
        "peak controller RSS < 48 MiB",
        &format!("{mib:.1} MiB"),
        Verdict::of(mib < 48.0),
    );
}

fn cold_row(args: &Args, cold: &Cold, plain: &PlainRun) {
    let (rust, boto3) = ratios(cold, plain);
    let limit = if args.unthrottled() {
        format!(
            "controller at --aws-max-tps {}, unthrottled",
            args.max_tps()
        )
    } else {
        format!(
            "controller at --aws-max-tps {}: its limiter, which the loops lack, is measured too",
            args.max_tps()
        )
    };
    let measured = format!(
        "{} the boto3 loop ({rust:.2}x the Rust loop; {limit})",
        boto3.map_or_else(|| "-".to_owned(), |b| format!("{b:.2}x"))
    );
    row(
        "cold convergence <= 1.3x the plain boto3 loop",
        &measured,
        Verdict::of(boto3.is_some_and(|b| b <= 1.3)),
    );
}

/// Writes, then every AWS read of the pass in one of two budgets: the reconciles' (issue 11)
/// and the execution tracker's (issue 12).
fn steady_rows(args: &Args, pass: &Pass) {
    let n = args.n as f64;
    let calls = pass.metrics.aws_by_operation();
    let of =
        |keep: &dyn Fn(&str) -> bool| sum(calls.iter().filter(|(op, _)| keep(op)).map(|(_, c)| c));
    let writes = of(&is_mutating);
    let reads = of(&|op| !is_mutating(op) && !is_tracker_read(op));
    let tracker = of(&|op| is_tracker_read(op));
    let listings = of(&is_account_listing);
    let w = format!("{writes:.0} writes, {} status writes", pass.status_writes);
    row(
        "steady: 0 mutating AWS calls and 0 status writes a pass",
        &w,
        Verdict::of(writes == 0.0 && pass.status_writes == 0),
    );
    let r = format!("{:.2} an object, {listings:.0} account listings", reads / n);
    row(
        "steady: <= 4 AWS reads by reconciles an object a pass, no list growing with N",
        &r,
        Verdict::of(reads / n <= 4.0 && listings == 0.0),
    );
    let budget = pass_tracker_budget(args, pass);
    row(
        &format!(
            "steady: execution tracker <= 1 {POLL} a pipeline per --execution-poll-interval and no other read (issue 12)"
        ),
        &budget.describe(pass.pipelines, args.poll_interval, pass.window),
        Verdict::of(budget.met),
    );
    note(&format!(
        "every AWS read of the {} pass: {:.2} an object = reconciles {:.2} + tracker {:.2}",
        secs(pass.window),
        (reads + tracker) / n,
        reads / n,
        tracker / n
    ));
}

/// The work of a steady pass at N against 1.5 x 10 x the one at N/10.
fn scaling_row(args: &Args, record: &Record, root: &Path) {
    const TARGET: &str = "steady: a pass at N <= 1.5 x 10 x the pass at N/10";
    note(
        "a pass here is its reconciles' summed durations, the controller's busy time for one resync of every object; \
         not its wall time, which the bench sets to the resync interval, 0.6 s x N, so it grows tenfold by construction and could never fail",
    );
    let small = args.n / 10;
    if !args.n.is_multiple_of(10) || small == 0 {
        let measured = format!(
            "N={} has no N/10; `scripts/bench.sh {}` would compare with this run",
            args.n,
            args.n * 10
        );
        return row(TARGET, &measured, Verdict::NotEvaluated);
    }
    let hint = rerun(args, small);
    let path = results::results_path(root, small);
    let Some(prior) = results::load::<Record>(&path) else {
        let measured = format!(
            "no result for N={small} in {}: run `{hint}` first",
            path.display()
        );
        return row(TARGET, &measured, Verdict::NotEvaluated);
    };
    if let Some(why) = record.incomparable(&prior) {
        let measured = format!("the N={small} result is {why}: run `{hint}` first");
        return row(TARGET, &measured, Verdict::NotEvaluated);
    }
    let (measured, met) = scaling(record, &prior);
    row(TARGET, &measured, Verdict::of(met));
}

/// The comparison itself. Each pass must hold every object's resync once: a pass missing
/// objects would do less work, and pass for no reason.
fn scaling(record: &Record, prior: &Record) -> (String, bool) {
    let incomplete = [record, prior].into_iter().find(|r| {
        let n = r.n as f64;
        (r.steady.reconciles - n).abs() > (n / 100.0).max(1.0)
    });
    if let Some(r) = incomplete {
        let measured = format!(
            "the pass at N={} reconciled {:.0} times for {} objects: not one pass",
            r.n, r.steady.reconciles, r.n
        );
        return (measured, false);
    }
    let limit = 15.0 * prior.steady.work_s;
    let work = record.steady.work_s;
    let measured = format!(
        "{work:.2} s at N={} against 1.5 x 10 x {:.2} s at N={} = {limit:.2} s ({:.1} ms an object against {:.1})",
        record.n,
        prior.steady.work_s,
        prior.n,
        work * 1000.0 / record.n as f64,
        prior.steady.work_s * 1000.0 / prior.n as f64,
    );
    (measured, work <= limit)
}

/// The command that records a comparable run at `n`.
fn rerun(args: &Args, n: usize) -> String {
    let mut command = format!("scripts/bench.sh {n}");
    if args.max_tps() != UNTHROTTLED_MAX_TPS {
        command += &format!(" --aws-max-tps {}", args.max_tps());
    }
    // The default 20 edits need as many objects.
    if n < 20 {
        command += &format!(" --edits {n}");
    }
    for arg in &args.controller_args {
        command += &format!(" --controller-arg {arg}");
    }
    command
}

fn compute_edit_row(r: &Results) {
    let edits = [&r.idle_edits, &r.busy_edits];
    let all: Vec<usize> = (edits.iter())
        .flat_map(|e| e.updates_per_edit.iter().copied())
        .collect();
    let others: usize = edits.iter().flat_map(|e| e.other_writes.values()).sum();
    let ones = all.iter().filter(|&&u| u == 1).count();
    row(
        "a compute edit is exactly one UpdateProject",
        &format!("{ones}/{} edits, {others} other writes", all.len()),
        Verdict::of(!all.is_empty() && ones == all.len() && others == 0),
    );
}

/// The 2-shard split is measured by its own run (`--shards 2`, from cold), recorded for this.
fn shards_row(args: &Args, build: &Build, root: &Path) {
    const TARGET: &str = "2 shards split the objects, none reconciled by both";
    let hint = format!("scripts/bench.sh {} --shards 2", args.n);
    let path = results::shards_path(root, args.n, 2);
    let Some(shards) = results::load::<ShardsRecord>(&path) else {
        let measured = format!("no 2-shard run at N={} recorded: run `{hint}`", args.n);
        return row(TARGET, &measured, Verdict::NotEvaluated);
    };
    if let Some(why) = build.differs(&shards.build) {
        let measured = format!("the 2-shard run at N={} is {why}: run `{hint}`", args.n);
        return row(TARGET, &measured, Verdict::NotEvaluated);
    }
    let parts: Vec<String> = (shards.per_shard.iter())
        .map(|(label, pipelines, _)| format!("{label} {:.0} objects", pipelines / 2.0))
        .collect();
    let measured = format!("{} (from {})", parts.join(", "), path.display());
    row(TARGET, &measured, Verdict::of(shards.split));
}
