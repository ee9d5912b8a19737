//! Deterministic AWS names for Kubernetes objects.
//!
//! Kubernetes names can be longer than AWS allows and may contain dots, which CodeBuild rejects.
//! A name that does not fit is truncated and given a short hash of the full name, so two long
//! names that share a prefix still map to different AWS names, and the same input always maps
//! to the same output: a crash between create and status write can never create a duplicate.

use sha2::{Digest, Sha256};

/// CodePipeline: 1–100 characters of `[A-Za-z0-9.@_-]`.
pub const PIPELINE_NAME_MAX: usize = 100;
/// CodeBuild: 2–150 characters, `[A-Za-z0-9][A-Za-z0-9_-]{1,149}`.
pub const PROJECT_NAME_MAX: usize = 150;
/// Hex digits of hash kept in a shortened name.
const HASH_LEN: usize = 8;

pub fn short_hash(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    hex::encode(digest)[..HASH_LEN].to_string()
}

/// Fits `name` into `max` characters: unchanged when it fits, else `<prefix>-<hash>`.
pub fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let keep = max - HASH_LEN - 1;
    let mut prefix: String = name.chars().take(keep).collect();
    // A trailing separator next to the hash's own dash reads like a typo; drop it.
    while prefix.ends_with(['-', '.', '_']) {
        prefix.pop();
    }
    format!("{prefix}-{}", short_hash(name))
}

/// Base name of a pipeline group: `<namespace>-<name>` or `<namespace>-<name>-<group>`.
/// Kubernetes names only use `[a-z0-9.-]`, all of which CodePipeline accepts.
pub fn pipeline_name(namespace: &str, name: &str, group: Option<&str>) -> String {
    let full = match group {
        None => format!("{namespace}-{name}"),
        Some(group) => format!("{namespace}-{name}-{group}"),
    };
    fit(&full, PIPELINE_NAME_MAX)
}

/// CodeBuild project `<pipeline>-<suffix>`. CodeBuild forbids dots, so they become dashes, and
/// the hash of the unsanitized name keeps `a.b` and `a-b` apart.
pub fn project_name(pipeline: &str, suffix: &str) -> String {
    let full = format!("{pipeline}-{suffix}");
    let sanitized = project_safe(&full);
    if sanitized == full {
        fit(&full, PROJECT_NAME_MAX)
    } else {
        let keep = PROJECT_NAME_MAX - HASH_LEN - 1;
        let prefix: String = sanitized.chars().take(keep).collect();
        format!(
            "{}-{}",
            prefix.trim_end_matches(['-', '_']),
            short_hash(&full)
        )
    }
}

/// Replaces every character CodeBuild rejects in a project name with `-`.
pub fn project_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub fn is_valid_pipeline_name(name: &str) -> bool {
    (1..=PIPELINE_NAME_MAX).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

pub fn is_valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    (2..=PROJECT_NAME_MAX).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(
            pipeline_name("team-orders", "orders-api", None),
            "team-orders-orders-api"
        );
        assert_eq!(
            pipeline_name("team-orders", "orders-api", Some("production")),
            "team-orders-orders-api-production"
        );
        assert_eq!(
            project_name("team-orders-orders-api", "lint"),
            "team-orders-orders-api-lint"
        );
    }

    #[test]
    fn long_names_are_truncated_with_hash() {
        let name = "x".repeat(240);
        let a = pipeline_name("ns", &name, None);
        assert_eq!(a.len(), PIPELINE_NAME_MAX);
        assert!(is_valid_pipeline_name(&a));
        // Same input, same output; different tail, different output.
        assert_eq!(a, pipeline_name("ns", &name, None));
        let b = pipeline_name("ns", &format!("{name}y"), None);
        assert_ne!(a, b);
        assert_eq!(a[..80], b[..80]);
    }

    #[test]
    fn dots_are_replaced_and_hashed_for_codebuild() {
        let a = project_name("ns-a.b", "lint");
        let b = project_name("ns-a-b", "lint");
        assert!(is_valid_project_name(&a), "{a}");
        assert_ne!(a, b);
        assert!(a.starts_with("ns-a-b-lint-"));
    }

    #[test]
    fn truncated_prefix_never_ends_in_separator() {
        let name = format!("{}-{}", "a".repeat(90), "b".repeat(20));
        let fitted = fit(&name, 100);
        assert!(
            !fitted[..fitted.len() - HASH_LEN - 1].ends_with('-'),
            "{fitted}"
        );
    }

    #[test]
    fn validity_rules() {
        assert!(is_valid_pipeline_name("a.b@c_d-e"));
        assert!(!is_valid_pipeline_name(""));
        assert!(!is_valid_pipeline_name("a/b"));
        assert!(is_valid_project_name("ab"));
        assert!(!is_valid_project_name("a"));
        assert!(!is_valid_project_name("-ab"));
        assert!(!is_valid_project_name("a.b"));
    }
}
