//! The Helm chart (charts/branchpipeline-controller), the Dockerfile's pins, the IAM policy
//! and the Argo CD health check.
//!
//! Helm is the real Helm v4 library, driven through helm-sdkpy by tests/chart/helm_driver.py;
//! the health check runs in real Lua 5.4 and 5.1 interpreters. Both come from
//! `scripts/install-helm-sdk.sh`, the apiserver from `scripts/testbed-install.sh`
//! (tests/support).
//!
//! helm-sdkpy has no `helm template`: rendering is an install (wait=False) into the test
//! bed, whose result carries the rendered manifest. Releases on the shared bed live in
//! their own namespaces under unique names and never install the CRD (`crds.install=false`:
//! the CRD is cluster-scoped, and other tests may have applied it without Helm's ownership
//! metadata). The tests that need Helm to own the CRD start a private bed.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde::Deserialize;
use serde_json::{Value, json};
use support::TestBed;
use support::wait::{self, Check};
use tokio::io::AsyncWriteExt;

type TestResult = Result<()>;

const CHART_NAME: &str = "branchpipeline-controller";
const CRD_NAME: &str = "branchpipelines.branchpipeline.dev";
const HELM_TIMEOUT: Duration = Duration::from_secs(180);
const INSTALL_HINT: &str = "run scripts/install-helm-sdk.sh first";

// ------------------------------------------------------------------------------ tools

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    repo().join("charts").join(CHART_NAME)
}

struct Tools {
    python: PathBuf,
    /// Lua 5.4.
    lua: PathBuf,
    /// Lua 5.1, the dialect of gopher-lua, which runs health scripts in Argo CD.
    lua51: PathBuf,
}

/// `BPL_HELM_PYTHON`, `BPL_LUA` and `BPL_LUA51` from the environment, else from the `helm.env` that
/// scripts/install-helm-sdk.sh writes (`$BPL_HELM_ENV` names another one).
fn tools() -> &'static Tools {
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

// ------------------------------------------------------------------------------ helm

/// Runs one helm_driver.py action. The outer error is a failure of the driver itself;
/// the inner one is the error Helm reported.
async fn helm(action: &str, request: &Value) -> Result<Result<Value, String>> {
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

async fn helm_ok(action: &str, request: &Value) -> Result<Value> {
    helm(action, request)
        .await?
        .map_err(|e| anyhow!("helm {action} failed: {e}"))
}

/// A kubeconfig for Helm, aimed at a bed; removed when dropped.
struct Kubeconfig {
    dir: tempfile::TempDir,
}

impl Kubeconfig {
    fn new(bed: &TestBed) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("bpl-chart-kubeconfig-")
            .tempdir()?;
        bed.write_kubeconfig(&dir.path().join("kubeconfig"))?;
        Ok(Self { dir })
    }

    fn path(&self) -> String {
        self.dir.path().join("kubeconfig").display().to_string()
    }
}

/// One release of a chart directory in one namespace of one bed.
struct Release {
    name: String,
    namespace: String,
    chart: PathBuf,
    kubeconfig: String,
}

impl Release {
    fn new(kubeconfig: &Kubeconfig, chart: &Path, name: &str, namespace: &str) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            chart: chart.to_owned(),
            kubeconfig: kubeconfig.path(),
        }
    }

    /// `<release>-branchpipeline-controller`, the chart's full name for these releases.
    fn fullname(&self) -> String {
        format!("{}-{CHART_NAME}", self.name)
    }

    fn request(&self, values: &Value) -> Value {
        json!({
            "chart": self.chart,
            "release": self.name,
            "namespace": self.namespace,
            "kubeconfig": self.kubeconfig,
            "values": values,
        })
    }

    async fn install(&self, values: &Value) -> Result<Result<Value, String>> {
        helm("install", &self.request(values)).await
    }

    async fn install_ok(&self, values: &Value) -> Result<Value> {
        helm_ok("install", &self.request(values)).await
    }

    async fn upgrade_ok(&self, values: &Value) -> Result<Value> {
        helm_ok("upgrade", &self.request(values)).await
    }

    async fn uninstall_ok(&self) -> Result<Value> {
        helm_ok("uninstall", &self.request(&json!({}))).await
    }

    async fn status(&self) -> Result<Result<Value, String>> {
        helm("status", &self.request(&json!({}))).await
    }
}

/// A release on the shared bed, in a namespace of its own (also its name).
async fn shared_release(bed: &TestBed, kubeconfig: &Kubeconfig, prefix: &str) -> Result<Release> {
    let namespace = bed.unique_namespace(prefix).await?;
    Ok(Release::new(
        kubeconfig,
        &chart_dir(),
        &namespace,
        &namespace,
    ))
}

/// `values` with `crds.install=false`, for releases on the shared bed.
fn without_crd(values: Value) -> Value {
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

// ------------------------------------------------------------------------------ manifests

/// The documents of a release's rendered manifest.
fn manifest_docs(release: &Value) -> Result<Vec<Value>> {
    let text = release["manifest"]
        .as_str()
        .context("release without manifest")?;
    parse_yaml_docs(text)
}

fn parse_yaml_docs(text: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).context("parsing YAML")?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name} among {:?}", kinds(docs)))
}

fn only<'a>(docs: &'a [Value], kind: &str) -> Result<&'a Value> {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    ensure!(
        found.len() == 1,
        "expected one {kind}, found {}",
        found.len()
    );
    Ok(found[0])
}

fn deployment_args(docs: &[Value]) -> Result<Vec<String>> {
    let deployment = only(docs, "Deployment")?;
    let args = deployment
        .pointer("/spec/template/spec/containers/0/args")
        .context("Deployment without args")?;
    Ok(serde_json::from_value(args.clone())?)
}

fn deployment_env(docs: &[Value]) -> Result<Vec<Value>> {
    let deployment = only(docs, "Deployment")?;
    let env = deployment
        .pointer("/spec/template/spec/containers/0/env")
        .context("Deployment without env")?;
    Ok(env.as_array().cloned().unwrap_or_default())
}

