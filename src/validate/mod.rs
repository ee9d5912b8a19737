//! Rules the OpenAPI schema cannot express, or that some API servers do not enforce, and the
//! resolved spec a valid resource becomes.
//!
//! Every problem is reported (not just the first), each naming the field path, what is wrong and
//! how to fix it. The controller runs this before any AWS call; `render -f` runs it too. The
//! limits, each with its source, are in [`limits`]; single-value rules in [`rules`].

pub mod class;
pub mod limits;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::api::*;
use crate::class::Effective;
use crate::resolved::{self, ValidatedSpec};
use limits::*;

/// One problem with a manifest, located by its field path (`spec.environments[2].promoteFrom`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::error::Error for FieldError {}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Tags per resource less the three ownership tags the controller sets itself.
pub const MAX_USER_TAGS: usize = MAX_TAGS - 3;
pub const RESERVED_TAG_PREFIX: &str = "branchpipeline.dev/";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static pattern compiles")
}

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| re(NAME_PATTERN));
static REPOSITORY_RE: LazyLock<Regex> = LazyLock::new(|| re(REPOSITORY_PATTERN));
static CONNECTION_ARN_RE: LazyLock<Regex> = LazyLock::new(|| re(CONNECTION_ARN_PATTERN));
static ROLE_ARN_RE: LazyLock<Regex> = LazyLock::new(|| re(ROLE_ARN_PATTERN));
static SNS_ARN_RE: LazyLock<Regex> = LazyLock::new(|| re(SNS_ARN_PATTERN));
static BUCKET_RE: LazyLock<Regex> = LazyLock::new(|| re(BUCKET_PATTERN));
static VARIABLE_NAME_RE: LazyLock<Regex> = LazyLock::new(|| re(VARIABLE_NAME_PATTERN));
static ENV_VAR_NAME_RE: LazyLock<Regex> = LazyLock::new(|| re(ENV_VAR_NAME_PATTERN));
static DNS_SUBDOMAIN_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"));
static IPV4_RE: LazyLock<Regex> = LazyLock::new(|| re(r"^\d+\.\d+\.\d+\.\d+$"));

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }
}

/// Validates a whole resource that uses no class, and resolves it for render.
pub fn validate(bp: &BranchPipeline) -> Result<ValidatedSpec, Vec<FieldError>> {
    validate_effective(bp, &crate::class::merge(&bp.spec, None)?)
}

/// Validates a resource's spec with its class merged in ([`crate::class::merge`]), and
/// resolves it for render. The metadata is `bp`'s own.
pub fn validate_effective(
    bp: &BranchPipeline,
    effective: &Effective,
) -> Result<ValidatedSpec, Vec<FieldError>> {
    let mut errs = Errors::default();
    metadata(bp, &mut errs);
    spec(&effective.spec, &mut errs);
    if !errs.0.is_empty() {
        return Err(errs.0);
    }
    Ok(resolved::resolve(
        bp.metadata.namespace.as_deref().unwrap_or_default(),
        bp.metadata.name.as_deref().unwrap_or_default(),
        effective,
    ))
}

/// A field a class may provide, missing from both.
fn required<'a>(
    path: &str,
    class_field: &str,
    value: Option<&'a str>,
    errs: &mut Errors,
) -> Option<&'a str> {
    if value.is_none() {
        errs.push(
            path,
            format!("is required; set it here, or in the BranchPipelineClass's spec.defaults.{class_field} (spec.className)"),
        );
    }
    value
}

/// The API server enforces these for stored objects; `render -f` reads files it never saw.
fn metadata(bp: &BranchPipeline, errs: &mut Errors) {
    match bp.metadata.name.as_deref() {
        None | Some("") => errs.push("metadata.name", "is required; set the resource name"),
        Some(name) if name.len() > 253 || !DNS_SUBDOMAIN_RE.is_match(name) => errs.push(
            "metadata.name",
            format!("{name:?} is not a valid Kubernetes name; use lowercase letters, digits, '-' and '.'"),
        ),
        Some(_) => {}
    }
    match bp.metadata.namespace.as_deref() {
        None | Some("") => errs.push(
            "metadata.namespace",
            "is required because it is part of every AWS name; set metadata.namespace",
        ),
        Some(ns) if ns.len() > 63 || !NAME_RE.is_match(ns) => errs.push(
            "metadata.namespace",
            format!("{ns:?} is not a valid namespace name; use lowercase letters, digits and '-'"),
        ),
        Some(_) => {}
    }
}

