//! `scripts/bench.sh N`: what N BranchPipelines cost one controller process (docs/benchmarks.md).
//!
//! On a private bed whose moto pages like AWS (100 a page) it runs, in order:
//! 1. a plain loop making only the Create calls N objects render to, on names of its own, then
//!    a plain boto3 loop sending the same requests under other names (the baseline);
//! 2. the release controller binary (all namespaces, its metrics address, the default resync
//!    interval), then N copies of the README's example over 10 namespaces: cold convergence,
//!    and the AWS calls per object it took;
//! 3. edits of one stage's computeType while idle;
//! 4. a restart with a resync interval of 0.6 s an object (a pass reads at half the default
//!    client limit) and one steady pass: AWS calls by operation, status writes, its work;
//! 5. a restart with 0.4 s an object (three quarters of the limit), its first pass, when every
//!    object's slot falls, and edits during it;
//!
//! and prints the figures, the controller's peak RSS and the targets, met or not.
//! With `--shards M`, it runs M controllers splitting the fleet instead, from cold, and checks
//! that each object was served by exactly one of them.
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
mod shards;

use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// The command line.
#[derive(Debug, Clone)]
pub struct Args {
    pub n: usize,
    /// Passed to the controller as `--aws-max-tps` (its default, 10, when absent).
    pub aws_max_tps: Option<u32>,
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
}

/// The controller's default `--aws-max-tps`.
pub const DEFAULT_MAX_TPS: u32 = 10;

impl Args {
    fn parse() -> Result<Self> {
        const USAGE: &str = "usage: bench N [--aws-max-tps T] [--edits K] [--plain-concurrency C] [--busy-interval SECS] [--cold-only] [--shards M] [--controller-arg ARG]...";
        let mut args = std::env::args().skip(1);
        let n = args.next().context(USAGE)?.parse().context(USAGE)?;
        let mut parsed = Args {
            n,
            aws_max_tps: None,
            edits: 20,
            plain_concurrency: 1,
            busy_interval: None,
            cold_only: false,
            shards: 1,
            controller_args: Vec::new(),
        };
        while let Some(flag) = args.next() {
            if flag == "--cold-only" {
                parsed.cold_only = true;
                continue;
            }
            let value = args.next().context(USAGE)?;
            match flag.as_str() {
                "--aws-max-tps" => parsed.aws_max_tps = Some(value.parse().context(USAGE)?),
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
        Ok(parsed)
    }

    pub fn max_tps(&self) -> u32 {
        self.aws_max_tps.unwrap_or(DEFAULT_MAX_TPS)
    }

    /// The steady-state resync interval: 0.6 s an object, at least 60 s. A pass then reads
    /// CodePipeline at half the default client limit (3 reads an object, 10 a second).
    pub fn idle_interval(&self) -> Duration {
        Duration::from_secs_f64((self.n as f64 * 0.6).max(60.0))
    }

    /// The busy resync interval: 0.4 s an object, at least 30 s. A pass then reads
    /// CodePipeline at three quarters of the default client limit.
    pub fn busy_interval(&self) -> Duration {
        self.busy_interval
            .unwrap_or_else(|| Duration::from_secs_f64((self.n as f64 * 0.4).max(30.0)))
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
    if let Some(results) = result? {
        report::targets(&bench.args, &results);
    }
    Ok(())
}