/// Every (apiGroup, resource, verb) a set of RBAC rules grants; fails on rules that use
/// resourceNames or nonResourceURLs, which these charts never need.
fn grants(rules: &[PolicyRule]) -> Result<BTreeSet<(String, String, String)>> {
    let mut out = BTreeSet::new();
    for rule in rules {
        ensure!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "unexpected rule {rule:?}"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    out.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    Ok(out)
}

fn grant_set(spec: &[(&str, &str, &[&str])]) -> BTreeSet<(String, String, String)> {
    spec.iter()
        .flat_map(|(group, resource, verbs)| {
            verbs
                .iter()
                .map(move |verb| (group.to_string(), resource.to_string(), verb.to_string()))
        })
        .collect()
}

/// What the controller needs for BranchPipelines and their Events, and nothing else.
fn controller_grants() -> BTreeSet<(String, String, String)> {
    grant_set(&[
        (
            "branchpipeline.dev",
            "branchpipelines",
            &["get", "list", "watch", "patch", "update"],
        ),
        (
            "branchpipeline.dev",
            "branchpipelines/status",
            &["get", "patch", "update"],
        ),
        (
            "branchpipeline.dev",
            "branchpipelines/finalizers",
            &["update"],
        ),
        ("events.k8s.io", "events", &["create", "patch"]),
    ])
}

/// What leader election needs, in the release namespace.
fn lease_grants() -> BTreeSet<(String, String, String)> {
    grant_set(&[(
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update", "patch"],
    )])
}

fn rules_of(doc: &Value) -> Result<Vec<PolicyRule>> {
    Ok(serde_json::from_value(doc["rules"].clone())?)
}

/// `expected` is contained in `actual`: every key of every object in `expected` is in
/// `actual` with a contained value, arrays match element by element, numbers by value
/// (YAML's 2160.0 is JSON's 2160). The apiserver adds defaults, hence not equality.
fn contained(expected: &Value, actual: &Value, path: &str) -> Result<()> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let child = format!("{path}/{key}");
                let other = a.get(key).with_context(|| format!("{child} missing"))?;
                contained(value, other, &child)?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            ensure!(
                e.len() == a.len(),
                "{path}: {} items, expected {}",
                a.len(),
                e.len()
            );
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                contained(x, y, &format!("{path}/{i}"))?;
            }
            Ok(())
        }
        (Value::Number(e), Value::Number(a)) => {
            ensure!(e.as_f64() == a.as_f64(), "{path}: {a}, expected {e}");
            Ok(())
        }
        (e, a) => {
            ensure!(e == a, "{path}: {a}, expected {e}");
            Ok(())
        }
    }
}

/// Equality up to number representation.
fn same(expected: &Value, actual: &Value) -> Result<()> {
    contained(expected, actual, "")?;
    contained(actual, expected, "")
}

fn crd_file() -> Result<Value> {
    let path = chart_dir().join("files/crd.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    Ok(serde_yaml::from_str(&text)?)
}

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
fn chart_copy() -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new().prefix("bpl-chart-").tempdir()?;
    let chart = dir.path().join(CHART_NAME);
    copy_dir(&chart_dir(), &chart)?;
    Ok((dir, chart))
}

async fn wait_until_gone<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait::until_gone(api, name, Duration::from_secs(20)).await
}

// ------------------------------------------------------------------------------ static checks

#[test]
fn chart_app_version_is_the_crate_version() -> TestResult {
    let text = std::fs::read_to_string(chart_dir().join("Chart.yaml"))?;
    let chart: Value = serde_yaml::from_str(&text)?;
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], CHART_NAME);
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml appVersion must be the crate version in Cargo.toml (a quoted string)"
    );
    let version = chart["version"].as_str().context("Chart.yaml version")?;
    ensure!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "chart version {version} is not SemVer x.y.z"
    );
    Ok(())
}

#[test]
fn chart_crd_file_is_the_generated_crd() -> TestResult {
    let copy_path = chart_dir().join("files/crd.yaml");
    let copy = std::fs::read_to_string(&copy_path)?;
    pretty_assertions::assert_eq!(
        copy,
        branchpipeline::crd::crd_yaml(),
        "{} differs from the generated CRD: run `cargo run -- crd > {}` and \
         `cp {} charts/{CHART_NAME}/files/crd.yaml`",
        copy_path.display(),
        branchpipeline::crd::CRD_FILE,
        branchpipeline::crd::CRD_FILE,
    );
    Ok(())
}

#[test]
fn dockerfile_pins_the_crate_toolchain_and_runs_as_nonroot() -> TestResult {
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml"))?;
    let rust_version = cargo
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version"))
        .and_then(|rest| rest.split('"').nth(1))
        .context("rust-version in Cargo.toml")?;
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile"))?;
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .collect();
    assert!(
        froms
            .iter()
            .any(|l| l.contains(&format!("rust:{rust_version}-bookworm"))),
        "the builder should be rust:{rust_version}-bookworm (Cargo.toml rust-version): {froms:?}"
    );
    let last = froms.last().context("no FROM")?;
    assert!(
        last.contains("gcr.io/distroless/cc-debian12:nonroot"),
        "runtime stage: {last}"
    );
    assert!(dockerfile.lines().any(|l| l.trim() == "USER 65532:65532"));
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == r#"ENTRYPOINT ["/usr/local/bin/branchpipeline-controller"]"#)
    );
    let dockerignore = std::fs::read_to_string(repo().join(".dockerignore"))?;
    assert!(dockerignore.lines().any(|l| l.trim() == "target/"));
    Ok(())
}

