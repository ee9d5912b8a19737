//! A table of invalid manifests, each a small edit of the example, asserting the exact field
//! path of every error reported.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::process::Command;

use branchpipeline::manifest;
use branchpipeline::render;
use fixtures::{EXAMPLE, example_json as example};
use serde_json::{Value, json};

/// Sets the value at a JSON pointer, creating the last key if needed.
fn set(v: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = v
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match parent {
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = new,
        Value::Object(map) => {
            map.insert(key.to_string(), new);
        }
        _ => panic!("{pointer} is not in a container"),
    }
}

fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    v.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key)
        .expect(pointer);
}

/// Error paths for a manifest, from parsing, validation and render limits alike.
fn error_paths(v: &Value) -> Vec<String> {
    let text = serde_json::to_string(v).unwrap();
    let mut docs = manifest::parse_documents(&text);
    assert_eq!(docs.len(), 1);
    match docs.remove(0).result {
        Err(e) => vec![e.path],
        Ok(bp) => match render::compile(&bp) {
            Ok(_) => vec![],
            Err(errors) => errors.into_iter().map(|e| e.path).collect(),
        },
    }
}

type Edit = fn(&mut Value);

const CASES: &[(&str, &str, Edit)] = &[
    (
        "unknown compute type in a stage",
        "spec.stages[1].computeType",
        |v| {
            set(
                v,
                "/spec/stages/1/computeType",
                json!("BUILD_GENERAL1_HUGE"),
            )
        },
    ),
    ("unknown execution mode", "spec.executionMode", |v| {
        set(v, "/spec/executionMode", json!("FAST"))
    }),
    ("unknown trigger", "spec.environments[1].trigger", |v| {
        set(v, "/spec/environments/1/trigger", json!("sometimes"))
    }),
    ("missing repository", "spec.source.repository", |v| {
        remove(v, "/spec/source/repository")
    }),
    ("missing stages", "spec.stages", |v| {
        remove(v, "/spec/stages")
    }),
    (
        "timeout of the wrong type",
        "spec.defaults.timeoutMinutes",
        |v| set(v, "/spec/defaults/timeoutMinutes", json!("thirty")),
    ),
    (
        "privileged of the wrong type",
        "spec.stages[2].privileged",
        |v| set(v, "/spec/stages/2/privileged", json!([true])),
    ),
    ("duplicate stage name", "spec.stages[1].name", |v| {
        set(v, "/spec/stages/1/name", json!("lint"))
    }),
    (
        "duplicate environment name",
        "spec.environments[1].name",
        |v| set(v, "/spec/environments/1/name", json!("dev")),
    ),
    (
        "promoteFrom an unknown environment",
        "spec.environments[3].promoteFrom",
        |v| set(v, "/spec/environments/3/promoteFrom", json!("staging")),
    ),
    (
        "promoteFrom a later environment",
        "spec.environments[0].promoteFrom",
        |v| {
            remove(v, "/spec/environments/0/branches");
            set(
                v,
                "/spec/environments/0",
                json!({"name": "dev", "promoteFrom": "stage"}),
            );
        },
    ),
    (
        "promoteFrom another pipeline group",
        "spec.environments[4].promoteFrom",
        |v| {
            set(
                v,
                "/spec/environments/4",
                json!({"name": "prod", "pipeline": "production", "promoteFrom": "stage"}),
            )
        },
    ),
    (
        "both branches and promoteFrom",
        "spec.environments[3]",
        |v| set(v, "/spec/environments/3/branches", json!(["perf"])),
    ),
    (
        "neither branches nor promoteFrom",
        "spec.environments[0]",
        |v| remove(v, "/spec/environments/0/branches"),
    ),
    ("bad connection ARN", "spec.source.connectionArn", |v| {
        set(
            v,
            "/spec/source/connectionArn",
            json!("arn:aws:codecommit:us-east-1:111122223333:orders"),
        )
    }),
    ("bad pipeline role ARN", "spec.pipelineRoleArn", |v| {
        set(v, "/spec/pipelineRoleArn", json!("orders-codepipeline"))
    }),
    ("bad build role ARN", "spec.buildRoleArn", |v| {
        set(
            v,
            "/spec/buildRoleArn",
            json!("arn:aws:iam::1111:role/short-account"),
        )
    }),
    (
        "Lambda compute on a container environment",
        "spec.stages[0].computeType",
        |v| set(v, "/spec/stages/0/computeType", json!("BUILD_LAMBDA_2GB")),
    ),
    (
        "Lambda environment with general compute",
        "spec.stages[0].environmentType",
        |v| {
            set(
                v,
                "/spec/stages/0/environmentType",
                json!("LINUX_LAMBDA_CONTAINER"),
            )
        },
    ),
    (
        "Lambda compute in the defaults",
        "spec.defaults.computeType",
        |v| {
            set(v, "/spec/defaults/computeType", json!("BUILD_LAMBDA_1GB"));
            // Every stage that overrides compute keeps it valid; only the defaults are wrong.
            set(
                v,
                "/spec/stages/0/computeType",
                json!("BUILD_GENERAL1_SMALL"),
            );
            set(v, "/spec/deploy/computeType", json!("BUILD_GENERAL1_SMALL"));
        },
    ),
    (
        "privileged Lambda build",
        "spec.stages[2].privileged",
        |v| {
            set(v, "/spec/stages/2/computeType", json!("BUILD_LAMBDA_4GB"));
            set(
                v,
                "/spec/stages/2/environmentType",
                json!("LINUX_LAMBDA_CONTAINER"),
            );
        },
    ),
    ("absolute buildspec", "spec.stages[0].buildspec", |v| {
        set(v, "/spec/stages/0/buildspec", json!("/etc/buildspec.yml"))
    }),
    (
        "buildspec escaping the repository",
        "spec.deploy.buildspec",
        |v| set(v, "/spec/deploy/buildspec", json!("cicd/../../deploy.yml")),
    ),
    (
        "buildspecDir escaping the repository",
        "spec.buildspecDir",
        |v| set(v, "/spec/buildspecDir", json!("../shared")),
    ),
    (
        "nine branch patterns",
        "spec.environments[0].branches",
        |v| {
            set(
                v,
                "/spec/environments/0/branches",
                json!(["a", "b", "c", "d", "e", "f", "g", "h", "i"]),
            )
        },
    ),
    ("empty branch list", "spec.environments[0].branches", |v| {
        set(v, "/spec/environments/0/branches", json!([]))
    }),
    (
        "branch pattern too long",
        "spec.environments[2].branches[0]",
        |v| set(v, "/spec/environments/2/branches/0", json!("r".repeat(256))),
    ),
    (
        "branch pattern with whitespace",
        "spec.environments[0].branches[0]",
        |v| set(v, "/spec/environments/0/branches/0", json!("my branch")),
    ),
    (
        "more than eight trigger patterns in one pipeline",
        "spec.environments[2].branches",
        |v| {
            set(
                v,
                "/spec/environments/0/branches",
                json!(["a", "b", "c", "d", "e"]),
            );
            set(
                v,
                "/spec/environments/2/branches",
                json!(["f", "g", "h", "i"]),
            );
        },
    ),
    (
        "more than 50 stages in one pipeline",
        "spec.environments[9]",
        |v| {
            let stages: Vec<Value> = (0..40).map(|i| json!({"name": format!("s{i}")})).collect();
            set(v, "/spec/stages", Value::Array(stages));
            let mut envs: Vec<Value> = (0..10).map(|i| json!({"name": format!("e{i}"), "branches": [format!("b{i}")], "trigger": "manual"})).collect();
            envs[0]["trigger"] = json!("automatic");
            set(v, "/spec/environments", Value::Array(envs));
        },
    ),
    ("PARALLEL with rollback", "spec.rollbackOnFailure", |v| {
        set(v, "/spec/executionMode", json!("PARALLEL"));
        v["spec"]["rollbackOnFailure"] = json!(true);
    }),
    ("repository without owner", "spec.source.repository", |v| {
        set(v, "/spec/source/repository", json!("orders-api"))
    }),
    ("bucket with uppercase", "spec.artifactBucket", |v| {
        set(v, "/spec/artifactBucket", json!("Acme_Artifacts"))
    }),
    (
        "bucket shaped like an IP address",
        "spec.artifactBucket",
        |v| set(v, "/spec/artifactBucket", json!("192.168.10.1")),
    ),
    ("bucket with adjacent dots", "spec.artifactBucket", |v| {
        set(v, "/spec/artifactBucket", json!("acme..artifacts"))
    }),
    ("stage name with uppercase", "spec.stages[0].name", |v| {
        set(v, "/spec/stages/0/name", json!("Lint"))
    }),
    (
        "stage name reserved for deploys",
        "spec.stages[0].name",
        |v| set(v, "/spec/stages/0/name", json!("deploy-dev")),
    ),
    (
        "environment name with underscore",
        "spec.environments[0].name",
        |v| set(v, "/spec/environments/0/name", json!("dev_1")),
    ),
    (
        "pipeline group with uppercase",
        "spec.environments[4].pipeline",
        |v| set(v, "/spec/environments/4/pipeline", json!("Production")),
    ),
    (
        "timeout below 5 minutes",
        "spec.defaults.timeoutMinutes",
        |v| set(v, "/spec/defaults/timeoutMinutes", json!(4)),
    ),
    (
        "stage timeout above 36 hours",
        "spec.stages[2].timeoutMinutes",
        |v| set(v, "/spec/stages/2/timeoutMinutes", json!(2161)),
    ),
    (
        "deploy variables over 1000 characters",
        "spec.environments[0].variables",
        |v| {
            v["spec"]["environments"][0]["variables"] = json!({"BIG": "x".repeat(1000)});
        },
    ),
    (
        "invalid environment variable name",
        "spec.environments[0].variables.1BAD",
        |v| {
            v["spec"]["environments"][0]["variables"] = json!({"1BAD": "x"});
        },
    ),
    (
        "reserved tag prefix",
        "spec.tags.branchpipeline.dev/team",
        |v| set(v, "/spec/tags", json!({"branchpipeline.dev/team": "x"})),
    ),
    (
        "bad SNS topic ARN",
        "spec.environments[4].approval.notificationArn",
        |v| {
            set(
                v,
                "/spec/environments/4/approval/notificationArn",
                json!("prod-approvals"),
            )
        },
    ),
    ("missing namespace", "metadata.namespace", |v| {
        remove(v, "/metadata/namespace")
    }),
    ("resource name CodePipeline rejects", "metadata.name", |v| {
        set(v, "/metadata/name", json!("orders/api"))
    }),
    ("wrong kind", "kind", |v| set(v, "/kind", json!("Pipeline"))),
    (
        "default branch git forbids",
        "spec.source.defaultBranch",
        |v| set(v, "/spec/source/defaultBranch", json!("../..")),
    ),
    (
        "branch pattern ending in .lock",
        "spec.environments[0].branches[0]",
        |v| set(v, "/spec/environments/0/branches/0", json!("release.lock")),
    ),
    ("tag key with an emoji", "spec.tags.team🚀", |v| {
        set(v, "/spec/tags", json!({"team🚀": "x"}))
    }),
    ("tag value with a hash", "spec.tags.team", |v| {
        set(v, "/spec/tags", json!({"team": "cost#center"}))
    }),
    ("tag value of 256 characters", "spec.tags.team", |v| {
        set(v, "/spec/tags", json!({"team": "é".repeat(256)}))
    }),
    (
        "stage name longer than a CodePipeline stage name",
        "spec.stages[0].name",
        |v| set(v, "/spec/stages/0/name", json!("s".repeat(101))),
    ),
    (
        "environment name too long for its deploy stage",
        "spec.environments[0].name",
        |v| set(v, "/spec/environments/0/name", json!("e".repeat(94))),
    ),
    (
        "duplicate pipeline variable",
        "spec.variables[1].name",
        |v| {
            v["spec"]["variables"] = json!([{"name": "REGION"}, {"name": "REGION"}]);
        },
    ), // Fields a class may provide: required here when no class gives them.
    ("missing build role, no class", "spec.buildRoleArn", |v| {
        remove(v, "/spec/buildRoleArn")
    }),
    (
        "missing connection, no class",
        "spec.source.connectionArn",
        |v| remove(v, "/spec/source/connectionArn"),
    ),
    ("missing bucket, no class", "spec.artifactBucket", |v| {
        remove(v, "/spec/artifactBucket")
    }),
    (
        "a template without a class",
        "spec.stages[2].template",
        |v| set(v, "/spec/stages/2/template", json!("docker-build")),
    ),
];

