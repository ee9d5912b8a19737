//! Per-resource settings from annotations, spec and controller flags, with their order of
//! precedence. Pure.
//!
//! Annotations are written by tenants, so every value is checked: a bad one is reported (with
//! the accepted form) and the default applies meanwhile. It is never reinterpreted.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::api::{BranchPipeline, DeletionPolicy, annotations};
use crate::duration;

/// Bounds of `branchpipeline.dev/resync-interval`: below 10 s a tenant could make the controller
/// hammer AWS; above 24 h drift would effectively never be repaired.
pub const RESYNC_MIN: Duration = Duration::from_secs(10);
pub const RESYNC_MAX: Duration = Duration::from_secs(24 * 3600);

/// Controller-wide defaults the annotations override.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    pub resync_interval: Duration,
    pub deletion_policy: Option<DeletionPolicy>,
}

/// What one resource asks for, after precedence, and what was wrong with its annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub resync_interval: Duration,
    /// An error when the deletion-policy annotation is invalid: the resource's intent is
    /// unknown, so deletion waits for a fix rather than guessing (see
    /// [`Settings::deletion_policy`]).
    deletion_policy: Result<DeletionPolicy, AnnotationProblem>,
    pub adopt: bool,
    /// `branchpipeline.dev/update-now`, when set to a usable value.
    pub update_now: Option<String>,
    pub problems: Vec<AnnotationProblem>,
}

impl Settings {
    /// ACK's order: the annotation, then the spec, then the controller flag, then `Delete`.
    /// An invalid annotation is an error here: deleting what a tenant meant to retain cannot be
    /// undone, so a typo in `Retain` must not fall back to `Delete`.
    pub fn deletion_policy(&self) -> Result<DeletionPolicy, &AnnotationProblem> {
        self.deletion_policy.as_ref().copied()
    }
}

/// One annotation the controller could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationProblem {
    pub annotation: String,
    pub value: String,
    /// What is wrong and the accepted form.
    pub problem: String,
}

impl fmt::Display for AnnotationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "annotation {}: {}", self.annotation, self.problem)
    }
}

/// Annotations under `branchpipeline.dev/` that a BranchPipeline may carry.
const KNOWN: &[&str] = &[
    annotations::ADOPT,
    annotations::DELETION_POLICY,
    annotations::RESYNC_INTERVAL,
    annotations::UPDATE_NOW,
];

/// The longest `branchpipeline.dev/update-now` value kept: it is copied into the status.
pub const UPDATE_NOW_MAX: usize = 253;

pub fn settings(bp: &BranchPipeline, defaults: Defaults) -> Settings {
    let empty = BTreeMap::new();
    let annotations = bp.metadata.annotations.as_ref().unwrap_or(&empty);
    let mut problems = Vec::new();
    let resync_interval = resync(annotations, defaults, &mut problems);
    let fallback = bp
        .spec
        .deletion_policy
        .or(defaults.deletion_policy)
        .unwrap_or(DeletionPolicy::Delete);
    let deletion_policy = deletion(annotations, fallback, &mut problems);
    let adopt = adopt(annotations, &mut problems);
    let update_now = update_now(annotations, &mut problems);
    unknown(annotations, &mut problems);
    Settings {
        resync_interval,
        deletion_policy,
        adopt,
        update_now,
        problems,
    }
}

fn problem(annotation: &str, value: &str, problem: String) -> AnnotationProblem {
    AnnotationProblem {
        annotation: annotation.to_string(),
        value: value.to_string(),
        problem,
    }
}

fn resync(
    annotations: &BTreeMap<String, String>,
    defaults: Defaults,
    problems: &mut Vec<AnnotationProblem>,
) -> Duration {
    let Some(value) = annotations.get(annotations::RESYNC_INTERVAL) else {
        return defaults.resync_interval;
    };
    duration::parse_within(value, RESYNC_MIN, RESYNC_MAX).unwrap_or_else(|e| {
        let meanwhile = duration::format(defaults.resync_interval);
        problems.push(problem(
            annotations::RESYNC_INTERVAL,
            value,
            format!("{e}; using {meanwhile} meanwhile"),
        ));
        defaults.resync_interval
    })
}

