//! The N generated BranchPipelines: copies of the README's example spread over namespaces, each
//! with its own name and repository. Applying them, watching them become Ready, reading their
//! resourceVersions, and editing one stage's compute.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use branchpipeline::api::BranchPipeline;
use branchpipeline::render;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::support::fixtures;

pub const NAMESPACES: usize = 10;
const FIELD_MANAGER: &str = "bench";
/// Applies in flight at once: enough that applying is not what the bench measures.
const APPLY_CONCURRENCY: usize = 8;
/// The stage the edits change: the example's `test` stage, `BUILD_GENERAL1_MEDIUM`.
const EDIT_STAGE: usize = 1;
const EDIT_STAGE_NAME: &str = "test";

#[derive(Debug, Clone)]
pub struct Object {
    pub namespace: String,
    pub name: String,
    repository: String,
}

/// `n` objects `bp-0000`… over `<prefix>-0` … `<prefix>-9`, repositories `acme/<prefix>-0000`….
pub fn generate(prefix: &str, n: usize) -> Vec<Object> {
    (0..n)
        .map(|i| Object {
            namespace: format!("{prefix}-{}", i % NAMESPACES),
            name: format!("bp-{i:04}"),
            repository: format!("acme/{prefix}-{i:04}"),
        })
        .collect()
}

impl Object {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The README's example under this name, in moto's account with `role` as its pipeline
    /// role; `compute` replaces the `test` stage's computeType.
    pub fn manifest(&self, role: &str, compute: Option<&str>) -> serde_json::Value {
        let mut value = fixtures::example_json_in(&self.namespace, role);
        value["metadata"]["name"] = self.name.clone().into();
        value["spec"]["source"]["repository"] = self.repository.clone().into();
        let stage = &mut value["spec"]["stages"][EDIT_STAGE];
        assert_eq!(stage["name"], EDIT_STAGE_NAME, "the example's stages moved");
        if let Some(compute) = compute {
            stage["computeType"] = compute.into();
        }
        value
    }

    pub fn parsed(&self, role: &str) -> Result<BranchPipeline> {
        serde_json::from_value(self.manifest(role, None)).context("the example parses")
    }

    /// The CodeBuild project of the `test` stage, as rendered.
    pub fn edited_project(&self, role: &str) -> Result<String> {
        let desired = render::compile(&self.parsed(role)?)
            .map_err(|e| anyhow::anyhow!("the example does not render: {e:?}"))?;
        desired
            .projects
            .into_iter()
            .map(|p| p.name)
            .find(|name| name.ends_with(&format!("-{EDIT_STAGE_NAME}")))
            .context("no project for the test stage")
    }

    /// Server-side apply of the manifest (with `compute` for the test stage, if given).
    pub async fn apply(&self, client: &Client, role: &str, compute: Option<&str>) -> Result<()> {
        let api: Api<BranchPipeline> = Api::namespaced(client.clone(), &self.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(
            &self.name,
            &params,
            &Patch::Apply(&self.manifest(role, compute)),
        )
        .await
        .with_context(|| format!("applying {}", self.key()))?;
        Ok(())
    }
}

pub async fn create_namespaces(client: &Client, prefix: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    for i in 0..NAMESPACES {
        let name = format!("{prefix}-{i}");
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&ns),
        )
        .await?;
    }
    Ok(())
}

/// Applies every object, [`APPLY_CONCURRENCY`] at a time.
pub async fn apply_all(client: &Client, objects: &[Object], role: &str) -> Result<()> {
    futures::stream::iter(objects)
        .map(|o| o.apply(client, role, None))
        .buffer_unordered(APPLY_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Ready=True at the current generation.
pub fn is_ready(bp: &BranchPipeline) -> bool {
    let status = bp.status.as_ref();
    status
        .and_then(|s| s.condition("Ready"))
        .is_some_and(|c| c.status == "True")
        && status.and_then(|s| s.observed_generation) == bp.metadata.generation
}

/// A watch on every BranchPipeline, started before the first apply, that notes when each one
/// first becomes Ready.
pub struct ReadyWatch {
    task: tokio::task::JoinHandle<Result<Vec<Duration>>>,
}

impl ReadyWatch {
    /// Returns once the watch has listed what exists; times count from `since`.
    pub async fn start(client: &Client, n: usize, since: Instant) -> Result<Self> {
        let (listed, on_listed) = tokio::sync::oneshot::channel();
        let api: Api<BranchPipeline> = Api::all(client.clone());
        let task = tokio::spawn(follow(api, n, since, listed));
        on_listed.await.context("the readiness watch ended")?;
        Ok(Self { task })
    }

    /// The time at which each object became Ready, sorted, once all `n` are.
    pub async fn all_ready(self, timeout: Duration) -> Result<Vec<Duration>> {
        match tokio::time::timeout(timeout, self.task).await {
            Ok(joined) => joined?,
            Err(_) => bail!("not every object was Ready after {timeout:?}"),
        }
    }
}

async fn follow(
    api: Api<BranchPipeline>,
    n: usize,
    since: Instant,
    listed: tokio::sync::oneshot::Sender<()>,
) -> Result<Vec<Duration>> {
    let mut listed = Some(listed);
    let mut ready: HashMap<String, Duration> = HashMap::new();
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    while let Some(event) = events.next().await {
        let object = match event {
            Ok(watcher::Event::InitDone) => {
                listed.take().map(|tx| tx.send(()));
                continue;
            }
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
            _ => continue,
        };
        if is_ready(&object) {
            let key = format!(
                "{}/{}",
                object.namespace().unwrap_or_default(),
                object.name_any()
            );
            ready.entry(key).or_insert_with(|| since.elapsed());
        }
        if ready.len() >= n {
            let mut times: Vec<Duration> = ready.into_values().collect();
            times.sort();
            return Ok(times);
        }
    }
    bail!("the readiness watch ended")
}

/// `namespace/name -> resourceVersion` of every BranchPipeline.
pub async fn resource_versions(client: &Client) -> Result<HashMap<String, String>> {
    let api: Api<BranchPipeline> = Api::all(client.clone());
    let list = api.list_metadata(&ListParams::default()).await?;
    Ok(list
        .items
        .iter()
        .map(|o| {
            let key = format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
            (key, o.resource_version().unwrap_or_default())
        })
        .collect())
}

/// Objects whose status has no `environments` yet: the execution tracker has not written its
/// first reading (one entry per environment, run or not) for them.
pub async fn untracked(client: &Client) -> Result<usize> {
    let api: Api<BranchPipeline> = Api::all(client.clone());
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .iter()
        .filter(|bp| bp.status.as_ref().is_none_or(|s| s.environments.is_empty()))
        .count())
}

/// How many objects' resourceVersion changed between two readings, leaving out `except`.
pub fn changed(
    before: &HashMap<String, String>,
    after: &HashMap<String, String>,
    except: &HashSet<String>,
) -> usize {
    after
        .iter()
        .filter(|(key, rv)| !except.contains(*key) && before.get(*key) != Some(rv))
        .count()
}
