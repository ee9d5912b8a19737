//! The generated CRD against a real kube-apiserver: it applies, the example is accepted as-is,
//! defaults are filled in, and schema constraints are enforced at admission.

mod support;

use anyhow::Result;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

async fn api(prefix: &str) -> Result<(Api<DynamicObject>, String)> {
    let bed = support::TestBed::shared().await;
    let crds = bed.install_crds().await?;
    assert_eq!(
        crds,
        [
            "branchpipelineclasses.branchpipeline.dev",
            "branchpipelineruns.branchpipeline.dev",
            "branchpipelines.branchpipeline.dev"
        ]
    );
    let ns = bed.unique_namespace(prefix).await?;
    let gvk = GroupVersionKind::gvk("branchpipeline.dev", "v1alpha1", "BranchPipeline");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "branchpipelines");
    Ok((Api::namespaced_with(bed.client(), &ns, &resource), ns))
}

fn example(ns: &str) -> Value {
    let mut v = support::fixtures::example_json();
    v["metadata"]["namespace"] = json!(ns);
    v
}

async fn create(api: &Api<DynamicObject>, v: &Value) -> Result<DynamicObject, kube::Error> {
    let object: DynamicObject = serde_json::from_value(v.clone()).unwrap();
    api.create(&PostParams::default(), &object).await
}

#[tokio::test]
async fn the_example_is_accepted_and_defaulted() -> Result<()> {
    let (api, ns) = api("admit").await?;
    let created = create(&api, &example(&ns)).await?;
    let spec = &created.data["spec"];
    assert_eq!(spec["stages"][1]["computeType"], "BUILD_GENERAL1_MEDIUM");
    // Defaults from the schema, filled in by the API server.
    assert_eq!(spec["environments"][0]["trigger"], "automatic");
    // Build defaults are not filled in: a BranchPipelineClass may provide them, field by field,
    // and the controller applies the built-in ones (LINUX_CONTAINER) only after that.
    assert_eq!(spec["defaults"]["environmentType"], Value::Null);
    assert_eq!(spec["defaults"]["computeType"], "BUILD_GENERAL1_SMALL");
    assert_eq!(spec["rollbackOnFailure"], false);
    // Server-side apply of the same manifest, as Argo CD does it, is accepted too.
    let mut applied = example(&ns);
    applied["metadata"]["name"] = json!("orders-api-ssa");
    api.patch(
        "orders-api-ssa",
        &PatchParams::apply("argocd"),
        &Patch::Apply(&applied),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn schema_violations_are_rejected_at_admission() -> Result<()> {
    let (api, ns) = api("reject").await?;
    type Case = (&'static str, fn(&mut Value), &'static str);
    let cases: &[Case] = &[
        (
            "unknown compute type",
            |v| v["spec"]["stages"][0]["computeType"] = json!("BUILD_GENERAL1_HUGE"),
            "computeType",
        ),
        (
            "bad stage name",
            |v| v["spec"]["stages"][0]["name"] = json!("Lint_Stage"),
            "name",
        ),
        (
            "timeout out of range",
            |v| v["spec"]["defaults"]["timeoutMinutes"] = json!(3000),
            "timeoutMinutes",
        ),
        (
            "nine branch patterns",
            |v| {
                v["spec"]["environments"][0]["branches"] =
                    json!(["a", "b", "c", "d", "e", "f", "g", "h", "i"])
            },
            "branches",
        ),
        (
            "repository without owner",
            |v| v["spec"]["source"]["repository"] = json!("orders-api"),
            "repository",
        ),
        (
            "missing stages",
            |v| {
                v["spec"].as_object_mut().unwrap().remove("stages");
            },
            "stages",
        ),
    ];
    for (i, (what, edit, field)) in cases.iter().enumerate() {
        let mut v = example(&ns);
        v["metadata"]["name"] = json!(format!("bad-{i}"));
        edit(&mut v);
        match create(&api, &v).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{what}: {status:?}");
                assert!(status.message.contains(field), "{what}: {}", status.message);
            }
            other => panic!("{what}: expected a 422 rejection, got {other:?}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn runs_need_a_full_commit_sha() -> Result<()> {
    let bed = support::TestBed::shared().await;
    bed.install_crds().await?;
    let ns = bed.unique_namespace("run-admit").await?;
    let gvk = GroupVersionKind::gvk("branchpipeline.dev", "v1alpha1", "BranchPipelineRun");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "branchpipelineruns");
    let api: Api<DynamicObject> = Api::namespaced_with(bed.client(), &ns, &resource);
    let run = |name: &str, commit: &str| {
        json!({
            "apiVersion": "branchpipeline.dev/v1alpha1",
            "kind": "BranchPipelineRun",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"branchPipeline": "orders-api", "environment": "qa", "branch": "feature/login", "commit": commit},
        })
    };
    create(
        &api,
        &run("full", "4f2a9c1d0e5b6a7f8091a2b3c4d5e6f708192a3b"),
    )
    .await?;
    match create(&api, &run("short", "4f2a9c1")).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(status.message.contains("commit"), "{}", status.message);
        }
        other => panic!("expected a 422 rejection, got {other:?}"),
    }
    Ok(())
}
