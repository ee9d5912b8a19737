//! Manual runs from Git: `branchpipeline.dev/run: "<branch>[@<commit>]"` starts the pipeline
//! whose environments take that branch. Pure helpers; the reconciler does the call.

use crate::render::branches;
use crate::render::model::DesiredPipeline;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    pub branch: String,
    pub commit: Option<String>,
}

pub fn parse(value: &str) -> Result<RunRequest, String> {
    let value = value.trim();
    let (branch, commit) = match value.rsplit_once('@') {
        Some((branch, commit)) => (branch, Some(commit)),
        None => (value, None),
    };
    if branch.is_empty() || branch.contains(char::is_whitespace) {
        return Err(format!(
            "{value:?} is not <branch>[@<commit>]; name a branch, e.g. release/1.4@4f2a9c1"
        ));
    }
    if let Some(commit) = commit
        && (commit.len() < 7 || commit.len() > 40 || !commit.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(format!(
            "{commit:?} is not a commit id; use 7-40 hex digits after @"
        ));
    }
    Ok(RunRequest {
        branch: branch.to_string(),
        commit: commit.map(str::to_string),
    })
}

/// The first pipeline (in spec order) with an environment that takes `branch`.
pub fn pipeline_for<'a>(
    pipelines: &'a [DesiredPipeline],
    branch: &str,
) -> Option<&'a DesiredPipeline> {
    pipelines.iter().find(|p| {
        p.branches
            .iter()
            .any(|pattern| branches::glob_matches(pattern, branch))
    })
}

/// Stable per resource and request, so a retried start after a crash is deduplicated by AWS.
pub fn request_token(uid: &str, value: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("{uid}/{value}").as_bytes()))[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{manifest, render};

    #[test]
    fn parses_branch_and_commit() {
        assert_eq!(
            parse("main").unwrap(),
            RunRequest {
                branch: "main".into(),
                commit: None
            }
        );
        assert_eq!(
            parse("release/1.4@4f2a9c1").unwrap(),
            RunRequest {
                branch: "release/1.4".into(),
                commit: Some("4f2a9c1".into())
            }
        );
        assert!(parse("").is_err());
        assert!(parse("main@xyz").is_err());
        assert!(parse("my branch").is_err());
    }

    #[test]
    fn finds_the_pipeline_covering_a_branch() {
        let bp = manifest::parse_documents(include_str!("../../examples/orders-api.yaml"))
            .remove(0)
            .result
            .unwrap();
        let state = render::render(&bp).unwrap();
        let name = |b: &str| pipeline_for(&state.pipelines, b).map(|p| p.pipeline.name.as_str());
        assert_eq!(name("feature/login"), Some("team-orders-orders-api"));
        assert_eq!(name("release/1.4"), Some("team-orders-orders-api"));
        assert_eq!(name("main"), Some("team-orders-orders-api-production"));
        assert_eq!(name("experiments/x"), None);
    }

    #[test]
    fn tokens_are_stable_and_distinct() {
        assert_eq!(request_token("u", "main"), request_token("u", "main"));
        assert_ne!(
            request_token("u", "main"),
            request_token("u", "main@abcdef1")
        );
        assert_eq!(request_token("u", "main").len(), 32);
    }
}