fn spec(spec: &BranchPipelineSpec, errs: &mut Errors) {
    source(&spec.source, errs);
    let role = spec.pipeline_role_arn.as_deref();
    if let Some(arn) = required("spec.pipelineRoleArn", "pipelineRoleArn", role, errs) {
        role_arn("spec.pipelineRoleArn", arn, errs);
    }
    let role = spec.build_role_arn.as_deref();
    if let Some(arn) = required("spec.buildRoleArn", "buildRoleArn", role, errs) {
        role_arn("spec.buildRoleArn", arn, errs);
    }
    let name = spec.artifact_bucket.as_deref();
    if let Some(name) = required("spec.artifactBucket", "artifactBucket", name, errs) {
        bucket("spec.artifactBucket", name, errs);
    }
    relative_path("spec.buildspecDir", &spec.buildspec_dir, errs);
    if spec.execution_mode == ExecutionMode::Parallel && spec.rollback_on_failure {
        errs.push(
            "spec.rollbackOnFailure",
            "rollback is not supported with executionMode PARALLEL; set executionMode to QUEUED or SUPERSEDED, or remove rollbackOnFailure",
        );
    }
    build_defaults("spec.defaults", &spec.defaults, errs);
    stages(spec, errs);
    if let Some(deploy) = &spec.deploy {
        if let Some(path) = &deploy.buildspec {
            relative_path("spec.deploy.buildspec", path, errs);
        }
        overrides("spec.deploy", &deploy.overrides(), &spec.defaults, errs);
    }
    environments(spec, errs);
    if let Some(prs) = &spec.pull_requests {
        pull_requests(spec, prs, errs);
    }
    variables(&spec.variables, errs);
    tags("spec.tags", &spec.tags, errs);
    update_policy(spec, errs);
}

fn update_policy(spec: &BranchPipelineSpec, errs: &mut Errors) {
    use crate::reconcile::deferral::{MAX_WAIT_MAX, MAX_WAIT_MIN};
    let Some(max_wait) = spec
        .update_policy
        .as_ref()
        .and_then(|p| p.max_wait.as_deref())
    else {
        return;
    };
    if let Err(e) = crate::duration::parse_within(max_wait, MAX_WAIT_MIN, MAX_WAIT_MAX) {
        errs.push("spec.updatePolicy.maxWait", e);
    }
}

fn source(source: &SourceSpec, errs: &mut Errors) {
    const PATH: &str = "spec.source.connectionArn";
    let arn = source.connection_arn.as_deref();
    if let Some(arn) = required(PATH, "connectionArn", arn, errs) {
        connection_arn(PATH, arn, errs);
    }
    if !REPOSITORY_RE.is_match(&source.repository) {
        errs.push(
            "spec.source.repository",
            format!(
                "{:?} is not owner/name; use the form acme/orders-api",
                source.repository
            ),
        );
    }
    if let Err(message) = rules::branch(&source.default_branch, false) {
        errs.push("spec.source.defaultBranch", message);
    }
    if let Some(filter) = &source.file_paths {
        if filter.includes.is_empty() && filter.excludes.is_empty() {
            errs.push(
                "spec.source.filePaths",
                "needs at least one include or exclude pattern; add one or remove filePaths",
            );
        }
        pattern_list(
            "spec.source.filePaths.includes",
            &filter.includes,
            true,
            rules::file_pattern,
            errs,
        );
        pattern_list(
            "spec.source.filePaths.excludes",
            &filter.excludes,
            true,
            rules::file_pattern,
            errs,
        );
    }
}

fn connection_arn(path: &str, arn: &str, errs: &mut Errors) {
    if !CONNECTION_ARN_RE.is_match(arn) {
        errs.push(
            path,
            format!(
                "{arn:?} is not a connection ARN; use arn:aws:codeconnections:<region>:<account>:connection/<id>"
            ),
        );
    }
}