/// The policy grants exactly the AWS operations src/aws calls, plus passing roles
/// and connections, and nothing else.
#[test]
fn iam_policy_lists_exactly_the_called_actions() -> TestResult {
    let text = std::fs::read_to_string(chart_dir().join("docs/iam-policy.json"))?;
    let policy: Value = serde_json::from_str(&text)?;
    assert_eq!(policy["Version"], "2012-10-17");
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"].as_array().context("Statement")? {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        match &statement["Action"] {
            Value::String(a) => {
                actions.insert(a.clone());
            }
            Value::Array(list) => {
                for a in list {
                    ensure!(
                        actions.insert(a.as_str().context("action")?.to_owned()),
                        "{a} twice"
                    );
                }
            }
            other => bail!("bad Action {other}"),
        }
    }

    let expected: BTreeSet<String> = [
        "codepipeline:GetPipeline",
        "codepipeline:CreatePipeline",
        "codepipeline:UpdatePipeline",
        "codepipeline:DeletePipeline",
        "codepipeline:ListPipelines",
        "codepipeline:TagResource",
        "codepipeline:UntagResource",
        "codepipeline:ListTagsForResource",
        "codepipeline:StartPipelineExecution",
        "codebuild:BatchGetProjects",
        "codebuild:CreateProject",
        "codebuild:UpdateProject",
        "codebuild:DeleteProject",
        "codebuild:ListProjects",
        "iam:PassRole",
        "codestar-connections:PassConnection",
        "codeconnections:PassConnection",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    pretty_assertions::assert_eq!(actions, expected);

    // Every operation the SDK adapter sends, as `codepipeline:Op` / `codebuild:Op`: client
    // method calls (`self.codebuild.list_projects()`) and input builders sent with
    // `send_with` (`cb::operation::create_project::...`), outside the unit tests.
    let call = regex::Regex::new(
        r"self\s*\.\s*(codepipeline|codebuild)\s*\.\s*([a-z_]+)\s*\(\s*\)|\b(cp|cb)::operation::([a-z_]+)::",
    )?;
    let mut called = BTreeSet::new();
    for file in ["src/aws/sdk.rs", "src/aws/convert.rs"] {
        let text = std::fs::read_to_string(repo().join(file))?;
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for c in call.captures_iter(code) {
            let (service, op) = match (c.get(1), c.get(2), c.get(3), c.get(4)) {
                (Some(s), Some(op), _, _) => (s.as_str(), op.as_str()),
                (_, _, Some(alias), Some(op)) => (
                    if alias.as_str() == "cp" {
                        "codepipeline"
                    } else {
                        "codebuild"
                    },
                    op.as_str(),
                ),
                _ => continue,
            };
            if op == "config" {
                continue;
            }
            let op: String = op
                .split('_')
                .map(|w| {
                    let mut chars = w.chars();
                    chars
                        .next()
                        .map(|f| f.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect();
            called.insert(format!("{service}:{op}"));
        }
    }
    ensure!(!called.is_empty(), "found no AWS calls in src/aws");
    let granted: BTreeSet<String> = expected
        .iter()
        .filter(|a| a.starts_with("codepipeline:") || a.starts_with("codebuild:"))
        .cloned()
        .collect();
    pretty_assertions::assert_eq!(
        called,
        granted,
        "docs/iam-policy.json must grant exactly the operations src/aws calls"
    );

    // Roles only to the two services, connections only to CodePipeline.
    for statement in policy["Statement"].as_array().unwrap_or(&Vec::new()) {
        let condition = &statement["Condition"]["StringEquals"];
        match &statement["Action"] {
            Value::String(a) if a == "iam:PassRole" => assert_eq!(
                condition["iam:PassedToService"],
                json!(["codepipeline.amazonaws.com", "codebuild.amazonaws.com"])
            ),
            Value::String(a) if a.ends_with(":PassConnection") => {
                let prefix = a.trim_end_matches(":PassConnection");
                assert_eq!(
                    condition[format!("{prefix}:PassedToService")],
                    "codepipeline.amazonaws.com"
                );
            }
            _ => {}
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------ Argo CD

#[test]
fn argocd_cm_embeds_the_health_script() -> TestResult {
    let docs = chart_dir().join("docs");
    let script = std::fs::read_to_string(docs.join("argocd-health.lua"))?;
    let cm: Value = serde_yaml::from_str(&std::fs::read_to_string(docs.join("argocd-cm.yaml"))?)?;
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let embedded = cm["data"]["resource.customizations.health.branchpipeline.dev_BranchPipeline"]
        .as_str()
        .context("argocd-cm.yaml lacks the health key")?;
    pretty_assertions::assert_eq!(
        embedded,
        script,
        "docs/argocd-cm.yaml must embed docs/argocd-health.lua verbatim"
    );
    Ok(())
}

/// A Lua literal for a JSON value, the way Argo CD hands objects to health scripts:
/// numbers are floats there (JSON decoded to float64), so they are floats here too.
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("{:?}", n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// A double-quoted Lua string: printable ASCII as is, every other byte as `\ddd`.
fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for byte in s.bytes() {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out.push('"');
    out
}

/// Runs docs/argocd-health.lua in the Lua interpreter `lua` on one object:
/// (status, message).
fn argocd_health(lua: &Path, object: &Value) -> Result<(String, String)> {
    use std::io::Write;
    let script = chart_dir().join("docs/argocd-health.lua");
    let harness = repo().join("tests/chart/health_harness.lua");
    let mut child = std::process::Command::new(lua)
        .arg(&harness)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", lua.display()))?;
    let mut stdin = child.stdin.take().context("lua stdin")?;
    stdin.write_all(format!("return {}\n", lua_literal(object)).as_bytes())?;
    drop(stdin);
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8(output.stdout)?;
    ensure!(
        output.status.success(),
        "lua failed ({}): {}{}",
        output.status,
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, message) = stdout
        .split_once('\n')
        .context("lua printed no status line")?;
    Ok((
        status.to_owned(),
        message.strip_suffix('\n').unwrap_or(message).to_owned(),
    ))
}

/// tests/chart/health/*.yaml: each an object and the status (and message) Argo CD should
/// show for it, checked in Lua 5.4 and in Lua 5.1 (Argo CD's gopher-lua dialect).
#[test]
fn argocd_health_check_matches_every_fixture() -> TestResult {
    let dir = repo().join("tests/chart/health");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    ensure!(files.len() >= 10, "too few fixtures in {}", dir.display());
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let fixture: Value = serde_yaml::from_str(&std::fs::read_to_string(file)?)
            .with_context(|| format!("parsing {}", file.display()))?;
        let expected = fixture["expect"]["status"]
            .as_str()
            .with_context(|| format!("{}: expect.status", file.display()))?;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        for lua in [&tools().lua, &tools().lua51] {
            let (status, message) = argocd_health(lua, &fixture["object"])
                .with_context(|| format!("running {name} with {}", lua.display()))?;
            seen.insert(status.clone());
            let lua = lua.file_name().unwrap_or_default().to_string_lossy();
            if status != expected {
                failures.push(format!(
                    "{name} ({lua}): {status} ({message}), expected {expected}"
                ));
            }
            if let Some(expected) = fixture["expect"]["message"].as_str()
                && message != expected
            {
                failures.push(format!(
                    "{name} ({lua}): message {message:?}, expected {expected:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let all: BTreeSet<String> = ["Healthy", "Progressing", "Degraded"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(seen, all, "the fixtures should cover every status");
    Ok(())
}

// ------------------------------------------------------------------------------ lint

#[tokio::test]
async fn helm_lint_passes() -> TestResult {
    let result = helm_ok("lint", &json!({"chart": chart_dir()})).await?;
    assert_eq!(result["charts"], 1, "{result}");
    assert_eq!(result["errors"], 0, "helm lint found errors: {result}");
    let problems: Vec<&Value> = result["messages"]
        .as_array()
        .context("messages")?
        .iter()
        .filter(|m| m["severity"] != "INFO")
        .collect();
    assert!(problems.is_empty(), "helm lint warnings: {problems:?}");
    Ok(())
}

/// Lint validates values.yaml against values.schema.json, so bad defaults fail it.
#[tokio::test]
async fn helm_lint_rejects_bad_defaults() -> TestResult {
    let (_dir, chart) = chart_copy()?;
    let values = chart.join("values.yaml");
    let text = std::fs::read_to_string(&values)?;
    ensure!(text.contains("\nreplicaCount: 2\n"), "values.yaml changed");
    std::fs::write(
        &values,
        text.replace("\nreplicaCount: 2\n", "\nreplicaCount: \"two\"\n"),
    )?;
    let result = helm_ok("lint", &json!({"chart": chart})).await?;
    assert_ne!(result["errors"], 0, "{result}");
    assert!(
        result["messages"]
            .as_array()
            .context("messages")?
            .iter()
            .any(|m| m["severity"] == "ERROR" && m["path"] == "values.yaml"),
        "{result}"
    );
    Ok(())
}

// ------------------------------------------------------------------------------ values

#[tokio::test]
async fn values_schema_rejects_bad_values() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let release = shared_release(bed, &kubeconfig, "chart-schema").await?;
    let cases = [
        (json!({"replicaCount": "two"}), "/replicaCount"),
        (json!({"replicaCount": 0}), "/replicaCount"),
        (json!({"replicaCount": 1.5}), "/replicaCount"),
        (json!({"resyncInterval": "10 minutes"}), "/resyncInterval"),
        (json!({"resyncInterval": "600"}), "/resyncInterval"),
        (json!({"watchNamespaces": ["Team_A"]}), "/watchNamespaces/0"),
        (json!({"watchNamespaces": "team-a"}), "/watchNamespaces"),
        (
            json!({"watchNamespaces": ["team-a", "team-a"]}),
            "/watchNamespaces",
        ),
        (
            json!({"image": {"pullPolicy": "Sometimes"}}),
            "/image/pullPolicy",
        ),
        (json!({"deletionPolicy": "Keep"}), "/deletionPolicy"),
        (json!({"logFormat": "xml"}), "/logFormat"),
        (json!({"metrics": {"port": 70000}}), "/metrics/port"),
        (json!({"aws": {"region": "Europe"}}), "/aws/region"),
        (
            json!({"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": 5}}}),
            "/serviceAccount/annotations",
        ),
        (json!({"crds": {"install": "yes"}}), "/crds/install"),
        // A typo is an error, not a silently ignored key.
        (json!({"replicas": 3}), "'replicas' not allowed"),
        (
            json!({"leaderElection": {"enable": true}}),
            "'enable' not allowed",
        ),
        // Template-level checks.
        (
            json!({"leaderElection": {"enabled": false}}),
            "needs leaderElection.enabled",
        ),
    ];
    let requests: Vec<Value> = cases
        .iter()
        .map(|(values, _)| without_crd(values.clone()))
        .collect();
    let outcomes =
        futures::future::join_all(requests.iter().map(|values| release.install(values))).await;
    let mut failures = Vec::new();
    for ((values, expected), outcome) in cases.iter().zip(outcomes) {
        match outcome? {
            Ok(_) => failures.push(format!("{values}: installed")),
            Err(e) if !e.contains(expected) => {
                failures.push(format!("{values}: error lacks {expected:?}: {e}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was recorded for a refused install.
    assert!(release.status().await?.is_err());
    // ... and the same release with good values goes in.
    release
        .install_ok(&without_crd(
            json!({"replicaCount": 1, "resyncInterval": "1h30m"}),
        ))
        .await?;
    Ok(())
}

#[tokio::test]
async fn chart_renders_defaults() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let release = shared_release(bed, &kubeconfig, "chart-defaults").await?;
    let result = release.install_ok(&without_crd(json!({}))).await?;
    let docs = manifest_docs(&result)?;
    let fullname = release.fullname();

    let expected_kinds: BTreeSet<String> = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds(&docs), expected_kinds);
    assert_eq!(docs.len(), 7, "{:?}", kinds(&docs));
    for doc in &docs {
        let labels = &doc["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/instance"],
            release.name.as_str(),
            "{doc}"
        );
        assert_eq!(labels["app.kubernetes.io/name"], CHART_NAME, "{doc}");
        assert_eq!(
            labels["app.kubernetes.io/version"],
            env!("CARGO_PKG_VERSION")
        );
        if doc["kind"] != "ClusterRole" && doc["kind"] != "ClusterRoleBinding" {
            assert_eq!(
                doc["metadata"]["namespace"],
                release.namespace.as_str(),
                "{doc}"
            );
        }
    }

    assert_eq!(
        deployment_args(&docs)?,
        [
            "run",
            "--resync-interval=10m",
            "--leader-election",
            "--metrics-addr=0.0.0.0:8080",
            "--log-format=json",
        ]
    );
    let deployment = find(&docs, "Deployment", &fullname)?;
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment.pointer("/spec/template/spec/containers/0/image"),
        Some(&json!(format!(
            "ghcr.io/branchpipeline/branchpipeline-controller:{}",
            env!("CARGO_PKG_VERSION")
        )))
    );
    let env = deployment_env(&docs)?;
    assert_eq!(
        env,
        [
            json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
            json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        ],
        "no AWS_REGION unless aws.region is set"
    );

    let cluster_role = find(&docs, "ClusterRole", &fullname)?;
    assert_eq!(grants(&rules_of(cluster_role)?)?, controller_grants());
    let leases = find(&docs, "Role", &format!("{fullname}-leader-election"))?;
    assert_eq!(grants(&rules_of(leases)?)?, lease_grants());

    let service = find(&docs, "Service", &format!("{fullname}-metrics"))?;
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment
            .pointer("/spec/selector/matchLabels")
            .cloned()
            .unwrap_or_default()
    );
    Ok(())
}

#[tokio::test]
async fn chart_renders_values_into_args_and_env() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let cases = [
        (
            json!({
                "resyncInterval": "5m30s",
                "deletionPolicy": "Retain",
                "logFormat": "text",
                "leaderElection": {"leaseName": "bpl-team-a"},
                "metrics": {"port": 9090},
                "aws": {"region": "eu-west-1"},
                "image": {"tag": "0.2.0-rc.1"},
            }),
            vec![
                "run",
                "--resync-interval=5m30s",
                "--deletion-policy=Retain",
                "--leader-election",
                "--lease-name=bpl-team-a",
                "--metrics-addr=0.0.0.0:9090",
                "--log-format=text",
            ],
        ),
        (
            json!({"replicaCount": 1, "leaderElection": {"enabled": false}, "deletionPolicy": "Delete"}),
            vec![
                "run",
                "--resync-interval=10m",
                "--deletion-policy=Delete",
                "--metrics-addr=0.0.0.0:8080",
                "--log-format=json",
            ],
        ),
    ];
    for (i, (values, args)) in cases.iter().enumerate() {
        let release = shared_release(bed, &kubeconfig, &format!("chart-values-{i}")).await?;
        let docs = manifest_docs(&release.install_ok(&without_crd(values.clone())).await?)?;
        assert_eq!(&deployment_args(&docs)?, args, "{values}");
        let deployment = only(&docs, "Deployment")?;
        let port = values
            .pointer("/metrics/port")
            .cloned()
            .unwrap_or(json!(8080));
        assert_eq!(
            deployment.pointer("/spec/template/spec/containers/0/ports"),
            Some(&json!([{"name": "metrics", "containerPort": port, "protocol": "TCP"}]))
        );
        let env = deployment_env(&docs)?;
        let region = env.iter().find(|e| e["name"] == "AWS_REGION");
        match values.pointer("/aws/region") {
            Some(r) => assert_eq!(region, Some(&json!({"name": "AWS_REGION", "value": r}))),
            None => assert_eq!(region, None),
        }
        if let Some(tag) = values.pointer("/image/tag").and_then(Value::as_str) {
            let image = deployment.pointer("/spec/template/spec/containers/0/image");
            assert!(
                image
                    .and_then(Value::as_str)
                    .is_some_and(|i| i.ends_with(&format!(":{tag}")))
            );
        }
        // Without leader election there is no Lease to grant.
        let lease_role = docs
            .iter()
            .any(|d| d["kind"] == "Role" && d.to_string().contains("coordination.k8s.io"));
        assert_eq!(
            lease_role,
            values.pointer("/leaderElection/enabled") != Some(&json!(false))
        );
    }
    Ok(())
}

#[tokio::test]
async fn watch_namespace_mode_uses_a_role_instead_of_a_cluster_role() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let client = bed.client();
    let release = shared_release(bed, &kubeconfig, "chart-watch").await?;
    let watched = bed.unique_namespace("chart-watched").await?;
    let also_watched = bed.unique_namespace("chart-watched").await?;
    let result = release
        .install_ok(&without_crd(
            json!({"watchNamespaces": [watched, also_watched]}),
        ))
        .await?;
    let docs = manifest_docs(&result)?;
    let fullname = release.fullname();

    assert!(!kinds(&docs).contains("ClusterRole"), "{:?}", kinds(&docs));
    assert!(!kinds(&docs).contains("ClusterRoleBinding"));
    assert_eq!(
        deployment_args(&docs)?,
        [
            "run",
            "--resync-interval=10m",
            format!("--namespace={watched}").as_str(),
            format!("--namespace={also_watched}").as_str(),
            "--leader-election",
            "--metrics-addr=0.0.0.0:8080",
            "--log-format=json",
        ]
    );

    // On the apiserver: the controller's rules in each watched namespace, the Lease rules
    // in the release namespace, and no cluster-wide grant.
    for ns in [&watched, &also_watched] {
        let role = Api::<Role>::namespaced(client.clone(), ns)
            .get(&fullname)
            .await?;
        assert_eq!(
            grants(role.rules.as_deref().unwrap_or_default())?,
            controller_grants()
        );
    }
    let binding = Api::<RoleBinding>::namespaced(client.clone(), &watched)
        .get(&fullname)
        .await?;
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.name, fullname);
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, fullname);
    assert_eq!(
        subjects[0].namespace.as_deref(),
        Some(release.namespace.as_str())
    );

    let lease_role = Api::<Role>::namespaced(client.clone(), &release.namespace)
        .get(&format!("{fullname}-leader-election"))
        .await?;
    assert_eq!(
        grants(lease_role.rules.as_deref().unwrap_or_default())?,
        lease_grants()
    );
    assert!(
        Api::<Role>::namespaced(client.clone(), &release.namespace)
            .get_opt(&fullname)
            .await?
            .is_none(),
        "the controller's rules belong in the watched namespace only"
    );
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .get_opt(&fullname)
            .await?
            .is_none()
    );
    assert!(
        Api::<ClusterRoleBinding>::all(client)
            .get_opt(&fullname)
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn optional_pdb_and_service_monitor() -> TestResult {
    let bed = TestBed::shared().await;
    let kubeconfig = Kubeconfig::new(bed)?;
    let client = bed.client();
    // prometheus-operator's CRD, reduced to what lets a ServiceMonitor be stored.
    let service_monitor_crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"kind": "ServiceMonitor", "listKind": "ServiceMonitorList", "plural": "servicemonitors", "singular": "servicemonitor"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        },
    });
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.patch(
        "servicemonitors.monitoring.coreos.com",
        &PatchParams::apply("chart-test").force(),
        &Patch::Apply(&service_monitor_crd),
    )
    .await?;
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor");
    // Established, and served: the apiserver takes a moment to route the new resource.
    let monitors_resource = ApiResource::from_gvk(&gvk);
    let monitors =
        Api::<DynamicObject>::namespaced_with(client.clone(), "default", &monitors_resource);
    wait::until(
        "the ServiceMonitor CRD to be served",
        Duration::from_secs(30),
        || async {
            Ok(match monitors.list(&ListParams::default()).await {
                Ok(_) => Check::Done(()),
                Err(e) => Check::NotYet(format!("{e:?}")),
            })
        },
    )
    .await?;

    let release = shared_release(bed, &kubeconfig, "chart-optional").await?;
    let result = release
        .install_ok(&without_crd(json!({
            "podDisruptionBudget": {"enabled": true},
            "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"}}},
        })))
        .await?;
    let docs = manifest_docs(&result)?;
    let fullname = release.fullname();

    // policy/v1 PodDisruptionBudget from Kubernetes 1.21; the bed's 1.20 gets v1beta1.
    let pdb = find(&docs, "PodDisruptionBudget", &fullname)?;
    let pdb_version = pdb["apiVersion"].as_str().context("apiVersion")?;
    assert!(
        ["policy/v1", "policy/v1beta1"].contains(&pdb_version),
        "{pdb_version}"
    );
    let (group, version) = pdb_version.split_once('/').context("group/version")?;
    let pdb_resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        group,
        version,
        "PodDisruptionBudget",
    ));
    let stored =
        Api::<DynamicObject>::namespaced_with(client.clone(), &release.namespace, &pdb_resource)
            .get(&fullname)
            .await?;
    assert_eq!(stored.data["spec"]["minAvailable"], 1);
    let deployment = Api::<Deployment>::namespaced(client.clone(), &release.namespace)
        .get(&fullname)
        .await?;
    let selector = serde_json::to_value(&deployment.spec.selector.match_labels)?;
    assert_eq!(stored.data["spec"]["selector"]["matchLabels"], selector);

    let monitor =
        Api::<DynamicObject>::namespaced_with(client, &release.namespace, &monitors_resource)
            .get(&fullname)
            .await?;
    assert_eq!(
        monitor
            .metadata
            .labels
            .unwrap_or_default()
            .get("release")
            .map(String::as_str),
        Some("prometheus")
    );
    assert_eq!(monitor.data["spec"]["selector"]["matchLabels"], selector);
    assert_eq!(
        monitor.data["spec"]["endpoints"],
        json!([{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}])
    );
    assert_eq!(
        monitor.data["spec"]["namespaceSelector"]["matchNames"],
        json!([release.namespace])
    );
    Ok(())
}

