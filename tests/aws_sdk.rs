//! `SdkAws` against moto (patched by `tests/moto_ext`): the SDK adapter and the conversions in
//! `aws::convert` round-trip the render of `examples/orders-api.yaml` through an AWS-protocol
//! server. Needs `scripts/testbed-install.sh`.
//!
//! Tests share one bed; each renders the example into its own namespace (so its own pipeline
//! and project names) with a pipeline role created in moto, whose account is 123456789012.

mod support;

use branchpipeline::aws::sdk::SdkAws;
use branchpipeline::aws::{AwsApi, AwsError, ObservedProject, Retry, StartRun};
use branchpipeline::render::{self, model::*};
use pretty_assertions::assert_eq;
use support::{AWS_ACCOUNT_ID, AWS_REGION, TestBed, fixtures, unique_name};

struct Fixture {
    bed: &'static TestBed,
    aws: SdkAws,
    desired: DesiredState,
}

/// The example rendered into namespace `<prefix>-<random>`, with roles in moto's account.
async fn fixture(prefix: &str) -> Fixture {
    let bed = TestBed::shared().await;
    let namespace = unique_name(prefix);
    let role = bed
        .create_codepipeline_role(&format!("{namespace}-codepipeline"))
        .await
        .expect("create the pipeline role in moto");
    assert_eq!(
        role,
        format!("arn:aws:iam::{AWS_ACCOUNT_ID}:role/{namespace}-codepipeline")
    );

    let mut bp = fixtures::example();
    bp.metadata.namespace = Some(namespace.clone());
    bp.spec.pipeline_role_arn = Some(role);
    // moto's CodeBuild only checks that the service role is in the caller's account.
    bp.spec.build_role_arn = Some(format!(
        "arn:aws:iam::{AWS_ACCOUNT_ID}:role/{namespace}-codebuild"
    ));
    let desired = render::compile(&bp).expect("example renders");
    assert_eq!(desired.pipelines.len(), 2);
    assert_eq!(desired.projects.len(), 4);

    let aws = SdkAws::new(&bed.aws_config().await);
    Fixture { bed, aws, desired }
}

fn project_names(desired: &DesiredState) -> Vec<String> {
    desired.projects.iter().map(|p| p.name.clone()).collect()
}

fn by_name(mut observed: Vec<ObservedProject>) -> Vec<ObservedProject> {
    observed.sort_by(|a, b| a.project.name.cmp(&b.project.name));
    observed
}

fn sorted(mut tags: Vec<Tag>) -> Vec<Tag> {
    tags.sort();
    tags
}

fn pipeline_arn(name: &str) -> String {
    format!("arn:aws:codepipeline:{AWS_REGION}:{AWS_ACCOUNT_ID}:{name}")
}

#[tokio::test]
async fn projects_round_trip_update_list_and_delete() {
    let f = fixture("sdk-projects").await;
    let names = project_names(&f.desired);

    for project in &f.desired.projects {
        f.aws.create_project(project).await.expect("CreateProject");
    }

    // 1. Every project reads back equal to its render.
    let observed = by_name(f.aws.get_projects(&names).await.expect("BatchGetProjects"));
    let mut expected = f.desired.projects.clone();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        observed
            .iter()
            .map(|o| o.project.clone())
            .collect::<Vec<_>>(),
        expected
    );

    // 2. An update replaces the managed fields.
    let mut changed = f.desired.projects[0].clone();
    changed.environment.compute_type = "BUILD_GENERAL1_2XLARGE".into();
    changed.timeout_in_minutes = 45;
    changed.tags.push(Tag {
        key: "zz-extra".into(),
        value: "x".into(),
    });
    f.aws.update_project(&changed).await.expect("UpdateProject");
    let observed = f
        .aws
        .get_projects(std::slice::from_ref(&changed.name))
        .await
        .expect("BatchGetProjects");
    assert_eq!(observed.len(), 1);
    assert_eq!(observed[0].project, changed);
    // The other projects are untouched.
    let others = by_name(f.aws.get_projects(&names[1..]).await.unwrap());
    assert_eq!(
        others.into_iter().map(|o| o.project).collect::<Vec<_>>(),
        expected
            .iter()
            .filter(|p| p.name != changed.name)
            .cloned()
            .collect::<Vec<_>>()
    );

    // Creating an existing project keeps AWS's code. The reconciler only creates what it
    // just observed missing, so this means it raced another writer: retrying re-observes,
    // then updates the project or reports it as not owned.
    let err = f.aws.create_project(&changed).await.unwrap_err();
    assert_eq!(err.operation, "CreateProject");
    assert_eq!(err.code, "ResourceAlreadyExistsException");
    assert_eq!(err.retry, Retry::Retryable);

    let listed = f.aws.list_projects().await.expect("ListProjects");
    for name in &names {
        assert!(listed.contains(name), "{name} missing from {listed:?}");
    }

    // Deletion is idempotent.
    for name in &names {
        f.aws.delete_project(name).await.expect("DeleteProject");
        f.aws
            .delete_project(name)
            .await
            .expect("DeleteProject of a deleted project");
    }
    assert_eq!(f.aws.get_projects(&names).await.unwrap(), vec![]);
    let listed = f.aws.list_projects().await.unwrap();
    assert!(names.iter().all(|n| !listed.contains(n)), "{listed:?}");
}

