//! The classes the class tests make, and the tenants that use them.

use anyhow::{Context, Result};
use branchpipeline::api::*;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::harness::Harness;

pub const BUILDSPEC_V1: &str = "version: 0.2\nphases:\n  build:\n    commands: [npm test]\n";

pub fn classes(h: &Harness) -> Api<BranchPipelineClass> {
    Api::all(h.bed.client())
}

/// The platform class of a test: the example's connection, roles and bucket as defaults and
/// as the only values allowed, a `unit` template with an inline buildspec, and approvals
/// required for `prod*`. `extra` is merged into `spec.guardrails`.
pub fn platform_class(
    name: &str,
    bp: &BranchPipeline,
    extra: serde_json::Value,
) -> Result<BranchPipelineClass> {
    let s = &bp.spec;
    let mut guardrails = json!({
        "allowedRoleArns": [s.pipeline_role_arn, s.build_role_arn],
        "allowedConnectionArns": [s.source.connection_arn],
        "allowedArtifactBuckets": [s.artifact_bucket],
        "allowedComputeTypes": ["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"],
        "requireApproval": ["prod*"],
    });
    if let (Some(g), Some(extra)) = (guardrails.as_object_mut(), extra.as_object()) {
        g.extend(extra.clone());
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "branchpipeline.dev/v1alpha1",
        "kind": "BranchPipelineClass",
        "metadata": {"name": name},
        "spec": {
            "defaults": {
                "connectionArn": s.source.connection_arn,
                "pipelineRoleArn": s.pipeline_role_arn,
                "buildRoleArn": s.build_role_arn,
                "artifactBucket": s.artifact_bucket,
            },
            "templates": [{"name": "unit", "buildspec": BUILDSPEC_V1, "computeType": "BUILD_GENERAL1_MEDIUM"}],
            "guardrails": guardrails,
        },
    }))?)
}

pub async fn create_class(h: &Harness, class: &BranchPipelineClass) -> Result<()> {
    let name = class.metadata.name.clone().unwrap_or_default();
    classes(h)
        .patch(
            &name,
            &PatchParams::apply("integration-test").force(),
            &Patch::Apply(class),
        )
        .await
        .with_context(|| format!("applying class {name}"))?;
    Ok(())
}

/// A tenant's BranchPipeline: the example renamed, using `class`, its `test` stage taken from
/// the class's `unit` template, and only what the class does not give spelled out.
pub fn tenant(h: &Harness, name: &str, class: &str) -> Result<BranchPipeline> {
    let mut bp = h.example();
    bp.metadata.name = Some(name.into());
    bp.spec.class_name = Some(class.into());
    bp.spec.source.connection_arn = None;
    bp.spec.pipeline_role_arn = None;
    bp.spec.build_role_arn = None;
    bp.spec.artifact_bucket = None;
    bp.spec.stages = serde_json::from_value(json!([
        {"name": "lint"},
        {"name": "test", "template": "unit"},
    ]))?;
    Ok(bp)
}

/// AWS writes made since `before` (a length of `Harness::mutating_calls`).
pub async fn writes_since(h: &Harness, before: usize) -> Result<Vec<(String, String)>> {
    Ok(h.mutating_calls().await?.split_off(before))
}

/// Puts `class` back as it was: its user `orders-api` is Ready again with no AWS write since
/// `before`; then deletes the class, leaving the bed as the test found it.
pub async fn restore_changes_nothing(
    h: &Harness,
    class: &BranchPipelineClass,
    before: usize,
) -> Result<()> {
    create_class(h, class).await?;
    h.wait_ready("orders-api").await?;
    pretty_assertions::assert_eq!(
        writes_since(h, before).await?,
        Vec::<(String, String)>::new()
    );
    let name = class.metadata.name.clone().unwrap_or_default();
    classes(h).delete(&name, &Default::default()).await?;
    Ok(())
}
