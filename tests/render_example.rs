//! The example from the README renders exactly as documented, byte for byte.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::path::Path;
use std::process::Command;

use branchpipeline::render::{self, DesiredState};

const GOLDEN: &str = "tests/golden/orders-api.render.json";

fn rendered() -> DesiredState {
    render::compile(&fixtures::example()).expect("example is valid")
}

/// `BLESS=1 cargo test --test render_example` rewrites the golden file after a deliberate change.
#[test]
fn golden_json() {
    let json = serde_json::to_string_pretty(&rendered()).unwrap() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &json).unwrap();
    }
    let golden = std::fs::read_to_string(&path).expect("golden file exists");
    pretty_assertions::assert_eq!(
        golden,
        json,
        "rendered JSON drifted from {GOLDEN}; BLESS=1 to accept"
    );
}

#[test]
fn cli_render_prints_the_golden_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_branchpipeline-controller"))
        .args(["render", "-f", "examples/orders-api.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let golden =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN)).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), golden);
}

fn pipeline_names(state: &render::DesiredState) -> Vec<&str> {
    state
        .pipelines
        .iter()
        .map(|p| p.pipeline.name.as_str())
        .collect()
}

#[test]
fn two_pipelines_replace_seven() {
    let state = rendered();
    let names = pipeline_names(&state);
    assert_eq!(
        names,
        [
            "team-orders-orders-api",
            "team-orders-orders-api-production"
        ]
    );
    for p in &state.pipelines {
        assert_eq!(p.pipeline.pipeline_type, "V2");
        assert_eq!(p.pipeline.execution_mode, "QUEUED");
        assert_eq!(
            p.pipeline.role_arn,
            "arn:aws:iam::111122223333:role/branchpipeline/orders-codepipeline"
        );
        assert_eq!(p.pipeline.artifact_store.location, "acme-cicd-artifacts");
        assert_eq!(p.pipeline.artifact_store.type_, "S3");
    }
    assert_eq!(
        state.pipelines[0].environments,
        ["dev", "qa", "stage", "perf"]
    );
    assert_eq!(state.pipelines[1].environments, ["prod"]);
}

#[test]
fn triggers_include_only_automatic_branches() {
    let state = rendered();
    let includes = |i: usize| {
        let t = &state.pipelines[i].pipeline.triggers;
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].provider_type, "CodeStarSourceConnection");
        assert_eq!(t[0].git_configuration.source_action_name, "Source");
        t[0].git_configuration.push[0]
            .branches
            .clone()
            .unwrap()
            .includes
    };
    // qa is manual: feature/* must not start the pipeline.
    assert_eq!(includes(0), ["develop", "release/*"]);
    assert_eq!(includes(1), ["main"]);
}

#[test]
fn source_stage_and_stage_layout() {
    let state = rendered();
    let main = &state.pipelines[0].pipeline;
    let stages: Vec<_> = main.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        stages,
        [
            "Source",
            "lint",
            "test",
            "build",
            "deploy-dev",
            "deploy-qa",
            "deploy-stage",
            "deploy-perf"
        ]
    );
    let source = &main.stages[0].actions[0];
    assert_eq!(source.action_type_id.provider, "CodeStarSourceConnection");
    assert_eq!(source.configuration["FullRepositoryId"], "acme/orders-api");
    assert_eq!(source.configuration["BranchName"], "develop");
    assert_eq!(source.namespace.as_deref(), Some("SourceVariables"));
    assert_eq!(source.output_artifacts[0].name, "SourceOutput");
    // The production pipeline never deploys develop, so a manual start there builds main.
    assert_eq!(
        state.pipelines[1].pipeline.stages[0].actions[0].configuration["BranchName"],
        "main"
    );
    // Build once: the last build stage's artifact feeds every deploy.
    assert_eq!(
        main.stages[3].actions[0].output_artifacts[0].name,
        "BuildOutput"
    );
    for stage in &main.stages[4..] {
        let deploy = stage.actions.last().unwrap();
        let inputs: Vec<_> = deploy
            .input_artifacts
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(inputs, ["SourceOutput", "BuildOutput"]);
        assert_eq!(deploy.configuration["PrimarySource"], "SourceOutput");
        assert_eq!(
            deploy.configuration["ProjectName"],
            "team-orders-orders-api-deploy"
        );
    }
}