fn role_arn(path: &str, arn: &str, errs: &mut Errors) {
    if !ROLE_ARN_RE.is_match(arn) {
        errs.push(
            path,
            format!("{arn:?} is not an IAM role ARN; use arn:aws:iam::<account>:role/<name>"),
        );
    }
}

/// S3 general purpose bucket naming rules (Amazon S3 User Guide, "Bucket naming rules").
fn bucket(path: &str, name: &str, errs: &mut Errors) {
    let why = if !BUCKET_RE.is_match(name) {
        Some(
            "must be 3-63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit",
        )
    } else if name.contains("..") {
        Some("must not contain two adjacent dots")
    } else if IPV4_RE.is_match(name) {
        Some("must not be formatted as an IP address")
    } else if ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        Some("must not start with a prefix S3 reserves (xn--, sthree-, amzn-s3-demo-)")
    } else if ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
        .iter()
        .any(|s| name.ends_with(s))
    {
        Some(
            "must not end with a suffix S3 reserves (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)",
        )
    } else {
        None
    };
    if let Some(why) = why {
        errs.push(
            path,
            format!("{name:?} is not a valid S3 bucket name: it {why}"),
        );
    }
}

fn relative_path(path: &str, value: &str, errs: &mut Errors) {
    if let Err(message) = rules::relative_path(value) {
        errs.push(path, message);
    }
}

/// A name that ends up inside AWS stage or resource names: lowercase, digits and '-', within
/// the length its rendered use allows (see [`limits`]).
fn dns_label(path: &str, what: &str, name: &str, max: usize, errs: &mut Errors) {
    if name.len() > max || !NAME_RE.is_match(name) {
        errs.push(
            path,
            format!(
                "{what} {name:?} must be 1-{max} lowercase letters, digits or '-', starting and ending with a letter or digit"
            ),
        );
    }
}

