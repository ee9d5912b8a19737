//! Files checked as they are, without Helm: Chart.yaml's versions, the chart's copy of the
//! CRD, the Dockerfile's pins, and the IAM policy against the AWS calls src/aws makes.

use std::collections::BTreeSet;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::{CHART_NAME, TestResult, chart_dir, repo};

#[test]
fn chart_app_version_is_the_crate_version() -> TestResult {
    let text = std::fs::read_to_string(chart_dir().join("Chart.yaml"))?;
    let chart: Value = serde_yaml::from_str(&text)?;
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], CHART_NAME);
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "Chart.yaml appVersion must be the crate version in Cargo.toml (a quoted string)"
    );
    let version = chart["version"].as_str().context("Chart.yaml version")?;
    ensure!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "chart version {version} is not SemVer x.y.z"
    );
    Ok(())
}

#[test]
fn chart_crd_files_are_the_generated_crds() -> TestResult {
    let dir = chart_dir().join("files/crds");
    let mut shipped: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    shipped.sort();
    let mut generated = Vec::new();
    for (path, yaml) in branchpipeline::crd::crd_files() {
        let name = path.rsplit('/').next().unwrap_or(path);
        let copy = std::fs::read_to_string(dir.join(name))?;
        pretty_assertions::assert_eq!(
            copy,
            yaml,
            "charts/{CHART_NAME}/files/crds/{name} differs from the generated CRD: run `cargo run -- crd --write`"
        );
        generated.push(name.to_string());
    }
    generated.sort();
    assert_eq!(
        shipped, generated,
        "files/crds holds exactly the generated CRDs"
    );
    Ok(())
}

#[test]
fn dockerfile_pins_the_crate_toolchain_and_runs_as_nonroot() -> TestResult {
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml"))?;
    let rust_version = cargo
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version"))
        .and_then(|rest| rest.split('"').nth(1))
        .context("rust-version in Cargo.toml")?;
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile"))?;
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .collect();
    assert!(
        froms
            .iter()
            .any(|l| l.contains(&format!("rust:{rust_version}-bookworm"))),
        "the builder should be rust:{rust_version}-bookworm (Cargo.toml rust-version): {froms:?}"
    );
    let last = froms.last().context("no FROM")?;
    assert!(
        last.contains("gcr.io/distroless/cc-debian12:nonroot"),
        "runtime stage: {last}"
    );
    assert!(dockerfile.lines().any(|l| l.trim() == "USER 65532:65532"));
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == r#"ENTRYPOINT ["/usr/local/bin/branchpipeline-controller"]"#)
    );
    let dockerignore = std::fs::read_to_string(repo().join(".dockerignore"))?;
    assert!(dockerignore.lines().any(|l| l.trim() == "target/"));
    Ok(())
}

/// The policy grants exactly the AWS operations src/aws calls, plus passing roles
/// and connections, and nothing else.
#[test]
fn iam_policy_lists_exactly_the_called_actions() -> TestResult {
    let text = std::fs::read_to_string(chart_dir().join("docs/iam-policy.json"))?;
    let policy: Value = serde_json::from_str(&text)?;
    assert_eq!(policy["Version"], "2012-10-17");
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"].as_array().context("Statement")? {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        match &statement["Action"] {
            Value::String(a) => {
                actions.insert(a.clone());
            }
            Value::Array(list) => {
                for a in list {
                    ensure!(
                        actions.insert(a.as_str().context("action")?.to_owned()),
                        "{a} twice"
                    );
                }
            }
            other => bail!("bad Action {other}"),
        }
    }

    let expected: BTreeSet<String> = [
        "codepipeline:GetPipeline",
        "codepipeline:CreatePipeline",
        "codepipeline:UpdatePipeline",
        "codepipeline:DeletePipeline",
        "codepipeline:ListPipelines",
        "codepipeline:TagResource",
        "codepipeline:UntagResource",
        "codepipeline:ListTagsForResource",
        "codepipeline:StartPipelineExecution",
        "codepipeline:GetPipelineExecution",
        "codepipeline:ListPipelineExecutions",
        "codepipeline:ListActionExecutions",
        "codepipeline:GetPipelineState",
        "codebuild:BatchGetProjects",
        "codebuild:CreateProject",
        "codebuild:UpdateProject",
        "codebuild:DeleteProject",
        "codebuild:ListProjects",
        "iam:PassRole",
        "codestar-connections:PassConnection",
        "codeconnections:PassConnection",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    pretty_assertions::assert_eq!(actions, expected);

    // Every operation the SDK adapter sends, as `codepipeline:Op` / `codebuild:Op`: client
    // method calls (`self.codebuild.list_projects()`) and input builders sent with
    // `send_with` (`cb::operation::create_project::...`), outside the unit tests.
    let call = regex::Regex::new(
        r"self\s*\.\s*(codepipeline|codebuild)\s*\.\s*([a-z_]+)\s*\(\s*\)|\b(cp|cb)::operation::([a-z_]+)::",
    )?;
    let mut called = BTreeSet::new();
    for file in ["src/aws/sdk.rs", "src/aws/convert.rs"] {
        let text = std::fs::read_to_string(repo().join(file))?;
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for c in call.captures_iter(code) {
            let (service, op) = match (c.get(1), c.get(2), c.get(3), c.get(4)) {
                (Some(s), Some(op), _, _) => (s.as_str(), op.as_str()),
                (_, _, Some(alias), Some(op)) => (
                    if alias.as_str() == "cp" {
                        "codepipeline"
                    } else {
                        "codebuild"
                    },
                    op.as_str(),
                ),
                _ => continue,
            };
            if op == "config" {
                continue;
            }
            let op: String = op
                .split('_')
                .map(|w| {
                    let mut chars = w.chars();
                    chars
                        .next()
                        .map(|f| f.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect();
            called.insert(format!("{service}:{op}"));
        }
    }
    ensure!(!called.is_empty(), "found no AWS calls in src/aws");
    let granted: BTreeSet<String> = expected
        .iter()
        .filter(|a| a.starts_with("codepipeline:") || a.starts_with("codebuild:"))
        .cloned()
        .collect();
    pretty_assertions::assert_eq!(
        called,
        granted,
        "docs/iam-policy.json must grant exactly the operations src/aws calls"
    );

    // Roles only to the two services, connections only to CodePipeline.
    for statement in policy["Statement"].as_array().unwrap_or(&Vec::new()) {
        let condition = &statement["Condition"]["StringEquals"];
        match &statement["Action"] {
            Value::String(a) if a == "iam:PassRole" => assert_eq!(
                condition["iam:PassedToService"],
                json!(["codepipeline.amazonaws.com", "codebuild.amazonaws.com"])
            ),
            Value::String(a) if a.ends_with(":PassConnection") => {
                let prefix = a.trim_end_matches(":PassConnection");
                assert_eq!(
                    condition[format!("{prefix}:PassedToService")],
                    "codepipeline.amazonaws.com"
                );
            }
            _ => {}
        }
    }
    Ok(())
}