#[tokio::test]
async fn get_projects_skips_missing_names_and_batches_by_100() {
    let f = fixture("sdk-batch").await;
    let project = &f.desired.projects[0];
    f.aws.create_project(project).await.expect("CreateProject");

    // 150 names: the real one in the second chunk, 149 that do not exist.
    let mut names: Vec<String> = (0..149)
        .map(|i| format!("{}-missing-{i:03}", project.name))
        .collect();
    names.insert(120, project.name.clone());
    let observed = f.aws.get_projects(&names).await.expect("BatchGetProjects");
    assert_eq!(observed.len(), 1);
    assert_eq!(&observed[0].project, project);

    // Each chunk is one call, named in moto's log by its first name.
    for first in [&names[0], &names[100]] {
        assert_eq!(
            f.bed
                .aws_call_count("BatchGetProjects", Some(first))
                .await
                .unwrap(),
            1,
            "one BatchGetProjects starting with {first}"
        );
    }
    assert_eq!(f.aws.get_projects(&[]).await.unwrap(), vec![]);
    f.aws.delete_project(&project.name).await.unwrap();
}

#[tokio::test]
async fn pipelines_round_trip_update_tag_list_and_delete() {
    let f = fixture("sdk-pipelines").await;

    // 3. Create both pipelines with tags; they read back equal to the render.
    for desired in &f.desired.pipelines {
        let name = &desired.pipeline.name;
        assert_eq!(f.aws.get_pipeline(name).await.unwrap(), None);
        let arn = f
            .aws
            .create_pipeline(&desired.pipeline, &desired.tags)
            .await
            .expect("CreatePipeline");
        assert_eq!(arn, pipeline_arn(name));

        let observed = f
            .aws
            .get_pipeline(name)
            .await
            .expect("GetPipeline")
            .expect("pipeline exists");
        assert_eq!(observed.declaration.version, Some(1));
        let mut declaration = observed.declaration.clone();
        declaration.version = None;
        assert_eq!(declaration, desired.pipeline);
        assert_eq!(observed.unmanaged, Vec::<String>::new());
        assert_eq!(observed.arn, arn);
        assert_eq!(observed.tags, Some(sorted(desired.tags.clone())));
    }

    // 4. Update: version 2, and the change reads back.
    let desired = &f.desired.pipelines[0];
    let name = &desired.pipeline.name;
    let arn = pipeline_arn(name);
    let mut changed = desired.pipeline.clone();
    changed.execution_mode = "PARALLEL".into();
    changed.variables.push(PipelineVariable {
        name: "Commit".into(),
        default_value: Some("HEAD".into()),
        description: Some("revision to build".into()),
    });
    assert_eq!(
        f.aws
            .update_pipeline(&changed)
            .await
            .expect("UpdatePipeline"),
        2
    );
    let observed = f.aws.get_pipeline(name).await.unwrap().unwrap();
    assert_eq!(observed.declaration.version, Some(2));
    let mut declaration = observed.declaration;
    declaration.version = None;
    assert_eq!(declaration, changed);

    // 5. Tags.
    let added = [
        Tag {
            key: "team".into(),
            value: "payments".into(),
        },
        Tag {
            key: "zz-extra".into(),
            value: "1".into(),
        },
    ];
    f.aws.tag_pipeline(&arn, &added).await.expect("TagResource");
    let (tags_arn, tags) = f
        .aws
        .pipeline_tags(name)
        .await
        .expect("pipeline_tags")
        .expect("pipeline exists");
    assert_eq!(tags_arn, arn);
    let mut expected: Vec<Tag> = desired
        .tags
        .iter()
        .filter(|t| t.key != "team")
        .cloned()
        .chain(added.iter().cloned())
        .collect();
    expected.sort();
    assert_eq!(tags, expected);

    f.aws
        .untag_pipeline(&arn, &["zz-extra".to_string()])
        .await
        .expect("UntagResource");
    expected.retain(|t| t.key != "zz-extra");
    assert_eq!(
        f.aws.get_pipeline(name).await.unwrap().unwrap().tags,
        Some(expected)
    );
    // Empty tag and key lists are no-ops.
    f.aws.tag_pipeline(&arn, &[]).await.unwrap();
    f.aws.untag_pipeline(&arn, &[]).await.unwrap();

    let listed: Vec<String> = f
        .aws
        .list_pipelines()
        .await
        .expect("ListPipelines")
        .into_iter()
        .map(|p| p.name)
        .collect();
    for p in &f.desired.pipelines {
        assert!(listed.contains(&p.pipeline.name), "{listed:?}");
    }

    // Delete twice; then the pipeline is gone everywhere.
    for p in &f.desired.pipelines {
        let name = &p.pipeline.name;
        f.aws.delete_pipeline(name).await.expect("DeletePipeline");
        f.aws
            .delete_pipeline(name)
            .await
            .expect("DeletePipeline of a deleted pipeline");
        assert_eq!(f.aws.get_pipeline(name).await.unwrap(), None);
        assert_eq!(f.aws.pipeline_tags(name).await.unwrap(), None);
    }
    let listed: Vec<String> = f
        .aws
        .list_pipelines()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(
        f.desired
            .pipelines
            .iter()
            .all(|p| !listed.contains(&p.pipeline.name)),
        "{listed:?}"
    );
}

