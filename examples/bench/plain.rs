//! The baseline: a plain loop making only the Create calls the objects render to (4
//! CreateProject and 2 CreatePipeline for the example), with no reads, no rate limit and no
//! Kubernetes, on names of its own; then a plain boto3 loop sending the same requests, which is
//! the baseline the issue measured against.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use branchpipeline::aws::AwsApi;
use branchpipeline::aws::sdk::SdkAws;
use branchpipeline::render::{self, DesiredState};
use futures::{StreamExt, TryStreamExt};

use crate::capture;
use crate::fleet::Object;
use crate::support::AWS_REGION;

/// The namespaces' prefix of the plain loop's objects, so of its names.
pub const PLAIN_PREFIX: &str = "plain";
/// What the boto3 loop puts in its place (as long, so no name changes length).
const BOTO3_PREFIX: &str = "boto3";

pub struct PlainRun {
    pub elapsed: Duration,
    pub concurrency: usize,
    /// Per operation: calls and the time they took in all.
    pub calls: BTreeMap<&'static str, (usize, Duration)>,
    /// The same requests from a plain boto3 loop, one after the other.
    pub boto3: Option<Boto3Run>,
}

/// What `boto3_loop.py` prints.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Boto3Run {
    /// Seconds, from its first request until its last answer.
    pub elapsed: f64,
    /// Requests sent, by operation.
    pub calls: BTreeMap<String, usize>,
}

impl Boto3Run {
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.elapsed)
    }
}

/// Renders every object (not timed), then creates what they render to, `concurrency` objects
/// at a time, each object's calls in order: projects first, then pipelines.
pub async fn run(
    aws: &SdkAws,
    objects: &[Object],
    role: &str,
    concurrency: usize,
) -> Result<PlainRun> {
    let rendered = objects
        .iter()
        .map(|o| {
            render::compile(&o.parsed(role)?)
                .map_err(|e| anyhow::anyhow!("{}: does not render: {e:?}", o.key()))
        })
        .collect::<Result<Vec<DesiredState>>>()?;
    let started = Instant::now();
    let timings: Vec<Vec<(&'static str, Duration)>> = futures::stream::iter(&rendered)
        .map(|desired| create(aws, desired))
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let elapsed = started.elapsed();
    let mut calls: BTreeMap<&'static str, (usize, Duration)> = BTreeMap::new();
    for (op, took) in timings.into_iter().flatten() {
        let entry = calls.entry(op).or_default();
        entry.0 += 1;
        entry.1 += took;
    }
    Ok(PlainRun {
        elapsed,
        concurrency,
        calls,
        boto3: None,
    })
}

/// The plain loop's requests as `boto3_loop.py` reads them: one JSON object a line.
pub fn write_requests(path: &Path, log: &capture::Log) -> Result<()> {
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = String::new();
    for request in log.iter() {
        text.push_str(&serde_json::to_string(request)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Runs `boto3_loop.py` with the bed's Python (moto's, which has boto3) on `requests`, under
/// names of its own: the plain loop's prefix becomes `boto3`.
pub async fn boto3(python: &Path, endpoint: &str, requests: &Path) -> Result<Boto3Run> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench/boto3_loop.py");
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .args([endpoint, AWS_REGION])
        .arg(requests)
        .args([format!("{PLAIN_PREFIX}-"), format!("{BOTO3_PREFIX}-")])
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{}: {}: {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "{} printed no result: {}",
            script.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// One object's creates, each with the time it took.
async fn create(aws: &SdkAws, desired: &DesiredState) -> Result<Vec<(&'static str, Duration)>> {
    let mut timings = Vec::new();
    for project in &desired.projects {
        let started = Instant::now();
        aws.create_project(project).await?;
        timings.push(("CreateProject", started.elapsed()));
    }
    for pipeline in &desired.pipelines {
        let started = Instant::now();
        aws.create_pipeline(&pipeline.pipeline, &pipeline.tags)
            .await?;
        timings.push(("CreatePipeline", started.elapsed()));
    }
    Ok(timings)
}
