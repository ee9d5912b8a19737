//! BranchPipelineClasses end to end: the real controller binary against the bed's
//! kube-apiserver and moto. A class's template edit rolls out to exactly its users (also when it
//! was made while no controller ran), guardrails and namespace restrictions refuse before any AWS
//! call, and a deleted class leaves AWS alone.
//!
//! Classes are cluster-scoped and the bed is shared by the tests of this binary, so each test
//! makes its own uniquely named class, and none is marked default (a default class would be
//! every other test's class too).

#[path = "../support/mod.rs"]
mod support;

#[path = "../reconciler/harness.rs"]
#[allow(dead_code)]
mod harness;

mod fixtures;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use branchpipeline::api::*;
use branchpipeline::aws::AwsApi;
use branchpipeline::render;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use fixtures::{
    BUILDSPEC_V1, classes, create_class, platform_class, restore_changes_nothing, tenant,
    writes_since,
};
use harness::Harness;
use support::fault_proxy::{self, Plan};
use support::unique_name;

/// Long enough for a reconcile that should not happen to have happened: several resyncs of
/// [`RESYNC`] and the class watch's latency.
const QUIET: Duration = Duration::from_secs(6);
/// Resync often, so a test also sees what the periodic reconciles do (nothing, here).
const RESYNC: &str = "2s";

const BUILDSPEC_V2: &str = "version: 0.2\nphases:\n  build:\n    commands: [npm ci, npm test]\n";

fn class_users_render(bp: &BranchPipeline, class: &BranchPipelineClass) -> render::DesiredState {
    render::compile_with(bp, Some(class), &BTreeMap::new())
        .unwrap_or_else(|r| panic!("renders: {:?}", r.into_errors()))
        .desired
}

/// The projects of `desired` built from the class's inline buildspec.
fn templated_projects(desired: &render::DesiredState) -> Vec<String> {
    desired
        .projects
        .iter()
        .filter(|p| p.source.buildspec.starts_with("version:"))
        .map(|p| p.name.clone())
        .collect()
}

async fn buildspecs(h: &Harness, names: &[String]) -> Result<Vec<String>> {
    Ok(h.aws
        .get_projects(names)
        .await?
        .into_iter()
        .map(|p| p.project.source.buildspec)
        .collect())
}

/// Reconciles of `name` that controller `i` has planned so far.
fn planned(h: &Harness, i: usize, name: &str) -> usize {
    let span = format!("name={name} ");
    h.controller_log_full(i)
        .lines()
        .filter(|l| l.contains("planned") && l.contains(&span))
        .count()
}

/// Without periodic resyncs (an hour apart), only the class watch can carry the edit: it
/// reaches the class's two users, and not a resource of another class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_shared_template_updates_each_users_project_once_and_nothing_else() -> Result<()>
{
    let mut h = Harness::new("class-rollout").await?;
    h.start_controller(&["--resync-interval", "1h"])?;
    let class_name = unique_name("rollout");
    let other_name = unique_name("other");
    let mut class = platform_class(&class_name, &h.example(), json!({}))?;
    create_class(&h, &class).await?;
    create_class(&h, &platform_class(&other_name, &h.example(), json!({}))?).await?;
    let users = [
        tenant(&h, "svc-a", &class_name)?,
        tenant(&h, "svc-b", &class_name)?,
    ];
    let bystander = tenant(&h, "bystander", &other_name)?;
    for bp in users.iter().chain([&bystander]) {
        h.apply(bp).await?;
    }
    let mut projects = Vec::new();
    for bp in users.iter().chain([&bystander]) {
        h.wait_ready(bp.metadata.name.as_deref().unwrap_or_default())
            .await?;
    }
    for bp in &users {
        projects.extend(templated_projects(&class_users_render(bp, &class)));
    }
    ensure!(
        projects.len() == 2,
        "one templated project per user: {projects:?}"
    );
    ensure!(buildspecs(&h, &projects).await? == [BUILDSPEC_V1, BUILDSPEC_V1]);
    tokio::time::sleep(QUIET).await;
    let before = h.mutating_calls().await?;
    let planned_before = ["svc-a", "svc-b", "bystander"].map(|n| planned(&h, 0, n));

    class.spec.templates[0].buildspec = Some(BUILDSPEC_V2.into());
    create_class(&h, &class).await?;
    h.eventually("both projects carry the new buildspec", || async {
        Ok(buildspecs(&h, &projects)
            .await?
            .iter()
            .all(|b| b == BUILDSPEC_V2))
    })
    .await?;
    tokio::time::sleep(QUIET).await;

    let after = h.mutating_calls().await?;
    let mut made: Vec<(String, String)> = after[before.len()..].to_vec();
    made.sort();
    let mut want: Vec<(String, String)> = projects
        .iter()
        .map(|p| ("UpdateProject".to_string(), p.clone()))
        .collect();
    want.sort();
    pretty_assertions::assert_eq!(made, want, "exactly one UpdateProject per affected project");
    let planned_after = ["svc-a", "svc-b", "bystander"].map(|n| planned(&h, 0, n));
    ensure!(
        planned_after[0] > planned_before[0] && planned_after[1] > planned_before[1],
        "the users were reconciled: {planned_before:?} -> {planned_after:?}"
    );
    ensure!(
        planned_after[2] == planned_before[2],
        "another class's resource was not: {planned_before:?} -> {planned_after:?}"
    );
    for bp in &users {
        h.wait_ready(bp.metadata.name.as_deref().unwrap_or_default())
            .await?;
    }
    for name in [&class_name, &other_name] {
        classes(&h).delete(name, &DeleteParams::default()).await?;
    }
    Ok(())
}

