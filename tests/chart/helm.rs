//! The helm plumbing: the tools scripts/install-helm-sdk.sh installs, one helm_driver.py
//! action per call, kubeconfigs, releases, and chart copies to change files in.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::TestBed;
use crate::{CHART_NAME, chart_dir, repo};

const HELM_TIMEOUT: Duration = Duration::from_secs(180);

const INSTALL_HINT: &str = "run scripts/install-helm-sdk.sh first";

// --------------------------------------------------------------------- tools

pub struct Tools {
    pub python: PathBuf,
    /// Lua 5.4.
    pub lua: PathBuf,
    /// Lua 5.1, the dialect of gopher-lua, which runs health scripts in Argo CD.
    pub lua51: PathBuf,
}

/// `BPL_HELM_PYTHON`, `BPL_LUA` and `BPL_LUA51` from the environment, else from the `helm.env` that
/// scripts/install-helm-sdk.sh writes (`$BPL_HELM_ENV` names another one).
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| match load_tools() {
        Ok(tools) => tools,
        Err(e) => panic!("chart test tools missing: {e:#}"),
    })
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn helm_env_path() -> PathBuf {
    if let Some(path) = non_empty_var("BPL_HELM_ENV") {
        return PathBuf::from(path);
    }
    let cache = non_empty_var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(non_empty_var("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    cache.join("branchpipeline-controller").join("helm.env")
}

fn load_tools() -> Result<Tools> {
    let path = helm_env_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let from_file = |key: &str| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let get = |key: &str| -> Result<PathBuf> {
        let value = non_empty_var(key)
            .or_else(|| from_file(key))
            .with_context(|| {
                format!(
                    "{key} is not set and {} does not define it: {INSTALL_HINT}",
                    path.display()
                )
            })?;
        let value = PathBuf::from(value);
        ensure!(
            value.exists(),
            "{key}={} does not exist: {INSTALL_HINT}",
            value.display()
        );
        Ok(value)
    };
    Ok(Tools {
        python: get("BPL_HELM_PYTHON")?,
        lua: get("BPL_LUA")?,
        lua51: get("BPL_LUA51")?,
    })
}

// ---------------------------------------------------------------------- helm

/// Runs one helm_driver.py action. The outer error is a failure of the driver itself;
/// the inner one is the error Helm reported.
pub async fn helm(action: &str, request: &Value) -> Result<Result<Value, String>> {
    let driver = repo().join("tests/chart/helm_driver.py");
    let mut child = tokio::process::Command::new(&tools().python)
        .arg(&driver)
        .arg(action)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", tools().python.display()))?;
    let mut stdin = child.stdin.take().context("driver stdin")?;
    stdin.write_all(request.to_string().as_bytes()).await?;
    drop(stdin);
    let output = tokio::time::timeout(HELM_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("helm {action} did not finish within {HELM_TIMEOUT:?}"))??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "helm_driver.py {action} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let reply: Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!("helm_driver.py {action}: not JSON: {stdout}\nstderr: {stderr}")
    })?;
    if reply["ok"] == true {
        Ok(Ok(reply["result"].clone()))
    } else {
        Ok(Err(format!(
            "{}: {}",
            reply["error_type"].as_str().unwrap_or("HelmError"),
            reply["error"].as_str().unwrap_or("(no message)")
        )))
    }
}

pub async fn helm_ok(action: &str, request: &Value) -> Result<Value> {
    helm(action, request)
        .await?
        .map_err(|e| anyhow!("helm {action} failed: {e}"))
}

/// A kubeconfig for Helm, aimed at a bed; removed when dropped.
pub struct Kubeconfig {
    dir: tempfile::TempDir,
}

impl Kubeconfig {
    pub fn new(bed: &TestBed) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("bpl-chart-kubeconfig-")
            .tempdir()?;
        bed.write_kubeconfig(&dir.path().join("kubeconfig"))?;
        Ok(Self { dir })
    }

    pub fn path(&self) -> String {
        self.dir.path().join("kubeconfig").display().to_string()
    }
}

/// One release of a chart directory in one namespace of one bed.
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub chart: PathBuf,
    pub kubeconfig: String,
}

impl Release {
    pub fn new(kubeconfig: &Kubeconfig, chart: &Path, name: &str, namespace: &str) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            chart: chart.to_owned(),
            kubeconfig: kubeconfig.path(),
        }
    }

    /// `<release>-branchpipeline-controller`, the chart's full name for these releases.
    pub fn fullname(&self) -> String {
        format!("{}-{CHART_NAME}", self.name)
    }

    pub fn request(&self, values: &Value) -> Value {
        json!({
            "chart": self.chart,
            "release": self.name,
            "namespace": self.namespace,
            "kubeconfig": self.kubeconfig,
            "values": values,
        })
    }

    pub async fn install(&self, values: &Value) -> Result<Result<Value, String>> {
        helm("install", &self.request(values)).await
    }

    pub async fn install_ok(&self, values: &Value) -> Result<Value> {
        helm_ok("install", &self.request(values)).await
    }

    pub async fn upgrade_ok(&self, values: &Value) -> Result<Value> {
        helm_ok("upgrade", &self.request(values)).await
    }

    pub async fn uninstall_ok(&self) -> Result<Value> {
        helm_ok("uninstall", &self.request(&json!({}))).await
    }

    pub async fn status(&self) -> Result<Result<Value, String>> {
        helm("status", &self.request(&json!({}))).await
    }
}

/// A release on the shared bed, in a namespace of its own (also its name).
pub async fn shared_release(
    bed: &TestBed,
    kubeconfig: &Kubeconfig,
    prefix: &str,
) -> Result<Release> {
    let namespace = bed.unique_namespace(prefix).await?;
    Ok(Release::new(
        kubeconfig,
        &chart_dir(),
        &namespace,
        &namespace,
    ))
}

/// `values` with `crds.install=false`, for releases on the shared bed.
pub fn without_crd(values: Value) -> Value {
    merge(json!({"crds": {"install": false}}), values)
}

/// Deep merge of JSON objects, `overlay` winning.
fn merge(base: Value, overlay: Value) -> Value {
    match (base, overlay) {
        (Value::Object(mut base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                let merged = match base.remove(&key) {
                    Some(old) => merge(old, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Object(base)
        }
        (_, overlay) => overlay,
    }
}

// -------------------------------------------------------------- chart copies

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A copy of the chart in a temporary directory, to change files in.
pub fn chart_copy() -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new().prefix("bpl-chart-").tempdir()?;
    let chart = dir.path().join(CHART_NAME);
    copy_dir(&chart_dir(), &chart)?;
    Ok((dir, chart))
}
