//! The test bed itself: apiserver, CRD installation, moto + tests/moto_ext through the
//! real AWS SDK, and process cleanup. Needs `scripts/testbed-install.sh` to have run.

mod support;

use std::collections::BTreeMap;

use aws_sdk_codebuild::types::{
    ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
    ProjectSource, SourceType,
};
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType,
    BeforeEntryConditions, Condition, ExecutionMode, GitBranchFilterCriteria, GitConfiguration,
    GitPushFilter, InputArtifact, OutputArtifact, PipelineDeclaration, PipelineTriggerDeclaration,
    PipelineTriggerProviderType, PipelineType, PipelineVariableDeclaration, RuleCategory,
    RuleDeclaration, RuleOwner, RuleTypeId, StageDeclaration, Tag,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams};
use support::{AWS_ACCOUNT_ID, TestBed, unique_name};

type TestResult = anyhow::Result<()>;

fn codebuild_role() -> String {
    // moto's CodeBuild only checks that the role is in its account.
    format!("arn:aws:iam::{AWS_ACCOUNT_ID}:role/codebuild-service")
}

#[tokio::test]
async fn apiserver_serves_namespaces_and_configmaps() -> TestResult {
    let bed = TestBed::shared().await;
    let namespace = bed.unique_namespace("smoke").await?;
    let client = bed.client();

    let namespaces: Vec<String> = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(namespaces.contains(&namespace), "{namespaces:?}");
    assert!(namespaces.iter().any(|n| n == "default"), "{namespaces:?}");

    let configmaps = Api::<ConfigMap>::namespaced(client, &namespace);
    let desired = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "smoke"},
        "data": {"branch": "main"},
    });
    configmaps
        .patch(
            "smoke",
            &PatchParams::apply("testbed-smoke").force(),
            &Patch::Apply(&desired),
        )
        .await?;
    let stored = configmaps.get("smoke").await?;
    assert_eq!(
        stored.data,
        Some(BTreeMap::from([("branch".to_owned(), "main".to_owned())]))
    );
    Ok(())
}

#[tokio::test]
async fn crds_from_the_repo_are_established() -> TestResult {
    let bed = TestBed::shared().await;
    let installed = bed.install_crds().await?;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let expected = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.path()
                        .extension()
                        .is_some_and(|x| x == "yaml" || x == "yml")
                })
                .map(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .matches("kind: CustomResourceDefinition")
                        .count()
                })
                .sum::<usize>()
        })
        .unwrap_or(0);
    assert_eq!(installed.len(), expected, "installed {installed:?}");
    // A second call is answered from the first one.
    assert_eq!(bed.install_crds().await?, installed);
    Ok(())
}

#[tokio::test]
async fn kubeconfig_file_reaches_the_apiserver() -> TestResult {
    let bed = TestBed::shared().await;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig");
    bed.write_kubeconfig(&path)?;

    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = kube::Client::try_from(config)?;
    let version = client.apiserver_version().await?;
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "20")
    );
    let env = bed.controller_env(&path);
    assert!(
        env.iter()
            .any(|(k, v)| k == "AWS_ENDPOINT_URL" && v == bed.moto_url())
    );
    Ok(())
}

