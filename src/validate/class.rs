//! Rules for a `BranchPipelineClass`, with paths inside the class (`spec.defaults.buildRoleArn`).
//! A class that breaks one is reported on every BranchPipeline using it (`InvalidClass`), since
//! only its platform team can fix it. Besides the schema's rules: inline buildspecs must be
//! buildspecs, guardrail lists must be usable, and the class's own defaults must pass its own
//! guardrails (otherwise every user would be refused for a value it never wrote).

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;
use crate::class::glob_matches;

/// Every problem with `class`.
pub fn validate_class(class: &BranchPipelineClass) -> Vec<FieldError> {
    let mut errs = Errors::default();
    let spec = &class.spec;
    defaults(&spec.defaults, &mut errs);
    templates(&spec.templates, &mut errs);
    guardrails(&spec.guardrails, &mut errs);
    own_defaults_pass(spec, &mut errs);
    errs.0
}

fn defaults(d: &ClassDefaults, errs: &mut Errors) {
    const BASE: &str = "spec.defaults";
    if let Some(arn) = &d.connection_arn {
        connection_arn(&format!("{BASE}.connectionArn"), arn, errs);
    }
    if let Some(arn) = &d.pipeline_role_arn {
        role_arn(&format!("{BASE}.pipelineRoleArn"), arn, errs);
    }
    if let Some(arn) = &d.build_role_arn {
        role_arn(&format!("{BASE}.buildRoleArn"), arn, errs);
    }
    if let Some(name) = &d.artifact_bucket {
        bucket(&format!("{BASE}.artifactBucket"), name, errs);
    }
    build_defaults(&format!("{BASE}.build"), &d.build, errs);
    if let Some(deploy) = &d.deploy {
        if let Some(path) = &deploy.buildspec {
            relative_path(&format!("{BASE}.deploy.buildspec"), path, errs);
        }
        let on = resolved::with_overrides(&d.build, &BuildOverrides::default());
        overrides_on(&format!("{BASE}.deploy"), &deploy.overrides(), &on, errs);
    }
    tags(&format!("{BASE}.tags"), &d.tags, errs);
    for (i, approval) in d.approvals.iter().enumerate() {
        let base = format!("{BASE}.approvals[{i}]");
        pattern(&format!("{base}.environment"), &approval.environment, errs);
        approval_settings(
            &base,
            &ApprovalSpec {
                notification_arn: approval.notification_arn.clone(),
                custom_data: approval.custom_data.clone(),
            },
            errs,
        );
    }
}

fn templates(templates: &[StageTemplate], errs: &mut Errors) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, t) in templates.iter().enumerate() {
        let base = format!("spec.templates[{i}]");
        dns_label(&format!("{base}.name"), "template name", &t.name, 63, errs);
        if let Some(first) = seen.insert(&t.name, i) {
            errs.push(
                format!("{base}.name"),
                format!("template {:?} is already defined at spec.templates[{first}]; template names must be unique", t.name),
            );
        }
        if let Some(buildspec) = &t.buildspec
            && let Err(why) = rules::inline_buildspec(buildspec, MAX_INLINE_BUILDSPEC)
        {
            errs.push(format!("{base}.buildspec"), why);
        }
        overrides_on(&base, &t.overrides(), &resolved::builtin(), errs);
    }
}

fn guardrails(g: &Guardrails, errs: &mut Errors) {
    const BASE: &str = "spec.guardrails";
    for (field, list) in [
        ("allowedRoleArns", &g.allowed_role_arns),
        ("allowedConnectionArns", &g.allowed_connection_arns),
        ("allowedArtifactBuckets", &g.allowed_artifact_buckets),
        ("requireApproval", &g.require_approval),
    ] {
        let Some(list) = list else { continue };
        if list.is_empty() {
            errs.push(
                format!("{BASE}.{field}"),
                "is empty, which would allow nothing; list what is allowed, or remove it to allow everything",
            );
        }
        for (i, p) in list.iter().enumerate() {
            pattern(&format!("{BASE}.{field}[{i}]"), p, errs);
        }
    }
    if g.allowed_compute_types.as_ref().is_some_and(Vec::is_empty) {
        errs.push(
            format!("{BASE}.allowedComputeTypes"),
            "is empty, which would allow nothing; list what is allowed, or remove it to allow everything",
        );
    }
    if let Some(minutes) = g.max_timeout_minutes {
        timeout(&format!("{BASE}.maxTimeoutMinutes"), minutes, errs);
    }
    if let Some(selector) = &g.allowed_namespaces {
        namespace_selector(&format!("{BASE}.allowedNamespaces"), selector, errs);
    }
}

fn pattern(path: &str, p: &str, errs: &mut Errors) {
    if p.is_empty() || p.chars().any(char::is_control) {
        errs.push(
            path,
            "must be a non-empty pattern; use * for any characters",
        );
    }
}

fn namespace_selector(path: &str, selector: &LabelSelector, errs: &mut Errors) {
    if let Err(e) = kube::core::Selector::try_from(selector.clone()) {
        errs.push(
            path,
            format!("is not a valid label selector ({e}); use matchLabels, or matchExpressions with In, NotIn, Exists or DoesNotExist"),
        );
    }
}

