//! The merge rules: a BranchPipeline's spec with its class applied. Pure.
//!
//! | what | rule |
//! | --- | --- |
//! | `source.connectionArn`, `pipelineRoleArn`, `buildRoleArn`, `artifactBucket` | the BranchPipeline's, else the class's `defaults` |
//! | `spec.defaults` | field by field: the BranchPipeline's, else the class's `defaults.build`, else built in |
//! | `spec.deploy` | field by field (`buildspec`, `template`, each build setting) over the class's `defaults.deploy` |
//! | `spec.tags` | the class's `defaults.tags`, with the BranchPipeline's winning key by key |
//! | an environment's `approval` | the first class approval whose pattern matches the environment's name: it adds an approval, or fills in the fields the environment's own leaves unset |
//! | a stage (or deploy) with `template` | its own fields win; unset build settings come from the template; without its own `buildspec` path it runs the template's inline buildspec |
//!
//! Guardrails are checked after the merge, on its result ([`super::guardrails`]).

use std::collections::BTreeMap;

use crate::api::*;
use crate::validate::FieldError;

/// A spec with its class merged in: what validation and render read.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// Every field the class provides filled in; `template` references applied and cleared.
    pub spec: BranchPipelineSpec,
    /// Inline buildspecs from templates, for stages (and the deploy) that have no path.
    pub inline: Inline,
}

/// Inline buildspecs, rendered as CodeBuild `source.buildspec` as they are.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inline {
    /// By stage name.
    pub stages: BTreeMap<String, String>,
    pub deploy: Option<String>,
}

