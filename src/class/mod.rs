//! BranchPipelineClasses applied to BranchPipelines, purely: which class a resource uses
//! ([`select`]), the merge ([`merge`]), the guardrails ([`guardrails`]), the one pipeline that
//! turns a resource and its class into AWS declarations ([`compile`]), and which resources a
//! class change concerns ([`users`]).

mod changes;
mod guardrails;
mod merge;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use changes::Seen;
pub use guardrails::{guardrails, namespace_allowed};
pub use merge::{Effective, Inline, merge};

use crate::api::{BranchPipeline, BranchPipelineClass, ClassRef};
use crate::render::DesiredState;
use crate::resolved::ValidatedSpec;
use crate::validate::{self, FieldError};

/// Why a class cannot be chosen for a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// `spec.className` names a class that does not exist (or no longer does).
    #[error(
        "spec.className: BranchPipelineClass {0:?} does not exist; create it or name another class. Nothing is changed in AWS until then"
    )]
    NotFound(String),
    /// No className, and more than one class is marked default.
    #[error(
        "spec.className: is not set and {} BranchPipelineClasses are marked default ({}: \"true\"): {}; unmark all but one, or set spec.className. Nothing is changed in AWS until then",
        .0.len(),
        crate::api::DEFAULT_CLASS_ANNOTATION,
        .0.join(", ")
    )]
    Ambiguous(Vec<String>),
    /// No className, no default class any more, and AWS was last brought in line with this very
    /// spec under the default class named here: going on without it would silently drop its
    /// defaults and guardrails from AWS.
    #[error(
        "spec.className: is not set, and the default BranchPipelineClass {0:?} this resource was synced with no longer exists or is no longer marked default; mark a class default ({annotation}: \"true\"), or set spec.className. Editing the spec without a class makes it classless. Nothing is changed in AWS until then",
        annotation = crate::api::DEFAULT_CLASS_ANNOTATION
    )]
    DefaultGone(String),
    /// No class at all, where the controller requires one (`--require-class`).
    #[error(
        "spec.className: is not set and no BranchPipelineClass is marked default, but this controller requires every BranchPipeline to use a class (--require-class); set spec.className to a class your namespace may use. Nothing is changed in AWS until then"
    )]
    Required,
}

impl SelectError {
    /// The error as the field it concerns, for status and events.
    pub fn field_error(&self) -> FieldError {
        let text = self.to_string();
        let message = text
            .strip_prefix("spec.className: ")
            .unwrap_or(&text)
            .to_string();
        FieldError::new("spec.className", message)
    }
}

/// What the choice of a resource's class depends on besides the classes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Choice<'a> {
    /// `spec.className`.
    pub named: Option<&'a str>,
    /// The default class AWS was last brought in line with for this very generation of the
    /// spec (`status.syncedClass`, when `status.syncedGeneration` is the current generation).
    pub synced_default: Option<&'a str>,
    /// `--require-class`: a resource with no class is refused.
    pub required: bool,
}

impl<'a> Choice<'a> {
    pub fn of(bp: &'a BranchPipeline, required: bool) -> Self {
        let status = bp.status.as_ref();
        let synced_default = status
            .filter(|_| bp.spec.class_name.is_none())
            .filter(|s| {
                s.synced_generation.is_some() && s.synced_generation == bp.metadata.generation
            })
            .and_then(|s| s.synced_class.as_ref())
            .map(|c| c.name.as_str());
        Self {
            named: bp.spec.class_name.as_deref(),
            synced_default,
            required,
        }
    }
}

/// The class `choice.named` names, or the default class when it names none. `None` (no class)
/// only when there is no default class, none is required, and the resource was not synced
/// under a default class that has since gone: deleting a class in use leaves AWS untouched.
pub fn select<'a>(
    choice: &Choice<'_>,
    classes: &'a [Arc<BranchPipelineClass>],
) -> Result<Option<&'a Arc<BranchPipelineClass>>, SelectError> {
    let name_of = |c: &Arc<BranchPipelineClass>| c.metadata.name.clone().unwrap_or_default();
    if let Some(name) = choice.named {
        return classes
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .map(Some)
            .ok_or_else(|| SelectError::NotFound(name.to_string()));
    }
    let defaults: Vec<&Arc<BranchPipelineClass>> =
        classes.iter().filter(|c| c.is_default()).collect();
    match (defaults.as_slice(), choice.synced_default) {
        ([one], _) => Ok(Some(*one)),
        ([], Some(gone)) => Err(SelectError::DefaultGone(gone.to_string())),
        ([], None) if choice.required => Err(SelectError::Required),
        ([], None) => Ok(None),
        (many, _) => {
            let mut names: Vec<String> = many.iter().map(|c| name_of(c)).collect();
            names.sort();
            Err(SelectError::Ambiguous(names))
        }
    }
}