#[tokio::test]
async fn codebuild_update_project_replaces_only_given_fields() -> TestResult {
    let bed = TestBed::shared().await;
    let codebuild = bed.codebuild().await;
    let name = unique_name("smoke-build");

    // Source and artifacts of type CODEPIPELINE carry no location.
    let created = codebuild
        .create_project()
        .name(&name)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::Codepipeline)
                .buildspec("version: 0.2")
                .build()?,
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::Codepipeline)
                .build()?,
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .build()?,
        )
        .service_role(codebuild_role())
        .concurrent_build_limit(2)
        .send()
        .await?
        .project
        .expect("project in CreateProject response");
    let created_at = created.last_modified.expect("lastModified");

    let updated = codebuild
        .update_project()
        .name(&name)
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Xlarge)
                .build()?,
        )
        .send()
        .await?
        .project
        .expect("project in UpdateProject response");
    assert!(updated.last_modified.expect("lastModified") >= created_at);

    let found = codebuild
        .batch_get_projects()
        .names(&name)
        .names("no-such-project")
        .send()
        .await?;
    let project = &found.projects()[0];
    let environment = project.environment().expect("environment");
    assert_eq!(
        environment.compute_type(),
        &ComputeType::BuildGeneral1Xlarge
    );
    // Members absent from UpdateProject keep their values.
    assert_eq!(
        project.source().and_then(|s| s.buildspec()),
        Some("version: 0.2")
    );
    assert_eq!(project.concurrent_build_limit(), Some(2));
    assert_eq!(found.projects_not_found(), ["no-such-project"]);
    assert!(
        codebuild
            .list_projects()
            .send()
            .await?
            .projects()
            .contains(&name)
    );

    assert_eq!(bed.aws_call_count("UpdateProject", Some(&name)).await?, 1);
    assert_eq!(bed.aws_call_count("CreateProject", Some(&name)).await?, 1);

    codebuild.delete_project().name(&name).send().await?;
    let after = codebuild.batch_get_projects().names(&name).send().await?;
    assert!(after.projects().is_empty());
    Ok(())
}

#[tokio::test]
async fn codebuild_accepts_lambda_compute() -> TestResult {
    let bed = TestBed::shared().await;
    let codebuild = bed.codebuild().await;
    let name = unique_name("smoke-lambda");
    let lambda_env = |compute| {
        ProjectEnvironment::builder()
            .r#type(EnvironmentType::LinuxLambdaContainer)
            .image("aws/codebuild/amazonlinux-x86_64-lambda-standard:nodejs20")
            .compute_type(compute)
            .build()
    };
    codebuild
        .create_project()
        .name(&name)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::Codepipeline)
                .build()?,
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::Codepipeline)
                .build()?,
        )
        .environment(lambda_env(ComputeType::BuildLambda4Gb)?)
        .service_role(codebuild_role())
        .send()
        .await?;
    for compute in [ComputeType::BuildLambda1Gb, ComputeType::BuildLambda10Gb] {
        codebuild
            .update_project()
            .name(&name)
            .environment(lambda_env(compute.clone())?)
            .send()
            .await?;
        let found = codebuild.batch_get_projects().names(&name).send().await?;
        assert_eq!(
            found.projects()[0].environment().map(|e| e.compute_type()),
            Some(&compute)
        );
    }
    // Lambda compute only runs in a Lambda environment type, as in AWS.
    let mismatch = codebuild
        .update_project()
        .name(&name)
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildLambda2Gb)
                .build()?,
        )
        .send()
        .await;
    assert!(mismatch.is_err());
    Ok(())
}

