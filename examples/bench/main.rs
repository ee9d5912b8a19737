//! `scripts/bench.sh N`: what N BranchPipelines cost one controller process (docs/benchmarks.md).
//!
//! On a private bed whose moto pages like AWS (100 a page) it runs, in order:
//! 1. a plain loop making only the Create calls N objects render to, on names of its own, then
//!    a plain boto3 loop sending the same requests under other names (the baseline);
//! 2. the controller binary the image ships (all namespaces, its metrics address, the default
//!    resync interval, `--aws-max-tps` 1000 unless told otherwise: see [`UNTHROTTLED_MAX_TPS`]),
//!    then N copies of the README's example over 10 namespaces: cold convergence, and the AWS
//!    calls per object it took;
//! 3. edits of one stage's computeType while idle;
//! 4. a restart with a resync interval of 0.6 s an object and one steady pass: AWS calls by
//!    operation (the reconciles' and the execution tracker's apart), status writes, its work;
//! 5. a restart with 0.4 s an object, its first pass, when every object's slot falls, and edits
//!    during it;
//!
//! and prints the figures, the controller's peak RSS and a verdict for each of issue 11's
//! acceptance items. Each whole run leaves its figures in `<target>/bench-logs/results-N<N>.json`
//! ([`results`]), so that a run at N can be held against one at N/10 of the same build: the
//! acceptance's pass scaling compares two runs.
//! With `--shards M`, it runs M controllers splitting the fleet instead, from cold, and checks
//! that each object was served by exactly one of them (recorded too, for the whole run's
//! summary).
//!
//! `bench N [--aws-max-tps T] [--edits K] [--plain-concurrency C] [--busy-interval SECS] [--cold-only] [--shards M] [--controller-arg ARG]...`

#[path = "../../tests/support/mod.rs"]
mod support;

mod capture;
mod controller;
mod edits;
mod fleet;
mod metrics;
mod phases;
mod plain;
mod procfs;
mod report;
mod results;
mod shards;
mod targets;
mod tracker;

use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// The command line.
#[derive(Debug, Clone)]
pub struct Args {
    pub n: usize,
    /// Passed to the controller as `--aws-max-tps`: [`UNTHROTTLED_MAX_TPS`] unless given.
    pub aws_max_tps: u32,
    /// Edits timed in each of the idle and the busy period.
    pub edits: usize,
    /// Objects the plain loop creates at once (1: one after the other).
    pub plain_concurrency: usize,
    /// The busy pass's resync interval, instead of 0.4 s an object.
    pub busy_interval: Option<Duration>,
    /// Only the plain loop and cold convergence.
    pub cold_only: bool,
    /// Controller processes splitting the fleet with `--shard i/M`; more than 1 runs only
    /// the sharded cold phase.
    pub shards: usize,
    /// More arguments for every controller process (`--controller-arg`, repeated).
    pub controller_args: Vec<String>,
    /// The controller's `--execution-poll-interval` (its default, or as passed with
    /// `--controller-arg`): the execution tracker's read budget is set per interval.
    pub poll_interval: Duration,
}

/// The controller's own default `--aws-max-tps`, meant for real AWS, which throttles.
pub const PRODUCTION_MAX_TPS: u32 = 10;

/// The bench's default `--aws-max-tps`: high enough that the controller's client-side limit
/// never makes a request wait. The bed's moto does not throttle, and the plain loops the cold
/// phase is held against have no limit, so a controller at the production 10 a second would
/// measure its limiter (6 creates an object at 10 a second: 13x the loop at N=1000), not
/// itself. moto serves at most a few hundred requests a second on this bed, well under 1000
/// with a burst of 1000; the cold phase prints the time requests waited for tokens, so that
/// claim is checked each run. `--aws-max-tps 10` measures the production default.
pub const UNTHROTTLED_MAX_TPS: u32 = 1000;

/// The controller's default `--execution-poll-interval`.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

