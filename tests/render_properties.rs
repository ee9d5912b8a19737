//! Properties of rendering over generated valid specs.

use std::collections::BTreeSet;

use branchpipeline::api::*;
use branchpipeline::naming;
use branchpipeline::render;
use branchpipeline::validate::limits::MAX_CONFIG_VALUE;
use kube::api::ObjectMeta;
use proptest::prelude::*;

fn label(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-z][a-z0-9-]{{0,{}}}[a-z0-9]", max - 2)).unwrap()
}

fn k8s_name() -> impl Strategy<Value = String> {
    // Long names and dots exercise shortening and CodeBuild's no-dot rule.
    prop_oneof![
        label(20),
        label(63),
        proptest::string::string_regex("[a-z0-9]([a-z0-9.-]{0,240}[a-z0-9])?").unwrap()
    ]
}

fn branch() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("main".to_string()),
        Just("develop".to_string()),
        Just("release/*".to_string()),
        Just("hotfix/**".to_string()),
        Just("feature/?-*".to_string()),
        // Valid git branch names: no "..", no component starting or ending with '.'.
        proptest::string::string_regex("[a-z]{1,12}(/[a-z0-9]{1,8}(\\.[a-z0-9]{1,5}){0,2})?")
            .unwrap(),
    ]
}

fn compute() -> impl Strategy<Value = (Option<ComputeType>, Option<EnvironmentType>)> {
    prop_oneof![
        Just((None, None)),
        Just((Some(ComputeType::General1Medium), None)),
        Just((
            Some(ComputeType::General1Xlarge),
            Some(EnvironmentType::ArmContainer)
        )),
        Just((
            Some(ComputeType::Lambda4Gb),
            Some(EnvironmentType::LinuxLambdaContainer)
        )),
    ]
}

#[derive(Debug, Clone)]
struct EnvPlan {
    group: usize,
    branches: Vec<String>,
    promote: Option<prop::sample::Index>,
    manual: bool,
    approval: bool,
    override_deploy: bool,
    variables: Vec<(String, String)>,
}

fn env_plan() -> impl Strategy<Value = EnvPlan> {
    (
        0usize..3,
        prop::collection::btree_set(branch(), 1..3).prop_map(|s| s.into_iter().collect::<Vec<_>>()),
        prop::option::weighted(0.3, any::<prop::sample::Index>()),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::collection::vec(("[A-Z][A-Z0-9_]{0,10}", "[ -~]{0,40}"), 0..3),
    )
        .prop_map(
            |(group, branches, promote, manual, approval, override_deploy, variables)| EnvPlan {
                group,
                branches,
                promote,
                manual,
                approval,
                override_deploy,
                variables,
            },
        )
}