fn deletion(
    annotations: &BTreeMap<String, String>,
    fallback: DeletionPolicy,
    problems: &mut Vec<AnnotationProblem>,
) -> Result<DeletionPolicy, AnnotationProblem> {
    let Some(value) = annotations.get(annotations::DELETION_POLICY) else {
        return Ok(fallback);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "retain" => Ok(DeletionPolicy::Retain),
        "delete" => Ok(DeletionPolicy::Delete),
        _ => {
            let invalid = problem(
                annotations::DELETION_POLICY,
                value,
                format!(
                    "{value:?} is not a deletion policy; use Delete or Retain (deleting this resource waits until it is fixed)"
                ),
            );
            problems.push(invalid.clone());
            Err(invalid)
        }
    }
}

fn adopt(annotations: &BTreeMap<String, String>, problems: &mut Vec<AnnotationProblem>) -> bool {
    let Some(value) = annotations.get(annotations::ADOPT) else {
        return false;
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => true,
        "false" => false,
        _ => {
            problems.push(problem(
                annotations::ADOPT,
                value,
                format!(
                    "{value:?} is not a boolean; use \"true\" or \"false\" (not adopting meanwhile)"
                ),
            ));
            false
        }
    }
}

/// Any value works (a timestamp, a ticket number); only its change matters.
fn update_now(
    annotations: &BTreeMap<String, String>,
    problems: &mut Vec<AnnotationProblem>,
) -> Option<String> {
    let value = annotations.get(annotations::UPDATE_NOW)?;
    if value.chars().count() > UPDATE_NOW_MAX {
        problems.push(problem(
            annotations::UPDATE_NOW,
            value,
            format!("the value is longer than {UPDATE_NOW_MAX} characters; use a shorter one, such as the time or a ticket number (ignored meanwhile)"),
        ));
        return None;
    }
    Some(value.clone())
}

/// A misspelt annotation under our prefix would otherwise be ignored without a word.
fn unknown(annotations: &BTreeMap<String, String>, problems: &mut Vec<AnnotationProblem>) {
    for (key, value) in annotations {
        if key == annotations::RUN_REMOVED {
            problems.push(problem(
                key,
                value,
                "is no longer supported and starts nothing; create a BranchPipelineRun (spec.branchPipeline, spec.environment, spec.branch, spec.commit) instead".to_string(),
            ));
        } else if key.starts_with(annotations::PREFIX) && !KNOWN.contains(&key.as_str()) {
            problems.push(problem(
                key,
                value,
                format!(
                    "is not an annotation this controller knows; the known ones are {}",
                    KNOWN.join(", ")
                ),
            ));
        }
    }
}