/// A list of trigger filter globs; `check` judges each pattern.
fn pattern_list(
    path: &str,
    patterns: &[String],
    allow_empty: bool,
    check: fn(&str) -> Result<(), String>,
    errs: &mut Errors,
) {
    if (!allow_empty && patterns.is_empty()) || patterns.len() > MAX_PATTERNS {
        errs.push(
            path,
            format!(
                "has {} patterns; a filter list takes 1-{MAX_PATTERNS}, so merge patterns with wildcards",
                patterns.len()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, p) in patterns.iter().enumerate() {
        if let Err(message) = check(p) {
            errs.push(format!("{path}[{i}]"), message);
        }
        if !seen.insert(p) {
            errs.push(
                format!("{path}[{i}]"),
                format!("{p:?} is listed twice; remove the duplicate"),
            );
        }
    }
}

fn timeout(path: &str, minutes: u32, errs: &mut Errors) {
    if !(MIN_TIMEOUT_MINUTES..=MAX_TIMEOUT_MINUTES).contains(&minutes) {
        errs.push(
            path,
            format!("{minutes} is out of range; CodeBuild takes {MIN_TIMEOUT_MINUTES}-{MAX_TIMEOUT_MINUTES} minutes"),
        );
    }
}

fn build_defaults(base: &str, defaults: &BuildDefaults, errs: &mut Errors) {
    if let Some(minutes) = defaults.timeout_minutes {
        timeout(&format!("{base}.timeoutMinutes"), minutes, errs);
    }
    if defaults
        .image
        .as_deref()
        .is_some_and(|i| i.trim().is_empty())
    {
        errs.push(
            format!("{base}.image"),
            "must not be empty; name a CodeBuild image",
        );
    }
    let s = resolved::with_overrides(defaults, &BuildOverrides::default());
    compute_fits(
        base,
        base,
        s.compute_type,
        s.environment_type,
        s.privileged,
        errs,
    );
}

/// Lambda compute only runs on Lambda environment types, and the reverse; Lambda builds cannot
/// run Docker, so no privileged mode (CodeBuild User Guide, "Build environment compute modes").
fn compute_fits(
    base: &str,
    set_at: &str,
    compute: ComputeType,
    env: EnvironmentType,
    privileged: bool,
    errs: &mut Errors,
) {
    if compute.is_lambda() && !env.is_lambda() {
        errs.push(
            format!("{set_at}.computeType"),
            format!(
                "{} needs environmentType LINUX_LAMBDA_CONTAINER or ARM_LAMBDA_CONTAINER, but {base} uses {}; set {base}.environmentType or pick a BUILD_GENERAL1 compute type",
                compute.as_str(),
                env.as_str()
            ),
        );
    } else if env.is_lambda() && !compute.is_lambda() {
        errs.push(
            format!("{set_at}.environmentType"),
            format!(
                "{} needs a BUILD_LAMBDA_* compute type, but {base} uses {}; set {base}.computeType",
                env.as_str(),
                compute.as_str()
            ),
        );
    }
    if privileged && (compute.is_lambda() || env.is_lambda()) {
        errs.push(
            format!("{set_at}.privileged"),
            "Lambda compute cannot run privileged (Docker) builds; remove privileged or use BUILD_GENERAL1 compute",
        );
    }
}

/// Checks a stage's (or deploy's) overrides on top of the defaults it inherits.
fn overrides(base: &str, o: &BuildOverrides, defaults: &BuildDefaults, errs: &mut Errors) {
    overrides_on(
        base,
        o,
        &resolved::with_overrides(defaults, &BuildOverrides::default()),
        errs,
    );
}

fn overrides_on(
    base: &str,
    o: &BuildOverrides,
    defaults: &resolved::BuildSettings,
    errs: &mut Errors,
) {
    if let Some(minutes) = o.timeout_minutes {
        timeout(&format!("{base}.timeoutMinutes"), minutes, errs);
    }
    if o.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
        errs.push(
            format!("{base}.image"),
            "must not be empty; name a CodeBuild image or omit it",
        );
    }
    // Report at the field the stage set, so the fix lands where the conflict was introduced;
    // a conflict purely within the defaults is reported once, at spec.defaults.
    if o.compute_type.is_none() && o.environment_type.is_none() && o.privileged.is_none() {
        return;
    }
    let compute = o.compute_type.unwrap_or(defaults.compute_type);
    let env = o.environment_type.unwrap_or(defaults.environment_type);
    let privileged = o.privileged.unwrap_or(defaults.privileged);
    compute_fits(base, base, compute, env, privileged, errs);
}

fn stages(spec: &BranchPipelineSpec, errs: &mut Errors) {
    if spec.stages.is_empty() {
        errs.push(
            "spec.stages",
            "needs at least one build stage, e.g. - name: build",
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, stage) in spec.stages.iter().enumerate() {
        let base = format!("spec.stages[{i}]");
        dns_label(
            &format!("{base}.name"),
            "stage name",
            &stage.name,
            STAGE_NAME_MAX,
            errs,
        );
        if let Some(first) = seen.insert(&stage.name, i) {
            errs.push(
                format!("{base}.name"),
                format!("stage {:?} is already defined at spec.stages[{first}]; stage names must be unique", stage.name),
            );
        }
        // `deploy` and `deploy-*` name the deploy projects and environment stages.
        if stage.name == "deploy" || stage.name.starts_with("deploy-") || stage.name == "source" {
            errs.push(
                format!("{base}.name"),
                format!(
                    "{:?} is reserved for the source and deploy stages; rename the build stage",
                    stage.name
                ),
            );
        }
        if let Some(path) = &stage.buildspec {
            relative_path(&format!("{base}.buildspec"), path, errs);
        }
        overrides(&base, &stage.overrides(), &spec.defaults, errs);
    }
}

fn environments(spec: &BranchPipelineSpec, errs: &mut Errors) {
    if spec.environments.is_empty() {
        errs.push(
            "spec.environments",
            "needs at least one environment, e.g. - name: dev, branches: [main]",
        );
    }
    // Names seen so far, so promoteFrom can only point backwards.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, env) in spec.environments.iter().enumerate() {
        let base = format!("spec.environments[{i}]");
        environment_names(&base, i, env, &mut index, errs);
        match (&env.branches, &env.promote_from) {
            (Some(_), Some(_)) => errs.push(
                base.clone(),
                "sets both branches and promoteFrom; an environment is fed either by branches or by promotion, so keep one",
            ),
            (None, None) => errs.push(
                base.clone(),
                "needs branches (the branches that deploy here) or promoteFrom (an earlier environment to promote from)",
            ),
            (Some(branches), None) => pattern_list(
                &format!("{base}.branches"),
                branches,
                false,
                |p| rules::branch(p, true),
                errs,
            ),
            (None, Some(from)) => promote_from(spec, i, from, &index, errs),
        }
        if env.promote_from.is_some() && env.trigger == Trigger::Manual {
            errs.push(
                format!("{base}.trigger"),
                "has no effect on a promoted environment, which follows its source; remove trigger or use approval to gate it",
            );
        }
        if let Some(approval) = &env.approval {
            approval_settings(&base, approval, errs);
        }
        deploy_variables(&base, &env.variables, errs);
        if let Some(deploy) = &env.deploy {
            overrides_on(
                &format!("{base}.deploy"),
                deploy,
                &resolved::deploy_defaults(spec),
                errs,
            );
        }
    }
    group_sizes(spec, errs);
}

fn environment_names<'a>(
    base: &str,
    i: usize,
    env: &'a EnvironmentSpec,
    index: &mut HashMap<&'a str, usize>,
    errs: &mut Errors,
) {
    dns_label(
        &format!("{base}.name"),
        "environment name",
        &env.name,
        ENVIRONMENT_NAME_MAX,
        errs,
    );
    if let Some(first) = index.get(env.name.as_str()) {
        errs.push(
            format!("{base}.name"),
            format!("environment {:?} is already defined at spec.environments[{first}]; environment names must be unique", env.name),
        );
    } else {
        index.insert(&env.name, i);
    }
    if let Some(group) = &env.pipeline {
        dns_label(
            &format!("{base}.pipeline"),
            "pipeline group",
            group,
            GROUP_NAME_MAX,
            errs,
        );
        if group == crate::render::PULL_REQUEST_GROUP {
            errs.push(
                format!("{base}.pipeline"),
                "\"pr\" names the pull-request pipeline; choose another group name",
            );
        }
    }
}

