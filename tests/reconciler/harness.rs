//! One test's world: a namespace on the shared bed, a moto role, the example manifest aimed at
//! them, and controller processes (the real binary) watching that namespace.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use branchpipeline::api::BranchPipeline;
use branchpipeline::aws::AwsApi;
use branchpipeline::aws::sdk::SdkAws;
use branchpipeline::render::{self, DesiredState};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use crate::support::process::{Processes, log_tail};
use crate::support::wait::{self, Check};
use crate::support::{TestBed, fixtures};

const TIMEOUT: Duration = Duration::from_secs(60);
const MUTATING: &[&str] = &[
    "CreatePipeline",
    "UpdatePipeline",
    "DeletePipeline",
    "TagResource",
    "UntagResource",
    "CreateProject",
    "UpdateProject",
    "DeleteProject",
    "StartPipelineExecution",
];

pub struct Harness {
    pub bed: &'static TestBed,
    pub ns: String,
    pub api: Api<BranchPipeline>,
    pub aws: SdkAws,
    role_arn: String,
    dir: tempfile::TempDir,
    controllers: Vec<(Processes, PathBuf)>,
}

impl Harness {
    /// A namespace on the shared bed.
    pub async fn new(prefix: &str) -> Result<Self> {
        Self::on(TestBed::shared().await, prefix).await
    }

    /// A namespace on `bed` (a private bed, e.g. one whose apiserver a test stops).
    pub async fn on(bed: &'static TestBed, prefix: &str) -> Result<Self> {
        bed.install_crds().await?;
        let ns = bed.unique_namespace(prefix).await?;
        let role_arn = bed
            .create_codepipeline_role(&format!("{ns}-pipeline"))
            .await?;
        Ok(Self {
            api: Api::namespaced(bed.client(), &ns),
            aws: SdkAws::new(&bed.aws_config().await),
            bed,
            ns,
            role_arn,
            dir: tempfile::tempdir()?,
            controllers: Vec::new(),
        })
    }

    /// The example, moved into this test's namespace and moto's account.
    pub fn example(&self) -> BranchPipeline {
        fixtures::example_in(&self.ns, &self.role_arn)
    }

    pub fn render(&self, bp: &BranchPipeline) -> DesiredState {
        render::compile(bp).expect("valid")
    }

    /// Starts a controller for this namespace with extra flags; returns its index.
    pub fn start_controller(&mut self, args: &[&str]) -> Result<usize> {
        self.start_controller_with_env(args, &[])
    }

    /// Like `start_controller`, with environment overrides (e.g. another AWS endpoint).
    pub fn start_controller_with_env(
        &mut self,
        args: &[&str],
        overrides: &[(&str, &str)],
    ) -> Result<usize> {
        let kubeconfig = self.dir.path().join("kubeconfig");
        self.bed.write_kubeconfig(&kubeconfig)?;
        let i = self.controllers.len();
        let log = self.dir.path().join(format!("controller-{i}.log"));
        let processes = Processes::new(self.dir.path().join(format!("controller-{i}.pids")));
        let mut all_args = vec!["run".to_string(), "--namespace".into(), self.ns.clone()];
        all_args.extend(args.iter().map(|a| a.to_string()));
        if !args.contains(&"--metrics-addr") {
            // Parallel tests each run controllers; a fixed port would collide.
            all_args.extend(["--metrics-addr".to_string(), "127.0.0.1:0".to_string()]);
        }
        let env = self.bed.controller_env(&kubeconfig);
        let mut envs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        envs.push(("RUST_LOG", "info,branchpipeline=debug"));
        envs.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        envs.extend_from_slice(overrides);
        processes.spawn(
            "controller",
            std::path::Path::new(env!("CARGO_BIN_EXE_branchpipeline-controller")),
            &all_args,
            &envs,
            &log,
        )?;
        self.controllers.push((processes, log));
        Ok(i)
    }

    pub fn stop_controller(&self, i: usize) {
        self.controllers[i].0.shutdown();
    }

    pub fn controller_pids(&self) -> Vec<u32> {
        self.controllers
            .iter()
            .flat_map(|(p, _)| p.pids())
            .map(|(_, pid)| pid)
            .collect()
    }

    /// Fails with the end of its log if controller `i` has exited (it is never restarted).
    #[allow(dead_code)] // used by tests/faults
    pub fn ensure_controller_running(&self, i: usize) -> Result<()> {
        self.controllers[i].0.ensure_running("controller")
    }

    pub fn controller_log_full(&self, i: usize) -> String {
        std::fs::read_to_string(&self.controllers[i].1).unwrap_or_default()
    }

    pub fn controller_log(&self, i: usize) -> String {
        log_tail(&self.controllers[i].1)
    }

    pub async fn apply(&self, bp: &BranchPipeline) -> Result<BranchPipeline> {
        let mut value = serde_json::to_value(bp)?;
        value.as_object_mut().unwrap().remove("status");
        let name = bp.metadata.name.clone().unwrap();
        Ok(self
            .api
            .patch(
                &name,
                &PatchParams::apply("integration-test").force(),
                &Patch::Apply(&value),
            )
            .await?)
    }

    pub async fn annotate(&self, name: &str, key: &str, value: &str) -> Result<()> {
        let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
        self.api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        self.api.delete(name, &DeleteParams::default()).await?;
        Ok(())
    }

