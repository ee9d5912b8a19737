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

/// Every action of the policy with the statements granting it.
fn grants(policy: &Value) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for statement in policy["Statement"].as_array().context("Statement")? {
        let actions: Vec<String> = match &statement["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(list) => list
                .iter()
                .map(|a| a.as_str().map(str::to_owned).context("action"))
                .collect::<anyhow::Result<_>>()?,
            other => bail!("bad Action {other}"),
        };
        for action in actions {
            out.push((action, statement.clone()));
        }
    }
    Ok(out)
}

/// Least privilege (docs/iam-policy.md): roles passed only from the documented path, every
/// changing action only on resources carrying the controller's ownership tag (creates: only
/// with it), and each action left unconditioned named in the README with its reason.
#[test]
fn iam_policy_confines_the_controller_to_its_own_resources_and_roles() -> TestResult {
    use branchpipeline::render::{MANAGER, TAG_MANAGED_BY};
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(
        chart_dir().join("docs/iam-policy.json"),
    )?)?;
    let readme = std::fs::read_to_string(chart_dir().join("docs/iam-policy.md"))?;
    let grants = grants(&policy)?;
    let resource_tag = format!("aws:ResourceTag/{TAG_MANAGED_BY}");
    let request_tag = format!("aws:RequestTag/{TAG_MANAGED_BY}");
    // Actions that create, change, delete, run or retag something.
    let changing: BTreeSet<&str> = [
        "codepipeline:CreatePipeline",
        "codepipeline:UpdatePipeline",
        "codepipeline:DeletePipeline",
        "codepipeline:StartPipelineExecution",
        "codepipeline:TagResource",
        "codepipeline:UntagResource",
        "codebuild:CreateProject",
        "codebuild:UpdateProject",
        "codebuild:DeleteProject",
    ]
    .into();
    for (action, statement) in &grants {
        ensure!(statement["Effect"] == "Allow", "{statement}");
        ensure!(!action.contains('*'), "wildcard action {action}");
        let short = action.split_once(':').map_or(action.as_str(), |(_, a)| a);
        let condition = &statement["Condition"];
        if action == "iam:PassRole" {
            assert_eq!(
                statement["Resource"], "arn:aws:iam::*:role/branchpipeline/*",
                "PassRole only on the documented role path"
            );
            ensure!(readme.contains("role/branchpipeline/*"));
        } else if changing.contains(action.as_str()) {
            let requires = |key: &str| {
                ["StringEquals", "StringEqualsIfExists"]
                    .iter()
                    .any(|op| condition[op][key] == MANAGER)
            };
            let ok = if short.starts_with("Create") {
                requires(&request_tag)
            } else {
                // Its own resources; or, tagging only, a resource not yet tagged (tagging at
                // create), and only with the ownership tag.
                requires(&resource_tag)
                    || (short == "TagResource"
                        && requires(&request_tag)
                        && condition["Null"][resource_tag.as_str()] == "true")
            };
            ensure!(ok, "{action} must require the ownership tag: {statement}");
            let relaxed = [&request_tag, &resource_tag]
                .iter()
                .any(|key| condition["StringEqualsIfExists"][key.as_str()].is_string());
            if relaxed {
                // The one relaxed condition: the README says why.
                assert_eq!(action, "codepipeline:CreatePipeline");
                ensure!(readme.contains("StringEqualsIfExists"));
            }
        } else if !action.ends_with(":PassConnection") {
            ensure!(
                condition.is_null(),
                "{action} is a read; it needs no condition"
            );
        }
        ensure!(
            readme.contains(&format!("`{action}`")) || readme.contains(&format!("`{short}`")),
            "docs/iam-policy.md does not say what {action} may do"
        );
    }
    for action in &changing {
        ensure!(
            grants.iter().any(|(a, _)| a == action),
            "{action} is not granted at all"
        );
    }
    // Untagging may not remove the ownership tag itself.
    let untag = grants
        .iter()
        .find(|(a, _)| a == "codepipeline:UntagResource")
        .map(|(_, s)| s)
        .context("UntagResource")?;
    assert_eq!(
        untag["Condition"]["ForAllValues:StringNotEquals"]["aws:TagKeys"],
        json!([TAG_MANAGED_BY])
    );
    Ok(())
}

/// The condition is worth something only if the controller tags what it creates, in the
/// create request: every rendered pipeline and project of the README's example carries the
/// ownership tag with the value the policy expects.
#[test]
fn everything_the_controller_creates_carries_the_ownership_tag() -> TestResult {
    use branchpipeline::render::{self, MANAGER, TAG_MANAGED_BY};
    let text = std::fs::read_to_string(repo().join("examples/orders-api.yaml"))?;
    let bp = branchpipeline::manifest::parse_documents(&text)
        .remove(0)
        .result
        .map_err(|e| anyhow::anyhow!("{}: {}", e.path, e.message))?;
    let desired = render::compile(&bp).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let owned = |tags: &[render::Tag]| {
        tags.iter()
            .any(|t| t.key == TAG_MANAGED_BY && t.value == MANAGER)
    };
    ensure!(!desired.pipelines.is_empty() && !desired.projects.is_empty());
    for p in &desired.pipelines {
        ensure!(owned(&p.tags), "pipeline {} is untagged", p.pipeline.name);
    }
    for p in &desired.projects {
        ensure!(owned(&p.tags), "project {} is untagged", p.name);
    }
    Ok(())
}