/// Every deploy stage is entered only by the executions meant for it (see the routing table in
/// the README): pushes of its branches, or a BranchPipelineRun for it.
#[test]
fn stage_conditions_route_pushes_and_runs() {
    let state = rendered();
    let rules = |pipeline: usize, stage: &str| -> Vec<(String, String, String)> {
        let s = state.pipelines[pipeline]
            .pipeline
            .stages
            .iter()
            .find(|s| s.name == stage)
            .expect("stage");
        let c = &s.before_entry.as_ref().expect("condition").conditions[0];
        assert_eq!(c.result, "SKIP");
        c.rules
            .iter()
            .map(|r| {
                assert_eq!(r.rule_type_id.provider, "VariableCheck");
                (
                    r.configuration["Variable"].clone(),
                    r.configuration["Operator"].clone(),
                    r.configuration["Value"].clone(),
                )
            })
            .collect()
    };
    let rule = |v: &str, op: &str, value: &str| (v.to_string(), op.to_string(), value.to_string());
    let target = "#{variables.BPL_TARGET}";
    let branch = "#{SourceVariables.BranchName}";
    assert_eq!(
        rules(0, "deploy-dev"),
        [
            rule(target, "MATCHES", "^(?:@push|dev)$"),
            rule(branch, "EQ", "develop")
        ]
    );
    // qa is manual: only a run for qa enters it, whatever the branch resolves to.
    assert_eq!(rules(0, "deploy-qa"), [rule(target, "EQ", "qa")]);
    assert_eq!(
        rules(0, "deploy-stage"),
        [
            rule(target, "MATCHES", "^(?:@push|stage)$"),
            rule(branch, "MATCHES", "^(?:release/[^/]*)$")
        ]
    );
    // perf is promoted from stage, so it runs exactly when stage does.
    assert_eq!(rules(0, "deploy-perf"), rules(0, "deploy-stage"));
    // prod takes every branch a push can start its pipeline with: no branch rule.
    assert_eq!(
        rules(1, "deploy-prod"),
        [rule(target, "MATCHES", "^(?:@push|prod)$")]
    );
    for p in &state.pipelines {
        let names: Vec<&str> = p
            .pipeline
            .variables
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(names[..3], ["BPL_TARGET", "BPL_BRANCH", "BPL_RUN"]);
        assert!(
            p.pipeline.variables[..3]
                .iter()
                .all(|v| v.default_value.as_deref() == Some("@push"))
        );
    }
}

#[test]
fn approvals_come_before_deploys() {
    let state = rendered();
    let perf = state.pipelines[0].pipeline.stages.last().unwrap();
    assert_eq!(perf.actions.len(), 2);
    assert_eq!(
        (perf.actions[0].name.as_str(), perf.actions[0].run_order),
        ("approve", 1)
    );
    assert_eq!(perf.actions[0].action_type_id.category, "Approval");
    assert!(perf.actions[0].configuration.is_empty());
    assert_eq!(perf.actions[1].run_order, 2);
    let prod = state.pipelines[1].pipeline.stages.last().unwrap();
    assert_eq!(
        prod.actions[0].configuration["NotificationArn"],
        "arn:aws:sns:us-east-1:111122223333:prod-approvals"
    );
    assert_eq!(
        prod.actions[1].configuration["EnvironmentVariables"],
        r#"[{"name":"DEPLOY_ENV","type":"PLAINTEXT","value":"prod"}]"#
    );
    let dev = &state.pipelines[0].pipeline.stages[4];
    assert_eq!(dev.actions.len(), 1);
    assert_eq!(dev.actions[0].run_order, 1);
}