#[tokio::test]
async fn start_execution_returns_an_id() {
    let f = fixture("sdk-start").await;
    let desired = &f.desired.pipelines[0];
    f.aws
        .create_pipeline(&desired.pipeline, &desired.tags)
        .await
        .expect("CreatePipeline");
    let source_action = desired.pipeline.triggers[0]
        .git_configuration
        .source_action_name
        .clone();

    let commit = "0123456789abcdef0123456789abcdef01234567";
    let run = StartRun {
        pipeline: desired.pipeline.name.clone(),
        source_action: source_action.clone(),
        commit: Some(commit.into()),
        variables: vec![
            ("BPL_TARGET".into(), "qa".into()),
            ("BPL_BRANCH".into(), "feature/login".into()),
        ],
        client_request_token: unique_name("run"),
    };
    let id = f
        .aws
        .start_execution(&run)
        .await
        .expect("StartPipelineExecution");
    assert!(!id.is_empty());

    // GetPipelineExecution: the variables set, the others at their declared defaults, and the
    // commit asked for.
    let execution = f
        .aws
        .get_execution(&desired.pipeline.name, &id)
        .await
        .expect("GetPipelineExecution")
        .expect("the execution exists");
    assert_eq!(execution.id, id);
    assert_eq!(execution.variables["BPL_TARGET"], "qa");
    assert_eq!(execution.variables["BPL_BRANCH"], "feature/login");
    assert_eq!(execution.variables["BPL_RUN"], "@push");
    assert_eq!(execution.commit.as_deref(), Some(commit));
    assert_eq!(execution.trigger.as_deref(), Some("StartPipelineExecution"));
    // ListPipelineExecutions: newest first, with times.
    let listed = f
        .aws
        .list_executions(&desired.pipeline.name, None, 10)
        .await
        .expect("ListPipelineExecutions");
    assert_eq!(listed[0].id, id);
    assert!(listed[0].start_time.is_some());
    // GetPipelineState: every declared stage, in order.
    let states = f
        .aws
        .pipeline_state(&desired.pipeline.name)
        .await
        .expect("GetPipelineState");
    let names: Vec<&str> = states.iter().map(|s| s.name.as_str()).collect();
    let declared: Vec<&str> = desired
        .pipeline
        .stages
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, declared);
    // ListActionExecutions: the source action reports the commit it built.
    let actions = f
        .aws
        .action_executions(&desired.pipeline.name, &id)
        .await
        .expect("ListActionExecutions");
    let source = actions
        .iter()
        .find(|a| a.stage == "Source")
        .expect("the source action ran");
    assert_eq!(source.output_variables["CommitId"], commit);
    // An unknown execution is None, not an error.
    assert_eq!(
        f.aws
            .get_execution(
                &desired.pipeline.name,
                "00000000-0000-0000-0000-000000000000"
            )
            .await
            .expect("GetPipelineExecution"),
        None
    );

    let without_commit = StartRun {
        commit: None,
        client_request_token: unique_name("run"),
        ..run.clone()
    };
    let other = f.aws.start_execution(&without_commit).await.unwrap();
    assert!(!other.is_empty());
    assert_ne!(other, id);

    // The same request token is the same execution (AWS idempotency; moto_ext patch).
    let again = f.aws.start_execution(&run).await.unwrap();
    assert_eq!(again, id);

    // A pipeline that does not exist is a terminal error.
    let missing = StartRun {
        pipeline: format!("{}-missing", desired.pipeline.name),
        ..run
    };
    let err = f.aws.start_execution(&missing).await.unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.retry),
        ("PipelineNotFoundException", Retry::Terminal)
    );

    f.aws.delete_pipeline(&desired.pipeline.name).await.unwrap();
}

