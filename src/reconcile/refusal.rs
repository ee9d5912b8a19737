//! What a reconcile decides when a resource's class keeps it from AWS. Pure.
//!
//! None of these outcomes makes an AWS call, and none touches what is already in AWS: the
//! status keeps naming the resources it named, so a class that comes back (or is fixed) finds
//! them again instead of creating duplicates, and a missing class never makes "stale"
//! resources of everything.

use super::outcome::{self, Facts, Next, Outcome};
use super::status::reason::INVALID_SPEC;
use crate::class::{Refusal, SelectError};

/// `Ready=False` reasons of a resource its class keeps from AWS.
pub mod reason {
    /// The resource breaks a guardrail of its class, or its namespace may not use the class.
    pub const POLICY_VIOLATION: &str = "PolicyViolation";
    /// `spec.className` names a class that does not exist; or it names none, and the default
    /// class the resource was synced with is gone, or the controller requires a class.
    pub const CLASS_NOT_FOUND: &str = "ClassNotFound";
    /// No `spec.className`, and more than one class is marked default.
    pub const AMBIGUOUS_DEFAULT_CLASS: &str = "AmbiguousDefaultClass";
    /// The class itself is invalid: its platform team fixes it.
    pub const INVALID_CLASS: &str = "InvalidClass";
}

/// Why a resource is not carried to AWS, as far as its class is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// Its class cannot be chosen.
    Select(SelectError),
    /// Its class (or the resource with its class) is refused.
    Refused(Refusal),
}

/// The outcome for a blocked resource. An edit of the resource or of its class wakes it (the
/// class watch); what neither watch sees, a class created under a name nobody waits on yet or
/// a namespace's labels, is picked up at the resync slot rather than retried hot.
pub fn blocked(f: &Facts<'_>, why: Blocked) -> Outcome {
    let resync = Next::Requeue(f.next_resync);
    match why {
        Blocked::Select(e) => {
            let reason = match e {
                SelectError::NotFound(_) | SelectError::DefaultGone(_) | SelectError::Required => {
                    reason::CLASS_NOT_FOUND
                }
                SelectError::Ambiguous(_) => reason::AMBIGUOUS_DEFAULT_CLASS,
            };
            outcome::refused(f, reason, &[e.field_error()], resync)
        }
        Blocked::Refused(refusal) => {
            let (reason, next) = match &refusal {
                Refusal::Policy(_) => (reason::POLICY_VIOLATION, resync),
                Refusal::InvalidClass { .. } => (reason::INVALID_CLASS, Next::AwaitChange),
                Refusal::Invalid(_) => (INVALID_SPEC, Next::AwaitChange),
            };
            outcome::refused(f, reason, &refusal.into_errors(), next)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::*;
    use crate::reconcile::policy::{Defaults, settings};
    use crate::validate::FieldError;

    fn example() -> BranchPipeline {
        let mut bp = crate::fixtures::example();
        bp.metadata.generation = Some(2);
        bp
    }

    fn decide(previous: &BranchPipelineStatus, why: Blocked) -> Outcome {
        let bp = example();
        let s = settings(
            &bp,
            Defaults {
                resync_interval: Duration::from_secs(600),
                deletion_policy: None,
            },
        );
        let f = Facts {
            generation: bp.metadata.generation,
            previous,
            settings: &s,
            now: "t",
            next_resync: Duration::from_secs(321),
            class: None,
        };
        blocked(&f, why)
    }

    fn ready(out: &Outcome) -> (String, String, String) {
        let c = out.status.condition(CONDITION_READY).expect("Ready");
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    fn violation() -> Blocked {
        Blocked::Refused(Refusal::Policy(vec![FieldError::new(
            "spec.buildRoleArn",
            "is not in allowedRoleArns of BranchPipelineClass \"platform\"",
        )]))
    }

    #[test]
    fn a_violation_names_field_and_rule_once_and_waits_for_the_resync() {
        let mut previous = BranchPipelineStatus::default();
        previous.projects.push("kept".into());
        let first = decide(&previous, violation());
        let (status, reason, message) = ready(&first);
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "PolicyViolation")
        );
        assert!(message.contains("spec.buildRoleArn") && message.contains("allowedRoleArns"));
        assert_eq!(first.events.len(), 1);
        assert!(matches!(first.next, Next::Requeue(d) if d == Duration::from_secs(321)));
        assert_eq!(first.status.projects, ["kept"], "AWS inventory kept");
        let again = decide(&first.status, violation());
        assert!(again.events.is_empty(), "deduplicated: {:?}", again.events);
    }

    #[test]
    fn each_blocker_has_its_reason() {
        let none = BranchPipelineStatus::default();
        let rows = [
            (
                Blocked::Select(SelectError::NotFound("gone".into())),
                "ClassNotFound",
                "spec.className: BranchPipelineClass \"gone\" does not exist",
            ),
            (
                Blocked::Select(SelectError::Ambiguous(vec!["a".into(), "b".into()])),
                "AmbiguousDefaultClass",
                "spec.className: is not set and 2",
            ),
            (
                Blocked::Refused(Refusal::InvalidClass {
                    class: "platform".into(),
                    errors: vec![FieldError::new("spec.templates[0].name", "is taken")],
                }),
                "InvalidClass",
                "BranchPipelineClass platform spec.templates[0].name: is taken",
            ),
            (
                Blocked::Refused(Refusal::Invalid(vec![FieldError::new(
                    "spec.buildRoleArn",
                    "set it here or in the class",
                )])),
                "InvalidSpec",
                "spec.buildRoleArn: set it here",
            ),
        ];
        for (why, want_reason, want_message) in rows {
            let out = decide(&none, why);
            let (_, reason, message) = ready(&out);
            assert_eq!(reason, want_reason);
            assert!(message.starts_with(want_message), "{message}");
            assert_eq!(out.events.len(), 1);
        }
    }
}
