//! The reconciler against the real test bed: the controller binary runs against a real
//! kube-apiserver and moto; every assertion reads back from those servers.

#[path = "../support/mod.rs"]
mod support;

mod harness;
mod operations;

use anyhow::Result;
use branchpipeline::api::{EnvironmentSpec, annotations};
use branchpipeline::aws::AwsApi;
use branchpipeline::render::model::Tag;
use harness::{Harness, condition, is_ready};
use support::fault_proxy;

const NAME: &str = "orders-api";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_renders_two_pipelines_and_four_shared_projects() -> Result<()> {
    let mut h = Harness::new("create").await?;
    h.start_controller(&[])?;
    let bp = h.example();
    h.apply(&bp).await?;
    let ready = h.wait_ready(NAME).await?;
    let desired = h.render(&bp);

    let (pipelines, projects) = h.aws_inventory().await?;
    assert_eq!(
        pipelines,
        [
            format!("{}-orders-api", h.ns),
            format!("{}-orders-api-production", h.ns)
        ]
    );
    assert_eq!(projects.len(), 4, "the pipelines share their projects");
    for want in &desired.pipelines {
        let seen = h
            .aws
            .get_pipeline(&want.pipeline.name)
            .await?
            .expect("pipeline exists");
        let mut declaration = seen.declaration.clone();
        declaration.version = None;
        assert_eq!(declaration, want.pipeline);
        assert_eq!(seen.tags.as_ref(), Some(&want.tags));
    }
    let seen = h.aws.get_projects(&projects).await?;
    for want in &desired.projects {
        let got = seen
            .iter()
            .find(|p| p.project.name == want.name)
            .expect("project exists");
        assert_eq!(&got.project, want);
    }

    let status = ready.status.unwrap();
    assert_eq!(status.observed_generation, ready.metadata.generation);
    assert_eq!(status.pipeline_count, Some(2));
    assert_eq!(status.projects.len(), 4);
    assert_eq!(
        status.pipelines[0].environments,
        ["dev", "qa", "stage", "perf"]
    );
    assert!(
        status
            .pipelines
            .iter()
            .all(|p| p.arn.is_some() && p.version == Some(1))
    );
    assert_eq!(
        condition_of(&ready_again(&h).await?, "Synced"),
        ("True".into(), "Synced".into())
    );
    let events = h.events().await?;
    let created: Vec<&String> = events
        .iter()
        .filter(|(r, _)| r == "Created")
        .map(|(_, note)| note)
        .collect();
    assert_eq!(
        created.len(),
        1,
        "one Event for the whole creation: {events:?}"
    );
    for name in status
        .pipelines
        .iter()
        .map(|p| &p.name)
        .chain(&status.projects)
    {
        assert!(created[0].contains(name.as_str()), "{name} in {created:?}");
    }
    Ok(())
}

async fn ready_again(h: &Harness) -> Result<branchpipeline::api::BranchPipeline> {
    h.wait_ready(NAME).await
}

