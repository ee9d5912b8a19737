//! The class's guardrails, checked on the merged, resolved spec before any AWS call. Pure.
//! Each violation names the field to change, the rule, and what it allows.

use std::collections::BTreeMap;

use kube::core::{Selector, SelectorExt};

use super::glob_matches;
use crate::api::*;
use crate::resolved::{BuildSettings, ValidatedSpec};
use crate::validate::FieldError;

/// Every guardrail `spec` breaks, the namespace's included.
pub fn guardrails(
    spec: &ValidatedSpec,
    class: &BranchPipelineClass,
    namespace_labels: &BTreeMap<String, String>,
) -> Vec<FieldError> {
    let rules = Rules {
        class: class.metadata.name.as_deref().unwrap_or_default(),
        g: &class.spec.guardrails,
    };
    let mut out: Vec<FieldError> = namespace_allowed(class, &spec.namespace, namespace_labels)
        .err()
        .into_iter()
        .collect();
    out.extend(rules.allowed(
        "spec.source.connectionArn",
        &spec.connection_arn,
        rules.g.allowed_connection_arns.as_deref(),
        "allowedConnectionArns",
    ));
    for (path, arn) in [
        ("spec.pipelineRoleArn", &spec.pipeline_role_arn),
        ("spec.buildRoleArn", &spec.build_role_arn),
    ] {
        out.extend(rules.allowed(
            path,
            arn,
            rules.g.allowed_role_arns.as_deref(),
            "allowedRoleArns",
        ));
    }
    out.extend(rules.allowed(
        "spec.artifactBucket",
        &spec.artifact_bucket,
        rules.g.allowed_artifact_buckets.as_deref(),
        "allowedArtifactBuckets",
    ));
    for (base, settings) in builds(spec) {
        rules.build(&base, settings, &mut out);
    }
    for env in &spec.environments {
        let required = rules
            .g
            .require_approval
            .iter()
            .flatten()
            .find(|p| glob_matches(p, &env.name));
        if let (Some(pattern), None) = (required, &env.approval) {
            out.push(FieldError::new(
                format!("spec.environments[{}].approval", env.index),
                format!(
                    "environment {:?} must have an approval: class {:?} requires one for {pattern:?} (guardrails.requireApproval); add approval: {{}}",
                    env.name, rules.class
                ),
            ));
        }
    }
    out
}

/// Whether a BranchPipeline in `namespace` (labelled `labels`) may use `class`.
pub fn namespace_allowed(
    class: &BranchPipelineClass,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), FieldError> {
    let Some(selector) = &class.spec.guardrails.allowed_namespaces else {
        return Ok(());
    };
    let name = class.metadata.name.as_deref().unwrap_or_default();
    // An unreadable selector allows nothing: a guardrail fails closed.
    let allowed = Selector::try_from(selector.clone()).is_ok_and(|s| s.matches(labels));
    if allowed {
        return Ok(());
    }
    Err(FieldError::new(
        "spec.className",
        format!(
            "class {name:?} may not be used in namespace {namespace:?}: its guardrails.allowedNamespaces ({}) does not select this namespace's labels; use a class meant for this namespace",
            describe(selector)
        ),
    ))
}

/// Each build project's settings with the spec field that sets them.
fn builds(spec: &ValidatedSpec) -> Vec<(String, &BuildSettings)> {
    let mut out: Vec<(String, &BuildSettings)> = spec
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("spec.stages[{i}]"), &s.settings))
        .collect();
    if spec.environments.iter().any(|e| e.own_deploy.is_none()) {
        out.push(("spec.deploy".into(), &spec.deploy.settings));
    }
    for env in &spec.environments {
        if let Some(settings) = &env.own_deploy {
            out.push((format!("spec.environments[{}].deploy", env.index), settings));
        }
    }
    out
}

struct Rules<'a> {
    class: &'a str,
    g: &'a Guardrails,
}

