//! A `BranchPipeline` spec after validation: every default applied, every override resolved,
//! and every cross reference followed. Render consumes only this type, so no rendering code
//! needs to know how defaults inherit, nor that a class was merged in. Built only by
//! [`crate::validate::validate_effective`].

use std::collections::BTreeMap;

use crate::api::*;
use crate::class::Effective;

/// A valid spec, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedSpec {
    pub namespace: String,
    pub name: String,
    pub source: SourceSpec,
    /// `source.connectionArn`, the BranchPipeline's or its class's.
    pub connection_arn: String,
    pub pipeline_role_arn: String,
    pub build_role_arn: String,
    pub artifact_bucket: String,
    pub execution_mode: ExecutionMode,
    pub rollback_on_failure: bool,
    /// Build stages, in order.
    pub stages: Vec<BuildStage>,
    /// The deploy project every environment without its own deploy settings runs.
    pub deploy: Deploy,
    /// Environments, in spec order.
    pub environments: Vec<Environment>,
    pub variables: Vec<PipelineVariableSpec>,
    /// `spec.tags` over the class's; the ownership tags are added by render.
    pub tags: BTreeMap<String, String>,
    pub pull_requests: Option<PullRequests>,
    /// `spec.github.commitStatuses`.
    pub commit_statuses: bool,
}

/// Pull-request builds, resolved: the events as CodePipeline names them, and the stages run.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRequests {
    pub branches: Vec<String>,
    pub events: Vec<String>,
    /// Indices into `stages`, in order.
    pub stages: Vec<usize>,
}

/// Build settings with nothing left to inherit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    pub image: String,
    pub compute_type: ComputeType,
    pub environment_type: EnvironmentType,
    pub privileged: bool,
    pub timeout_minutes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildStage {
    pub name: String,
    /// Path of the buildspec in the repository, or an inline buildspec from a template: both
    /// are CodeBuild's `source.buildspec`.
    pub buildspec: String,
    pub settings: BuildSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    pub buildspec: String,
    pub settings: BuildSettings,
}

/// How an environment is fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// A push to one of its branches deploys it.
    Automatic,
    /// Only a run that targets it deploys it.
    Manual,
    /// It deploys what an earlier environment of the same pipeline deployed, in the same
    /// execution. `root` is the index of the environment at the start of the promotion chain.
    Promotion { from: String, root: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: String,
    /// Position in `spec.environments`, for field paths.
    pub index: usize,
    /// The pipeline group; `main` unless the spec names one.
    pub group: String,
    pub feed: Feed,
    /// Branch patterns that reach this environment: its own, or its promotion root's.
    pub branches: Vec<String>,
    pub approval: Option<ApprovalSpec>,
    pub variables: BTreeMap<String, String>,
    /// Its own deploy settings, when it overrides the shared deploy project.
    pub own_deploy: Option<BuildSettings>,
}

/// A pipeline group: one CodePipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Group<'a> {
    pub name: &'a str,
    pub environments: Vec<&'a Environment>,
}

impl ValidatedSpec {
    /// Groups in order of first appearance, so the default group usually comes first.
    pub fn groups(&self) -> Vec<Group<'_>> {
        let mut groups: Vec<Group<'_>> = Vec::new();
        for env in &self.environments {
            match groups.iter_mut().find(|g| g.name == env.group) {
                Some(g) => g.environments.push(env),
                None => groups.push(Group {
                    name: &env.group,
                    environments: vec![env],
                }),
            }
        }
        groups
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }
}

impl Environment {
    /// Whether a push to one of its branches deploys it (directly or by promotion).
    pub fn is_pushed(&self, spec: &ValidatedSpec) -> bool {
        match &self.feed {
            Feed::Automatic => true,
            Feed::Manual => false,
            Feed::Promotion { root, .. } => {
                matches!(spec.environments[*root].feed, Feed::Automatic)
            }
        }
    }
}

