//! Single-value rules, each answering what is wrong and how to fix it. Pure.

use std::sync::LazyLock;

use regex::Regex;

use super::limits::*;

static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(TAG_CHARACTERS).expect("static pattern compiles"));

/// A branch name, or with `glob` a branch pattern, by git's ref-name rules
/// (git-check-ref-format(1), and `--branch`'s refusal of a leading `-`). In patterns, `*`, `**`,
/// `?`, `[...]` and `{a,b}` are CodePipeline's trigger glob syntax (User Guide, "Working with
/// glob patterns in syntax"; see `crate::render::branches`), which stage conditions translate
/// into a Java regex exactly; outside that syntax git's rules hold.
pub fn branch(name: &str, glob: bool) -> Result<(), String> {
    let what = if glob { "branch pattern" } else { "branch" };
    let len = name.chars().count();
    if len == 0 || len > MAX_PATTERN_LEN {
        return Err(format!("must be 1-{MAX_PATTERN_LEN} characters long"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c.is_control() || c == ' ' || c.is_whitespace())
    {
        return Err(format!(
            "{name:?} contains {c:?}; git branch names have no spaces or control characters"
        ));
    }
    if glob && let Some(why) = crate::render::branches::parse_error(name) {
        return Err(format!(
            "{name:?} {why}; CodePipeline's glob syntax is *, **, ?, [abc], [a-z], [!a-z] and {{a,b}}"
        ));
    }
    let forbidden: &[char] = if glob {
        &['~', '^', ':', '\\']
    } else {
        &['~', '^', ':', '\\', '[', '*', '?']
    };
    if let Some(c) = name.chars().find(|c| forbidden.contains(c)) {
        let hint = if !glob && (c == '*' || c == '?') {
            "; a branch name cannot be a pattern"
        } else {
            ""
        };
        return Err(format!(
            "{name:?} contains {c:?}, which git forbids in {what}es{hint}"
        ));
    }
    match structure(name) {
        Some(why) => Err(format!(
            "{name:?} {why}, which git does not allow in a {what}; see git check-ref-format"
        )),
        None => Ok(()),
    }
}

/// The structural rules of git-check-ref-format(1): what is wrong, if anything.
fn structure(name: &str) -> Option<&'static str> {
    let components = || name.split('/');
    if name.contains("..") {
        Some("contains \"..\"")
    } else if name.contains("@{") {
        Some("contains \"@{\"")
    } else if name == "@" {
        Some("is \"@\"")
    } else if name == "HEAD" {
        Some("is \"HEAD\", which git refuses as a branch name")
    } else if name.starts_with('-') {
        Some("starts with '-'")
    } else if name.starts_with('/') || name.ends_with('/') {
        Some("starts or ends with '/'")
    } else if name.contains("//") {
        Some("contains \"//\"")
    } else if name.ends_with('.') {
        Some("ends with '.'")
    } else if components().any(|part| part.starts_with('.')) {
        Some("has a path component starting with '.'")
    } else if components().any(|part| part.ends_with(".lock")) {
        Some("has a path component ending with \".lock\"")
    } else {
        None
    }
}

/// A file-path trigger glob: CodePipeline API Reference, GitFilePathFilterCriteria, takes
/// 1–255 characters and documents no other restriction.
pub fn file_pattern(pattern: &str) -> Result<(), String> {
    let len = pattern.chars().count();
    if len == 0 || len > MAX_PATTERN_LEN {
        return Err(format!("must be 1-{MAX_PATTERN_LEN} characters long"));
    }
    if pattern.chars().any(char::is_control) {
        return Err(format!("{pattern:?} contains a control character"));
    }
    Ok(())
}

/// A tag key by the CodeBuild Tag rules (see [`TAG_KEY_MAX`]), plus the prefixes AWS and the
/// controller reserve.
pub fn tag_key(key: &str, reserved_prefix: &str) -> Result<(), String> {
    let len = key.chars().count();
    if len == 0 || len > TAG_KEY_MAX {
        return Err(format!(
            "tag keys must be 1-{TAG_KEY_MAX} characters long; this one has {len}"
        ));
    }
    if !TAG_RE.is_match(key) {
        return Err(format!(
            "{key:?} has a character AWS does not allow in tag keys; use letters, digits, spaces and _ . : / = + - @"
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err("the aws: prefix is reserved by AWS; rename the tag".into());
    }
    if key.starts_with(reserved_prefix) {
        return Err(format!(
            "the {reserved_prefix} prefix is reserved for ownership tags; rename the tag"
        ));
    }
    Ok(())
}

pub fn tag_value(value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if len > TAG_VALUE_MAX {
        return Err(format!(
            "tag values must be at most {TAG_VALUE_MAX} characters long; this one has {len}"
        ));
    }
    if !TAG_RE.is_match(value) {
        return Err(format!(
            "{value:?} has a character AWS does not allow in tag values; use letters, digits, spaces and _ . : / = + - @"
        ));
    }
    Ok(())
}

/// An inline buildspec: YAML whose top level is a mapping with a `version` (CodeBuild User
/// Guide, "Buildspec syntax": `version` is required). CodeBuild takes `source.buildspec` as a
/// path unless it is a buildspec, so a path given here would silently mean something else.
pub fn inline_buildspec(text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!(
            "is {} bytes; an inline buildspec takes at most {max}, so move parts into scripts in the repository",
            text.len()
        ));
    }
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Mapping(m)) if m.contains_key("version") => Ok(()),
        Ok(_) => Err(
            "is not a buildspec: an inline buildspec is YAML with a top-level version (version: 0.2) and phases; to read a file from the repository, set the stage's buildspec path instead".into(),
        ),
        Err(e) => Err(format!("is not valid YAML ({e}); write the buildspec as YAML")),
    }
}

