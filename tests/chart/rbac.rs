//! The chart's RBAC, for real: the controller binary runs with the chart's arguments and a
//! TokenRequest token of the chart's ServiceAccount, reconciles the example, and is refused
//! everything else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::helm::{Kubeconfig, shared_release, without_crd};
use crate::manifests::{deployment_args, manifest_docs};
use crate::support::wait::{self, Check};
use crate::support::{self, TestBed};
use crate::{DELETE_TIMEOUT, TestResult};

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
    // Namespaced Roles only: render::watch_namespace_mode_uses_a_role_instead_of_a_cluster_role
    // checks what watchNamespaces renders.
    let docs = manifest_docs(&installed)?;

    let dir = tempfile::tempdir()?;
    let (client, controller_kubeconfig) =
        service_account_identity(bed, &ns, &release.fullname(), dir.path()).await?;

    // Run the binary with the chart's own arguments, as the pod would.
    let mut args = deployment_args(&docs)?;
    args.retain(|a| !a.starts_with("--metrics-addr") && !a.starts_with("--resync-interval"));
    args.push("--metrics-addr=127.0.0.1:0".into());
    args.push("--resync-interval=2s".into());
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
    wait::until_gone(&admin, "orders-api", DELETE_TIMEOUT).await?;

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
    // Classes: read cluster-wide (they are cluster-scoped), never written; namespaces: a
    // single one read by name, never listed.
    use branchpipeline::api::{BranchPipelineClass, BranchPipelineClassSpec};
    use k8s_openapi::api::core::v1::Namespace;
    let classes = Api::<BranchPipelineClass>::all(client.clone());
    classes.list(&ListParams::default()).await?;
    let class = BranchPipelineClass::new(
        &support::unique_name("rbac-class"),
        BranchPipelineClassSpec::default(),
    );
    assert!(is_forbidden(
        classes.create(&Default::default(), &class).await
    ));
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces.get(&team).await?;
    assert!(is_forbidden(namespaces.list(&ListParams::default()).await));
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
