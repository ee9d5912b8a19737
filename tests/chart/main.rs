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
//!
//! | Module | What |
//! | --- | --- |
//! | [`static_checks`] | files checked as they are: Chart.yaml, the CRD copy, the Dockerfile, the IAM policy |
//! | [`render`] | `helm lint`, the values schema, and what the chart renders for given values |
//! | [`argocd`] | the Argo CD ConfigMap and the Lua health check, run on tests/chart/health/*.yaml |
//! | [`install`] | install, upgrade and uninstall on a private bed, where Helm owns the CRD |
//! | [`rbac`] | the controller binary, run with the chart's RBAC through a TokenRequest token |
//! | [`helm`], [`manifests`] | the helm_driver.py plumbing and releases; reading rendered manifests |

#[path = "../support/mod.rs"]
mod support;

mod argocd;
mod helm;
mod install;
mod manifests;
mod rbac;
mod render;
mod static_checks;

use std::path::{Path, PathBuf};
use std::time::Duration;

type TestResult = anyhow::Result<()>;

const CHART_NAME: &str = "branchpipeline-controller";
const CRD_NAME: &str = "branchpipelines.branchpipeline.dev";

/// How long the apiserver gets to finish deleting something.
const DELETE_TIMEOUT: Duration = Duration::from_secs(20);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    repo().join("charts").join(CHART_NAME)
}