    /// Polls the resource until `check` passes; on timeout, fails with the last status and
    /// the controller's log.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&BranchPipeline) -> bool,
    ) -> Result<BranchPipeline> {
        let waited = wait::until(what, TIMEOUT, || async {
            let bp = self.api.get(name).await?;
            Ok(if check(&bp) {
                Check::Done(bp)
            } else {
                Check::NotYet(format!("status: {:?}", bp.status))
            })
        })
        .await;
        self.with_logs(waited)
    }

    pub async fn wait_ready(&self, name: &str) -> Result<BranchPipeline> {
        self.wait_for(name, "Ready=True at the current generation", is_ready)
            .await
    }

    /// Waits for `Ready=False` with `reason`, and returns the condition's message.
    pub async fn wait_not_ready(&self, name: &str, reason: &str) -> Result<String> {
        let want = Some(("False".to_string(), reason.to_string()));
        let bp = self
            .wait_for(name, &format!("Ready=False {reason}"), |b| {
                condition(b, "Ready") == want
            })
            .await?;
        Ok(bp
            .status
            .and_then(|s| s.condition("Ready").map(|c| c.message.clone()))
            .unwrap_or_default())
    }

    pub async fn wait_gone(&self, name: &str) -> Result<()> {
        let waited = wait::until_gone(&self.api, name, TIMEOUT).await;
        self.with_logs(waited)
    }

    /// Polls until `check` passes against AWS, or times out.
    pub async fn eventually<F, Fut>(&self, what: &str, check: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let waited = wait::until(what, TIMEOUT, || async {
            Ok(Check::passed(check().await?, || "not yet".into()))
        })
        .await;
        self.with_logs(waited)
    }

    /// Waits until controller `i`'s log contains `needle`.
    pub async fn wait_log(&self, i: usize, needle: &str, timeout: Duration) -> Result<()> {
        let what = format!("{needle:?} in the log of controller {i}");
        let waited = wait::until(&what, timeout, || async {
            Ok(Check::passed(
                self.controller_log_full(i).contains(needle),
                || "not logged yet".into(),
            ))
        })
        .await;
        self.with_logs(waited)
    }

    /// Reconciles controller `i` has planned so far: one `planned` log line each.
    pub fn reconciles(&self, i: usize) -> usize {
        self.controller_log_full(i).matches("planned").count()
    }

    /// Waits until controller `i` has planned `n` reconciles. A resource's reconciles run one
    /// at a time, so the `n - 1` before the last have finished, AWS calls included.
    pub async fn wait_reconciles(&self, i: usize, n: usize) -> Result<()> {
        let what = format!("{n} reconciles by controller {i}");
        let waited = wait::until(&what, TIMEOUT, || async {
            let done = self.reconciles(i);
            Ok(Check::passed(done >= n, || format!("{done} so far")))
        })
        .await;
        self.with_logs(waited)
    }

    /// A failed wait, with the controllers' logs that explain it.
    pub fn with_logs<T>(&self, waited: Result<T>) -> Result<T> {
        waited.map_err(|e| anyhow!("{e:#}\n{}", self.logs()))
    }

    pub fn logs(&self) -> String {
        (0..self.controllers.len())
            .map(|i| format!("--- controller {i} ---\n{}", self.controller_log(i)))
            .collect()
    }

    /// Mutating AWS calls naming a resource of this test (names start with the namespace).
    pub async fn mutating_calls(&self) -> Result<Vec<(String, String)>> {
        let requests = self.bed.aws_requests().await?;
        Ok(requests
            .into_iter()
            .filter_map(|r| Some((r.action?, r.resource?)))
            .filter(|(action, resource)| {
                MUTATING.contains(&action.as_str()) && self.owns_name(resource)
            })
            .collect())
    }

    /// Any AWS call naming a resource of this test.
    pub async fn calls_naming_us(&self) -> Result<usize> {
        let requests = self.bed.aws_requests().await?;
        Ok(requests
            .iter()
            .filter(|r| r.resource.as_deref().is_some_and(|n| self.owns_name(n)))
            .count())
    }

    fn owns_name(&self, resource: &str) -> bool {
        resource.starts_with(&self.ns)
            || resource
                .rsplit(':')
                .next()
                .is_some_and(|n| n.starts_with(&self.ns))
    }

    pub async fn count(&self, action: &str) -> Result<usize> {
        Ok(self
            .mutating_calls()
            .await?
            .iter()
            .filter(|(a, _)| a == action)
            .count())
    }

    /// Pipelines and projects in moto whose names start with this test's namespace.
    pub async fn aws_inventory(&self) -> Result<(Vec<String>, Vec<String>)> {
        let mut pipelines: Vec<String> = self
            .aws
            .list_pipelines()
            .await?
            .into_iter()
            .map(|p| p.name)
            .filter(|n| n.starts_with(&self.ns))
            .collect();
        let mut projects: Vec<String> = self
            .aws
            .list_projects()
            .await?
            .into_iter()
            .filter(|n| n.starts_with(&self.ns))
            .collect();
        pipelines.sort();
        projects.sort();
        Ok((pipelines, projects))
    }

    pub async fn events(&self) -> Result<Vec<(String, String)>> {
        let events: Api<Event> = Api::namespaced(self.bed.client(), &self.ns);
        Ok(events
            .list(&ListParams::default())
            .await
            .context("listing events")?
            .items
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect())
    }
}

pub fn is_ready(bp: &BranchPipeline) -> bool {
    condition(bp, "Ready").is_some_and(|(status, _)| status == "True")
        && bp.status.as_ref().and_then(|s| s.observed_generation) == bp.metadata.generation
}

/// `(status, reason)` of a condition.
pub fn condition(bp: &BranchPipeline, type_: &str) -> Option<(String, String)> {
    bp.status
        .as_ref()?
        .condition(type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}