/// The class's own defaults and templates must pass its guardrails.
fn own_defaults_pass(spec: &BranchPipelineClassSpec, errs: &mut Errors) {
    let g = &spec.guardrails;
    let d = &spec.defaults;
    for (field, value, allowed, rule) in [
        (
            "connectionArn",
            &d.connection_arn,
            &g.allowed_connection_arns,
            "allowedConnectionArns",
        ),
        (
            "pipelineRoleArn",
            &d.pipeline_role_arn,
            &g.allowed_role_arns,
            "allowedRoleArns",
        ),
        (
            "buildRoleArn",
            &d.build_role_arn,
            &g.allowed_role_arns,
            "allowedRoleArns",
        ),
        (
            "artifactBucket",
            &d.artifact_bucket,
            &g.allowed_artifact_buckets,
            "allowedArtifactBuckets",
        ),
    ] {
        // An empty list is reported by itself.
        if let (Some(value), Some(allowed)) = (value, allowed)
            && !allowed.is_empty()
            && !allowed.iter().any(|p| glob_matches(p, value))
        {
            errs.push(
                format!("spec.defaults.{field}"),
                format!("{value:?} is not allowed by this class's own guardrails.{rule}; change one of them"),
            );
        }
    }
    let mut settings = vec![("spec.defaults.build".to_string(), d.build.as_overrides())];
    if let Some(deploy) = &d.deploy {
        settings.push(("spec.defaults.deploy".into(), deploy.overrides()));
    }
    for (i, t) in spec.templates.iter().enumerate() {
        settings.push((format!("spec.templates[{i}]"), t.overrides()));
    }
    for (base, o) in settings {
        own_build_passes(&base, &o, g, errs);
    }
}

fn own_build_passes(base: &str, o: &BuildOverrides, g: &Guardrails, errs: &mut Errors) {
    if let (Some(compute), Some(allowed)) = (o.compute_type, &g.allowed_compute_types)
        && !allowed.contains(&compute)
    {
        errs.push(
            format!("{base}.computeType"),
            format!("{} is not allowed by this class's own guardrails.allowedComputeTypes; change one of them", compute.as_str()),
        );
    }
    if let (Some(minutes), Some(max)) = (o.timeout_minutes, g.max_timeout_minutes)
        && minutes > max
    {
        errs.push(
            format!("{base}.timeoutMinutes"),
            format!("{minutes} is over this class's own guardrails.maxTimeoutMinutes ({max}); change one of them"),
        );
    }
    if o.privileged == Some(true) && g.privileged_allowed == Some(false) {
        errs.push(
            format!("{base}.privileged"),
            "is true but this class's own guardrails.privilegedAllowed is false; change one of them",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> BranchPipelineClass {
        crate::manifest::parse_class(include_str!("../../examples/platform-class.yaml"))
            .expect("the example class parses")
    }

    /// The paths reported, each once (a value can break a rule and a guardrail at once).
    fn paths(class: &BranchPipelineClass) -> Vec<String> {
        let mut paths: Vec<String> = validate_class(class).into_iter().map(|e| e.path).collect();
        paths.dedup();
        paths
    }

    #[test]
    fn the_example_class_is_valid() {
        assert_eq!(paths(&platform()), Vec::<String>::new());
    }

    type Edit = fn(&mut BranchPipelineClassSpec);

    fn run(rows: &[(&str, Edit)]) {
        for (want, edit) in rows {
            let mut class = platform();
            edit(&mut class.spec);
            assert_eq!(paths(&class), [*want], "{want}");
        }
    }

    #[test]
    fn each_defaults_rule_names_its_field() {
        run(&[
            ("spec.defaults.buildRoleArn", |s| {
                s.defaults.build_role_arn = Some("admin".into())
            }),
            ("spec.defaults.connectionArn", |s| {
                s.defaults.connection_arn = Some("arn:x".into())
            }),
            ("spec.defaults.artifactBucket", |s| {
                s.defaults.artifact_bucket = Some("Bad_Bucket".into())
            }),
            ("spec.defaults.build.timeoutMinutes", |s| {
                s.defaults.build.timeout_minutes = Some(3)
            }),
            ("spec.defaults.tags.aws:x", |s| {
                s.defaults.tags.insert("aws:x".into(), "y".into());
            }),
            ("spec.defaults.approvals[0].environment", |s| {
                s.defaults.approvals = vec![ClassApproval::default()];
            }),
            ("spec.defaults.pipelineRoleArn", |s| {
                s.defaults.pipeline_role_arn = Some("arn:aws:iam::111122223333:role/admin".into());
            }),
        ]);
    }

    #[test]
    fn each_template_rule_names_its_field() {
        run(&[
            ("spec.templates[2].name", |s| {
                let t = s.templates[0].clone();
                s.templates.push(t);
            }),
            ("spec.templates[0].buildspec", |s| {
                s.templates[0].buildspec = Some("cicd/buildspecs/x.yml".into());
            }),
            ("spec.templates[0].computeType", |s| {
                s.templates[0].compute_type = Some(ComputeType::Lambda1Gb);
                s.guardrails.allowed_compute_types = None;
            }),
            ("spec.templates[0].privileged", |s| {
                s.templates[0].privileged = Some(true);
                s.templates[1].privileged = None;
                s.guardrails.privileged_allowed = Some(false);
            }),
            ("spec.templates[0].timeoutMinutes", |s| {
                s.guardrails.max_timeout_minutes = Some(40)
            }),
        ]);
    }

    #[test]
    fn each_guardrail_rule_names_its_field() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
        run(&[
            ("spec.guardrails.allowedRoleArns", |s| {
                s.guardrails.allowed_role_arns = Some(vec![])
            }),
            ("spec.guardrails.requireApproval[0]", |s| {
                s.guardrails.require_approval = Some(vec![String::new()]);
            }),
            ("spec.guardrails.allowedNamespaces", |s| {
                let near = LabelSelectorRequirement {
                    key: "team".into(),
                    operator: "Near".into(),
                    values: None,
                };
                s.guardrails.allowed_namespaces = Some(LabelSelector {
                    match_expressions: Some(vec![near]),
                    ..LabelSelector::default()
                });
            }),
        ]);
    }
}