/// Builds the resolved spec. Assumes validation passed: references resolve, indices exist and
/// every field a class may provide is set.
pub(crate) fn resolve(namespace: &str, name: &str, effective: &Effective) -> ValidatedSpec {
    let spec = &effective.spec;
    let dir = spec.buildspec_dir.trim_end_matches('/');
    let stages = build_stages(effective);
    let deploy_settings = deploy_defaults(spec);
    let deploy = Deploy {
        buildspec: spec
            .deploy
            .as_ref()
            .and_then(|d| d.buildspec.clone())
            .or_else(|| effective.inline.deploy.clone())
            .unwrap_or_else(|| format!("{dir}/deploy.yml")),
        settings: deploy_settings.clone(),
    };
    let environments = spec
        .environments
        .iter()
        .enumerate()
        .map(|(index, env)| environment(spec, index, env, &deploy_settings))
        .collect();
    ValidatedSpec {
        namespace: namespace.to_string(),
        name: name.to_string(),
        source: spec.source.clone(),
        connection_arn: spec.source.connection_arn.clone().unwrap_or_default(),
        pipeline_role_arn: spec.pipeline_role_arn.clone().unwrap_or_default(),
        build_role_arn: spec.build_role_arn.clone().unwrap_or_default(),
        artifact_bucket: spec.artifact_bucket.clone().unwrap_or_default(),
        execution_mode: spec.execution_mode,
        rollback_on_failure: spec.rollback_on_failure,
        stages,
        deploy,
        environments,
        variables: spec.variables.clone(),
        tags: spec.tags.clone(),
        pull_requests: spec.pull_requests.as_ref().map(|p| PullRequests {
            branches: p.branches.clone(),
            events: p.events.iter().map(|e| e.as_str().to_string()).collect(),
            stages: spec
                .stages
                .iter()
                .enumerate()
                .filter(|(_, s)| p.stages.is_empty() || p.stages.contains(&s.name))
                .map(|(i, _)| i)
                .collect(),
        }),
        commit_statuses: spec.github.as_ref().is_some_and(|g| g.commit_statuses),
    }
}

/// Each stage's buildspec: its own path, else its template's inline buildspec, else the file
/// named after it.
fn build_stages(effective: &Effective) -> Vec<BuildStage> {
    let spec = &effective.spec;
    let dir = spec.buildspec_dir.trim_end_matches('/');
    spec.stages
        .iter()
        .map(|stage| BuildStage {
            name: stage.name.clone(),
            buildspec: stage
                .buildspec
                .clone()
                .or_else(|| effective.inline.stages.get(&stage.name).cloned())
                .unwrap_or_else(|| format!("{dir}/{}.yml", stage.name)),
            settings: with_overrides(&spec.defaults, &stage.overrides()),
        })
        .collect()
}

fn environment(
    spec: &BranchPipelineSpec,
    index: usize,
    env: &EnvironmentSpec,
    deploy: &BuildSettings,
) -> Environment {
    let root = promotion_root(spec, index);
    let feed = match (&env.promote_from, env.trigger) {
        (Some(from), _) => Feed::Promotion {
            from: from.clone(),
            root,
        },
        (None, Trigger::Automatic) => Feed::Automatic,
        (None, Trigger::Manual) => Feed::Manual,
    };
    Environment {
        name: env.name.clone(),
        index,
        group: env.group().to_string(),
        feed,
        branches: spec.environments[root].branches.clone().unwrap_or_default(),
        approval: env.approval.clone(),
        variables: env.variables.clone(),
        own_deploy: env.deploy.as_ref().map(|o| with_overrides_on(deploy, o)),
    }
}

/// Follows `promoteFrom` back to the environment that has branches. Validation guarantees each
/// step points strictly backwards, so this terminates; a dangling name stops where it is.
fn promotion_root(spec: &BranchPipelineSpec, mut i: usize) -> usize {
    while let Some(from) = spec.environments[i].promote_from.as_deref() {
        match spec.environments[..i].iter().position(|e| e.name == from) {
            Some(j) => i = j,
            None => break,
        }
    }
    i
}

