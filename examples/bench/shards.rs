//! `--shards M`: M controller processes, each `--shard i/M` with its own metrics, serve the
//! fleet from cold. Each shard's `branchpipeline_managed_pipelines` counts the pipelines of
//! the objects it synced, so the shards' sum is twice N exactly when every object was synced
//! by one shard and by one only; moto's CreatePipeline count confirms no pipeline was
//! created twice.

use std::collections::BTreeMap;

/// What one shard reports after the fleet is Ready.
pub struct ShardReport {
    pub label: String,
    pub managed_pipelines: f64,
    pub managed_projects: f64,
    pub reconciles: f64,
    pub peak_rss_kib: u64,
}

/// Prints the split and whether it holds; `true` when it does.
pub fn report(n: usize, shards: &[ShardReport], moto: &BTreeMap<String, usize>) -> bool {
    for s in shards {
        println!(
            "  {}: {} pipelines and {} projects managed ({:.0} objects), {} reconciles, peak RSS {:.1} MiB",
            s.label,
            s.managed_pipelines,
            s.managed_projects,
            s.managed_pipelines / 2.0,
            s.reconciles,
            s.peak_rss_kib as f64 / 1024.0
        );
    }
    let managed: f64 = shards.iter().map(|s| s.managed_pipelines).sum();
    let creates = moto.get("CreatePipeline").copied().unwrap_or(0);
    let every_shard_serves = shards.iter().all(|s| s.managed_pipelines > 0.0);
    let split = managed == 2.0 * n as f64 && creates == 2 * n && every_shard_serves;
    println!(
        "  {} managed pipelines in all for {n} objects (2 an object), {creates} CreatePipeline: {}",
        managed,
        if split {
            "each object served by exactly one shard (met)"
        } else {
            "NOT met"
        }
    );
    split
}