/// Buildspec paths are read from the source artifact, so they must stay inside it.
pub fn relative_path(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("must not be empty; give a path relative to the repository root".into())
    } else if value.starts_with('/') || value.contains('\\') {
        Err(format!(
            "{value:?} must be relative to the repository root with / separators, e.g. cicd/buildspecs"
        ))
    } else if value.split('/').any(|part| part == "..") {
        Err(format!(
            "{value:?} must not contain '..'; point inside the repository"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_ref_rules_for_branch_names() {
        for good in [
            "main",
            "develop",
            "release/1.4",
            "feature/JIRA-12_x",
            "v1.0",
            "a@b",
            "ünïcode",
        ] {
            assert_eq!(branch(good, false), Ok(()), "{good}");
        }
        for bad in [
            "", "../..", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[1]", "a\\b", "@",
            "a@{1}", "-x", "/x", "x/", "a//b", "x.", ".hidden", "a/.b", "x.lock", "a.lock/b",
            "HEAD", "a\tb",
        ] {
            assert!(branch(bad, false).is_err(), "{bad:?} should be refused");
        }
        assert!(branch(&"a".repeat(256), false).is_err());
        assert!(
            branch(&"é".repeat(255), false).is_ok(),
            "counted in characters"
        );
    }

    #[test]
    fn patterns_take_codepipelines_glob_syntax_and_git_rules_outside_it() {
        for good in [
            "release/*",
            "feature/**",
            "v?.x",
            "**",
            "release/[0-9]*",
            "hotfix/[!a-c]*",
            "{main,develop}",
            "!main",
        ] {
            assert_eq!(branch(good, true), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("../*", "\"..\""),
            ("*/.x", "'.'"),
            ("a*.lock", ".lock"),
            ("release/[0-9", "without its ']'"),
            ("{a,{b}}", "nests"),
            ("a~*", "'~'"),
        ] {
            let error = branch(bad, true).expect_err(bad);
            assert!(error.contains(why), "{bad:?}: {error}");
        }
        assert!(
            branch("a{1}", false).is_ok() && branch("a[1]", false).is_err(),
            "a branch name is not a pattern: git allows braces there and forbids '['"
        );
    }

    #[test]
    fn tags_follow_aws_character_set_and_count_characters() {
        assert_eq!(tag_key("team", "x/"), Ok(()));
        assert_eq!(tag_key("cost center:a/b=c+d-e@f", "x/"), Ok(()));
        assert_eq!(tag_key("équipe", "x/"), Ok(()));
        assert!(tag_key("team🚀", "x/").is_err());
        assert!(tag_key("cost#center", "x/").is_err());
        assert!(tag_key("", "x/").is_err());
        assert!(tag_key("AWS:x", "x/").is_err());
        assert!(tag_key("x/y", "x/").is_err());
        assert_eq!(tag_key(&"é".repeat(127), "x/"), Ok(()));
        assert!(tag_key(&"é".repeat(128), "x/").is_err());
        assert_eq!(tag_value(""), Ok(()));
        assert_eq!(tag_value(&"é".repeat(255)), Ok(()));
        assert!(tag_value(&"é".repeat(256)).is_err());
        assert!(tag_value("a;b").is_err());
    }

    #[test]
    fn inline_buildspecs_are_yaml_with_a_version() {
        assert_eq!(
            inline_buildspec(
                "version: 0.2\nphases:\n  build:\n    commands: [make]\n",
                100
            ),
            Ok(())
        );
        for bad in [
            "cicd/buildspecs/test.yml",
            "phases: {}",
            "version: [",
            "- version",
        ] {
            assert!(inline_buildspec(bad, 100).is_err(), "{bad:?}");
        }
        assert!(inline_buildspec("version: 0.2\n", 5).is_err(), "too long");
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        assert_eq!(relative_path("cicd/buildspecs"), Ok(()));
        for bad in ["", "/abs", "a\\b", "../x", "a/../b"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }
}