/// Why a resource with its class is not rendered. None of them reaches AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The class itself breaks a rule: its platform team fixes it.
    InvalidClass {
        class: String,
        errors: Vec<FieldError>,
    },
    /// The resource (with its class merged in) is invalid.
    Invalid(Vec<FieldError>),
    /// The resource breaks one of its class's guardrails, or may not use the class.
    Policy(Vec<FieldError>),
}

impl Refusal {
    pub fn errors(&self) -> &[FieldError] {
        match self {
            Self::InvalidClass { errors, .. } | Self::Invalid(errors) | Self::Policy(errors) => {
                errors
            }
        }
    }

    /// The errors, each saying which object to fix: a class's are prefixed with its name.
    pub fn into_errors(self) -> Vec<FieldError> {
        match self {
            Self::InvalidClass { class, errors } => errors
                .into_iter()
                .map(|e| {
                    FieldError::new(format!("BranchPipelineClass {class} {}", e.path), e.message)
                })
                .collect(),
            Self::Invalid(errors) | Self::Policy(errors) => errors,
        }
    }
}

/// A resource compiled with its class: the resolved spec and the AWS declarations.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub spec: ValidatedSpec,
    pub desired: DesiredState,
    /// The class compiled in, if any.
    pub class: Option<ClassRef>,
}

/// The whole pure pipeline: the class is checked, the namespace's right to use it, the merge,
/// validation, the guardrails, then render. `namespace_labels` matter only to a class with
/// `guardrails.allowedNamespaces`.
pub fn compile(
    bp: &BranchPipeline,
    class: Option<&BranchPipelineClass>,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<Compiled, Refusal> {
    if let Some(class) = class {
        let errors = validate::class::validate_class(class);
        if !errors.is_empty() {
            return Err(Refusal::InvalidClass {
                class: class.metadata.name.clone().unwrap_or_default(),
                errors,
            });
        }
        let namespace = bp.metadata.namespace.as_deref().unwrap_or_default();
        namespace_allowed(class, namespace, namespace_labels)
            .map_err(|e| Refusal::Policy(vec![e]))?;
    }
    let effective = merge(&bp.spec, class).map_err(Refusal::Invalid)?;
    let spec = validate::validate_effective(bp, &effective).map_err(Refusal::Invalid)?;
    if let Some(class) = class {
        let violations = guardrails(&spec, class, namespace_labels);
        if !violations.is_empty() {
            return Err(Refusal::Policy(violations));
        }
    }
    let desired = crate::render::render(&spec).map_err(Refusal::Invalid)?;
    Ok(Compiled {
        spec,
        desired,
        class: class.map(ClassRef::of),
    })
}

/// A class that was added, changed or deleted, as the class watch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassChange {
    pub name: String,
    /// Whether the class is or was marked default: resources naming no class may have used
    /// it, or may use it now.
    pub default_before_or_now: bool,
}

/// The resources a class change concerns: those naming it, and, when it is or was the default
/// class, those naming none.
pub fn users<'a>(
    change: &'a ClassChange,
    resources: impl IntoIterator<Item = &'a Arc<BranchPipeline>> + 'a,
) -> impl Iterator<Item = &'a Arc<BranchPipeline>> + 'a {
    resources
        .into_iter()
        .filter(move |bp| match bp.spec.class_name.as_deref() {
            Some(name) => name == change.name,
            None => change.default_before_or_now,
        })
}

