//! The Argo CD health check: docs/argocd-cm.yaml embeds docs/argocd-health.lua, and the
//! script gives every fixture in tests/chart/health/ its expected status, in Lua 5.4 and
//! in Lua 5.1 (Argo CD's gopher-lua dialect).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::helm::tools;
use crate::{TestResult, chart_dir, repo};

#[test]
fn argocd_cm_embeds_the_health_script() -> TestResult {
    let docs = chart_dir().join("docs");
    let script = std::fs::read_to_string(docs.join("argocd-health.lua"))?;
    let cm: Value = serde_yaml::from_str(&std::fs::read_to_string(docs.join("argocd-cm.yaml"))?)?;
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let embedded = cm["data"]["resource.customizations.health.branchpipeline.dev_BranchPipeline"]
        .as_str()
        .context("argocd-cm.yaml lacks the health key")?;
    pretty_assertions::assert_eq!(
        embedded,
        script,
        "docs/argocd-cm.yaml must embed docs/argocd-health.lua verbatim"
    );
    Ok(())
}

/// A Lua literal for a JSON value, the way Argo CD hands objects to health scripts:
/// numbers are floats there (JSON decoded to float64), so they are floats here too.
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("{:?}", n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// A double-quoted Lua string: printable ASCII as is, every other byte as `\ddd`.
fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for byte in s.bytes() {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out.push('"');
    out
}

/// Runs docs/argocd-health.lua in the Lua interpreter `lua` on one object:
/// (status, message).
fn argocd_health(lua: &Path, object: &Value) -> Result<(String, String)> {
    use std::io::Write;
    let script = chart_dir().join("docs/argocd-health.lua");
    let harness = repo().join("tests/chart/health_harness.lua");
    let mut child = std::process::Command::new(lua)
        .arg(&harness)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", lua.display()))?;
    let mut stdin = child.stdin.take().context("lua stdin")?;
    stdin.write_all(format!("return {}\n", lua_literal(object)).as_bytes())?;
    drop(stdin);
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8(output.stdout)?;
    ensure!(
        output.status.success(),
        "lua failed ({}): {}{}",
        output.status,
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, message) = stdout
        .split_once('\n')
        .context("lua printed no status line")?;
    Ok((
        status.to_owned(),
        message.strip_suffix('\n').unwrap_or(message).to_owned(),
    ))
}

/// tests/chart/health/*.yaml: each an object and the status (and message) Argo CD should
/// show for it, checked in Lua 5.4 and in Lua 5.1 (Argo CD's gopher-lua dialect).
#[test]
fn argocd_health_check_matches_every_fixture() -> TestResult {
    let dir = repo().join("tests/chart/health");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    ensure!(files.len() >= 10, "too few fixtures in {}", dir.display());
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let fixture: Value = serde_yaml::from_str(&std::fs::read_to_string(file)?)
            .with_context(|| format!("parsing {}", file.display()))?;
        let expected = fixture["expect"]["status"]
            .as_str()
            .with_context(|| format!("{}: expect.status", file.display()))?;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        for lua in [&tools().lua, &tools().lua51] {
            let (status, message) = argocd_health(lua, &fixture["object"])
                .with_context(|| format!("running {name} with {}", lua.display()))?;
            seen.insert(status.clone());
            let lua = lua.file_name().unwrap_or_default().to_string_lossy();
            if status != expected {
                failures.push(format!(
                    "{name} ({lua}): {status} ({message}), expected {expected}"
                ));
            }
            if let Some(expected) = fixture["expect"]["message"].as_str()
                && message != expected
            {
                failures.push(format!(
                    "{name} ({lua}): message {message:?}, expected {expected:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let all: BTreeSet<String> = ["Healthy", "Progressing", "Degraded"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(seen, all, "the fixtures should cover every status");
    Ok(())
}