fn pull_requests(spec: &BranchPipelineSpec, prs: &PullRequestSpec, errs: &mut Errors) {
    pattern_list(
        "spec.pullRequests.branches",
        &prs.branches,
        false,
        |p| rules::branch(p, true),
        errs,
    );
    if prs.events.is_empty() {
        errs.push(
            "spec.pullRequests.events",
            "needs OPEN, UPDATED or both; remove pullRequests to build no pull request",
        );
    }
    for (i, stage) in prs.stages.iter().enumerate() {
        if !spec.stages.iter().any(|s| &s.name == stage) {
            errs.push(
                format!("spec.pullRequests.stages[{i}]"),
                format!("there is no build stage {stage:?}; name one of spec.stages"),
            );
        }
    }
}

fn approval_settings(base: &str, approval: &ApprovalSpec, errs: &mut Errors) {
    if let Some(arn) = &approval.notification_arn
        && !SNS_ARN_RE.is_match(arn)
    {
        errs.push(
            format!("{base}.approval.notificationArn"),
            format!("{arn:?} is not an SNS topic ARN; use arn:aws:sns:<region>:<account>:<topic>"),
        );
    }
    if approval
        .custom_data
        .as_ref()
        .is_some_and(|d| d.is_empty() || d.chars().count() > MAX_APPROVAL_TEXT)
    {
        errs.push(
            format!("{base}.approval.customData"),
            format!("must be 1-{MAX_APPROVAL_TEXT} characters long"),
        );
    }
}

/// The deploy action's extra environment variables (CodeBuild EnvironmentVariable `name`).
fn deploy_variables(base: &str, variables: &BTreeMap<String, String>, errs: &mut Errors) {
    for key in variables.keys() {
        if !ENV_VAR_NAME_RE.is_match(key) {
            errs.push(
                format!("{base}.variables.{key}"),
                "is not a valid environment variable name; use letters, digits and _, not starting with a digit",
            );
        } else if key == "DEPLOY_ENV" || key.starts_with("CODEBUILD_") {
            errs.push(
                format!("{base}.variables.{key}"),
                "is set by the controller or CodeBuild; choose another name",
            );
        }
    }
}

