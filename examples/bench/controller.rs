//! The release controller binary, run against the bed as a separate process, as it runs in a
//! cluster: its metrics endpoint is how the bench sees what it does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::metrics::Sample;
use crate::procfs;
use crate::support::TestBed;
use crate::support::http;
use crate::support::process::{Processes, free_port, log_tail};
use crate::support::wait::{self, Check};

const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The controller the image ships, built with profile `dist` into the same target directory:
/// `<target>/dist/branchpipeline-controller` for `<target>/release/examples/bench`, unless
/// `BPL_BENCH_CONTROLLER` names another.
pub fn binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("BPL_BENCH_CONTROLLER") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .context("the bench's executable has no target directory")?
        .join("dist")
        .join("branchpipeline-controller");
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build --profile dist --bin branchpipeline-controller)",
            path.display()
        );
    }
    Ok(path)
}

pub struct Controller {
    processes: Processes,
    pid: u32,
    metrics_url: String,
    log: PathBuf,
}

impl Controller {
    /// Starts `binary run <args>` against `bed`, logging to `<dir>/controller-<label>.log`,
    /// and waits until it is ready (its watch has listed everything).
    pub async fn start(
        bed: &TestBed,
        binary: &Path,
        dir: &Path,
        label: &str,
        args: &[String],
    ) -> Result<Self> {
        let kubeconfig = dir.join("kubeconfig");
        bed.write_kubeconfig(&kubeconfig)?;
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut all_args = vec!["run".to_owned(), "--metrics-addr".into(), addr.clone()];
        all_args.extend_from_slice(args);
        let env = bed.controller_env(&kubeconfig);
        let mut envs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        envs.push(("RUST_LOG", "info"));
        let log = dir.join(format!("controller-{label}.log"));
        let processes = Processes::new(dir.join(format!("controller-{label}.pids")));
        let pid = processes.spawn("controller", binary, &all_args, &envs, &log)?;
        let controller = Self {
            processes,
            pid,
            metrics_url: format!("http://{addr}"),
            log,
        };
        controller.wait_ready().await?;
        Ok(controller)
    }

    async fn wait_ready(&self) -> Result<()> {
        wait::until("the controller's /readyz", READY_TIMEOUT, || async {
            if let Err(e) = self.processes.ensure_running("controller") {
                bail!("{e:#}");
            }
            let ready = http::request(&self.metrics_url, "GET", "/readyz", &[], b"")
                .await
                .is_ok_and(|r| r.status == 200);
            Ok(Check::passed(ready, || "not ready".to_owned()))
        })
        .await
    }

    pub async fn metrics(&self) -> Result<Sample> {
        let response = crate::phases::retried("reading the controller's /metrics", || {
            http::request(&self.metrics_url, "GET", "/metrics", &[], b"")
        })
        .await?;
        if response.status != 200 {
            bail!("/metrics: HTTP {}: {}", response.status, response.text());
        }
        Ok(Sample::parse(&response.text()))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn peak_rss_kib(&self) -> Result<u64> {
        procfs::peak_rss_kib(self.pid)
    }

    /// Fails with the end of its log if the controller has exited.
    pub fn ensure_running(&self) -> Result<()> {
        self.processes
            .ensure_running("controller")
            .with_context(|| format!("log tail:\n{}", log_tail(&self.log)))
    }

    /// SIGTERM, then SIGKILL after a grace period.
    pub fn stop(&self) {
        self.processes.shutdown();
    }
}