/// A class edited while no controller runs reaches its users as soon as one starts, not at their
/// resync slot (an hour away here), while a resource whose class did not change still waits for
/// its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_edited_while_no_controller_ran_reaches_its_users_at_start() -> Result<()> {
    let mut h = Harness::new("class-offline").await?;
    h.start_controller(&["--resync-interval", "1h"])?;
    let class_name = unique_name("offline");
    let other_name = unique_name("steady");
    let mut class = platform_class(&class_name, &h.example(), json!({}))?;
    create_class(&h, &class).await?;
    create_class(&h, &platform_class(&other_name, &h.example(), json!({}))?).await?;
    let user = tenant(&h, "svc", &class_name)?;
    let bystander = tenant(&h, "bystander", &other_name)?;
    for bp in [&user, &bystander] {
        h.apply(bp).await?;
    }
    for name in ["svc", "bystander"] {
        h.wait_ready(name).await?;
    }
    let projects = templated_projects(&class_users_render(&user, &class));
    ensure!(buildspecs(&h, &projects).await? == [BUILDSPEC_V1]);

    h.stop_controller(0);
    class.spec.templates[0].buildspec = Some(BUILDSPEC_V2.into());
    create_class(&h, &class).await?;
    let restarted = h.start_controller(&["--resync-interval", "1h"])?;
    h.eventually("the project carries the class's new buildspec", || async {
        Ok(buildspecs(&h, &projects).await? == [BUILDSPEC_V2])
    })
    .await?;
    tokio::time::sleep(QUIET).await;
    let counts = ["svc", "bystander"].map(|n| planned(&h, restarted, n));
    ensure!(
        counts[0] >= 1 && counts[1] == 0,
        "the class's user reconciled, the other class's resource not before its slot: {counts:?}"
    );
    for name in [&class_name, &other_name] {
        classes(&h).delete(name, &DeleteParams::default()).await?;
    }
    Ok(())
}

/// One way a tenant might reach past its class: the edit, and the field and rule the refusal
/// must name.
struct Violation {
    name: &'static str,
    edit: fn(&mut BranchPipeline),
    field: &'static str,
    rule: &'static str,
}

const VIOLATIONS: &[Violation] = &[
    Violation {
        name: "role",
        edit: |bp| {
            bp.spec.build_role_arn = Some("arn:aws:iam::123456789012:role/platform-admin".into())
        },
        field: "spec.buildRoleArn",
        rule: "guardrails.allowedRoleArns",
    },
    Violation {
        name: "connection",
        edit: |bp| {
            bp.spec.source.connection_arn = Some(
                "arn:aws:codeconnections:us-east-1:123456789012:connection/ffffffff-0000-4000-8000-000000000000".into(),
            )
        },
        field: "spec.source.connectionArn",
        rule: "guardrails.allowedConnectionArns",
    },
    Violation {
        name: "bucket",
        edit: |bp| bp.spec.artifact_bucket = Some("someone-elses-bucket".into()),
        field: "spec.artifactBucket",
        rule: "guardrails.allowedArtifactBuckets",
    },
    Violation {
        name: "compute",
        edit: |bp| bp.spec.stages[0].compute_type = Some(ComputeType::General1TwoXlarge),
        field: "spec.stages[0].computeType",
        rule: "guardrails.allowedComputeTypes",
    },
    Violation {
        name: "prod-approval",
        edit: |bp| {
            for env in &mut bp.spec.environments {
                if env.name == "prod" {
                    env.approval = None;
                }
            }
        },
        field: "spec.environments[4].approval",
        rule: "guardrails.requireApproval",
    },
];

