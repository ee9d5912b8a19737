//! Each run's figures as JSON, kept beside the runs' logs (`<target>/bench-logs`): the latest
//! whole run at N in `results-N<N>.json`, the latest `--shards M` run in `shards-N<N>-M<M>.json`,
//! and a copy of either in the run's own directory.
//!
//! Two acceptance items need more than one run: the pass at N=1000 is held against the pass at
//! N=100, and the 2-shard split is a run of its own. A figure from another run counts only if it
//! measured the same code: the same commit and the same controller binary (its SHA-256, which
//! also covers changes not committed yet).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Args;
use crate::edits::{self, EditReport, percentile};
use crate::metrics::{self, is_mutating};
use crate::phases::{Pass, Results};
use crate::report;
use crate::tracker::is_tracker_read;

/// What code a run measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// `git rev-parse HEAD` of the checkout the bench was built in; "unknown" without git.
    pub commit: String,
    /// Whether tracked files differed from that commit.
    pub dirty: bool,
    /// The controller binary the bench ran.
    pub controller: PathBuf,
    pub controller_sha256: String,
}

impl Build {
    pub fn of(controller: &Path) -> Result<Self> {
        let repo = env!("CARGO_MANIFEST_DIR");
        let commit = git(repo, &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
        let dirty = git(repo, &["status", "--porcelain", "--untracked-files=no"])
            .is_none_or(|changes| !changes.is_empty());
        Ok(Self {
            commit,
            dirty,
            controller: controller.to_owned(),
            controller_sha256: sha256(controller)?,
        })
    }

    /// Why `other` did not measure the same code as `self`, if it did not.
    pub fn differs(&self, other: &Build) -> Option<String> {
        if self.commit == "unknown" || self.commit != other.commit {
            return Some(format!("from commit {}", short(&other.commit)));
        }
        (self.controller_sha256 != other.controller_sha256)
            .then(|| "from another controller build (the tree changed)".to_owned())
    }

    /// E.g. `f3ce646 (with uncommitted changes), controller sha256 1a2b3c4d5e6f`.
    pub fn describe(&self) -> String {
        format!(
            "commit {}{}, controller {} (sha256 {})",
            short(&self.commit),
            if self.dirty {
                " with uncommitted changes"
            } else {
                ""
            },
            self.controller.display(),
            short(&self.controller_sha256)
        )
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// A git command's trimmed output, `None` if it failed.
fn git(repo: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(repo).args(args).output();
    let out = out.ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {path:?}"))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

/// The steady pass, as the scaling item compares it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PassRecord {
    pub window_s: f64,
    pub reconciles: f64,
    /// The reconciles' summed durations: the pass's busy time.
    pub work_s: f64,
    /// Reconciles' AWS reads, tracker's reads and writes, by operation.
    pub reconcile_reads: BTreeMap<String, f64>,
    pub tracker_reads: BTreeMap<String, f64>,
    pub writes: BTreeMap<String, f64>,
    pub status_writes: usize,
}

/// One whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub n: usize,
    pub unix_time: f64,
    pub build: Build,
    pub aws_max_tps: u32,
    pub controller_args: Vec<String>,
    pub cores: usize,
    pub cold_s: f64,
    pub cold_ratio_boto3: Option<f64>,
    pub cold_ratio_rust: f64,
    pub steady: PassRecord,
    pub edit_p95_ms: [Option<u128>; 2],
    pub peak_rss_mib: f64,
}

impl Record {
    /// Why `other` cannot be compared with this run's pass, if it cannot: another build, or
    /// another client limit or controller flags (a pass at 10 requests a second waits for
    /// tokens, one at 1000 does not).
    pub fn incomparable(&self, other: &Record) -> Option<String> {
        if let Some(why) = self.build.differs(&other.build) {
            return Some(why);
        }
        if other.aws_max_tps != self.aws_max_tps {
            return Some(format!("at --aws-max-tps {}", other.aws_max_tps));
        }
        (other.controller_args != self.controller_args)
            .then(|| format!("with controller arguments {:?}", other.controller_args))
    }
}

impl Record {
    pub fn of(args: &Args, r: &Results, build: &Build) -> Self {
        let (rust, boto3) = report::ratios(&r.cold, &r.plain);
        let p95 = |e: &EditReport| percentile(&e.latencies, 0.95).map(|d| d.as_millis());
        let peak = r.rss.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
        Self {
            n: args.n,
            unix_time: edits::unix_now(),
            build: build.clone(),
            aws_max_tps: args.max_tps(),
            controller_args: args.controller_args.clone(),
            cores: std::thread::available_parallelism().map_or(0, |c| c.get()),
            cold_s: r.cold.elapsed.as_secs_f64(),
            cold_ratio_boto3: boto3,
            cold_ratio_rust: rust,
            steady: PassRecord::of(&r.pass),
            edit_p95_ms: [p95(&r.idle_edits), p95(&r.busy_edits)],
            peak_rss_mib: peak as f64 / 1024.0,
        }
    }
}

impl PassRecord {
    fn of(pass: &Pass) -> Self {
        let calls = pass.metrics.aws_by_operation();
        let pick = |keep: &dyn Fn(&str) -> bool| -> BTreeMap<String, f64> {
            (calls.iter())
                .filter(|(op, _)| keep(op))
                .map(|(op, n)| (op.clone(), *n))
                .collect()
        };
        Self {
            window_s: pass.window.as_secs_f64(),
            reconciles: pass.metrics.total(metrics::RECONCILE_COUNT),
            work_s: pass.metrics.total(metrics::RECONCILE_SUM),
            reconcile_reads: pick(&|op| !is_mutating(op) && !is_tracker_read(op)),
            tracker_reads: pick(&is_tracker_read),
            writes: pick(&is_mutating),
            status_writes: pass.status_writes,
        }
    }
}

/// A `--shards M` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardsRecord {
    pub n: usize,
    pub shards: usize,
    pub unix_time: f64,
    pub build: Build,
    /// Every object served by exactly one shard.
    pub split: bool,
    /// Each shard's managed pipelines and reconciles.
    pub per_shard: Vec<(String, f64, f64)>,
}

pub fn results_path(root: &Path, n: usize) -> PathBuf {
    root.join(format!("results-N{n}.json"))
}

pub fn shards_path(root: &Path, n: usize, m: usize) -> PathBuf {
    root.join(format!("shards-N{n}-M{m}.json"))
}

/// Writes `value` to `path` and a copy to `<run>/<file name>`.
pub fn save<T: Serialize>(value: &T, path: &Path, run: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(value)?;
    std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    if let Some(name) = path.file_name() {
        std::fs::write(run.join(name), &json)?;
    }
    println!("Results written to {}", path.display());
    Ok(())
}

/// The record at `path`, if there is one that parses.
pub fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}