// ------------------------------------------------------------------------------ install / upgrade

/// A full install on a private bed, where Helm owns the CRD: everything exists as
/// rendered, and `helm uninstall` removes the controller but keeps the CRD.
#[tokio::test]
async fn helm_install_creates_the_controller_and_keeps_the_crd_on_uninstall() -> TestResult {
    let bed = TestBed::start().await?;
    let kubeconfig = Kubeconfig::new(&bed)?;
    let client = bed.client();
    let namespace = bed.unique_namespace("bpl-system").await?;
    let release = Release::new(&kubeconfig, &chart_dir(), "bpl", &namespace);
    let fullname = release.fullname();
    let role_arn = "arn:aws:iam::123456789012:role/branchpipeline-controller";
    let result = release
        .install_ok(&json!({
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": role_arn}},
            "aws": {"region": "eu-west-1"},
        }))
        .await?;
    assert_eq!(result["info"]["status"], "deployed", "{result}");
    assert_eq!(result["version"], 1);

    // Deployment
    let deployment = Api::<Deployment>::namespaced(client.clone(), &namespace)
        .get(&fullname)
        .await?;
    let d = serde_json::to_value(&deployment)?;
    let pod = d.pointer("/spec/template/spec").context("pod spec")?;
    let container = &pod["containers"][0];
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(pod["serviceAccountName"], fullname.as_str());
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"],
        json!({"type": "RuntimeDefault"})
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"],
        json!({"drop": ["ALL"]})
    );
    assert_eq!(
        container["ports"],
        json!([{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "metrics");
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        container["args"],
        json!([
            "run",
            "--resync-interval=10m",
            "--leader-election",
            "--metrics-addr=0.0.0.0:8080",
            "--log-format=json",
        ])
    );
    let env = container["env"].as_array().context("env")?;
    let field_path = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e.pointer("/valueFrom/fieldRef/fieldPath"))
            .and_then(Value::as_str)
            .map(String::from)
    };
    assert_eq!(field_path("POD_NAME").as_deref(), Some("metadata.name"));
    assert_eq!(
        field_path("POD_NAMESPACE").as_deref(),
        Some("metadata.namespace")
    );
    assert!(env.contains(&json!({"name": "AWS_REGION", "value": "eu-west-1"})));

    // ServiceAccount
    let account = Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
        .get(&fullname)
        .await?;
    assert_eq!(
        account
            .metadata
            .annotations
            .unwrap_or_default()
            .get("eks.amazonaws.com/role-arn")
            .map(String::as_str),
        Some(role_arn)
    );

    // RBAC: exactly the controller's rules cluster-wide, the Lease rules in the release
    // namespace, bound to the ServiceAccount, and no other role of this release.
    let cluster_role = Api::<ClusterRole>::all(client.clone())
        .get(&fullname)
        .await?;
    assert_eq!(
        grants(cluster_role.rules.as_deref().unwrap_or_default())?,
        controller_grants()
    );
    let cluster_binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&fullname)
        .await?;
    assert_eq!(cluster_binding.role_ref.kind, "ClusterRole");
    assert_eq!(cluster_binding.role_ref.name, fullname);
    let subjects = serde_json::to_value(cluster_binding.subjects.unwrap_or_default())?;
    assert_eq!(
        subjects,
        json!([{"kind": "ServiceAccount", "name": fullname, "namespace": namespace}])
    );
    let lease_role = Api::<Role>::namespaced(client.clone(), &namespace)
        .get(&format!("{fullname}-leader-election"))
        .await?;
    assert_eq!(
        grants(lease_role.rules.as_deref().unwrap_or_default())?,
        lease_grants()
    );
    let lease_binding = Api::<RoleBinding>::namespaced(client.clone(), &namespace)
        .get(&format!("{fullname}-leader-election"))
        .await?;
    assert_eq!(
        lease_binding.role_ref.name,
        format!("{fullname}-leader-election")
    );
    assert_eq!(
        serde_json::to_value(lease_binding.subjects.unwrap_or_default())?,
        json!([{"kind": "ServiceAccount", "name": fullname, "namespace": namespace}])
    );
    let by_release =
        ListParams::default().labels(&format!("app.kubernetes.io/instance={}", release.name));
    let cluster_roles = Api::<ClusterRole>::all(client.clone())
        .list(&by_release)
        .await?;
    let roles = Api::<Role>::all(client.clone()).list(&by_release).await?;
    assert_eq!(cluster_roles.items.len(), 1);
    assert_eq!(roles.items.len(), 1);

    // Service
    let service = Api::<Service>::namespaced(client.clone(), &namespace)
        .get(&format!("{fullname}-metrics"))
        .await?;
    let ports = serde_json::to_value(service.spec.context("service spec")?.ports)?;
    assert_eq!(ports[0]["name"], "metrics");
    assert_eq!(ports[0]["targetPort"], "metrics");

    // The CRD: the generated one, kept on uninstall, owned by this release.
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = crds.get(CRD_NAME).await?;
    let annotations = crd.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("helm.sh/resource-policy")
            .map(String::as_str),
        Some("keep")
    );
    assert_eq!(
        annotations.get("meta.helm.sh/release-name"),
        Some(&release.name)
    );
    let expected = crd_file()?;
    contained(&expected["spec"], &serde_json::to_value(&crd.spec)?, "spec")?;

    // The rendered CRD is the generated one plus metadata: nothing else changed.
    let docs = manifest_docs(&result)?;
    let mut rendered = find(&docs, "CustomResourceDefinition", CRD_NAME)?.clone();
    assert_eq!(
        rendered["metadata"]["annotations"],
        json!({"helm.sh/resource-policy": "keep"})
    );
    let metadata = rendered["metadata"].as_object_mut().context("metadata")?;
    metadata.remove("annotations");
    metadata.remove("labels");
    same(&expected, &rendered).context("rendered CRD differs from files/crd.yaml")?;

    // Uninstall: the controller goes, the CRD stays.
    release.uninstall_ok().await?;
    wait_until_gone(
        &Api::<Deployment>::namespaced(client.clone(), &namespace),
        &fullname,
    )
    .await?;
    wait_until_gone(&Api::<ClusterRole>::all(client.clone()), &fullname).await?;
    let crd = crds.get_opt(CRD_NAME).await?;
    assert!(
        crd.is_some_and(|c| c.metadata.deletion_timestamp.is_none()),
        "helm uninstall must keep the CRD"
    );
    Ok(())
}