/// The controller talks to AWS only through a proxy that counts every request it sends, so
/// "no AWS call" is measured at the wire, not inferred from moto's log of named resources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reaching_past_its_guardrails_is_refused_with_zero_aws_calls() -> Result<()> {
    let mut h = Harness::new("class-guardrails").await?;
    let proxy = fault_proxy::with_plan(h.bed.moto_url(), Plan::Pass).await;
    h.start_controller_with_env(
        &["--resync-interval", RESYNC],
        &[("AWS_ENDPOINT_URL", proxy.url.as_str())],
    )?;
    let class_name = unique_name("guarded");
    create_class(&h, &platform_class(&class_name, &h.example(), json!({}))?).await?;
    for v in VIOLATIONS {
        let mut bp = tenant(&h, v.name, &class_name)?;
        (v.edit)(&mut bp);
        h.apply(&bp).await?;
    }
    for v in VIOLATIONS {
        let message = h.wait_not_ready(v.name, "PolicyViolation").await?;
        ensure!(
            message.contains(v.field) && message.contains(v.rule),
            "{}: the message names {} and {}: {message}",
            v.name,
            v.field,
            v.rule
        );
    }
    tokio::time::sleep(QUIET).await;
    ensure!(
        proxy.requests() == 0,
        "{} AWS requests\n{}",
        proxy.requests(),
        h.logs()
    );
    ensure!(h.calls_naming_us().await? == 0);
    let events = h.events().await?;
    for v in VIOLATIONS {
        let n = events
            .iter()
            .filter(|(reason, note)| reason == "PolicyViolation" && note.contains(v.field))
            .count();
        ensure!(
            n == 1,
            "{}: {n} PolicyViolation events across resyncs: {events:?}",
            v.name
        );
    }
    for v in VIOLATIONS {
        h.delete(v.name).await?;
        h.wait_gone(v.name).await?;
    }
    // Deleting one reads the account's inventory (what a crash may have left untracked), as
    // for any resource, and has nothing to delete.
    ensure!(
        h.mutating_calls().await?.is_empty(),
        "deleting refused resources changed AWS"
    );

    // The same class and controller, and a tenant within the rules: the proxy does see calls.
    h.apply(&tenant(&h, "compliant", &class_name)?).await?;
    h.wait_ready("compliant").await?;
    ensure!(proxy.requests() > 0, "the proxy counts what reaches AWS");
    Ok(())
}

async fn label_namespace(h: &Harness, labels: serde_json::Value) -> Result<()> {
    let patch = json!({"metadata": {"labels": labels}});
    Api::<Namespace>::all(h.bed.client())
        .patch(&h.ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_kept_for_some_namespaces_is_refused_to_the_others() -> Result<()> {
    let team = unique_name("payments");
    let mut theirs = Harness::new("class-ns-allowed").await?;
    let mut others = Harness::new("class-ns-refused").await?;
    label_namespace(&theirs, json!({"acme.dev/team": team})).await?;
    label_namespace(&others, json!({"acme.dev/team": "orders"})).await?;
    let class_name = unique_name("payments-only");
    let restricted = json!({"allowedNamespaces": {"matchLabels": {"acme.dev/team": team}}});
    create_class(
        &theirs,
        &platform_class(&class_name, &theirs.example(), restricted)?,
    )
    .await?;
    theirs.start_controller(&["--resync-interval", RESYNC])?;
    others.start_controller(&["--resync-interval", RESYNC])?;

    // Everything else comes from the class and keeps to it: only the namespace rule refuses.
    others
        .apply(&tenant(&others, "orders-api", &class_name)?)
        .await?;
    theirs
        .apply(&tenant(&theirs, "payments-api", &class_name)?)
        .await?;

    let message = others
        .wait_not_ready("orders-api", "PolicyViolation")
        .await?;
    ensure!(
        message.contains("spec.className") && message.contains("guardrails.allowedNamespaces"),
        "{message}"
    );
    theirs.wait_ready("payments-api").await?;
    tokio::time::sleep(QUIET).await;
    ensure!(
        others.calls_naming_us().await? == 0,
        "the refused namespace reached AWS"
    );
    ensure!(theirs.count("CreatePipeline").await? == 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_class_in_use_changes_nothing_in_aws() -> Result<()> {
    let mut h = Harness::new("class-deleted").await?;
    h.start_controller(&["--resync-interval", RESYNC])?;
    let class_name = unique_name("doomed");
    let class = platform_class(&class_name, &h.example(), json!({}))?;
    create_class(&h, &class).await?;
    h.apply(&tenant(&h, "orders-api", &class_name)?).await?;
    h.wait_ready("orders-api").await?;
    let inventory = h.aws_inventory().await?;
    ensure!(inventory.0.len() == 2, "{inventory:?}");
    tokio::time::sleep(QUIET).await;
    let before = h.mutating_calls().await?;

    classes(&h)
        .delete(&class_name, &DeleteParams::default())
        .await?;
    let message = h.wait_not_ready("orders-api", "ClassNotFound").await?;
    ensure!(message.contains(&class_name), "{message}");
    // Several resyncs without the class: none may take what the status lists for stale.
    tokio::time::sleep(QUIET).await;
    pretty_assertions::assert_eq!(
        writes_since(&h, before.len()).await?,
        Vec::<(String, String)>::new()
    );
    pretty_assertions::assert_eq!(h.aws_inventory().await?, inventory);
    let bp = h.api.get("orders-api").await?;
    let status = bp.status.context("status")?;
    ensure!(
        status.pipelines.len() == 2,
        "the status still lists the pipelines"
    );

    // The class back as it was: Ready again, and still nothing to write.
    restore_changes_nothing(&h, &class, before.len()).await
}