/// Exponential backoff with jitter on the upper half, capped. Integer arithmetic only, so no
/// input can make it panic.
pub fn backoff(failures: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.min(16));
    let capped = exp.min(cap);
    let half = capped / 2;
    half.saturating_add(
        duration::fraction_of(half, rand::random::<u16>() % 1001, 1000).unwrap_or(half),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Defaults = Defaults {
        resync_interval: Duration::from_secs(600),
        deletion_policy: None,
    };

    fn example(annotations: &[(&str, &str)]) -> BranchPipeline {
        let mut bp = crate::fixtures::example();
        bp.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        bp
    }

    fn policy(bp: &BranchPipeline, flag: Option<DeletionPolicy>) -> DeletionPolicy {
        let defaults = Defaults {
            deletion_policy: flag,
            ..DEFAULTS
        };
        settings(bp, defaults)
            .deletion_policy()
            .expect("valid deletion policy")
    }

    #[test]
    fn deletion_policy_precedence() {
        let plain = example(&[]);
        assert_eq!(policy(&plain, None), DeletionPolicy::Delete);
        assert_eq!(
            policy(&plain, Some(DeletionPolicy::Retain)),
            DeletionPolicy::Retain
        );
        let mut spec_delete = plain.clone();
        spec_delete.spec.deletion_policy = Some(DeletionPolicy::Delete);
        assert_eq!(
            policy(&spec_delete, Some(DeletionPolicy::Retain)),
            DeletionPolicy::Delete
        );
        let mut annotated = example(&[(annotations::DELETION_POLICY, "Retain")]);
        annotated.spec.deletion_policy = Some(DeletionPolicy::Delete);
        assert_eq!(
            policy(&annotated, Some(DeletionPolicy::Delete)),
            DeletionPolicy::Retain
        );
    }

    #[test]
    fn a_misspelt_deletion_policy_never_falls_back_to_delete() {
        let s = settings(
            &example(&[(annotations::DELETION_POLICY, "Retian")]),
            DEFAULTS,
        );
        let problem = s.deletion_policy().unwrap_err();
        assert!(problem.problem.contains("Delete or Retain"), "{problem}");
        assert_eq!(s.problems.len(), 1);
    }

    #[test]
    fn resync_annotation_overrides_default_within_bounds() {
        let d = DEFAULTS.resync_interval;
        let resync = |v: &str| settings(&example(&[(annotations::RESYNC_INTERVAL, v)]), DEFAULTS);
        assert_eq!(settings(&example(&[]), DEFAULTS).resync_interval, d);
        assert_eq!(resync("30s").resync_interval, Duration::from_secs(30));
        assert!(resync("30s").problems.is_empty());
        for bad in [
            "soon",
            "",
            "-5m",
            "1s1s1s",
            "5s",
            "25h",
            "99999999999h",
            "18446744073709551615s",
            "18446744073709551615s1s",
        ] {
            let s = resync(bad);
            assert_eq!(s.resync_interval, d, "{bad:?}");
            assert_eq!(s.problems.len(), 1, "{bad:?}");
            let message = s.problems[0].to_string();
            assert!(
                message.contains(annotations::RESYNC_INTERVAL) && message.contains("10m meanwhile"),
                "{message}"
            );
        }
        assert!(
            resync("99999999999h").problems[0]
                .problem
                .contains("10s to 24h")
        );
    }

    #[test]
    fn adopt_needs_a_boolean() {
        let adopt = |v: &str| settings(&example(&[(annotations::ADOPT, v)]), DEFAULTS);
        assert!(adopt("true").adopt);
        assert!(adopt("TRUE").problems.is_empty());
        assert!(!adopt("false").adopt);
        assert!(adopt("false").problems.is_empty());
        assert!(!adopt("yes").adopt);
        assert_eq!(adopt("yes").problems.len(), 1);
        assert!(!settings(&example(&[]), DEFAULTS).adopt);
    }

    #[test]
    fn update_now_takes_any_short_value() {
        let s = settings(
            &example(&[(annotations::UPDATE_NOW, "2026-11-27T10:00")]),
            DEFAULTS,
        );
        assert_eq!(s.update_now.as_deref(), Some("2026-11-27T10:00"));
        assert!(s.problems.is_empty());
        let long = "x".repeat(UPDATE_NOW_MAX + 1);
        let s = settings(&example(&[(annotations::UPDATE_NOW, &long)]), DEFAULTS);
        assert_eq!(s.update_now, None);
        assert_eq!(s.problems.len(), 1);
    }

    #[test]
    fn unknown_annotations_in_our_prefix_are_reported() {
        let s = settings(
            &example(&[
                ("branchpipeline.dev/resync", "5m"),
                ("example.com/other", "x"),
            ]),
            DEFAULTS,
        );
        assert_eq!(s.problems.len(), 1);
        assert_eq!(s.problems[0].annotation, "branchpipeline.dev/resync");
        assert!(s.problems[0].problem.contains(annotations::RESYNC_INTERVAL));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        for _ in 0..50 {
            let b0 = backoff(0, base, cap);
            assert!(b0 >= Duration::from_millis(500) && b0 <= base);
            let b3 = backoff(3, base, cap);
            assert!(b3 >= Duration::from_secs(4) && b3 <= Duration::from_secs(8));
            assert!(backoff(30, base, cap) <= cap);
            assert!(backoff(u32::MAX, Duration::MAX, Duration::MAX) <= Duration::MAX);
        }
    }
}
