//! The CodeBuild projects of one pipeline: one per build stage, the shared deploy project, and
//! one per environment with its own deploy settings. Pure.

use super::model::*;
use super::{MANAGER, tags};
use crate::naming;
use crate::resolved::{BuildSettings, Environment, Group, ValidatedSpec};

/// A group's projects, in creation order, and which one each action runs.
pub(super) struct GroupProjects {
    pub list: Vec<Project>,
    pipeline: String,
}

impl GroupProjects {
    pub fn stage(&self, stage: &str) -> String {
        naming::project_name(&self.pipeline, stage)
    }

    pub fn deploy_for(&self, env: &Environment) -> String {
        match env.own_deploy {
            Some(_) => naming::project_name(&self.pipeline, &format!("deploy-{}", env.name)),
            None => naming::project_name(&self.pipeline, "deploy"),
        }
    }
}

pub(super) fn for_group(spec: &ValidatedSpec, group: &Group<'_>, pipeline: &str) -> GroupProjects {
    let mut projects = GroupProjects {
        list: Vec::new(),
        pipeline: pipeline.to_string(),
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
    if group.environments.iter().any(|e| e.own_deploy.is_none()) {
        let description = format!(
            "Deploy for {}/{}, managed by {MANAGER}",
            spec.namespace, spec.name
        );
        let name = naming::project_name(pipeline, "deploy");
        projects.list.push(project(
            spec,
            name,
            description,
            &spec.deploy.buildspec,
            &spec.deploy.settings,
        ));
    }
    for env in &group.environments {
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