impl Rules<'_> {
    fn allowed(
        &self,
        path: &str,
        value: &str,
        patterns: Option<&[String]>,
        rule: &str,
    ) -> Option<FieldError> {
        let patterns = patterns?;
        if patterns.iter().any(|p| glob_matches(p, value)) {
            return None;
        }
        Some(FieldError::new(
            path,
            format!(
                "{value:?} is not allowed by class {:?}: guardrails.{rule} allows {}; use a value it allows, or ask the platform team",
                self.class,
                patterns.join(", ")
            ),
        ))
    }

    fn build(&self, base: &str, s: &BuildSettings, out: &mut Vec<FieldError>) {
        if let Some(allowed) = &self.g.allowed_compute_types
            && !allowed.contains(&s.compute_type)
        {
            let names: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
            out.push(FieldError::new(
                format!("{base}.computeType"),
                format!(
                    "{} is not allowed by class {:?}: guardrails.allowedComputeTypes allows {}; set one of them",
                    s.compute_type.as_str(),
                    self.class,
                    names.join(", ")
                ),
            ));
        }
        if let Some(max) = self.g.max_timeout_minutes
            && s.timeout_minutes > max
        {
            out.push(FieldError::new(
                format!("{base}.timeoutMinutes"),
                format!(
                    "{} minutes is over class {:?}'s guardrails.maxTimeoutMinutes ({max}); set at most {max}",
                    s.timeout_minutes, self.class
                ),
            ));
        }
        if self.g.privileged_allowed == Some(false) && s.privileged {
            out.push(FieldError::new(
                format!("{base}.privileged"),
                format!(
                    "privileged (Docker-in-Docker) builds are not allowed by class {:?} (guardrails.privilegedAllowed: false); remove privileged",
                    self.class
                ),
            ));
        }
    }
}