fn promote_from(
    spec: &BranchPipelineSpec,
    i: usize,
    from: &str,
    earlier: &HashMap<&str, usize>,
    errs: &mut Errors,
) {
    let path = format!("spec.environments[{i}].promoteFrom");
    let env = &spec.environments[i];
    match earlier.get(from) {
        None => {
            let later = spec.environments[i..].iter().any(|e| e.name == from);
            let hint = if later {
                "it is defined later; move it before this environment"
            } else {
                "no environment has that name; name an earlier environment"
            };
            errs.push(path, format!("{from:?} is not an earlier environment: {hint}"));
        }
        Some(&j) if spec.environments[j].group() != env.group() => errs.push(
            path,
            format!(
                "{from:?} is in pipeline {:?} but this environment is in {:?}; promotion stays within one pipeline, so set the same pipeline on both",
                spec.environments[j].group(),
                env.group()
            ),
        ),
        Some(_) => {}
    }
}

fn group_sizes(spec: &BranchPipelineSpec, errs: &mut Errors) {
    let mut per_group: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, env) in spec.environments.iter().enumerate() {
        let count = per_group.entry(env.group()).or_default();
        *count += 1;
        // Source stage + build stages + one stage per environment.
        let stages = 1 + spec.stages.len() + *count;
        if stages == MAX_STAGES_PER_PIPELINE + 1 {
            errs.push(
                format!("spec.environments[{i}]"),
                format!(
                    "pipeline {:?} would have more than {MAX_STAGES_PER_PIPELINE} stages (source, {} build stages and its environments); move environments to another pipeline group",
                    env.group(),
                    spec.stages.len()
                ),
            );
        }
    }
}

fn variables(vars: &[PipelineVariableSpec], errs: &mut Errors) {
    let reserved = crate::render::routing::RESERVED_VARIABLES;
    let room = MAX_PIPELINE_VARIABLES - reserved.len();
    if vars.len() > room {
        errs.push(
            "spec.variables",
            format!("has {} variables; a pipeline takes {MAX_PIPELINE_VARIABLES} and the controller declares {}, so keep at most {room}", vars.len(), reserved.len()),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, var) in vars.iter().enumerate() {
        let path = format!("spec.variables[{i}].name");
        if reserved.contains(&var.name.as_str()) {
            errs.push(
                &path,
                format!(
                    "{:?} is declared by the controller to route BranchPipelineRuns; choose another name",
                    var.name
                ),
            );
        }
        if !VARIABLE_NAME_RE.is_match(&var.name) {
            errs.push(
                &path,
                format!(
                    "{:?} must be 1-128 characters of letters, digits, @, _ or -",
                    var.name
                ),
            );
        }
        if !seen.insert(&var.name) {
            errs.push(
                &path,
                format!(
                    "variable {:?} is defined twice; names must be unique",
                    var.name
                ),
            );
        }
        if var
            .default_value
            .as_ref()
            .is_some_and(|v| v.is_empty() || v.chars().count() > MAX_VARIABLE_VALUE)
        {
            errs.push(
                format!("spec.variables[{i}].defaultValue"),
                format!("must be 1-{MAX_VARIABLE_VALUE} characters long"),
            );
        }
    }
}

fn tags(base: &str, tags: &BTreeMap<String, String>, errs: &mut Errors) {
    if tags.len() > MAX_USER_TAGS {
        errs.push(
            base,
            format!("has {} tags; AWS allows {MAX_TAGS} per resource and the controller uses 3, so keep at most {MAX_USER_TAGS}", tags.len()),
        );
    }
    for (key, value) in tags {
        let path = format!("{base}.{key}");
        if let Err(message) = rules::tag_key(key, RESERVED_TAG_PREFIX) {
            errs.push(&path, message);
        }
        if let Err(message) = rules::tag_value(value) {
            errs.push(&path, message);
        }
    }
}