#[tokio::test]
async fn missing_resources_and_service_errors() {
    let f = fixture("sdk-errors").await;
    let name = unique_name("no-such-pipeline");
    assert_eq!(f.aws.get_pipeline(&name).await.unwrap(), None);
    assert_eq!(f.aws.pipeline_tags(&name).await.unwrap(), None);
    f.aws.delete_pipeline(&name).await.unwrap();
    f.aws
        .delete_project(&unique_name("no-such-project"))
        .await
        .unwrap();

    // moto (like AWS) refuses a role CodePipeline may not assume.
    let mut bad = f.desired.pipelines[0].pipeline.clone();
    bad.role_arn = format!(
        "arn:aws:iam::{AWS_ACCOUNT_ID}:role/{}",
        unique_name("absent")
    );
    let err = f.aws.create_pipeline(&bad, &[]).await.unwrap_err();
    assert_eq!(err.operation, "CreatePipeline");
    assert_eq!(err.code, "InvalidStructureException");
    assert_eq!(err.retry, Retry::Terminal);
    assert!(!err.message.is_empty());

    // Updating a pipeline that does not exist fails terminally.
    let err = f
        .aws
        .update_pipeline(&f.desired.pipelines[1].pipeline)
        .await
        .unwrap_err();
    assert_eq!(err.operation, "UpdatePipeline");
    assert_eq!(err.retry, Retry::Terminal, "{err}");
}