fn v2_declaration(
    name: &str,
    role_arn: &str,
    project: &str,
    version: Option<i32>,
) -> anyhow::Result<PipelineDeclaration> {
    let source = ActionDeclaration::builder()
        .name("Source")
        .action_type_id(
            ActionTypeId::builder()
                .category(ActionCategory::Source)
                .owner(ActionOwner::Aws)
                .provider("CodeStarSourceConnection")
                .version("1")
                .build()?,
        )
        .configuration(
            "ConnectionArn",
            format!("arn:aws:codeconnections:us-east-1:{AWS_ACCOUNT_ID}:connection/smoke"),
        )
        .configuration("FullRepositoryId", "acme/orders-api")
        .configuration("BranchName", "main")
        .output_artifacts(OutputArtifact::builder().name("src").build()?)
        // AWS (and moto) store the defaults of omitted members; spelled out so the
        // round trip compares equal.
        .set_input_artifacts(Some(vec![]))
        .run_order(1)
        .build()?;
    let build = ActionDeclaration::builder()
        .name("Build")
        .action_type_id(
            ActionTypeId::builder()
                .category(ActionCategory::Build)
                .owner(ActionOwner::Aws)
                .provider("CodeBuild")
                .version("1")
                .build()?,
        )
        .configuration("ProjectName", project)
        .input_artifacts(InputArtifact::builder().name("src").build()?)
        .set_output_artifacts(Some(vec![]))
        .run_order(1)
        .build()?;
    let gate = Condition::builder()
        .result(aws_sdk_codepipeline::types::Result::Fail)
        .rules(
            RuleDeclaration::builder()
                .name("OnlyDev")
                .rule_type_id(
                    RuleTypeId::builder()
                        .category(RuleCategory::Rule)
                        .owner(RuleOwner::Aws)
                        .provider("VariableCheck")
                        .version("1")
                        .build()?,
                )
                .configuration("Variable", "#{variables.DEPLOY_ENV}")
                .configuration("Value", "dev")
                .configuration("Operator", "EQ")
                .build()?,
        )
        .build();
    Ok(PipelineDeclaration::builder()
        .name(name)
        .role_arn(role_arn)
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location("smoke-artifacts")
                .build()?,
        )
        .stages(
            StageDeclaration::builder()
                .name("Source")
                .actions(source)
                .build()?,
        )
        .stages(
            StageDeclaration::builder()
                .name("Build")
                .actions(build)
                .before_entry(BeforeEntryConditions::builder().conditions(gate).build()?)
                .build()?,
        )
        .set_version(version)
        .pipeline_type(PipelineType::V2)
        .execution_mode(ExecutionMode::Queued)
        .variables(
            PipelineVariableDeclaration::builder()
                .name("DEPLOY_ENV")
                .default_value("dev")
                .description("target environment")
                .build()?,
        )
        .triggers(
            PipelineTriggerDeclaration::builder()
                .provider_type(PipelineTriggerProviderType::CodeStarSourceConnection)
                .git_configuration(
                    GitConfiguration::builder()
                        .source_action_name("Source")
                        .push(
                            GitPushFilter::builder()
                                .branches(
                                    GitBranchFilterCriteria::builder()
                                        .includes("main")
                                        .includes("release/*")
                                        .build(),
                                )
                                .build(),
                        )
                        .build()?,
                )
                .build()?,
        )
        .build()?)
}

