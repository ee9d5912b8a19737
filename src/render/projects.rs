//! The CodeBuild projects of one BranchPipeline, shared by all its pipelines: one per build
//! stage, the deploy project, and one per environment with its own deploy settings. Sharing
//! them makes a stage's compute edit exactly one UpdateProject, and halves what the example
//! costs of the CodeBuild project quota (5,000 per region; CodeBuild User Guide, "Quotas").
//! Names are `<namespace>-<name>-<stage>`: the default pipeline group's name plus the stage, so
//! the projects that group used before sharing keep their names. Pure.

use super::model::*;
use super::{MANAGER, tags};
use crate::naming;
use crate::resolved::{BuildSettings, Environment, Group, ValidatedSpec};

/// The resource's projects, in creation order, and which one each action runs.
pub(super) struct SpecProjects {
    pub list: Vec<Project>,
    base: String,
}

impl SpecProjects {
    pub fn stage(&self, stage: &str) -> String {
        naming::project_name(&self.base, stage)
    }

    pub fn deploy_for(&self, env: &Environment) -> String {
        match env.own_deploy {
            Some(_) => naming::project_name(&self.base, &format!("deploy-{}", env.name)),
            None => naming::project_name(&self.base, "deploy"),
        }
    }

    /// The projects one pipeline group runs: every build stage's and its environments' deploys.
    pub fn used_by(&self, spec: &ValidatedSpec, group: &Group<'_>) -> Vec<String> {
        let mut names: Vec<String> = spec.stages.iter().map(|s| self.stage(&s.name)).collect();
        for env in &group.environments {
            let deploy = self.deploy_for(env);
            if !names.contains(&deploy) {
                names.push(deploy);
            }
        }
        names
    }
}

pub(super) fn for_spec(spec: &ValidatedSpec) -> SpecProjects {
    let mut projects = SpecProjects {
        list: Vec::new(),
        base: naming::pipeline_name(&spec.namespace, &spec.name, None),
    };
    let count = spec.stages.len();
    for (i, stage) in spec.stages.iter().enumerate() {
        let description = format!(
            "Build stage {} ({} of {count}) of {}/{}, managed by {MANAGER}",
            stage.name,
            i + 1,
            spec.namespace,
            spec.name
        );
        let name = projects.stage(&stage.name);
        projects.list.push(project(
            spec,
            name,
            description,
            &stage.buildspec,
            &stage.settings,
        ));
    }
    if spec.environments.iter().any(|e| e.own_deploy.is_none()) {
        let description = format!(
            "Deploy for {}/{}, managed by {MANAGER}",
            spec.namespace, spec.name
        );
        let name = naming::project_name(&projects.base, "deploy");
        projects.list.push(project(
            spec,
            name,
            description,
            &spec.deploy.buildspec,
            &spec.deploy.settings,
        ));
    }
    for env in &spec.environments {
        if let Some(settings) = &env.own_deploy {
            let description = format!(
                "Deploy to {} of {}/{}, managed by {MANAGER}",
                env.name, spec.namespace, spec.name
            );
            let name = projects.deploy_for(env);
            projects.list.push(project(
                spec,
                name,
                description,
                &spec.deploy.buildspec,
                settings,
            ));
        }
    }
    projects
}

fn project(
    spec: &ValidatedSpec,
    name: String,
    description: String,
    buildspec: &str,
    s: &BuildSettings,
) -> Project {
    Project {
        name,
        description,
        source: ProjectSource {
            type_: "CODEPIPELINE".into(),
            buildspec: buildspec.to_string(),
        },
        artifacts: ProjectArtifacts {
            type_: "CODEPIPELINE".into(),
        },
        environment: ProjectEnvironment {
            type_: s.environment_type.as_str().into(),
            image: s.image.clone(),
            compute_type: s.compute_type.as_str().into(),
            privileged_mode: s.privileged,
            image_pull_credentials_type: "CODEBUILD".into(),
        },
        service_role: spec.build_role_arn.clone(),
        timeout_in_minutes: i32::try_from(s.timeout_minutes).unwrap_or(i32::MAX),
        tags: tags(spec),
    }
}