#[test]
fn projects_have_per_stage_compute_and_tags() {
    let state = rendered();
    let names: Vec<_> = state.projects.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "team-orders-orders-api-lint",
            "team-orders-orders-api-test",
            "team-orders-orders-api-build",
            "team-orders-orders-api-deploy",
        ]
    );
    // Both pipelines run the same projects: one per stage, one deploy.
    for p in &state.pipelines {
        assert_eq!(p.projects, names, "{}", p.pipeline.name);
    }
    let by_name = |n: &str| state.projects.iter().find(|p| p.name == n).unwrap();
    let lint = by_name("team-orders-orders-api-lint");
    assert_eq!(lint.environment.compute_type, "BUILD_GENERAL1_SMALL");
    assert_eq!(lint.source.buildspec, "cicd/buildspecs/lint.yml");
    assert_eq!(lint.source.type_, "CODEPIPELINE");
    assert_eq!(lint.artifacts.type_, "CODEPIPELINE");
    assert_eq!(lint.environment.type_, "LINUX_CONTAINER");
    assert_eq!(lint.timeout_in_minutes, 30);
    assert_eq!(
        lint.service_role,
        "arn:aws:iam::111122223333:role/branchpipeline/orders-codebuild"
    );
    assert_eq!(
        by_name("team-orders-orders-api-test")
            .environment
            .compute_type,
        "BUILD_GENERAL1_MEDIUM"
    );
    let build = by_name("team-orders-orders-api-build");
    assert_eq!(build.environment.compute_type, "BUILD_GENERAL1_LARGE");
    assert!(build.environment.privileged_mode);
    assert_eq!(
        by_name("team-orders-orders-api-deploy").source.buildspec,
        "cicd/buildspecs/deploy.yml"
    );
    let tags: Vec<_> = lint
        .tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(
        tags,
        [
            ("branchpipeline.dev/managed-by", "branchpipeline-controller"),
            ("branchpipeline.dev/name", "orders-api"),
            ("branchpipeline.dev/namespace", "team-orders"),
            ("team", "orders"),
        ]
    );
    assert_eq!(state.pipelines[0].tags, lint.tags);
}

#[test]
fn manual_only_group_has_no_trigger_and_no_change_detection() {
    let bp = fixtures::example_edited(&[(
        "      branches: [main]\n",
        "      branches: [main]\n      trigger: manual\n",
    )]);
    let state = render::compile(&bp).unwrap();
    let prod = &state.pipelines[1].pipeline;
    assert!(prod.triggers.is_empty());
    assert_eq!(
        prod.stages[0].actions[0].configuration["DetectChanges"],
        "false"
    );
    assert_eq!(
        state.pipelines[0].pipeline.stages[0].actions[0].configuration["DetectChanges"],
        "true"
    );
}

#[test]
fn environment_deploy_override_gets_its_own_project() {
    let bp = fixtures::example_edited(&[(
        "      pipeline: production\n",
        "      pipeline: production\n      deploy: {computeType: BUILD_GENERAL1_XLARGE}\n",
    )]);
    let state = render::compile(&bp).unwrap();
    let prod_projects = &state.pipelines[1].projects;
    assert!(prod_projects.contains(&"team-orders-orders-api-deploy-prod".to_string()));
    // No environment of that pipeline uses the shared deploy project any more; the other
    // pipeline's environments still do.
    assert!(!prod_projects.contains(&"team-orders-orders-api-deploy".to_string()));
    assert!(
        state.pipelines[0]
            .projects
            .contains(&"team-orders-orders-api-deploy".to_string())
    );
    let p = state
        .projects
        .iter()
        .find(|p| p.name.ends_with("deploy-prod"))
        .unwrap();
    assert_eq!(p.environment.compute_type, "BUILD_GENERAL1_XLARGE");
    assert_eq!(p.source.buildspec, "cicd/buildspecs/deploy.yml");
}

