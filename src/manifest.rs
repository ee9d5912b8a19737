//! Reading `BranchPipeline` manifests from YAML, with every parse error located by field path.

use serde::Deserialize;

use crate::api::{BranchPipeline, BranchPipelineClass};
use crate::validate::FieldError;

pub const API_VERSION: &str = "branchpipeline.dev/v1alpha1";
pub const KIND: &str = "BranchPipeline";
pub const CLASS_KIND: &str = "BranchPipelineClass";

/// One YAML document of a multi-document stream (1-based `index`).
#[derive(Debug)]
pub struct Document {
    pub index: usize,
    pub result: Result<BranchPipeline, FieldError>,
}

/// Parses every non-empty document. Documents of other kinds are reported as errors, so that a
/// typo in `kind` does not silently render nothing.
pub fn parse_documents(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value = match serde_yaml::Value::deserialize(de) {
            Ok(serde_yaml::Value::Null) => continue,
            Ok(value) => value,
            Err(e) => {
                docs.push(Document {
                    index,
                    result: Err(FieldError::new("(document)", yaml_message(&e))),
                });
                continue;
            }
        };
        docs.push(Document {
            index,
            result: parse_value(value),
        });
    }
    docs
}

pub fn parse_value(value: serde_yaml::Value) -> Result<BranchPipeline, FieldError> {
    parse_kind(value, KIND)
}

/// Parses the one `BranchPipelineClass` of `text` (`render -f --class`).
pub fn parse_class(text: &str) -> Result<BranchPipelineClass, FieldError> {
    let mut values = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        match serde_yaml::Value::deserialize(de) {
            Ok(serde_yaml::Value::Null) => {}
            Ok(value) => values.push(value),
            Err(e) => return Err(FieldError::new("(document)", yaml_message(&e))),
        }
    }
    match <[serde_yaml::Value; 1]>::try_from(values) {
        Ok([value]) => parse_kind(value, CLASS_KIND),
        Err(values) => Err(FieldError::new(
            "(document)",
            format!(
                "holds {} documents; give exactly one {CLASS_KIND}",
                values.len()
            ),
        )),
    }
}

fn parse_kind<T: serde::de::DeserializeOwned>(
    value: serde_yaml::Value,
    expected: &str,
) -> Result<T, FieldError> {
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let kind = value
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if kind != expected {
        return Err(FieldError::new(
            "kind",
            format!("is {kind:?}; expected {expected:?}"),
        ));
    }
    if api_version != API_VERSION {
        return Err(FieldError::new(
            "apiVersion",
            format!("is {api_version:?}; expected {API_VERSION:?}"),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        located(path, message)
    })
}

/// serde reports a missing field at its parent; name the field itself in the path.
fn located(path: String, message: String) -> FieldError {
    let message = strip_position(&message);
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(field) = rest.split('`').next()
    {
        let path = if path == "." {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return FieldError::new(path, "is required");
    }
    FieldError::new(
        if path == "." {
            "(document)".to_string()
        } else {
            path
        },
        message,
    )
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn yaml_message(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(loc) => format!(
            "invalid YAML at line {}, column {}: {}",
            loc.line(),
            loc.column(),
            strip_position(&e.to_string())
        ),
        None => format!("invalid YAML: {e}"),
    }
}