/// `helm upgrade` applies CRD changes (the CRD is a template, not in crds/), and an
/// upgrade that stops installing it leaves it in place.
#[tokio::test]
async fn helm_upgrade_applies_crd_changes() -> TestResult {
    let bed = TestBed::start().await?;
    let kubeconfig = Kubeconfig::new(&bed)?;
    let client = bed.client();
    let namespace = bed.unique_namespace("bpl-system").await?;
    let (_dir, chart) = chart_copy()?;
    let release = Release::new(&kubeconfig, &chart, "bpl-upgrade", &namespace);
    release.install_ok(&json!({})).await?;

    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let spec_properties = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties";
    let before = serde_json::to_value(crds.get(CRD_NAME).await?)?;
    let properties = before.pointer(spec_properties).context("spec properties")?;
    ensure!(properties.get("chartUpgradeProbe").is_none());
    let property_count = properties.as_object().map(|p| p.len()).unwrap_or_default();

    // The next controller version adds an optional field.
    let crd_path = chart.join("files/crd.yaml");
    let mut crd: Value = serde_yaml::from_str(&std::fs::read_to_string(&crd_path)?)?;
    let added = json!({"type": "string", "description": "Added by tests/chart.rs."});
    crd.pointer_mut(spec_properties)
        .and_then(Value::as_object_mut)
        .context("spec properties in files/crd.yaml")?
        .insert("chartUpgradeProbe".into(), added.clone());
    std::fs::write(&crd_path, serde_yaml::to_string(&crd)?)?;

    let result = release.upgrade_ok(&json!({})).await?;
    assert_eq!(result["version"], 2, "{result}");
    assert_eq!(result["info"]["status"], "deployed");

    let after = serde_json::to_value(crds.get(CRD_NAME).await?)?;
    let properties = after.pointer(spec_properties).context("spec properties")?;
    assert_eq!(properties.get("chartUpgradeProbe"), Some(&added));
    assert_eq!(
        properties.as_object().map(|p| p.len()).unwrap_or_default(),
        property_count + 1
    );
    assert_eq!(
        after.pointer("/metadata/annotations/helm.sh~1resource-policy"),
        Some(&json!("keep"))
    );
    // The apiserver serves the new field: a BranchPipeline may now set it (as far as
    // the schema goes; the bed runs no controller to act on it).
    let served = after
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    assert!(served, "CRD not Established after the upgrade: {after}");

    // Handing the CRD over (crds.install=false) drops it from the release, not from the
    // cluster: helm.sh/resource-policy keep covers upgrades too.
    let result = release
        .upgrade_ok(&json!({"crds": {"install": false}}))
        .await?;
    assert_eq!(result["version"], 3, "{result}");
    let docs = manifest_docs(&result)?;
    assert!(!kinds(&docs).contains("CustomResourceDefinition"));
    let kept = crds.get_opt(CRD_NAME).await?;
    assert!(
        kept.is_some_and(|c| c.metadata.deletion_timestamp.is_none()),
        "an upgrade with crds.install=false must keep the CRD"
    );
    Ok(())
}