fn spec_strategy() -> impl Strategy<Value = BranchPipeline> {
    (
        label(30),
        k8s_name(),
        prop::collection::btree_set(label(12), 1..6),
        prop::collection::vec(compute(), 6),
        prop::collection::vec(env_plan(), 1..5),
        prop_oneof![
            Just(ExecutionMode::Queued),
            Just(ExecutionMode::Superseded),
            Just(ExecutionMode::Parallel)
        ],
        "[a-z]{1,20}",
    )
        .prop_map(
            |(namespace, name, stage_names, computes, plans, mode, default_branch)| {
                let stages = stage_names
                    .into_iter()
                    .filter(|n| n != "deploy" && !n.starts_with("deploy-") && n != "source")
                    .chain(std::iter::once("build".to_string()))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .zip(computes.iter().cycle())
                    .map(|(name, (compute_type, environment_type))| StageSpec {
                        name,
                        compute_type: *compute_type,
                        environment_type: *environment_type,
                        ..Default::default()
                    })
                    .collect();
                let groups = ["main", "production", "hotfix"];
                let mut environments: Vec<EnvironmentSpec> = Vec::new();
                for (i, plan) in plans.into_iter().enumerate() {
                    let group = groups[plan.group];
                    let earlier: Vec<String> = environments
                        .iter()
                        .filter(|e| e.group() == group)
                        .map(|e| e.name.clone())
                        .collect();
                    let promote_from = match (&plan.promote, earlier.is_empty()) {
                        (Some(idx), false) => Some(earlier[idx.index(earlier.len())].clone()),
                        _ => None,
                    };
                    environments.push(EnvironmentSpec {
                        name: format!("env{i}"),
                        pipeline: (group != "main").then(|| group.to_string()),
                        branches: promote_from.is_none().then_some(plan.branches),
                        trigger: if plan.manual && promote_from.is_none() {
                            Trigger::Manual
                        } else {
                            Trigger::Automatic
                        },
                        promote_from,
                        approval: plan.approval.then(|| ApprovalSpec {
                            notification_arn: Some(
                                "arn:aws:sns:eu-west-1:111122223333:approvals".into(),
                            ),
                            custom_data: Some("Please check the dashboards".into()),
                        }),
                        variables: plan
                            .variables
                            .into_iter()
                            .filter(|(k, _)| k != "DEPLOY_ENV")
                            .collect(),
                        deploy: plan.override_deploy.then(|| BuildOverrides {
                            compute_type: Some(ComputeType::General1Large),
                            ..Default::default()
                        }),
                    });
                }
                BranchPipeline {
                    metadata: ObjectMeta {
                        name: Some(name),
                        namespace: Some(namespace),
                        ..Default::default()
                    },
                    spec: BranchPipelineSpec {
                        source: SourceSpec {
                            connection_arn: Some(
                                "arn:aws:codeconnections:eu-west-1:111122223333:connection/abc-123"
                                    .into(),
                            ),
                            repository: "acme/app".into(),
                            default_branch,
                            file_paths: None,
                        },
                        class_name: None,
                        pipeline_role_arn: Some("arn:aws:iam::111122223333:role/pipeline".into()),
                        build_role_arn: Some("arn:aws:iam::111122223333:role/build".into()),
                        artifact_bucket: Some("acme-artifacts".into()),
                        buildspec_dir: "cicd/buildspecs".into(),
                        execution_mode: mode,
                        rollback_on_failure: mode != ExecutionMode::Parallel,
                        defaults: BuildDefaults::default(),
                        stages,
                        deploy: None,
                        environments,
                        variables: vec![],
                        tags: Default::default(),
                        deletion_policy: None,
                        run_history_limit: None,
                        update_policy: None,
                        pull_requests: None,
                        github: None,
                    },
                    status: None,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rendered_state_obeys_aws_rules(bp in spec_strategy()) {
        let state = render::compile(&bp).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let projects: BTreeSet<_> = state.projects.iter().map(|p| p.name.as_str()).collect();
        prop_assert_eq!(projects.len(), state.projects.len(), "project names are unique");
        for p in &state.projects {
            prop_assert!(naming::is_valid_project_name(&p.name), "bad project name {}", p.name);
        }
        let groups: BTreeSet<_> = bp.spec.environments.iter().map(|e| e.group()).collect();
        prop_assert_eq!(state.pipelines.len(), groups.len());
        for desired in &state.pipelines {
            let p = &desired.pipeline;
            prop_assert!(naming::is_valid_pipeline_name(&p.name), "bad pipeline name {}", p.name);
            prop_assert!(p.stages.len() <= 50);
            for stage in &p.stages {
                prop_assert!(stage.actions.len() <= 50);
                for action in &stage.actions {
                    for value in action.configuration.values() {
                        prop_assert!(value.len() <= MAX_CONFIG_VALUE);
                    }
                    if action.action_type_id.provider == "CodeBuild" {
                        let project = &action.configuration["ProjectName"];
                        prop_assert!(projects.contains(project.as_str()), "{} is not rendered", project);
                    }
                }
                for rule in stage.before_entry.iter().flat_map(|b| &b.conditions).flat_map(|c| &c.rules) {
                    prop_assert!(rule.configuration["Value"].len() <= MAX_CONFIG_VALUE);
                }
            }
            for trigger in &p.triggers {
                for push in &trigger.git_configuration.push {
                    let includes = &push.branches.as_ref().unwrap().includes;
                    prop_assert!((1..=8).contains(&includes.len()));
                }
            }
        }
        let again = render::compile(&bp).unwrap();
        prop_assert_eq!(
            serde_json::to_string(&state).unwrap(),
            serde_json::to_string(&again).unwrap(),
            "rendering is deterministic"
        );
    }
}
