//! Compiles a validated `BranchPipeline` into the AWS state it should produce. Pure: no client,
//! no I/O, and the same input always gives the same bytes.
//!
//! Environments are grouped by `environments[].pipeline`; each group becomes one CodePipeline V2
//! pipeline that builds once (`spec.stages`) and then runs one `deploy-<env>` stage per
//! environment. Each environment stage has an entry condition (see [`routing`]) that lets in
//! exactly the pushes and runs meant for it, so one pipeline serves many branches.

pub mod branches;
mod checks;
pub mod model;
mod projects;
pub mod routing;
mod stages;

use std::collections::BTreeMap;

pub use model::*;
pub use stages::stage_name;

use crate::api::{BranchPipeline, BranchPipelineClass, DEFAULT_GROUP};
use crate::resolved::{Environment, Feed, Group, PullRequests, ValidatedSpec};
use crate::validate::{self, FieldError};
use crate::{class, naming};

pub const SOURCE_STAGE: &str = "Source";
pub const SOURCE_ACTION: &str = "Source";
pub const SOURCE_ARTIFACT: &str = "SourceOutput";
pub const SOURCE_NAMESPACE: &str = "SourceVariables";
pub const BUILD_ARTIFACT: &str = "BuildOutput";
pub const APPROVAL_ACTION: &str = "approve";
pub const DEPLOY_ACTION: &str = "deploy";
pub const DEPLOY_STAGE_PREFIX: &str = "deploy-";
/// The pipeline group name of the pull-request pipeline, `<namespace>-<name>-pr`.
pub const PULL_REQUEST_GROUP: &str = "pr";
pub const BRANCH_RULE: &str = "BranchFilter";
pub const BRANCH_VARIABLE: &str = "#{SourceVariables.BranchName}";

pub const TAG_NAMESPACE: &str = "branchpipeline.dev/namespace";
pub const TAG_NAME: &str = "branchpipeline.dev/name";
pub const TAG_MANAGED_BY: &str = "branchpipeline.dev/managed-by";
pub const MANAGER: &str = "branchpipeline-controller";

/// Validates and renders a resource that uses no class.
pub fn compile(bp: &BranchPipeline) -> Result<DesiredState, Vec<FieldError>> {
    render(&validate::validate(bp)?)
}

/// What the controller and `render -f` run on a resource: its class checked and merged in, the
/// result validated and held to the class's guardrails, then rendered. The rendering is a
/// function of the resource and its class alone (and, for a class restricted by
/// `guardrails.allowedNamespaces`, of whether the namespace may use it).
pub fn compile_with(
    bp: &BranchPipeline,
    class: Option<&BranchPipelineClass>,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<class::Compiled, class::Refusal> {
    class::compile(bp, class, namespace_labels)
}

/// Renders a validated spec. Errors are the AWS limits only the rendered form can show
/// (configuration sizes, trigger pattern counts), each naming the spec field to change.
pub fn render(spec: &ValidatedSpec) -> Result<DesiredState, Vec<FieldError>> {
    let projects = projects::for_spec(spec);
    let mut state = DesiredState::default();
    let mut errors = checks::projects(&projects.list);
    for group in spec.groups() {
        let pipeline = pipeline(spec, &group, &projects);
        errors.extend(checks::pipeline(spec, &group, &pipeline));
        state.pipelines.push(pipeline);
    }
    // Only CLOSED (accepted, never built) leaves no pull request to build: no `-pr` pipeline.
    if let Some(prs) = &spec.pull_requests
        && !stages::building_events(prs).is_empty()
    {
        state
            .pipelines
            .push(pull_request_pipeline(spec, prs, &projects));
    }
    state.projects = projects.list;
    if errors.is_empty() {
        Ok(state)
    } else {
        Err(errors)
    }
}

/// The ownership tags every managed resource carries, keyed by tag key.
pub fn owner_tags(namespace: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_MANAGED_BY.to_string(), MANAGER.to_string()),
        (TAG_NAME.to_string(), name.to_string()),
        (TAG_NAMESPACE.to_string(), namespace.to_string()),
    ])
}

/// Ownership tags plus `spec.tags`, sorted by key.
fn tags(spec: &ValidatedSpec) -> Vec<Tag> {
    let mut tags = owner_tags(&spec.namespace, &spec.name);
    tags.extend(spec.tags.clone());
    tags.into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect()
}

/// The branches of a group: every pattern an environment takes, and the automatic ones that go
/// into the push trigger.
struct Branches {
    /// Patterns that may start the pipeline: every environment's, plus the source branch.
    starting: Vec<String>,
    automatic: Vec<String>,
    /// What a manual start builds.
    source: String,
}

impl Branches {
    /// What a push or a console "Release change" can build: the trigger's patterns and the
    /// source branch.
    fn push_starting(&self) -> Vec<String> {
        let mut out = self.automatic.clone();
        if !branches::covers(&out, &self.source) {
            out.push(self.source.clone());
        }
        out
    }
}

