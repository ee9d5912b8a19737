//! The fault suite of issue 8 ("Hardening"): the real controller binary against a real
//! kube-apiserver and moto while things go wrong — tenant annotations built to overflow, a
//! SIGKILL between creates, API server outages, an AWS storm, a refused delete, a 1 MiB spec
//! and an error list too long for an Event. Every test prints one figure (`fault: ...`; run
//! with `--nocapture` to see them).
//!
//! | Module | Fault |
//! | --- | --- |
//! | [`annotations`] | resync-interval values that overflow or make no sense, next to another tenant |
//! | [`crash`] | SIGKILL after the first create, then a new controller |
//! | [`outage`] | the kube-apiserver stopped for 10 s and 30 s (private beds) |
//! | [`storm`] | half of all AWS requests throttled or 5xx for 30 s |
//! | [`deletion`] | DeletePipeline denied, then allowed |
//! | [`limits`] | a 1 MiB spec, and an InvalidSpec list longer than an Event note |

#[path = "../support/mod.rs"]
mod support;

#[allow(dead_code)]
#[path = "../reconciler/harness.rs"]
mod harness;

mod annotations;
mod crash;
mod deletion;
mod limits;
mod outage;
mod storm;

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use branchpipeline::api::BranchPipeline;
use branchpipeline::aws::AwsApi;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};

use harness::Harness;
use support::wait::{self, Check};

/// The example's name.
const NAME: &str = "orders-api";

/// One events.k8s.io/v1 Event, as much of it as the tests read.
#[derive(Debug, Clone)]
struct Seen {
    type_: String,
    reason: String,
    note: String,
    regarding: String,
}

/// Every Event in the harness's namespace.
async fn events(h: &Harness) -> Result<Vec<Seen>> {
    let api: Api<Event> = Api::namespaced(h.bed.client(), &h.ns);
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|e| Seen {
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            note: e.note.unwrap_or_default(),
            regarding: e.regarding.and_then(|r| r.name).unwrap_or_default(),
        })
        .collect())
}

/// Waits for a Warning event `reason` about `NAME` whose note passes `check`.
async fn wait_warning(h: &Harness, reason: &str, check: impl Fn(&str) -> bool) -> Result<Seen> {
    let waited = wait::until(
        &format!("a Warning event {reason}"),
        Duration::from_secs(30),
        || async {
            let all = events(h).await?;
            Ok(
                match all.iter().find(|e| {
                    e.type_ == "Warning"
                        && e.reason == reason
                        && e.regarding == NAME
                        && check(&e.note)
                }) {
                    Some(e) => Check::Done(e.clone()),
                    None => Check::NotYet(format!("{all:?}")),
                },
            )
        },
    )
    .await;
    waited.map_err(|e| anyhow!("{e:#}\n{}", h.logs()))
}

/// The message of condition `type_`, if the resource has it.
fn message(bp: &BranchPipeline, type_: &str) -> Option<String> {
    bp.status
        .as_ref()?
        .condition(type_)
        .map(|c| c.message.clone())
}

/// The compute type AWS holds for CodeBuild project `name`.
async fn compute_type(h: &Harness, name: &str) -> Result<Option<String>> {
    Ok(h.aws
        .get_projects(&[name.to_string()])
        .await?
        .first()
        .map(|p| p.project.environment.compute_type.clone()))
}

/// Waits until AWS holds `want` as project `name`'s compute type; returns how long after
/// `since` that was seen (up to one poll late).
async fn until_compute_type(
    h: &Harness,
    name: &str,
    want: &str,
    since: Instant,
    timeout: Duration,
) -> Result<Duration> {
    let waited = wait::until(
        &format!("{name} to have compute type {want} in AWS"),
        timeout,
        || async {
            let seen = compute_type(h, name).await?;
            Ok(if seen.as_deref() == Some(want) {
                Check::Done(since.elapsed())
            } else {
                Check::NotYet(format!("{seen:?}"))
            })
        },
    )
    .await;
    waited.map_err(|e| anyhow!("{e:#}\n{}", h.logs()))
}

/// The names the example renders in the harness's namespace: (pipelines, projects), sorted.
fn rendered_names(h: &Harness) -> (Vec<String>, Vec<String>) {
    let desired = h.render(&h.example());
    let mut pipelines: Vec<String> = desired
        .pipelines
        .iter()
        .map(|p| p.pipeline.name.clone())
        .collect();
    let mut projects: Vec<String> = desired.projects.iter().map(|p| p.name.clone()).collect();
    pipelines.sort();
    projects.sort();
    (pipelines, projects)
}