#[test]
fn file_path_filters_variables_and_rollback_render_into_v2_fields() {
    let bp = fixtures::example_edited(&[
        (
            "    defaultBranch: develop\n",
            "    defaultBranch: develop\n    filePaths: {includes: [\"src/**\"], excludes: [\"docs/**\"]}\n",
        ),
        (
            "  executionMode: QUEUED\n",
            "  executionMode: SUPERSEDED\n  rollbackOnFailure: true\n  variables:\n    - {name: RELEASE_NOTE, defaultValue: none, description: shown in deploy logs}\n",
        ),
    ]);
    let state = render::compile(&bp).unwrap();
    let main = &state.pipelines[0].pipeline;
    assert_eq!(main.execution_mode, "SUPERSEDED");
    let push = &main.triggers[0].git_configuration.push[0];
    let paths = push.file_paths.as_ref().expect("file-path filter");
    assert_eq!(
        (paths.includes.as_slice(), paths.excludes.as_slice()),
        (&["src/**".to_string()][..], &["docs/**".to_string()][..])
    );
    // The three run variables come first, then the spec's own.
    assert_eq!(main.variables.len(), 4);
    assert_eq!(main.variables[3].name, "RELEASE_NOTE");
    assert_eq!(main.variables[3].default_value.as_deref(), Some("none"));
    for stage in &main.stages {
        let rolls_back = stage.on_failure.as_ref().map(|f| f.result.as_str()) == Some("ROLLBACK");
        assert_eq!(
            rolls_back,
            stage.name.starts_with("deploy-"),
            "{}",
            stage.name
        );
    }
}

/// The example with pull-request builds, as a user writes them.
fn with_pull_requests(events: &str) -> DesiredState {
    let bp = fixtures::example_edited(&[(
        "  tags: {team: orders}",
        &format!(
            "  tags: {{team: orders}}\n  pullRequests: {{branches: [develop, \"release/*\"], events: {events}, stages: [lint, test]}}"
        ),
    )]);
    render::compile(&bp).expect("valid")
}

/// Pull requests build in a `-pr` pipeline of their own, PARALLEL so none waits behind a
/// release or another pull request, started only by its pull-request trigger and never
/// deploying (README, "Pull-request builds").
#[test]
fn pull_requests_build_in_a_parallel_pipeline_of_their_own() {
    let state = with_pull_requests("[OPEN, UPDATED]");
    let names = pipeline_names(&state);
    assert_eq!(
        names,
        [
            "team-orders-orders-api",
            "team-orders-orders-api-production",
            "team-orders-orders-api-pr"
        ]
    );
    for p in &state.pipelines[..2] {
        assert_eq!(p.pipeline.execution_mode, "QUEUED", "{}", p.pipeline.name);
    }
    let pr = &state.pipelines[2];
    assert_eq!(pr.pipeline.execution_mode, "PARALLEL");
    assert_eq!(pr.pipeline.pipeline_type, "V2");
    assert!(pr.environments.is_empty(), "a pull request never deploys");
    let stages: Vec<_> = pr.pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stages, ["Source", "lint", "test"]);
    let triggers = &pr.pipeline.triggers;
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].provider_type, "CodeStarSourceConnection");
    let git = &triggers[0].git_configuration;
    assert_eq!(git.source_action_name, "Source");
    assert!(git.push.is_empty(), "no push starts it: {git:?}");
    assert_eq!(git.pull_request.len(), 1);
    let filter = &git.pull_request[0];
    assert_eq!(filter.events, ["OPEN", "UPDATED"]);
    let branches = filter.branches.clone().expect("a branch filter");
    assert_eq!(branches.includes, ["develop", "release/*"]);
    assert!(branches.excludes.is_empty());
    // The branch pipelines keep their push triggers only.
    for p in &state.pipelines[..2] {
        for t in &p.pipeline.triggers {
            assert!(t.git_configuration.pull_request.is_empty(), "{t:?}");
        }
    }
}

/// `events` accepts CLOSED, as CodePipeline's GitPullRequestFilter does, but a closed pull
/// request has nothing to build: the trigger never carries it.
#[test]
fn a_closed_pull_request_is_accepted_and_never_triggers() {
    let state = with_pull_requests("[OPEN, CLOSED, UPDATED]");
    let pr = state.pipelines.last().expect("the -pr pipeline");
    assert_eq!(pr.pipeline.name, "team-orders-orders-api-pr");
    let filter = &pr.pipeline.triggers[0].git_configuration.pull_request[0];
    assert_eq!(filter.events, ["OPEN", "UPDATED"]);

    let only_closed = with_pull_requests("[CLOSED]");
    let names = pipeline_names(&only_closed);
    assert_eq!(
        names,
        [
            "team-orders-orders-api",
            "team-orders-orders-api-production"
        ],
        "no event builds: no pull-request pipeline"
    );
    let json = serde_json::to_string(&only_closed).expect("serializes");
    assert!(!json.contains("CLOSED"), "{json}");
}