/// A CRD applied without Helm (kubectl, or here the test bed's server-side apply) is not
/// silently taken over: the install fails until the user opts in, e.g. with Helm's
/// --take-ownership, as the chart README says.
#[tokio::test]
async fn helm_install_adopts_an_existing_crd_only_when_asked() -> TestResult {
    let bed = TestBed::start().await?;
    bed.install_crds().await?;
    let kubeconfig = Kubeconfig::new(&bed)?;
    let client = bed.client();
    let namespace = bed.unique_namespace("bpl-system").await?;
    let release = Release::new(&kubeconfig, &chart_dir(), "bpl-adopt", &namespace);

    let refused = release.install(&json!({})).await?;
    let error = refused
        .err()
        .context("installed over a CRD it does not own")?;
    assert!(error.contains("cannot be imported"), "{error}");
    assert!(error.contains(CRD_NAME), "{error}");

    // The same CRD left alone: crds.install=false installs the controller only.
    release.install_ok(&without_crd(json!({}))).await?;
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get(CRD_NAME)
        .await?;
    let annotations = crd.metadata.annotations.unwrap_or_default();
    assert!(!annotations.contains_key("meta.helm.sh/release-name"));

    // Opting in: the next upgrade owns it, keep annotation included.
    let mut request = release.request(&json!({"crds": {"install": true}}));
    request["options"] = json!({"take_ownership": true});
    helm_ok("upgrade", &request).await?;
    let crd = Api::<CustomResourceDefinition>::all(client)
        .get(CRD_NAME)
        .await?;
    let annotations = crd.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("meta.helm.sh/release-name"),
        Some(&release.name)
    );
    assert_eq!(
        annotations
            .get("helm.sh/resource-policy")
            .map(String::as_str),
        Some("keep")
    );
    Ok(())
}

