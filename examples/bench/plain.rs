//! The baseline: a plain loop making only the Create calls the objects render to (4
//! CreateProject and 2 CreatePipeline for the example), with no reads, no rate limit and no
//! Kubernetes, on names of its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use branchpipeline::aws::AwsApi;
use branchpipeline::aws::sdk::SdkAws;
use branchpipeline::render::{self, DesiredState};
use futures::{StreamExt, TryStreamExt};

use crate::fleet::Object;

pub struct PlainRun {
    pub elapsed: Duration,
    pub concurrency: usize,
    /// Per operation: calls and the time they took in all.
    pub calls: BTreeMap<&'static str, (usize, Duration)>,
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