#[tokio::test]
async fn unreachable_endpoint_is_a_retryable_dispatch_failure() {
    // A port nobody listens on; no retries, so the failure is immediate.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(AWS_REGION))
        .credentials_provider(aws_sdk_codebuild::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let aws = SdkAws::new(&config);
    let err: AwsError = aws.get_pipeline("anything").await.unwrap_err();
    assert_eq!(err.operation, "GetPipeline");
    assert_eq!(err.code, "DispatchFailure");
    assert_eq!(err.retry, Retry::Retryable);
    let err = aws.list_projects().await.unwrap_err();
    assert_eq!(
        (err.operation, err.code.as_str(), err.retry),
        ("ListProjects", "DispatchFailure", Retry::Retryable)
    );
}

/// moto_ext pages listings by `MOTO_PAGE_SIZE` (10): 25 projects and pipelines take three
/// pages each, and every one comes back exactly once.
#[tokio::test]
async fn listings_follow_next_token_through_every_page() {
    let f = fixture("sdk-pages").await;
    let project = f.desired.projects[0].clone();
    let pipeline = f.desired.pipelines[1].clone();
    let mut projects = Vec::new();
    let mut pipelines = Vec::new();
    for i in 0..25 {
        let mut p = project.clone();
        p.name = format!("{}-{i:02}", project.name);
        f.aws.create_project(&p).await.expect("CreateProject");
        projects.push(p.name);
        let mut d = pipeline.pipeline.clone();
        d.name = format!("{}-{i:02}", pipeline.pipeline.name);
        f.aws
            .create_pipeline(&d, &pipeline.tags)
            .await
            .expect("CreatePipeline");
        pipelines.push(d.name);
    }
    let listed_projects = f.aws.list_projects().await.expect("ListProjects");
    let listed_pipelines: Vec<String> = f
        .aws
        .list_pipelines()
        .await
        .expect("ListPipelines")
        .into_iter()
        .map(|p| p.name)
        .collect();
    for (names, listed) in [
        (&projects, &listed_projects),
        (&pipelines, &listed_pipelines),
    ] {
        for name in names {
            assert_eq!(
                listed.iter().filter(|n| *n == name).count(),
                1,
                "{name} listed once"
            );
        }
    }
    assert!(f.bed.aws_call_count("ListProjects", None).await.unwrap() >= 3);
    for name in &projects {
        f.aws.delete_project(name).await.unwrap();
    }
    for name in &pipelines {
        f.aws.delete_pipeline(name).await.unwrap();
    }
}

/// The run's commit reaches AWS as a COMMIT_ID override of the source action.
#[tokio::test]
async fn start_execution_overrides_the_source_commit() {
    let f = fixture("sdk-commit").await;
    let desired = &f.desired.pipelines[1];
    f.aws
        .create_pipeline(&desired.pipeline, &desired.tags)
        .await
        .expect("CreatePipeline");
    let commit = "4f2a9c1d0e5b6a7f8091a2b3c4d5e6f708192a3b";
    let id = f
        .aws
        .start_execution(&StartRun {
            pipeline: desired.pipeline.name.clone(),
            source_action: "Source".into(),
            commit: Some(commit.into()),
            variables: Vec::new(),
            client_request_token: unique_name("run"),
        })
        .await
        .expect("StartPipelineExecution");
    let executions = f
        .bed
        .codepipeline()
        .await
        .list_pipeline_executions()
        .pipeline_name(&desired.pipeline.name)
        .send()
        .await
        .expect("ListPipelineExecutions");
    let summary = executions
        .pipeline_execution_summaries()
        .iter()
        .find(|s| s.pipeline_execution_id() == Some(id.as_str()))
        .expect("the started execution is listed");
    let revisions = summary.source_revisions();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0].action_name(), "Source");
    assert_eq!(revisions[0].revision_id(), Some(commit));
    f.aws.delete_pipeline(&desired.pipeline.name).await.unwrap();
}

/// The lanes of the rate limiter share one bucket per service, and a request that waits for its
/// slot longer than the SDK's 5 s stalled-stream grace period still succeeds.
#[tokio::test]
async fn requests_that_wait_long_for_the_rate_limiter_still_succeed() {
    let bed = TestBed::shared().await;
    let metrics = std::sync::Arc::new(branchpipeline::metrics::Metrics::new());
    let lanes = SdkAws::metered(&bed.aws_config().await, metrics, 1);
    let lanes = std::sync::Arc::new(lanes);
    let start = std::time::Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let lanes = lanes.clone();
            tokio::spawn(async move {
                let aws = if i % 2 == 0 {
                    &lanes.reconcile
                } else {
                    &lanes.background
                };
                aws.list_projects().await
            })
        })
        .collect();
    for call in calls {
        call.await
            .expect("task")
            .expect("a request that waited for its slot");
    }
    // One request a second across the lanes: the last waited about 7 s (separate buckets
    // would have taken about 2 s).
    assert!(
        start.elapsed() >= std::time::Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
}