impl Args {
    fn parse() -> Result<Self> {
        const USAGE: &str = "usage: bench N [--aws-max-tps T (default 1000)] [--edits K] [--plain-concurrency C] [--busy-interval SECS] [--cold-only] [--shards M] [--controller-arg ARG]...";
        let mut args = std::env::args().skip(1);
        let n = args.next().context(USAGE)?.parse().context(USAGE)?;
        let mut parsed = Args {
            n,
            aws_max_tps: UNTHROTTLED_MAX_TPS,
            edits: 20,
            plain_concurrency: 1,
            busy_interval: None,
            cold_only: false,
            shards: 1,
            controller_args: Vec::new(),
            poll_interval: DEFAULT_POLL_INTERVAL,
        };
        while let Some(flag) = args.next() {
            if flag == "--cold-only" {
                parsed.cold_only = true;
                continue;
            }
            let value = args.next().context(USAGE)?;
            match flag.as_str() {
                "--aws-max-tps" => parsed.aws_max_tps = value.parse().context(USAGE)?,
                "--edits" => parsed.edits = value.parse().context(USAGE)?,
                "--plain-concurrency" => parsed.plain_concurrency = value.parse().context(USAGE)?,
                "--shards" => parsed.shards = value.parse().context(USAGE)?,
                "--controller-arg" => parsed.controller_args.push(value),
                "--busy-interval" => {
                    let secs = value.parse().context(USAGE)?;
                    parsed.busy_interval = Some(Duration::from_secs(secs));
                }
                _ => bail!("unknown argument {flag}; {USAGE}"),
            }
        }
        if parsed.n == 0 || parsed.edits == 0 || parsed.edits > parsed.n || parsed.shards == 0 {
            bail!("N must be at least 1, --edits between 1 and N, --shards at least 1; {USAGE}");
        }
        parsed.poll_interval = poll_interval(&parsed.controller_args)?;
        Ok(parsed)
    }

    pub fn max_tps(&self) -> u32 {
        self.aws_max_tps
    }

    /// Whether the controller runs with its limit out of the way (see [`UNTHROTTLED_MAX_TPS`]).
    pub fn unthrottled(&self) -> bool {
        self.aws_max_tps >= UNTHROTTLED_MAX_TPS
    }

    /// The steady-state resync interval: 0.6 s an object, at least 60 s. A pass then reads
    /// CodePipeline at half the production client limit (3 reads an object, 10 a second), so
    /// the same pass can be measured with `--aws-max-tps 10`. Resyncs are spread evenly over
    /// the interval, so a pass's wall time is this interval whatever the controller does: the
    /// pass is measured by its reconciles' summed durations instead (its work).
    pub fn idle_interval(&self) -> Duration {
        Duration::from_secs_f64((self.n as f64 * 0.6).max(60.0))
    }

    /// The busy resync interval: 0.4 s an object, at least 30 s. A pass then reads
    /// CodePipeline at three quarters of the production client limit.
    pub fn busy_interval(&self) -> Duration {
        self.busy_interval
            .unwrap_or_else(|| Duration::from_secs_f64((self.n as f64 * 0.4).max(30.0)))
    }
}

/// The `--execution-poll-interval` among the controller's extra arguments (the controller
/// refuses it twice), else its default.
fn poll_interval(controller_args: &[String]) -> Result<Duration> {
    const FLAG: &str = "--execution-poll-interval";
    let mut value = None;
    let mut args = controller_args.iter();
    while let Some(arg) = args.next() {
        if arg == FLAG {
            value = args.next().map(String::as_str);
        } else if let Some(v) = arg.strip_prefix(FLAG).and_then(|r| r.strip_prefix('=')) {
            value = Some(v);
        }
    }
    match value {
        None => Ok(DEFAULT_POLL_INTERVAL),
        Some(text) => branchpipeline::duration::parse(text)
            .with_context(|| format!("--controller-arg {FLAG} {text}")),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let bench = phases::Bench::setup(args).await?;
    let result = if bench.args.shards > 1 {
        bench.run_shards().await.map(|()| None)
    } else if bench.args.cold_only {
        bench.run_cold_only().await.map(|()| None)
    } else {
        bench.run().await.map(Some)
    };
    bench.shutdown();
    if let Some(r) = result? {
        let record = results::Record::of(&bench.args, &r, &bench.build);
        bench.save(&record)?;
        targets::print(&bench.args, &r, &record, bench.results_root());
    }
    Ok(())
}