#[test]
fn the_example_is_valid() {
    assert_eq!(error_paths(&example()), Vec::<String>::new());
}

/// The limits are AWS's, not stricter: names as long as AWS allows, tags counted in characters.
#[test]
fn what_aws_accepts_is_accepted() {
    let mut v = example();
    set(&mut v, "/spec/stages/0/name", json!("s".repeat(100)));
    set(&mut v, "/spec/environments/0/name", json!("e".repeat(93)));
    set(
        &mut v,
        "/spec/source/defaultBranch",
        json!("release/2.0-rc.1"),
    );
    set(
        &mut v,
        "/spec/tags",
        json!({"équipe": "é".repeat(255), "cost center:a/b=c+d-e@f": ""}),
    );
    // The renamed dev environment is the one `develop` and the default branch feed.
    set(
        &mut v,
        "/spec/environments/0/branches",
        json!(["develop", "release/2.0-rc.1"]),
    );
    // CodePipeline's glob syntax beyond * and ?: sets, ranges, negation and groups.
    set(
        &mut v,
        "/spec/environments/2/branches",
        json!(["release/[0-9]*", "hotfix/[!a-c]*", "{rc,beta}/**"]),
    );
    assert_eq!(error_paths(&v), Vec::<String>::new());
}

#[test]
fn every_invalid_manifest_names_the_exact_field() {
    assert!(CASES.len() >= 30);
    let mut failures = Vec::new();
    for (name, path, edit) in CASES {
        let mut v = example();
        edit(&mut v);
        let got = error_paths(&v);
        if got != [*path] {
            failures.push(format!("{name}: expected [{path}], got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn messages_say_how_to_fix() {
    let mut v = example();
    set(&mut v, "/spec/environments/3/promoteFrom", json!("prod"));
    let bp = manifest::parse_value(serde_yaml::to_value(&v).unwrap()).unwrap();
    let errors = render::compile(&bp).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "spec.environments[3].promoteFrom");
    assert!(
        errors[0]
            .message
            .contains("move it before this environment"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_missing_field_a_class_may_provide_says_where_to_set_it() {
    let mut v = example();
    remove(&mut v, "/spec/pipelineRoleArn");
    let bp = manifest::parse_value(serde_yaml::to_value(&v).unwrap()).unwrap();
    let errors = render::compile(&bp).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "spec.pipelineRoleArn: is required; set it here, or in the BranchPipelineClass's spec.defaults.pipelineRoleArn (spec.className)"
    );
}

#[test]
fn all_problems_are_reported_not_just_the_first() {
    let mut v = example();
    set(&mut v, "/spec/stages/1/name", json!("lint"));
    set(&mut v, "/spec/artifactBucket", json!("Bad_Bucket"));
    set(&mut v, "/spec/environments/3/promoteFrom", json!("nowhere"));
    let paths = error_paths(&v);
    assert_eq!(
        paths,
        [
            "spec.artifactBucket",
            "spec.stages[1].name",
            "spec.environments[3].promoteFrom"
        ]
    );
}

#[test]
fn cli_reports_every_error_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let mut bad = example();
    set(&mut bad, "/spec/stages/1/name", json!("lint"));
    set(
        &mut bad,
        "/spec/environments/3/promoteFrom",
        json!("nowhere"),
    );
    let mut unknown = example();
    set(&mut unknown, "/spec/stages/0/computeType", json!("HUGE"));
    let text = format!(
        "{}---\n{}---\n{}",
        EXAMPLE,
        serde_yaml::to_string(&bad).unwrap(),
        serde_yaml::to_string(&unknown).unwrap()
    );
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_branchpipeline-controller"))
        .args(["render", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let f = file.display();
    let lines: Vec<_> = stderr
        .lines()
        .map(|l| l.split(": ").take(3).collect::<Vec<_>>().join(": "))
        .collect();
    assert_eq!(
        lines,
        [
            format!("error: {f}#2: spec.stages[1].name"),
            format!("error: {f}#2: spec.environments[3].promoteFrom"),
            format!("error: {f}#3: spec.stages[0].computeType"),
        ],
        "{stderr}"
    );
}

#[test]
fn cli_reads_stdin() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_branchpipeline-controller"))
        .args(["render", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(EXAMPLE.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pipelines"].as_array().unwrap().len(), 2);
    assert_eq!(v["projects"].as_array().unwrap().len(), 4);
}
