//! The README's example, `examples/orders-api.yaml`, in the shapes the tests need: its text,
//! its JSON, the `BranchPipeline` it parses to, edited, or moved into a test's namespace
//! and AWS account.
//!
//! Self-contained (only the crate and serde), so that binaries without a test bed can take
//! just this file: `#[path = "support/fixtures.rs"] mod fixtures;`.
#![allow(dead_code)]

use branchpipeline::api::BranchPipeline;
use branchpipeline::manifest;

/// `examples/orders-api.yaml`, as committed.
pub const EXAMPLE: &str = include_str!("../../examples/orders-api.yaml");
/// The namespace and the account the example names.
pub const EXAMPLE_NAMESPACE: &str = "team-orders";
pub const EXAMPLE_ACCOUNT: &str = "111122223333";
const EXAMPLE_PIPELINE_ROLE: &str =
    "arn:aws:iam::111122223333:role/branchpipeline/orders-codepipeline";

/// The example, parsed as `render -f` parses it.
pub fn example() -> BranchPipeline {
    parse(EXAMPLE)
}

/// The example as plain JSON, exactly as written (no defaults filled in): what a user
/// applies with kubectl or Argo CD.
pub fn example_json() -> serde_json::Value {
    serde_yaml::from_str(EXAMPLE).expect("the example is YAML")
}

/// The example's text with each `(from, to)` replacement made; panics if a `from` does not
/// occur, so that an edit cannot silently stop applying when the example changes.
pub fn edited_text(edits: &[(&str, &str)]) -> String {
    let mut text = EXAMPLE.to_owned();
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "the example no longer contains {from:?}"
        );
        text = text.replace(from, to);
    }
    text
}

/// The example with text edits (see [`edited_text`]), parsed.
pub fn example_edited(edits: &[(&str, &str)]) -> BranchPipeline {
    parse(&edited_text(edits))
}

/// The example's text moved into `namespace` and into the account of `pipeline_role_arn`,
/// which becomes its pipeline role: every ARN of the example (connection, build role,
/// approval topic) names that account. This is how the integration tests run it in moto,
/// whose CreatePipeline wants a role that exists there.
pub fn text_in(namespace: &str, pipeline_role_arn: &str) -> String {
    let account = pipeline_role_arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        .map(|(account, _)| account)
        .unwrap_or_else(|| panic!("{pipeline_role_arn} is not an IAM role ARN"));
    edited_text(&[
        (
            &format!("namespace: {EXAMPLE_NAMESPACE}"),
            &format!("namespace: {namespace}"),
        ),
        (EXAMPLE_PIPELINE_ROLE, pipeline_role_arn),
        (EXAMPLE_ACCOUNT, account),
    ])
}

/// [`text_in`], parsed.
pub fn example_in(namespace: &str, pipeline_role_arn: &str) -> BranchPipeline {
    parse(&text_in(namespace, pipeline_role_arn))
}

/// [`text_in`] as plain JSON, as [`example_json`].
pub fn example_json_in(namespace: &str, pipeline_role_arn: &str) -> serde_json::Value {
    serde_yaml::from_str(&text_in(namespace, pipeline_role_arn)).expect("the example is YAML")
}

/// The first manifest of `text`; panics with the field path if it does not parse.
pub fn parse(text: &str) -> BranchPipeline {
    let mut documents = manifest::parse_documents(text);
    assert!(!documents.is_empty(), "no manifest in {text:?}");
    match documents.remove(0).result {
        Ok(bp) => bp,
        Err(e) => panic!("the manifest does not parse: {}: {}", e.path, e.message),
    }
}