/// The deploy project's settings: `spec.defaults` overridden by `spec.deploy`.
pub fn deploy_defaults(spec: &BranchPipelineSpec) -> BuildSettings {
    let o = spec
        .deploy
        .as_ref()
        .map(DeploySpec::overrides)
        .unwrap_or_default();
    with_overrides(&spec.defaults, &o)
}

/// `defaults` (unset fields take the built-in defaults) overridden by `o`.
pub fn with_overrides(defaults: &BuildDefaults, o: &BuildOverrides) -> BuildSettings {
    with_overrides_on(&with_overrides_on(&builtin(), &defaults.as_overrides()), o)
}

/// What a build gets when neither the BranchPipeline nor its class says otherwise.
pub fn builtin() -> BuildSettings {
    BuildSettings {
        image: DEFAULT_IMAGE.to_string(),
        compute_type: ComputeType::default(),
        environment_type: EnvironmentType::default(),
        privileged: false,
        timeout_minutes: DEFAULT_TIMEOUT_MINUTES,
    }
}

pub fn with_overrides_on(base: &BuildSettings, o: &BuildOverrides) -> BuildSettings {
    BuildSettings {
        image: o.image.clone().unwrap_or_else(|| base.image.clone()),
        compute_type: o.compute_type.unwrap_or(base.compute_type),
        environment_type: o.environment_type.unwrap_or(base.environment_type),
        privileged: o.privileged.unwrap_or(base.privileged),
        timeout_minutes: o.timeout_minutes.unwrap_or(base.timeout_minutes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> ValidatedSpec {
        let bp = crate::fixtures::example();
        crate::validate::validate(&bp).expect("the example is valid")
    }

    #[test]
    fn stages_inherit_defaults_field_by_field() {
        let spec = example();
        let test = &spec.stages[1];
        assert_eq!(test.settings.compute_type, ComputeType::General1Medium);
        assert_eq!(test.settings.timeout_minutes, 30);
        assert_eq!(test.buildspec, "cicd/buildspecs/test.yml");
        assert!(spec.stages[2].settings.privileged);
        assert!(!spec.stages[0].settings.privileged);
    }

    #[test]
    fn promotions_follow_their_root() {
        let spec = example();
        let perf = spec.environment("perf").expect("perf");
        assert_eq!(
            perf.feed,
            Feed::Promotion {
                from: "stage".into(),
                root: 2
            }
        );
        assert_eq!(perf.branches, ["release/*"]);
        assert!(perf.is_pushed(&spec));
        let qa = spec.environment("qa").expect("qa");
        assert_eq!(qa.feed, Feed::Manual);
        assert!(!qa.is_pushed(&spec));
    }

    #[test]
    fn groups_keep_first_appearance_order() {
        let spec = example();
        let groups = spec.groups();
        let names: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|g| {
                (
                    g.name,
                    g.environments.iter().map(|e| e.name.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("main", vec!["dev", "qa", "stage", "perf"]),
                ("production", vec!["prod"])
            ]
        );
    }

    #[test]
    fn an_environment_deploy_override_builds_on_the_deploy_defaults() {
        let mut spec = BranchPipelineSpec {
            deploy: Some(DeploySpec {
                compute_type: Some(ComputeType::General1Large),
                ..DeploySpec::default()
            }),
            ..crate::fixtures::example().spec
        };
        spec.environments[0].deploy = Some(BuildOverrides {
            timeout_minutes: Some(90),
            ..BuildOverrides::default()
        });
        let resolved = resolve(
            "ns",
            "n",
            &Effective {
                spec,
                inline: Default::default(),
            },
        );
        let own = resolved.environments[0]
            .own_deploy
            .clone()
            .expect("own deploy");
        assert_eq!(own.compute_type, ComputeType::General1Large);
        assert_eq!(own.timeout_minutes, 90);
        assert_eq!(resolved.deploy.settings.timeout_minutes, 30);
    }
}
