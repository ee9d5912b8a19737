//! Branch glob patterns: matching, coverage, and translation into the Java regex that a
//! CodePipeline `VariableCheck` rule evaluates.
//!
//! Supported wildcards (validated in `crate::validate`): `**` (anything), `*` (anything but `/`)
//! and `?` (one character but `/`), as in CodePipeline's trigger glob syntax.

pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
}

/// Does `branch` (a concrete name) match the glob `pattern`?
pub fn glob_matches(pattern: &str, branch: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| go(rest, &s[i..])),
            [b'*', rest @ ..] => {
                let segment = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
                (0..=segment).any(|i| go(rest, &s[i..]))
            }
            [b'?', rest @ ..] => matches!(s, [c, tail @ ..] if *c != b'/' && go(rest, tail)),
            [c, rest @ ..] => matches!(s, [d, tail @ ..] if c == d && go(rest, tail)),
        }
    }
    go(pattern.as_bytes(), branch.as_bytes())
}

/// Is every branch `pattern` can name also named by one of `patterns`? Conservative: answers
/// `false` when it cannot prove coverage, which only costs a redundant stage condition.
pub fn covers(patterns: &[String], pattern: &str) -> bool {
    patterns
        .iter()
        .any(|p| p == pattern || p == "**" || (is_literal(pattern) && glob_matches(p, pattern)))
}

/// A Java regex (java.util.regex.Pattern syntax, which `VariableCheck`'s MATCHES operator uses)
/// matching exactly the branches any of `patterns` matches.
pub fn to_java_regex(patterns: &[String]) -> String {
    let alternatives: Vec<String> = patterns.iter().map(|p| glob_to_regex(p)).collect();
    format!("^(?:{})$", alternatives.join("|"))
}

fn glob_to_regex(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(".*");
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            c if "\\^$.|+()[]{}".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("release/*", "release/1.2"));
        assert!(!glob_matches("release/*", "release/1.2/hotfix"));
        assert!(glob_matches("release/**", "release/1.2/hotfix"));
        assert!(glob_matches("feature/?x", "feature/ax"));
        assert!(!glob_matches("feature/?x", "feature//x"));
        assert!(glob_matches("develop", "develop"));
        assert!(!glob_matches("develop", "developer"));
    }

    #[test]
    fn coverage() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(covers(&p(&["release/*"]), "release/1"));
        assert!(covers(&p(&["release/*"]), "release/*"));
        assert!(!covers(&p(&["release/1"]), "release/*"));
        assert!(covers(&p(&["**"]), "feature/*"));
        assert!(!covers(&p(&["develop"]), "main"));
    }

    #[test]
    fn regex_translation() {
        let p = vec![
            "release/*".to_string(),
            "hotfix/**".to_string(),
            "v1.0".to_string(),
        ];
        assert_eq!(to_java_regex(&p), r"^(?:release/[^/]*|hotfix/.*|v1\.0)$");
        let re = regex::Regex::new(&to_java_regex(&p)).expect("test input is valid");
        assert!(re.is_match("release/2"));
        assert!(!re.is_match("release/2/x"));
        assert!(re.is_match("hotfix/a/b"));
        assert!(!re.is_match("v1x0"));
    }
}