#[tokio::test]
async fn codepipeline_v2_declaration_round_trips() -> TestResult {
    let bed = TestBed::shared().await;
    let codepipeline = bed.codepipeline().await;
    let name = unique_name("smoke-pipeline");
    let role = bed
        .create_codepipeline_role(&unique_name("smoke-pipeline-role"))
        .await?;
    assert!(
        role.starts_with(&format!("arn:aws:iam::{AWS_ACCOUNT_ID}:role/")),
        "{role}"
    );

    let declaration = v2_declaration(&name, &role, "smoke-project", None)?;
    codepipeline
        .create_pipeline()
        .pipeline(declaration)
        .tags(Tag::builder().key("owner").value("smoke").build()?)
        .send()
        .await?;

    let got = codepipeline.get_pipeline().name(&name).send().await?;
    assert_eq!(
        got.pipeline,
        Some(v2_declaration(&name, &role, "smoke-project", Some(1))?)
    );
    let metadata = got.metadata.expect("metadata");
    assert!(metadata.created.is_some() && metadata.updated.is_some());
    let arn = metadata.pipeline_arn.expect("pipelineArn");

    codepipeline
        .update_pipeline()
        .pipeline(v2_declaration(&name, &role, "smoke-project-2", Some(1))?)
        .send()
        .await?;
    let got = codepipeline.get_pipeline().name(&name).send().await?;
    assert_eq!(
        got.pipeline,
        Some(v2_declaration(&name, &role, "smoke-project-2", Some(2))?)
    );

    let state = codepipeline.get_pipeline_state().name(&name).send().await?;
    assert_eq!(state.pipeline_version, Some(2));
    let stages: Vec<_> = state
        .stage_states()
        .iter()
        .filter_map(|s| s.stage_name())
        .collect();
    assert_eq!(stages, ["Source", "Build"]);

    let summaries = codepipeline.list_pipelines().send().await?;
    let summary = summaries
        .pipelines()
        .iter()
        .find(|p| p.name() == Some(name.as_str()))
        .expect("listed");
    assert_eq!(summary.pipeline_type(), Some(&PipelineType::V2));

    let tags = codepipeline
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await?;
    assert_eq!(
        tags.tags().iter().map(|t| t.key()).collect::<Vec<_>>(),
        ["owner"]
    );

    assert_eq!(bed.aws_call_count("UpdatePipeline", Some(&name)).await?, 1);
    codepipeline.delete_pipeline().name(&name).send().await?;
    assert!(
        codepipeline
            .get_pipeline()
            .name(&name)
            .send()
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn codepipeline_executions_can_be_stopped() -> TestResult {
    let bed = TestBed::shared().await;
    let codepipeline = bed.codepipeline().await;
    let name = unique_name("smoke-exec");
    let role = bed
        .create_codepipeline_role(&unique_name("smoke-exec-role"))
        .await?;
    codepipeline
        .create_pipeline()
        .pipeline(v2_declaration(&name, &role, "smoke-project", None)?)
        .send()
        .await?;

    let id = codepipeline
        .start_pipeline_execution()
        .name(&name)
        .send()
        .await?
        .pipeline_execution_id
        .expect("execution id");
    let listed = codepipeline
        .list_pipeline_executions()
        .pipeline_name(&name)
        .send()
        .await?;
    assert_eq!(
        listed.pipeline_execution_summaries()[0].pipeline_execution_id(),
        Some(id.as_str())
    );
    assert!(
        listed.pipeline_execution_summaries()[0]
            .start_time()
            .is_some()
    );

    // The bed's execution engine runs the build for a moment: an execution in progress
    // stops at once with `abandon`, and a finished one cannot be stopped, as in AWS.
    let stop = || {
        codepipeline
            .stop_pipeline_execution()
            .pipeline_name(&name)
            .pipeline_execution_id(&id)
            .abandon(true)
    };
    stop().send().await?;
    let again = stop()
        .send()
        .await
        .expect_err("a stopped execution cannot be stopped");
    assert_eq!(
        again.as_service_error().and_then(|e| e.meta().code()),
        Some("PipelineExecutionNotStoppableException")
    );

    let execution = codepipeline
        .get_pipeline_execution()
        .pipeline_name(&name)
        .pipeline_execution_id(&id)
        .send()
        .await?
        .pipeline_execution
        .expect("execution");
    assert_eq!(execution.status().map(|s| s.as_str()), Some("Stopped"));
    let state = codepipeline.get_pipeline_state().name(&name).send().await?;
    let latest = state.stage_states()[0]
        .latest_execution()
        .expect("latest execution");
    assert_eq!(latest.pipeline_execution_id(), id);
    Ok(())
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

#[tokio::test]
async fn processes_are_gone_after_drop() -> TestResult {
    let bed = TestBed::start().await?;
    let pids = bed.pids();
    let names: Vec<_> = pids.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["moto", "etcd", "kube-apiserver"]);
    assert!(pids.iter().all(|(_, pid)| alive(*pid)));
    let listed = std::fs::read_to_string(bed.dir().join("pids"))?;
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let dir = bed.dir().to_owned();

    drop(bed);
    let still_alive: Vec<_> = pids.iter().filter(|(_, pid)| alive(*pid)).collect();
    assert!(still_alive.is_empty(), "still running: {still_alive:?}");
    assert!(!dir.exists(), "{} not removed", dir.display());
    Ok(())
}