/// Applies `class` (if any) to `spec`. Errors are template names the class does not have.
pub fn merge(
    spec: &BranchPipelineSpec,
    class: Option<&BranchPipelineClass>,
) -> Result<Effective, Vec<FieldError>> {
    let mut out = spec.clone();
    if let Some(class) = class {
        defaults(&mut out, &class.spec.defaults);
    }
    let mut inline = Inline::default();
    let mut errors = Vec::new();
    for (i, stage) in out.stages.iter_mut().enumerate() {
        let Some(name) = stage.template.take() else {
            continue;
        };
        match find(class, &name, &format!("spec.stages[{i}].template")) {
            Ok(template) => {
                fill(stage_overrides(stage), &template.overrides());
                if stage.buildspec.is_none()
                    && let Some(buildspec) = &template.buildspec
                {
                    inline.stages.insert(stage.name.clone(), buildspec.clone());
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(deploy) = out.deploy.as_mut()
        && let Some(name) = deploy.template.take()
    {
        match find(class, &name, "spec.deploy.template") {
            Ok(template) => {
                fill(deploy_overrides(deploy), &template.overrides());
                if deploy.buildspec.is_none() {
                    inline.deploy = template.buildspec.clone();
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(Effective { spec: out, inline })
    } else {
        Err(errors)
    }
}

/// The class's defaults under the spec's own values.
fn defaults(out: &mut BranchPipelineSpec, d: &ClassDefaults) {
    or_class(&mut out.source.connection_arn, &d.connection_arn);
    or_class(&mut out.pipeline_role_arn, &d.pipeline_role_arn);
    or_class(&mut out.build_role_arn, &d.build_role_arn);
    or_class(&mut out.artifact_bucket, &d.artifact_bucket);
    out.defaults = layered_defaults(&out.defaults, &d.build);
    out.deploy = match (out.deploy.take(), &d.deploy) {
        (Some(own), Some(class)) => Some(layered_deploy(&own, class)),
        (own, class) => own.or_else(|| class.clone()),
    };
    let mut tags = d.tags.clone();
    tags.extend(std::mem::take(&mut out.tags));
    out.tags = tags;
    for env in &mut out.environments {
        let Some(class) = d
            .approvals
            .iter()
            .find(|a| super::glob_matches(&a.environment, &env.name))
        else {
            continue;
        };
        let approval = env.approval.get_or_insert_with(ApprovalSpec::default);
        or_class(&mut approval.notification_arn, &class.notification_arn);
        or_class(&mut approval.custom_data, &class.custom_data);
    }
}

fn or_class<T: Clone>(own: &mut Option<T>, class: &Option<T>) {
    if own.is_none() {
        own.clone_from(class);
    }
}

fn layered_defaults(own: &BuildDefaults, class: &BuildDefaults) -> BuildDefaults {
    BuildDefaults {
        image: own.image.clone().or_else(|| class.image.clone()),
        compute_type: own.compute_type.or(class.compute_type),
        environment_type: own.environment_type.or(class.environment_type),
        privileged: own.privileged.or(class.privileged),
        timeout_minutes: own.timeout_minutes.or(class.timeout_minutes),
    }
}

fn layered_deploy(own: &DeploySpec, class: &DeploySpec) -> DeploySpec {
    let mut out = own.clone();
    or_class(&mut out.buildspec, &class.buildspec);
    or_class(&mut out.template, &class.template);
    fill(deploy_overrides(&mut out), &class.overrides());
    out
}

/// The build-setting fields of a stage, to fill in place.
struct OverridesMut<'a> {
    image: &'a mut Option<String>,
    compute_type: &'a mut Option<ComputeType>,
    environment_type: &'a mut Option<EnvironmentType>,
    privileged: &'a mut Option<bool>,
    timeout_minutes: &'a mut Option<u32>,
}

fn stage_overrides(s: &mut StageSpec) -> OverridesMut<'_> {
    OverridesMut {
        image: &mut s.image,
        compute_type: &mut s.compute_type,
        environment_type: &mut s.environment_type,
        privileged: &mut s.privileged,
        timeout_minutes: &mut s.timeout_minutes,
    }
}

fn deploy_overrides(s: &mut DeploySpec) -> OverridesMut<'_> {
    OverridesMut {
        image: &mut s.image,
        compute_type: &mut s.compute_type,
        environment_type: &mut s.environment_type,
        privileged: &mut s.privileged,
        timeout_minutes: &mut s.timeout_minutes,
    }
}

/// Fills the unset fields of `own` from `from`.
fn fill(own: OverridesMut<'_>, from: &BuildOverrides) {
    or_class(own.image, &from.image);
    or_class(own.compute_type, &from.compute_type);
    or_class(own.environment_type, &from.environment_type);
    or_class(own.privileged, &from.privileged);
    or_class(own.timeout_minutes, &from.timeout_minutes);
}

fn find<'c>(
    class: Option<&'c BranchPipelineClass>,
    name: &str,
    path: &str,
) -> Result<&'c StageTemplate, FieldError> {
    let Some(class) = class else {
        return Err(FieldError::new(
            path,
            format!(
                "names template {name:?}, but no BranchPipelineClass applies; set spec.className to a class with that template, or remove template"
            ),
        ));
    };
    class.template(name).ok_or_else(|| {
        let names: Vec<&str> = class.spec.templates.iter().map(|t| t.name.as_str()).collect();
        let known = if names.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has {}", names.join(", "))
        };
        FieldError::new(
            path,
            format!(
                "names template {name:?}, which class {:?} does not have ({known}); name one of them or remove template",
                class.metadata.name.as_deref().unwrap_or_default()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BranchPipelineSpec {
        crate::fixtures::example().spec
    }

    fn class(defaults: ClassDefaults, templates: Vec<StageTemplate>) -> BranchPipelineClass {
        BranchPipelineClass::new(
            "platform",
            BranchPipelineClassSpec {
                defaults,
                templates,
                guardrails: Guardrails::default(),
            },
        )
    }

    fn template(name: &str, buildspec: Option<&str>) -> StageTemplate {
        StageTemplate {
            name: name.into(),
            buildspec: buildspec.map(str::to_string),
            compute_type: Some(ComputeType::General1Xlarge),
            timeout_minutes: Some(20),
            ..StageTemplate::default()
        }
    }

    /// One row per rule: what the BranchPipeline says, what the class says, what results.
    #[test]
    fn scalar_fields_the_branchpipeline_wins_else_the_class() {
        type Row = (
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
        );
        let rows: &[Row] = &[
            (Some("own"), Some("class"), Some("own")),
            (None, Some("class"), Some("class")),
            (Some("own"), None, Some("own")),
            (None, None, None),
        ];
        for (own, from_class, want) in rows {
            let mut s = spec();
            s.build_role_arn = own.map(str::to_string);
            s.source.connection_arn = own.map(str::to_string);
            let c = class(
                ClassDefaults {
                    build_role_arn: from_class.map(str::to_string),
                    connection_arn: from_class.map(str::to_string),
                    ..ClassDefaults::default()
                },
                vec![],
            );
            let out = merge(&s, Some(&c)).expect("merges").spec;
            assert_eq!(
                out.build_role_arn.as_deref(),
                *want,
                "{own:?} {from_class:?}"
            );
            assert_eq!(out.source.connection_arn.as_deref(), *want);
        }
    }

    #[test]
    fn build_defaults_merge_field_by_field() {
        let mut s = spec();
        s.defaults = BuildDefaults {
            compute_type: Some(ComputeType::General1Medium),
            ..BuildDefaults::default()
        };
        let c = class(
            ClassDefaults {
                build: BuildDefaults {
                    compute_type: Some(ComputeType::General1Large),
                    timeout_minutes: Some(45),
                    image: Some("platform/image:1".into()),
                    ..BuildDefaults::default()
                },
                ..ClassDefaults::default()
            },
            vec![],
        );
        let out = merge(&s, Some(&c)).expect("merges").spec.defaults;
        assert_eq!(
            out.compute_type,
            Some(ComputeType::General1Medium),
            "own wins"
        );
        assert_eq!(out.timeout_minutes, Some(45), "class fills");
        assert_eq!(out.image.as_deref(), Some("platform/image:1"));
        assert_eq!(out.privileged, None, "neither: built in later");
    }

    #[test]
    fn tags_merge_key_by_key() {
        let mut s = spec();
        s.tags = BTreeMap::from([
            ("team".into(), "orders".into()),
            ("cost".into(), "own".into()),
        ]);
        let c = class(
            ClassDefaults {
                tags: BTreeMap::from([
                    ("cost".into(), "platform".into()),
                    ("org".into(), "acme".into()),
                ]),
                ..ClassDefaults::default()
            },
            vec![],
        );
        let tags = merge(&s, Some(&c)).expect("merges").spec.tags;
        assert_eq!(
            tags.into_iter().collect::<Vec<_>>(),
            [
                ("cost".to_string(), "own".to_string()),
                ("org".into(), "acme".into()),
                ("team".into(), "orders".into())
            ]
        );
    }

    #[test]
    fn approvals_by_environment_name() {
        let topic = "arn:aws:sns:us-east-1:111122223333:platform-approvals";
        let mut s = spec();
        // prod has its own topic, perf an approval without one, dev none.
        let c = class(
            ClassDefaults {
                approvals: vec![
                    ClassApproval {
                        environment: "prod*".into(),
                        notification_arn: Some(topic.into()),
                        custom_data: Some("Check the dashboards".into()),
                    },
                    ClassApproval {
                        environment: "p*".into(),
                        notification_arn: Some(topic.into()),
                        custom_data: None,
                    },
                    ClassApproval {
                        environment: "stage".into(),
                        ..ClassApproval::default()
                    },
                ],
                ..ClassDefaults::default()
            },
            vec![],
        );
        s.environments[0].approval = None;
        let out = merge(&s, Some(&c)).expect("merges").spec;
        let approval = |name: &str| {
            out.environments
                .iter()
                .find(|e| e.name == name)
                .expect("environment")
                .approval
                .clone()
        };
        let prod = approval("prod").expect("prod keeps its approval");
        assert_eq!(
            prod.notification_arn.as_deref(),
            Some("arn:aws:sns:us-east-1:111122223333:prod-approvals"),
            "its own topic wins"
        );
        assert_eq!(
            prod.custom_data.as_deref(),
            Some("Check the dashboards"),
            "first match fills"
        );
        let perf = approval("perf").expect("perf");
        assert_eq!(perf.notification_arn.as_deref(), Some(topic), "filled in");
        assert_eq!(approval("stage"), Some(ApprovalSpec::default()), "added");
        assert_eq!(approval("dev"), None, "no pattern matches");
    }

    #[test]
    fn a_template_fills_what_the_stage_leaves_unset() {
        let mut s = spec();
        s.stages[0].template = Some("node-test".into());
        s.stages[1].template = Some("node-test".into());
        s.stages[1].buildspec = Some("ci/test.yml".into());
        s.stages[2].template = Some("sizes".into());
        let c = class(
            ClassDefaults::default(),
            vec![
                template(
                    "node-test",
                    Some("version: 0.2\nphases: {build: {commands: [npm test]}}\n"),
                ),
                template("sizes", None),
            ],
        );
        let out = merge(&s, Some(&c)).expect("merges");
        let stages = &out.spec.stages;
        assert!(
            stages.iter().all(|s| s.template.is_none()),
            "applied and cleared"
        );
        assert_eq!(
            stages[0].compute_type,
            Some(ComputeType::General1Xlarge),
            "from the template"
        );
        assert_eq!(
            stages[1].compute_type,
            Some(ComputeType::General1Medium),
            "the stage's own"
        );
        assert_eq!(stages[1].timeout_minutes, Some(20));
        assert_eq!(stages[2].compute_type, Some(ComputeType::General1Large));
        assert_eq!(
            out.inline.stages.keys().collect::<Vec<_>>(),
            ["lint"],
            "test has its own path; sizes has no buildspec"
        );
    }

    #[test]
    fn the_deploy_merges_with_the_class_and_its_template() {
        let mut s = spec();
        s.deploy = Some(DeploySpec {
            timeout_minutes: Some(15),
            ..DeploySpec::default()
        });
        let c = class(
            ClassDefaults {
                deploy: Some(DeploySpec {
                    template: Some("ecs-deploy".into()),
                    compute_type: Some(ComputeType::General1Medium),
                    ..DeploySpec::default()
                }),
                ..ClassDefaults::default()
            },
            vec![template("ecs-deploy", Some("version: 0.2\n"))],
        );
        let out = merge(&s, Some(&c)).expect("merges");
        let deploy = out.spec.deploy.expect("deploy");
        assert_eq!(deploy.timeout_minutes, Some(15), "own");
        assert_eq!(
            deploy.compute_type,
            Some(ComputeType::General1Medium),
            "class deploy"
        );
        assert_eq!(
            out.inline.deploy.as_deref(),
            Some("version: 0.2\n"),
            "class's template"
        );
    }

    #[test]
    fn unknown_templates_name_the_field_and_the_choices() {
        let mut s = spec();
        s.stages[1].template = Some("node-tset".into());
        let c = class(ClassDefaults::default(), vec![template("node-test", None)]);
        let errors = merge(&s, Some(&c)).expect_err("unknown template");
        assert_eq!(errors[0].path, "spec.stages[1].template");
        assert!(
            errors[0].message.contains("it has node-test"),
            "{}",
            errors[0]
        );
        let errors = merge(&s, None).expect_err("no class");
        assert!(
            errors[0].message.contains("no BranchPipelineClass applies"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn without_a_class_the_spec_is_unchanged() {
        let s = spec();
        let out = merge(&s, None).expect("merges");
        assert_eq!(out.spec, s);
        assert_eq!(out.inline, Inline::default());
    }
}