fn condition_of(bp: &branchpipeline::api::BranchPipeline, t: &str) -> (String, String) {
    condition(bp, t).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_one_stage_sends_exactly_one_update_project() -> Result<()> {
    let mut h = Harness::new("edit").await?;
    h.start_controller(&[])?;
    let mut bp = h.example();
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;
    let before = h.mutating_calls().await?.len();

    bp.spec.stages[1].compute_type = Some(branchpipeline::api::ComputeType::General1Xlarge);
    let applied = h.apply(&bp).await?;
    h.wait_for(NAME, "the new generation to be synced", |b| {
        is_ready(b) && b.metadata.generation == applied.metadata.generation
    })
    .await?;

    // Both pipelines run the one shared `test` project, so the stage edit is exactly one
    // UpdateProject, and nothing else.
    let new = h.mutating_calls().await?[before..].to_vec();
    assert_eq!(
        new,
        [(
            "UpdateProject".to_string(),
            format!("{}-orders-api-test", h.ns)
        )]
    );
    assert_eq!(h.count("UpdatePipeline").await?, 0);
    let project = h
        .aws
        .get_projects(&[format!("{}-orders-api-test", h.ns)])
        .await?;
    assert_eq!(
        project[0].project.environment.compute_type,
        "BUILD_GENERAL1_XLARGE"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_and_shrinking_touch_only_the_affected_pipeline() -> Result<()> {
    let mut h = Harness::new("grow").await?;
    h.start_controller(&[])?;
    let mut bp = h.example();
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;

    // Grow: a new environment in the default group.
    let mut hotfix: EnvironmentSpec = bp.spec.environments[0].clone();
    hotfix.name = "hotfix".into();
    hotfix.branches = Some(vec!["hotfix/*".into()]);
    bp.spec.environments.insert(3, hotfix);
    let applied = h.apply(&bp).await?;
    h.wait_for(NAME, "growth synced", |b| {
        is_ready(b) && b.metadata.generation == applied.metadata.generation
    })
    .await?;
    let main = format!("{}-orders-api", h.ns);
    let calls = h.mutating_calls().await?;
    let updates: Vec<_> = calls
        .iter()
        .filter(|(a, _)| a == "UpdatePipeline")
        .collect();
    assert_eq!(updates, [&("UpdatePipeline".to_string(), main.clone())]);
    assert_eq!(h.count("UpdateProject").await?, 0);
    let seen = h.aws.get_pipeline(&main).await?.unwrap();
    assert!(
        seen.declaration
            .stages
            .iter()
            .any(|s| s.name == "deploy-hotfix")
    );

    // Shrink: drop the production group.
    bp.spec.environments.retain(|e| e.pipeline.is_none());
    let applied = h.apply(&bp).await?;
    h.wait_for(NAME, "shrink synced", |b| {
        is_ready(b) && b.metadata.generation == applied.metadata.generation
    })
    .await?;
    let (pipelines, projects) = h.aws_inventory().await?;
    assert_eq!(pipelines, std::slice::from_ref(&main));
    assert_eq!(projects.len(), 4);
    assert!(projects.iter().all(|p| !p.contains("production")));
    assert_eq!(h.count("DeletePipeline").await?, 1);
    // The projects are shared: the remaining pipeline still runs all of them.
    assert_eq!(h.count("DeleteProject").await?, 0);
    assert_eq!(
        h.count("UpdatePipeline").await?,
        1,
        "the main pipeline was not touched again"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_on_resync_with_an_event() -> Result<()> {
    let mut h = Harness::new("drift").await?;
    h.start_controller(&["--resync-interval", "2s"])?;
    let bp = h.example();
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;
    let desired = h.render(&bp);
    let want = desired.pipelines[0].pipeline.clone();

    // Someone deletes the perf stage in the console.
    let mut edited = want.clone();
    edited.stages.pop();
    h.aws.update_pipeline(&edited).await?;
    let name = want.name.clone();
    h.eventually("the pipeline to be put back", || {
        let (aws, want) = (&h.aws, &want);
        let name = name.clone();
        async move {
            let seen = aws.get_pipeline(&name).await?.unwrap();
            let mut d = seen.declaration;
            d.version = None;
            Ok(&d == want)
        }
    })
    .await?;
    h.eventually("a DriftRepaired event", || async {
        Ok(h.events()
            .await?
            .iter()
            .any(|(reason, note)| reason == "DriftRepaired" && note.contains(&name)))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_restart_and_resync_make_no_writes() -> Result<()> {
    let mut h = Harness::new("idle").await?;
    let first = h.start_controller(&[])?;
    let bp = h.example();
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;
    h.stop_controller(first);
    let before = h.mutating_calls().await?;

    let port = support::process::free_port()?;
    let metrics = format!("127.0.0.1:{port}");
    let second = h.start_controller(&["--resync-interval", "1s", "--metrics-addr", &metrics])?;
    // A restart reconciles everything once; then resyncs run. By the fourth plan, the
    // restart's reconcile and two resyncs have finished.
    h.wait_reconciles(second, 4).await?;
    let after = h.mutating_calls().await?;
    assert_eq!(
        after,
        before,
        "no mutating AWS call after restart\n{}",
        h.logs()
    );

    // What a steady pass reads: each pipeline, one project batch, one pipeline's tags in
    // turn, and no listing of the account. Counted by the controller's own metrics, since
    // other tests share moto.
    let base = format!("http://{metrics}");
    let start = aws_calls(&base).await?;
    let version = h.api.get(NAME).await?.metadata.resource_version;
    h.wait_reconciles(second, 10).await?;
    let end = aws_calls(&base).await?;
    assert_eq!(
        h.api.get(NAME).await?.metadata.resource_version,
        version,
        "a steady pass writes no status"
    );
    let count = |op: &str| end.get(op).copied().unwrap_or(0) - start.get(op).copied().unwrap_or(0);
    let passes = count("BatchGetProjects");
    assert!(passes >= 4, "{start:?} {end:?}");
    assert_eq!(count("ListPipelines") + count("ListProjects"), 0, "{end:?}");
    assert!(count("GetPipeline") <= 2 * passes + 2, "{end:?}");
    assert!(count("ListTagsForResource") <= passes + 1, "{end:?}");
    let reads: u64 = end.values().sum::<u64>() - start.values().sum::<u64>();
    println!("steady state: {passes} passes, {reads} AWS reads, 0 AWS writes, 0 status writes");
    Ok(())
}

/// AWS requests by operation, from a controller's /metrics.
async fn aws_calls(base: &str) -> Result<std::collections::BTreeMap<String, u64>> {
    let text = support::http::request(base, "GET", "/metrics", &[], b"")
        .await?
        .text();
    let mut calls = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("branchpipeline_aws_requests_total{operation=\"") else {
            continue;
        };
        let (operation, rest) = rest.split_once('"').unwrap_or_default();
        let value: u64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        *calls.entry(operation.to_string()).or_insert(0) += value;
    }
    Ok(calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_policy_removes_everything() -> Result<()> {
    let mut h = Harness::new("delete").await?;
    h.start_controller(&[])?;
    h.apply(&h.example()).await?;
    h.wait_ready(NAME).await?;
    // A resource already gone must not block deletion.
    h.aws
        .delete_project(&format!("{}-orders-api-lint", h.ns))
        .await?;
    h.delete(NAME).await?;
    h.wait_gone(NAME).await?;
    assert_eq!(h.aws_inventory().await?, (vec![], vec![]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_policy_keeps_everything_and_releases_the_finalizer() -> Result<()> {
    let mut h = Harness::new("retain").await?;
    h.start_controller(&[])?;
    h.apply(&h.example()).await?;
    h.wait_ready(NAME).await?;
    h.annotate(NAME, annotations::DELETION_POLICY, "Retain")
        .await?;
    h.delete(NAME).await?;
    h.wait_gone(NAME).await?;
    let (pipelines, projects) = h.aws_inventory().await?;
    assert_eq!((pipelines.len(), projects.len()), (2, 4));
    assert_eq!(
        h.count("DeletePipeline").await? + h.count("DeleteProject").await?,
        0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_and_untagged_pipelines_are_left_alone_unless_adopted() -> Result<()> {
    let mut h = Harness::new("owned").await?;
    let bp = h.example();
    let desired = h.render(&bp);
    // Another resource's production pipeline, and an untagged hand-made main pipeline.
    let prod = &desired.pipelines[1];
    let other: Vec<Tag> = branchpipeline::render::owner_tags(&h.ns, "someone-else")
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect();
    let mut prod_decl = prod.pipeline.clone();
    prod_decl.stages.pop();
    h.aws.create_pipeline(&prod_decl, &other).await?;
    let main = &desired.pipelines[0];
    let mut main_decl = main.pipeline.clone();
    main_decl.stages.pop();
    h.aws.create_pipeline(&main_decl, &[]).await?;
    let before = h.mutating_calls().await?.len();

    h.start_controller(&[])?;
    h.apply(&bp).await?;
    let message = h.wait_not_ready(NAME, "NotOwned").await?;
    assert!(
        message.contains("someone-else") && message.contains("adopt"),
        "{message}"
    );
    assert_eq!(h.count("UpdatePipeline").await?, 0);
    assert_eq!(h.count("TagResource").await?, 0);
    assert_eq!(
        h.count("CreatePipeline").await?,
        2,
        "only the test's own two creates"
    );
    let events = h.events().await?;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "NotOwned" && n.contains(&prod.pipeline.name)),
        "{events:?}\n{}",
        h.controller_log_full(0)
            .lines()
            .filter(|l| l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Adopting takes the untagged one over; the foreign one stays untouched.
    h.annotate(NAME, annotations::ADOPT, "true").await?;
    h.eventually("the untagged pipeline to be adopted", || async {
        let seen = h.aws.get_pipeline(&main.pipeline.name).await?.unwrap();
        Ok(seen.tags.as_ref() == Some(&main.tags)
            && seen.declaration.stages.len() == main.pipeline.stages.len())
    })
    .await?;
    let foreign = h.aws.get_pipeline(&prod.pipeline.name).await?.unwrap();
    assert_eq!(foreign.tags, Some(other));
    assert_eq!(foreign.declaration.stages.len(), prod_decl.stages.len());
    let controller_calls = h.mutating_calls().await?[before..].to_vec();
    assert!(
        controller_calls
            .iter()
            .all(|(_, r)| !r.ends_with("-production")),
        "{controller_calls:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_reports_and_calls_no_aws() -> Result<()> {
    let mut h = Harness::new("invalid").await?;
    h.start_controller(&[])?;
    let mut bp = h.example();
    // Passes the schema, fails validation: promotion from an unknown environment.
    bp.spec.environments[3].promote_from = Some("staging".into());
    h.apply(&bp).await?;
    let message = h.wait_not_ready(NAME, "InvalidSpec").await?;
    assert!(
        message.contains("spec.environments[3].promoteFrom"),
        "{message}"
    );
    assert_eq!(h.calls_naming_us().await?, 0);
    assert!(h.events().await?.iter().any(|(r, _)| r == "InvalidSpec"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_5xx_still_converge_without_duplicates() -> Result<()> {
    let mut h = Harness::new("throttle").await?;
    let proxy = fault_proxy::start(h.bed.moto_url(), 3, 12).await;
    let kubeconfig_env = ("AWS_ENDPOINT_URL", proxy.url.as_str());
    h.start_controller_with_env(&[], &[kubeconfig_env])?;
    h.apply(&h.example()).await?;
    h.wait_ready(NAME).await?;
    assert!(
        proxy.faults.load(std::sync::atomic::Ordering::SeqCst) >= 6,
        "faults were injected"
    );
    let (pipelines, projects) = h.aws_inventory().await?;
    assert_eq!((pipelines.len(), projects.len()), (2, 4));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_controller_gracefully_and_leaves_no_process() -> Result<()> {
    let mut h = Harness::new("procs").await?;
    let i = h.start_controller(&[])?;
    h.apply(&h.example()).await?;
    h.wait_ready(NAME).await?;
    let pids = h.controller_pids();
    assert_eq!(pids.len(), 1);
    // SIGTERM first; the harness only escalates to SIGKILL after a grace period.
    h.stop_controller(i);
    let log = h.controller_log_full(i);
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(
        log.contains("controller stopped"),
        "not a graceful stop:\n{log}"
    );
    for pid in pids {
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
        assert!(!alive, "controller {pid} survived");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_is_terminal_and_named_in_the_status() -> Result<()> {
    let mut h = Harness::new("denied").await?;
    let proxy = fault_proxy::deny(h.bed.moto_url(), "CreatePipeline").await;
    h.start_controller_with_env(&[], &[("AWS_ENDPOINT_URL", proxy.url.as_str())])?;
    h.apply(&h.example()).await?;
    let message = h.wait_not_ready(NAME, "AWSTerminalError").await?;
    assert!(
        message.contains("CreatePipeline") && message.contains("AccessDeniedException"),
        "{message}"
    );
    // Terminal: no fast retries, just the one refused attempt until the next resync (10
    // minutes away). The sleep is the point: a window in which a retry would show up.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        proxy.faults.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "{}",
        h.logs()
    );
    assert!(
        h.events()
            .await?
            .iter()
            .any(|(r, n)| r == "AWSTerminalError" && n.contains("CreatePipeline"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_drift_is_repaired_on_resync() -> Result<()> {
    use aws_sdk_codebuild::types::{
        ComputeType, EnvironmentType, EnvironmentVariable, ProjectEnvironment,
    };
    let mut h = Harness::new("pdrift").await?;
    h.start_controller(&["--resync-interval", "2s"])?;
    let bp = h.example();
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;
    let name = format!("{}-orders-api-build", h.ns);

    // Someone adds an environment variable in the console, leaving every managed field as is:
    // only the unmanaged-settings check can see this.
    let environment = ProjectEnvironment::builder()
        .r#type(EnvironmentType::LinuxContainer)
        .image("aws/codebuild/amazonlinux-x86_64-standard:5.0")
        .compute_type(ComputeType::BuildGeneral1Large)
        .privileged_mode(true)
        .image_pull_credentials_type(aws_sdk_codebuild::types::ImagePullCredentialsType::Codebuild)
        .environment_variables(
            EnvironmentVariable::builder()
                .name("DEBUG")
                .value("1")
                .build()?,
        )
        .build()?;
    h.bed
        .codebuild()
        .await
        .update_project()
        .name(&name)
        .environment(environment)
        .send()
        .await?;

    h.eventually("the project to be put back", || async {
        let raw = h
            .bed
            .codebuild()
            .await
            .batch_get_projects()
            .names(&name)
            .send()
            .await?;
        let env = raw.projects()[0].environment().cloned().unwrap();
        Ok(env.compute_type().as_str() == "BUILD_GENERAL1_LARGE"
            && env.environment_variables().is_empty())
    })
    .await?;
    h.eventually("a DriftRepaired event", || async {
        Ok(h.events()
            .await?
            .iter()
            .any(|(reason, note)| reason == "DriftRepaired" && note.contains(&name)))
    })
    .await?;
    Ok(())
}

/// Projects used to be one set per pipeline; now they are shared. An upgrade creates nothing
/// new for the default group (its projects keep their names), points the other pipelines at
/// the shared projects, and only then deletes the old ones: no pipeline ever names a project
/// that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_pipeline_projects_migrate_to_shared_ones_without_breaking_a_pipeline() -> Result<()> {
    let mut h = Harness::new("migrate").await?;
    let first = h.start_controller(&[])?;
    let bp = h.example();
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;
    h.stop_controller(first);

    // The layout an earlier version made: the production pipeline runs projects of its own.
    let desired = h.render(&bp);
    let production = desired.pipelines[1].pipeline.name.clone();
    let shared = format!("{}-orders-api-", h.ns);
    let old = format!("{production}-");
    let mut old_names = Vec::new();
    for project in &desired.projects {
        let mut copy = project.clone();
        copy.name = project.name.replacen(&shared, &old, 1);
        h.aws.create_project(&copy).await?;
        old_names.push(copy.name);
    }
    let mut declaration = h
        .aws
        .get_pipeline(&production)
        .await?
        .expect("production pipeline")
        .declaration;
    for action in declaration.stages.iter_mut().flat_map(|s| &mut s.actions) {
        if let Some(project) = action.configuration.get_mut("ProjectName") {
            *project = project.replacen(&shared, &old, 1);
        }
    }
    h.aws.update_pipeline(&declaration).await?;
    let mut projects = h.api.get(NAME).await?.status.unwrap_or_default().projects;
    projects.extend(old_names.iter().cloned());
    let patch = serde_json::json!({"status": {"projects": projects}});
    h.api
        .patch_status(
            NAME,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    let start = h.bed.aws_requests().await?.len();

    // The resource was settled: the new controller brings it in line at its resync slot,
    // within one interval.
    h.start_controller(&["--resync-interval", "2s"])?;
    h.eventually("the old projects to be deleted", || async {
        let (_, projects) = h.aws_inventory().await?;
        Ok(old_names.iter().all(|o| !projects.contains(o)))
    })
    .await?;
    h.wait_ready(NAME).await?;
    // moto's log is shared with the tests running alongside: only this namespace's resources.
    let log: Vec<(String, String)> = h.bed.aws_requests().await?[start..]
        .iter()
        .filter_map(|r| Some((r.action.clone()?, r.resource.clone()?)))
        .filter(|(_, resource)| resource.contains(&h.ns))
        .collect();
    let at =
        |action: &str, resource: &str| log.iter().position(|(a, r)| a == action && r == resource);
    let updated = at("UpdatePipeline", &production).expect("the production pipeline was updated");
    for name in &old_names {
        let deleted = at("DeleteProject", name).expect("old project deleted");
        assert!(
            updated < deleted,
            "{name} deleted before the pipeline moved off it: {log:?}"
        );
    }
    assert!(
        log.iter()
            .all(|(a, _)| a != "CreateProject" && a != "DeletePipeline"),
        "{log:?}"
    );
    let seen = h.aws.get_pipeline(&production).await?.expect("exists");
    let names: Vec<&String> = seen
        .declaration
        .stages
        .iter()
        .flat_map(|s| &s.actions)
        .filter_map(|a| a.configuration.get("ProjectName"))
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with(&shared) && !n.starts_with(&old)),
        "{names:?}"
    );
    Ok(())
}
