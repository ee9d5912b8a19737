//! The README's example split into the platform team's class (`examples/platform-class.yaml`)
//! and a short BranchPipeline (`examples/orders-api-with-class.yaml`) renders byte for byte
//! what the full example renders: the golden file of `tests/render_example.rs`.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::path::Path;
use std::process::Command;

use branchpipeline::manifest;
use branchpipeline::render;

const GOLDEN: &str = "tests/golden/orders-api.render.json";
const CLASS: &str = include_str!("../examples/platform-class.yaml");
const SHORT: &str = include_str!("../examples/orders-api-with-class.yaml");

fn golden() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN))
        .expect("golden file exists")
}

#[test]
fn the_split_example_renders_the_golden_json() {
    let class = manifest::parse_class(CLASS).expect("the class parses");
    let bp = fixtures::parse(SHORT);
    let compiled = render::compile_with(&bp, Some(&class), &Default::default())
        .unwrap_or_else(|r| panic!("renders: {:?}", r.into_errors()));
    let json = serde_json::to_string_pretty(&compiled.desired).expect("serializes") + "\n";
    pretty_assertions::assert_eq!(golden(), json);
}

#[test]
fn the_short_manifest_is_short() {
    let lines = SHORT.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(lines <= 10, "{lines} lines");
    let full = fixtures::EXAMPLE
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert!(lines * 3 <= full * 2, "{lines} vs {full} lines");
}

#[test]
fn cli_render_with_class_prints_the_golden_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_branchpipeline-controller"))
        .args([
            "render",
            "-f",
            "examples/orders-api-with-class.yaml",
            "--class",
            "examples/platform-class.yaml",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), golden());
}

#[test]
fn cli_without_the_named_class_says_to_pass_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_branchpipeline-controller"))
        .args(["render", "-f", "examples/orders-api-with-class.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "error: examples/orders-api-with-class.yaml: spec.className: names class \"acme-platform\"; pass it with --class FILE\n"
    );
}

#[test]
fn cli_gives_an_unnamed_manifest_only_a_default_class() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unnamed = dir.path().join("unnamed.yaml");
    std::fs::write(&unnamed, SHORT.replace("  className: acme-platform\n", "")).expect("writes");
    let plain = dir.path().join("plain-class.yaml");
    std::fs::write(
        &plain,
        CLASS.replace(
            "branchpipeline.dev/is-default-class: \"true\"",
            "team: platform",
        ),
    )
    .expect("writes");
    let render = |class: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_branchpipeline-controller"))
            .arg("render")
            .arg("-f")
            .arg(&unnamed)
            .arg("--class")
            .arg(class)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("runs")
    };
    let refused = render(&plain);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("spec.className: is not set, and --class gives \"acme-platform\", which is not marked default"),
        "{stderr}"
    );
    let default = render(std::path::Path::new("examples/platform-class.yaml"));
    assert!(
        default.status.success(),
        "{}",
        String::from_utf8_lossy(&default.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&default.stdout), golden());
}

#[test]
fn cli_reports_a_guardrail_with_the_field_and_the_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("admin.yaml");
    let text = SHORT.replace(
        "  className: acme-platform\n",
        "  className: acme-platform\n  buildRoleArn: arn:aws:iam::111122223333:role/admin\n",
    );
    std::fs::write(&path, text).expect("writes");
    let out = Command::new(env!("CARGO_BIN_EXE_branchpipeline-controller"))
        .arg("render")
        .arg("-f")
        .arg(&path)
        .args(["--class", "examples/platform-class.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(": spec.buildRoleArn: \"arn:aws:iam::111122223333:role/admin\" is not allowed by class \"acme-platform\": guardrails.allowedRoleArns allows arn:aws:iam::111122223333:role/branchpipeline/*-codepipeline, arn:aws:iam::111122223333:role/branchpipeline/*-codebuild;"),
        "{stderr}"
    );
}

/// A catalog template's inline buildspec becomes the project's `source.buildspec`, unchanged;
/// a stage with its own path keeps the path.
#[test]
fn a_template_buildspec_is_the_projects_source_buildspec() {
    let class = manifest::parse_class(CLASS).expect("the class parses");
    let inline = class
        .template("node-test")
        .and_then(|t| t.buildspec.clone())
        .expect("node-test has a buildspec");
    let bp = fixtures::parse(&SHORT.replace(
        "{name: lint}",
        "{name: lint, template: node-test}, {name: unit, template: node-test, buildspec: ci/unit.yml}",
    ));
    let compiled = render::compile_with(&bp, Some(&class), &Default::default())
        .unwrap_or_else(|r| panic!("renders: {:?}", r.into_errors()));
    let project = |name: &str| {
        compiled
            .desired
            .projects
            .iter()
            .find(|p| p.name == format!("team-orders-orders-api-{name}"))
            .unwrap_or_else(|| panic!("project {name}"))
            .clone()
    };
    let lint = project("lint");
    assert_eq!(lint.source.buildspec, inline);
    assert_eq!(lint.environment.compute_type, "BUILD_GENERAL1_MEDIUM");
    assert_eq!(lint.timeout_in_minutes, 45);
    assert_eq!(project("unit").source.buildspec, "ci/unit.yml");
    assert_eq!(project("test").source.buildspec, "cicd/buildspecs/test.yml");
}
