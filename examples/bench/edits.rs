//! Edit latency: a stage's computeType changed in a BranchPipeline, timed until AWS has it.
//! The bench polls BatchGetProjects to know the edit landed; the latency itself is taken from
//! moto's request log, from the edit to the UpdateProject that carried it.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use branchpipeline::aws::AwsApi;
use branchpipeline::aws::sdk::SdkAws;
use kube::Client;

use crate::fleet::Object;
use crate::metrics::is_mutating;
use crate::support::AwsRequest;

const POLL: Duration = Duration::from_millis(50);
const TIMEOUT: Duration = Duration::from_secs(120);

pub struct Editor<'a> {
    pub client: &'a Client,
    pub aws: &'a SdkAws,
    pub role: &'a str,
    /// The `test` stage's new computeType.
    pub compute: &'a str,
}

/// One edit: which project it should change and when it was made.
pub struct Edit {
    pub project: String,
    /// Unix seconds just before the apply was sent.
    pub at: f64,
    /// When the bench saw AWS have it, if it did within the time-out.
    pub polled: Option<Duration>,
}

/// Edits each target at its offset from now, each waiting for AWS to have it on its own (so
/// a slow edit does not hold back the next).
pub async fn run(
    editor: &Editor<'_>,
    targets: &[Object],
    offsets: &[Duration],
) -> Result<Vec<Edit>> {
    let start = Instant::now();
    let edits = targets
        .iter()
        .zip(offsets)
        .map(|(target, offset)| async move {
            tokio::time::sleep_until((start + *offset).into()).await;
            one(editor, target).await
        });
    futures::future::try_join_all(edits).await
}

async fn one(editor: &Editor<'_>, target: &Object) -> Result<Edit> {
    let project = target.edited_project(editor.role)?;
    let at = unix_now();
    let started = Instant::now();
    target
        .apply(editor.client, editor.role, Some(editor.compute))
        .await?;
    let mut polled = None;
    while started.elapsed() < TIMEOUT {
        let seen = editor
            .aws
            .get_projects(std::slice::from_ref(&project))
            .await?;
        if seen
            .iter()
            .any(|p| p.project.environment.compute_type == editor.compute)
        {
            polled = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(Edit {
        project,
        at,
        polled,
    })
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// What the edits cost, from moto's log of the phase they ran in.
pub struct EditReport {
    /// From each edit to its first UpdateProject, for the edits that got one, sorted.
    pub latencies: Vec<Duration>,
    /// Edits AWS never saw within the time-out.
    pub lost: usize,
    /// UpdateProject calls per edit (1 each expected).
    pub updates_per_edit: Vec<usize>,
    /// Writes in the phase other than the edits' UpdateProject, by operation.
    pub other_writes: BTreeMap<String, usize>,
}

pub fn analyse(edits: &[Edit], log: &[AwsRequest]) -> EditReport {
    let mut latencies = Vec::new();
    let mut updates_per_edit = Vec::new();
    for edit in edits {
        let updates: Vec<f64> = log
            .iter()
            .filter(|r| r.action.as_deref() == Some("UpdateProject"))
            .filter(|r| r.resource.as_deref() == Some(edit.project.as_str()) && r.time >= edit.at)
            .map(|r| r.time)
            .collect();
        updates_per_edit.push(updates.len());
        if let Some(first) = updates.iter().copied().reduce(f64::min) {
            latencies.push(Duration::from_secs_f64(first - edit.at));
        }
    }
    latencies.sort();
    EditReport {
        lost: edits.iter().filter(|e| e.polled.is_none()).count(),
        latencies,
        updates_per_edit,
        other_writes: other_writes(edits, log),
    }
}

fn other_writes(edits: &[Edit], log: &[AwsRequest]) -> BTreeMap<String, usize> {
    let edited: HashSet<&str> = edits.iter().map(|e| e.project.as_str()).collect();
    let mut writes = BTreeMap::new();
    for request in log {
        let action = request.action.as_deref().unwrap_or("");
        let resource = request.resource.as_deref().unwrap_or("");
        if is_mutating(action) && !(action == "UpdateProject" && edited.contains(resource)) {
            *writes.entry(action.to_owned()).or_insert(0) += 1;
        }
    }
    writes
}

/// The nearest-rank percentile `p` (0 to 1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}