/// A selector as `kubectl` would write it, for messages.
fn describe(selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            op => format!("{} {} ({values})", e.key, op.to_lowercase()),
        });
    }
    if parts.is_empty() {
        "every namespace".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    use super::*;
    use crate::class::{Effective, merge};

    const ROLE_PATTERN: &str = "arn:aws:iam::111122223333:role/branchpipeline/orders-*";

    fn bp() -> BranchPipeline {
        crate::fixtures::example()
    }

    fn class(guardrails: Guardrails) -> BranchPipelineClass {
        BranchPipelineClass::new(
            "platform",
            BranchPipelineClassSpec {
                guardrails,
                ..BranchPipelineClassSpec::default()
            },
        )
    }

    fn check(
        bp: &BranchPipeline,
        class: &BranchPipelineClass,
        labels: &[(&str, &str)],
    ) -> Vec<String> {
        let effective: Effective = merge(&bp.spec, Some(class)).expect("merges");
        let spec = crate::validate::validate_effective(bp, &effective).expect("valid");
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        guardrails(&spec, class, &labels)
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    fn edited(edit: impl Fn(&mut BranchPipelineSpec)) -> BranchPipeline {
        let mut bp = bp();
        edit(&mut bp.spec);
        bp
    }

    type Row = (&'static str, Guardrails, BranchPipeline, Vec<&'static str>);

    fn run(rows: Vec<Row>) {
        for (what, guardrails, bp, want) in rows {
            assert_eq!(check(&bp, &class(guardrails), &[]), want, "{what}");
        }
    }

    fn rule(set: impl Fn(&mut Guardrails)) -> Guardrails {
        let mut g = Guardrails::default();
        set(&mut g);
        g
    }

    fn list(patterns: &[&str]) -> Option<Vec<String>> {
        Some(patterns.iter().map(|p| p.to_string()).collect())
    }

    /// One row per case: the rule, the spec, and the field paths it reports.
    #[test]
    fn roles_connections_and_buckets_must_match_a_pattern() {
        let roles = || rule(|g| g.allowed_role_arns = list(&[ROLE_PATTERN]));
        let admin = "arn:aws:iam::111122223333:role/admin";
        let other = "arn:aws:codeconnections:us-east-1:111122223333:connection/other";
        run(vec![
            ("no guardrails", Guardrails::default(), bp(), vec![]),
            ("roles inside the pattern", roles(), bp(), vec![]),
            (
                "a build role outside it",
                roles(),
                edited(|s| s.build_role_arn = Some(admin.into())),
                vec!["spec.buildRoleArn"],
            ),
            (
                "exact connection",
                rule(|g| g.allowed_connection_arns = list(&[other])),
                bp(),
                vec!["spec.source.connectionArn"],
            ),
            (
                "bucket",
                rule(|g| g.allowed_artifact_buckets = list(&["acme-*"])),
                edited(|s| s.artifact_bucket = Some("someone-elses-bucket".into())),
                vec!["spec.artifactBucket"],
            ),
        ]);
    }

    #[test]
    fn compute_timeouts_and_privileged_hold_for_every_project() {
        use ComputeType::*;
        let max20 = || rule(|g| g.max_timeout_minutes = Some(20));
        let unprivileged = || rule(|g| g.privileged_allowed = Some(false));
        run(vec![
            (
                "compute types",
                rule(|g| g.allowed_compute_types = Some(vec![General1Small, General1Medium])),
                bp(),
                vec!["spec.stages[2].computeType"],
            ),
            (
                "timeouts at the limit",
                max20(),
                edited(|s| s.defaults.timeout_minutes = Some(20)),
                vec![],
            ),
            (
                "timeouts over it, the deploy's included",
                max20(),
                edited(|s| s.deploy.as_mut().expect("deploy").timeout_minutes = Some(25)),
                vec![
                    "spec.stages[0].timeoutMinutes",
                    "spec.stages[1].timeoutMinutes",
                    "spec.stages[2].timeoutMinutes",
                    "spec.deploy.timeoutMinutes",
                ],
            ),
            (
                "privileged",
                unprivileged(),
                bp(),
                vec!["spec.stages[2].privileged"],
            ),
            (
                "privileged allowed",
                rule(|g| g.privileged_allowed = Some(true)),
                bp(),
                vec![],
            ),
            (
                "an environment's own deploy",
                unprivileged(),
                edited(|s| {
                    s.stages[2].privileged = None;
                    let privileged = Some(true);
                    s.environments[4].deploy = Some(BuildOverrides {
                        privileged,
                        ..Default::default()
                    });
                }),
                vec!["spec.environments[4].deploy.privileged"],
            ),
        ]);
    }

    #[test]
    fn required_approvals_by_environment_pattern() {
        run(vec![
            (
                "stage has none",
                rule(|g| g.require_approval = list(&["prod*", "stage"])),
                bp(),
                vec!["spec.environments[2].approval"],
            ),
            (
                "a prod without approval",
                rule(|g| g.require_approval = list(&["prod*"])),
                edited(|s| s.environments[4].approval = None),
                vec!["spec.environments[4].approval"],
            ),
        ]);
    }

    #[test]
    fn a_class_approval_satisfies_require_approval() {
        let mut c = class(Guardrails {
            require_approval: Some(vec!["prod".into()]),
            ..Default::default()
        });
        c.spec.defaults.approvals = vec![ClassApproval {
            environment: "prod".into(),
            ..ClassApproval::default()
        }];
        let bp = edited(|s| s.environments[4].approval = None);
        assert_eq!(check(&bp, &c, &[]), Vec::<String>::new());
    }

    #[test]
    fn allowed_namespaces_select_by_labels() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([("tier".into(), "platform".into())])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "team".into(),
                operator: "In".into(),
                values: Some(vec!["orders".into(), "payments".into()]),
            }]),
        };
        let c = class(Guardrails {
            allowed_namespaces: Some(selector),
            ..Default::default()
        });
        let bp = bp();
        assert_eq!(
            check(&bp, &c, &[("tier", "platform"), ("team", "orders")]),
            Vec::<String>::new()
        );
        assert_eq!(
            check(&bp, &c, &[("tier", "platform"), ("team", "web")]),
            ["spec.className"]
        );
        assert_eq!(check(&bp, &c, &[]), ["spec.className"]);
        let refused = namespace_allowed(&c, "team-web", &BTreeMap::new()).expect_err("refused");
        assert!(
            refused
                .message
                .contains("tier=platform, team in (orders,payments)"),
            "{refused}"
        );
        let broken = class(Guardrails {
            allowed_namespaces: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "team".into(),
                    operator: "Near".into(),
                    values: None,
                }]),
                ..LabelSelector::default()
            }),
            ..Default::default()
        });
        assert!(
            namespace_allowed(&broken, "any", &BTreeMap::new()).is_err(),
            "fails closed"
        );
    }

    #[test]
    fn messages_name_the_rule_and_what_it_allows() {
        let c = class(Guardrails {
            allowed_role_arns: Some(vec![ROLE_PATTERN.into()]),
            ..Default::default()
        });
        let bp =
            edited(|s| s.pipeline_role_arn = Some("arn:aws:iam::111122223333:role/admin".into()));
        let effective = merge(&bp.spec, Some(&c)).expect("merges");
        let spec = crate::validate::validate_effective(&bp, &effective).expect("valid");
        let errors = guardrails(&spec, &c, &BTreeMap::new());
        assert_eq!(errors.len(), 1);
        let text = errors[0].to_string();
        assert!(text.starts_with("spec.pipelineRoleArn: \"arn:aws:iam::111122223333:role/admin\" is not allowed by class \"platform\": guardrails.allowedRoleArns allows arn:aws:iam::111122223333:role/branchpipeline/orders-*"), "{text}");
    }
}