fn group_branches(spec: &ValidatedSpec, group: &Group<'_>) -> Branches {
    let own = |env: &&&Environment| !matches!(env.feed, Feed::Promotion { .. });
    let all = unique(
        group
            .environments
            .iter()
            .filter(own)
            .flat_map(|e| &e.branches),
    );
    let automatic = unique(
        group
            .environments
            .iter()
            .filter(|e| e.feed == Feed::Automatic)
            .flat_map(|e| &e.branches),
    );
    let source = source_branch(spec, &all);
    let mut starting = all;
    if !branches::covers(&starting, &source) {
        starting.push(source.clone());
    }
    Branches {
        starting,
        automatic,
        source,
    }
}

fn pipeline(
    spec: &ValidatedSpec,
    group: &Group<'_>,
    projects: &projects::SpecProjects,
) -> DesiredPipeline {
    let suffix = (group.name != DEFAULT_GROUP).then_some(group.name);
    let name = naming::pipeline_name(&spec.namespace, &spec.name, suffix);
    let branches = group_branches(spec, group);

    let mut stage_list = vec![stages::source(
        spec,
        &branches.source,
        !branches.automatic.is_empty(),
    )];
    for (i, stage) in spec.stages.iter().enumerate() {
        let last = i + 1 == spec.stages.len();
        stage_list.push(stages::build(
            &stage.name,
            &projects.stage(&stage.name),
            last,
        ));
    }
    let push_starting = branches.push_starting();
    for env in &group.environments {
        stage_list.push(stages::environment(
            spec,
            env,
            &projects.deploy_for(env),
            &push_starting,
        ));
    }
    let triggers = if branches.automatic.is_empty() {
        Vec::new()
    } else {
        vec![stages::push_trigger(spec, branches.automatic.clone())]
    };
    let declaration = declaration(spec, name, stage_list, triggers);
    DesiredPipeline {
        pipeline: declaration,
        tags: tags(spec),
        environments: group.environments.iter().map(|e| e.name.clone()).collect(),
        branches: branches.starting,
        projects: projects.used_by(spec, group),
    }
}

/// Pull requests build in a pipeline of their own: the chosen build stages, no deploys, and
/// PARALLEL so a PR never queues behind a release (User Guide, "Set or change the pipeline
/// execution mode"). It builds what a pull-request trigger starts it with: the PR's head
/// ("Filter triggers on code push or pull requests").
fn pull_request_pipeline(
    spec: &ValidatedSpec,
    prs: &PullRequests,
    projects: &projects::SpecProjects,
) -> DesiredPipeline {
    let name = naming::pipeline_name(&spec.namespace, &spec.name, Some(PULL_REQUEST_GROUP));
    let mut stage_list = vec![stages::source(spec, &spec.source.default_branch, false)];
    let mut used = Vec::new();
    for (n, &i) in prs.stages.iter().enumerate() {
        let stage = &spec.stages[i];
        let project = projects.stage(&stage.name);
        stage_list.push(stages::build(
            &stage.name,
            &project,
            n + 1 == prs.stages.len(),
        ));
        used.push(project);
    }
    let mut declaration = declaration(
        spec,
        name,
        stage_list,
        vec![stages::pull_request_trigger(spec, prs)],
    );
    declaration.execution_mode = "PARALLEL".into();
    declaration
        .variables
        .retain(|v| !routing::RESERVED_VARIABLES.contains(&v.name.as_str()));
    DesiredPipeline {
        pipeline: declaration,
        tags: tags(spec),
        environments: Vec::new(),
        branches: Vec::new(),
        projects: used,
    }
}

fn declaration(
    spec: &ValidatedSpec,
    name: String,
    stages: Vec<Stage>,
    triggers: Vec<PipelineTrigger>,
) -> PipelineDeclaration {
    PipelineDeclaration {
        name,
        role_arn: spec.pipeline_role_arn.clone(),
        artifact_store: ArtifactStore {
            type_: "S3".into(),
            location: spec.artifact_bucket.clone(),
        },
        stages,
        version: None,
        execution_mode: spec.execution_mode.as_str().into(),
        pipeline_type: "V2".into(),
        variables: routing::variables()
            .into_iter()
            .chain(spec.variables.iter().map(|v| PipelineVariable {
                name: v.name.clone(),
                default_value: v.default_value.clone(),
                description: v.description.clone(),
            }))
            .collect(),
        triggers,
    }
}

/// The branch a manual start builds. The spec's default branch when this pipeline deploys it;
/// otherwise the pipeline's first literal branch, so that "Release change" on, say, the
/// production pipeline builds `main` rather than a branch no environment of it takes.
fn source_branch(spec: &ValidatedSpec, patterns: &[String]) -> String {
    let default = &spec.source.default_branch;
    if patterns.is_empty() || branches::covers(patterns, default) {
        return default.clone();
    }
    patterns
        .iter()
        .find(|p| branches::is_literal(p))
        .cloned()
        .unwrap_or_else(|| default.clone())
}

fn unique<'s>(items: impl Iterator<Item = &'s String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}