/// `*` matches any run of characters (`/` and `:` included, as in IAM policies); everything
/// else matches itself.
pub fn glob_matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::*;

    fn class(name: &str, default: bool) -> Arc<BranchPipelineClass> {
        let mut c = BranchPipelineClass::new(name, BranchPipelineClassSpec::default());
        if default {
            c.metadata.annotations = Some(BTreeMap::from([(
                DEFAULT_CLASS_ANNOTATION.to_string(),
                "true".to_string(),
            )]));
        }
        Arc::new(c)
    }

    #[test]
    fn globs_match_like_iam() {
        let rows = [
            (
                "arn:aws:iam::*:role/branchpipeline/*",
                "arn:aws:iam::111122223333:role/branchpipeline/build",
                true,
            ),
            (
                "arn:aws:iam::*:role/branchpipeline/*",
                "arn:aws:iam::111122223333:role/admin",
                false,
            ),
            ("prod*", "prod", true),
            ("prod*", "production", true),
            ("prod*", "preprod", false),
            ("*prod", "preprod", true),
            ("prod", "prod", true),
            ("prod", "prod2", false),
            ("*", "", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (pattern, value, want) in rows {
            assert_eq!(glob_matches(pattern, value), want, "{pattern} ~ {value}");
        }
    }

    #[test]
    fn the_named_class_else_the_only_default_else_none() {
        let classes = [class("a", false), class("b", true)];
        let name = |r: Result<Option<&Arc<BranchPipelineClass>>, SelectError>| {
            r.map(|c| c.and_then(|c| c.metadata.name.clone()))
        };
        let named = |n| Choice {
            named: Some(n),
            ..Choice::default()
        };
        let unnamed = Choice::default();
        assert_eq!(name(select(&named("a"), &classes)), Ok(Some("a".into())));
        assert_eq!(name(select(&unnamed, &classes)), Ok(Some("b".into())));
        assert_eq!(
            name(select(&named("c"), &classes)),
            Err(SelectError::NotFound("c".into()))
        );
        assert_eq!(name(select(&unnamed, &classes[..1])), Ok(None));
        let two = [class("z", true), class("b", true), class("a", false)];
        let err = select(&unnamed, &two).expect_err("ambiguous");
        assert_eq!(err, SelectError::Ambiguous(vec!["b".into(), "z".into()]));
        assert!(err.to_string().contains("b, z"), "{err}");
        // A name wins over any number of defaults.
        assert_eq!(name(select(&named("a"), &two)), Ok(Some("a".into())));
    }

    #[test]
    fn a_gone_default_class_or_a_required_one_keeps_a_resource_from_going_classless() {
        let none = [class("a", false)];
        let after_default = Choice {
            synced_default: Some("platform"),
            ..Choice::default()
        };
        assert_eq!(
            select(&after_default, &none).map(|c| c.is_some()),
            Err(SelectError::DefaultGone("platform".into()))
        );
        let other_default = [class("a", false), class("new", true)];
        assert!(
            matches!(select(&after_default, &other_default), Ok(Some(c)) if c.metadata.name.as_deref() == Some("new"))
        );
        let required = Choice {
            required: true,
            ..Choice::default()
        };
        assert_eq!(
            select(&required, &none).map(|c| c.is_some()),
            Err(SelectError::Required)
        );
        assert!(matches!(select(&required, &other_default), Ok(Some(_))));
    }

    #[test]
    fn only_a_default_synced_at_this_generation_counts() {
        let mut bp: BranchPipeline = crate::fixtures::example();
        bp.metadata.generation = Some(3);
        bp.status = Some(crate::api::BranchPipelineStatus {
            synced_generation: Some(3),
            synced_class: Some(ClassRef {
                name: "platform".into(),
                generation: 1,
            }),
            ..Default::default()
        });
        assert_eq!(Choice::of(&bp, false).synced_default, Some("platform"));
        bp.metadata.generation = Some(4);
        assert_eq!(Choice::of(&bp, false).synced_default, None, "edited since");
        bp.metadata.generation = Some(3);
        bp.spec.class_name = Some("named".into());
        assert_eq!(Choice::of(&bp, true).synced_default, None);
        assert_eq!(Choice::of(&bp, true).named, Some("named"));
    }

    #[test]
    fn a_class_change_concerns_its_users_and_for_a_default_the_unnamed() {
        let bp = |name: &str, class: Option<&str>| {
            let mut bp = crate::fixtures::example();
            bp.metadata.name = Some(name.into());
            bp.spec.class_name = class.map(str::to_string);
            Arc::new(bp)
        };
        let all = [
            bp("named", Some("platform")),
            bp("other", Some("x")),
            bp("unnamed", None),
        ];
        let names = |change: &ClassChange| -> Vec<String> {
            users(change, &all)
                .map(|b| b.metadata.name.clone().unwrap_or_default())
                .collect()
        };
        let change = |default| ClassChange {
            name: "platform".into(),
            default_before_or_now: default,
        };
        assert_eq!(names(&change(false)), ["named"]);
        assert_eq!(names(&change(true)), ["named", "unnamed"]);
    }
}