// ------------------------------------------------------------------ RBAC, for real

/// A kube client and kubeconfig authenticated as the chart's ServiceAccount, through a
/// TokenRequest: exactly what the pod would get.
async fn service_account_identity(
    bed: &TestBed,
    namespace: &str,
    service_account: &str,
    dir: &Path,
) -> Result<(kube::Client, PathBuf)> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let token = Api::<ServiceAccount>::namespaced(bed.client(), namespace)
        .create_token_request(service_account, &Default::default(), &request)
        .await
        .context("TokenRequest for the chart's ServiceAccount")?
        .status
        .context("TokenRequest without status")?
        .token
        .context("TokenRequest without a token")?;
    let mut config = bed.kube_config();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.clone().into()),
        ..Default::default()
    };
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bed", "cluster": {"server": bed.apiserver_url(), "insecure-skip-tls-verify": true}}],
        "users": [{"name": "controller", "user": {"token": token}}],
        "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": "controller", "namespace": namespace}}],
        "current-context": "bed",
    });
    let path = dir.join("controller-kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&kubeconfig)?)?;
    Ok((kube::Client::try_from(config)?, path))
}

fn is_forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(ref s)) if s.code == 403)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rbac_is_enough_to_reconcile_and_no_more() -> TestResult {
    use branchpipeline::api::BranchPipeline;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};

    let bed = TestBed::shared().await;
    bed.install_crds().await?;
    let kubeconfig = Kubeconfig::new(bed)?;
    let release = shared_release(bed, &kubeconfig, "rbac").await?;
    let ns = release.namespace.clone();
    // Two watched namespaces (the release's and a team's): Roles there, one watch each, and
    // the binary cannot disturb other tests' resources on the shared bed.
    let team = bed.unique_namespace("rbac-team").await?;
    let installed = release
        .install_ok(&without_crd(json!({"watchNamespaces": [ns, team]})))
        .await?;
    let docs = manifest_docs(&installed)?;
    assert!(!kinds(&docs).contains("ClusterRole"));

    let dir = tempfile::tempdir()?;
    let (client, controller_kubeconfig) =
        service_account_identity(bed, &ns, &release.fullname(), dir.path()).await?;

    // Run the binary with the chart's own arguments, as the pod would.
    let mut args = deployment_args(&docs)?;
    args.retain(|a| !a.starts_with("--metrics-addr") && !a.starts_with("--resync-interval"));
    args.push("--metrics-addr=127.0.0.1:0".into());
    args.push("--resync-interval=2s".into());
    assert!(args.contains(&format!("--namespace={ns}")), "{args:?}");
    assert!(args.contains(&format!("--namespace={team}")), "{args:?}");
    assert!(args.contains(&"--leader-election".to_string()), "{args:?}");
    let mut env: Vec<(String, String)> = bed.controller_env(&controller_kubeconfig);
    env.push(("POD_NAMESPACE".into(), ns.clone()));
    env.push(("POD_NAME".into(), "controller-0".into()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let log = dir.path().join("controller.log");
    let processes = support::process::Processes::new(dir.path().join("pids"));
    processes.spawn(
        "controller",
        Path::new(env!("CARGO_BIN_EXE_branchpipeline-controller")),
        &args,
        &env_refs,
        &log,
    )?;

    // The example, moved into this namespace and moto's account.
    let role = bed
        .create_codepipeline_role(&format!("{team}-pipeline"))
        .await?;
    let example = support::fixtures::example_json_in(&team, &role);
    let admin: Api<BranchPipeline> = Api::namespaced(bed.client(), &team);
    admin
        .patch(
            "orders-api",
            &PatchParams::apply("rbac-test"),
            &Patch::Apply(&example),
        )
        .await?;

    let bp = wait::until(
        "Ready with the chart's RBAC, finalizer set",
        Duration::from_secs(60),
        || async {
            let bp = admin.get("orders-api").await?;
            let ready = bp
                .status
                .as_ref()
                .and_then(|s| s.condition("Ready"))
                .is_some_and(|c| c.status == "True");
            let finalized = kube::ResourceExt::finalizers(&bp)
                .iter()
                .any(|f| f == branchpipeline::api::FINALIZER);
            Ok(if ready && finalized {
                Check::Done(bp)
            } else {
                Check::NotYet(format!("status: {:?}", bp.status))
            })
        },
    )
    .await
    .map_err(|e| anyhow!("{e:#}\n{}", support::process::log_tail(&log)))?;
    assert_eq!(bp.status.context("status")?.pipelines.len(), 2);
    let log_text = std::fs::read_to_string(&log)?;
    for denied in ["forbidden", "Forbidden"] {
        assert!(
            !log_text.contains(denied),
            "the controller hit a permission error:\n{log_text}"
        );
    }

    // Deleting works too: the finalizer is removed with the chart's permissions.
    admin.delete("orders-api", &Default::default()).await?;
    wait_until_gone(&admin, "orders-api").await?;

    // And nothing it does not need.
    assert!(is_forbidden(
        Api::<Secret>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
    ));
    assert!(is_forbidden(
        Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
    ));
    assert!(is_forbidden(
        Api::<Deployment>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
    ));
    let elsewhere = bed.unique_namespace("rbac-other").await?;
    assert!(is_forbidden(
        Api::<BranchPipeline>::namespaced(client.clone(), &elsewhere)
            .list(&ListParams::default())
            .await
    ));
    assert!(is_forbidden(
        Api::<BranchPipeline>::all(client)
            .list(&ListParams::default())
            .await
    ));
    processes.shutdown();
    Ok(())
}
