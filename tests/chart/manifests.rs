//! Reading what the chart rendered: manifest documents, the Deployment's args and env, the
//! RBAC grants of a role, and JSON containment up to the apiserver's defaults.

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde::Deserialize;
use serde_json::Value;

use crate::chart_dir;

/// The documents of a release's rendered manifest.
pub fn manifest_docs(release: &Value) -> Result<Vec<Value>> {
    let text = release["manifest"]
        .as_str()
        .context("release without manifest")?;
    parse_yaml_docs(text)
}

fn parse_yaml_docs(text: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).context("parsing YAML")?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

pub fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap_or("?").to_owned())
        .collect()
}

pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name} among {:?}", kinds(docs)))
}

pub fn only<'a>(docs: &'a [Value], kind: &str) -> Result<&'a Value> {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    ensure!(
        found.len() == 1,
        "expected one {kind}, found {}",
        found.len()
    );
    Ok(found[0])
}

pub fn deployment_args(docs: &[Value]) -> Result<Vec<String>> {
    let deployment = only(docs, "Deployment")?;
    let args = deployment
        .pointer("/spec/template/spec/containers/0/args")
        .context("Deployment without args")?;
    Ok(serde_json::from_value(args.clone())?)
}

pub fn deployment_env(docs: &[Value]) -> Result<Vec<Value>> {
    let deployment = only(docs, "Deployment")?;
    let env = deployment
        .pointer("/spec/template/spec/containers/0/env")
        .context("Deployment without env")?;
    Ok(env.as_array().cloned().unwrap_or_default())
}

/// Every (apiGroup, resource, verb) a set of RBAC rules grants; fails on rules that use
/// resourceNames or nonResourceURLs, which these charts never need.
pub fn grants(rules: &[PolicyRule]) -> Result<BTreeSet<(String, String, String)>> {
    let mut out = BTreeSet::new();
    for rule in rules {
        ensure!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "unexpected rule {rule:?}"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    out.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    Ok(out)
}

fn grant_set(spec: &[(&str, &str, &[&str])]) -> BTreeSet<(String, String, String)> {
    spec.iter()
        .flat_map(|(group, resource, verbs)| {
            verbs
                .iter()
                .map(move |verb| (group.to_string(), resource.to_string(), verb.to_string()))
        })
        .collect()
}

/// What the controller needs for BranchPipelines and their Events, and nothing else.
pub fn controller_grants() -> BTreeSet<(String, String, String)> {
    grant_set(&[
        (
            "branchpipeline.dev",
            "branchpipelines",
            &["get", "list", "watch", "patch", "update"],
        ),
        (
            "branchpipeline.dev",
            "branchpipelines/status",
            &["get", "patch", "update"],
        ),
        (
            "branchpipeline.dev",
            "branchpipelines/finalizers",
            &["update"],
        ),
        (
            "branchpipeline.dev",
            "branchpipelineruns",
            &["get", "list", "watch", "patch", "delete"],
        ),
        (
            "branchpipeline.dev",
            "branchpipelineruns/status",
            &["get", "patch", "update"],
        ),
        ("events.k8s.io", "events", &["create", "patch"]),
    ])
}

/// What the controller needs cluster-wide in every mode: reading BranchPipelineClasses, and
/// a namespace's labels for a class's `allowedNamespaces`.
pub fn class_grants() -> BTreeSet<(String, String, String)> {
    grant_set(&[
        (
            "branchpipeline.dev",
            "branchpipelineclasses",
            &["get", "list", "watch"],
        ),
        ("", "namespaces", &["get"]),
    ])
}

/// What leader election needs, in the release namespace.
pub fn lease_grants() -> BTreeSet<(String, String, String)> {
    grant_set(&[(
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update", "patch"],
    )])
}

pub fn rules_of(doc: &Value) -> Result<Vec<PolicyRule>> {
    Ok(serde_json::from_value(doc["rules"].clone())?)
}

/// `expected` is contained in `actual`: every key of every object in `expected` is in
/// `actual` with a contained value, arrays match element by element, numbers by value
/// (YAML's 2160.0 is JSON's 2160). The apiserver adds defaults, hence not equality.
pub fn contained(expected: &Value, actual: &Value, path: &str) -> Result<()> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let child = format!("{path}/{key}");
                let other = a.get(key).with_context(|| format!("{child} missing"))?;
                contained(value, other, &child)?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            ensure!(
                e.len() == a.len(),
                "{path}: {} items, expected {}",
                a.len(),
                e.len()
            );
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                contained(x, y, &format!("{path}/{i}"))?;
            }
            Ok(())
        }
        (Value::Number(e), Value::Number(a)) => {
            ensure!(e.as_f64() == a.as_f64(), "{path}: {a}, expected {e}");
            Ok(())
        }
        (e, a) => {
            ensure!(e == a, "{path}: {a}, expected {e}");
            Ok(())
        }
    }
}

/// Equality up to number representation.
pub fn same(expected: &Value, actual: &Value) -> Result<()> {
    contained(expected, actual, "")?;
    contained(actual, expected, "")
}

/// The chart's copy of a CRD, by its file name in `files/crds/` (the same as in `crds/`).
pub fn crd_file(name: &str) -> Result<Value> {
    let path = chart_dir().join("files/crds").join(name);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    Ok(serde_yaml::from_str(&text)?)
}

/// `(file name, CRD name)` of every CRD the chart ships, as the crate generates them.
pub fn crd_names() -> Vec<(String, String)> {
    branchpipeline::crd::crd_files()
        .into_iter()
        .map(|(path, yaml)| {
            let file = path.rsplit('/').next().unwrap_or(path).to_string();
            let crd: Value = serde_yaml::from_str(&yaml).expect("generated CRD parses");
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (file, name)
        })
        .collect()
}
