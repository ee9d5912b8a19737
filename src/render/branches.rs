//! Branch glob patterns: parsing, matching, coverage, and translation into the Java regex that
//! a CodePipeline `VariableCheck` rule evaluates.
//!
//! The syntax is CodePipeline's trigger glob syntax (User Guide, "Working with glob patterns in
//! syntax", https://docs.aws.amazon.com/codepipeline/latest/userguide/syntax-glob.html): `*`
//! (zero or more characters within a path segment), `**` (across segments), `?` (one character
//! of a segment), `[...]` (one character of a set or range, `[!...]` negated; inside, `*`, `?`
//! and `\` are themselves, and `-` first or right after `!` is itself), and `{a,b}` (any of the
//! sub-patterns; groups do not nest). The page's backslash escape is not offered: git forbids
//! `\` in branch names (git-check-ref-format(1)), so no branch needs one.

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `*`
    Segment,
    /// `**`
    Any,
    /// `?`
    One,
    /// `[...]`: ranges (a single character is a range of one), negated with `!`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `{a,b}`: the alternatives, each a sequence without groups.
    Group(Vec<Vec<Token>>),
}

/// A pattern this module cannot parse, and why (for validation's message).
pub fn parse_error(pattern: &str) -> Option<String> {
    parse(pattern).err()
}

pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '[', '{'])
}

/// Does `branch` (a concrete name) match the glob `pattern`? An unparsable pattern (validation
/// refuses those) matches nothing.
pub fn glob_matches(pattern: &str, branch: &str) -> bool {
    let Ok(tokens) = parse(pattern) else {
        return false;
    };
    let re = format!("^(?:{})$", regex_of(&tokens));
    regex::Regex::new(&re).is_ok_and(|re| re.is_match(branch))
}

/// Is every branch `pattern` can name also named by one of `patterns`? Conservative: answers
/// `false` when it cannot prove coverage, which only costs a redundant stage condition.
pub fn covers(patterns: &[String], pattern: &str) -> bool {
    patterns
        .iter()
        .any(|p| p == pattern || p == "**" || (is_literal(pattern) && glob_matches(p, pattern)))
}

/// A Java regex (java.util.regex.Pattern syntax, which `VariableCheck`'s MATCHES operator uses)
/// matching exactly the branches any of `patterns` matches. The constructs used — `[^/]`,
/// `.*`, `(?:a|b)`, classes and ranges, backslash-escaped punctuation — mean the same in Java's,
/// the `regex` crate's and Python's syntax (the tests and the bed's engine read it with those).
pub fn to_java_regex(patterns: &[String]) -> String {
    let alternatives: Vec<String> = patterns
        .iter()
        .map(|p| parse(p).map(|t| regex_of(&t)).unwrap_or_default())
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
}

fn parse(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let tokens = sequence(&chars, &mut i, false)?;
    match chars.get(i) {
        None => Ok(tokens),
        Some(c) => Err(format!("has an unmatched {c:?}")),
    }
}

/// Tokens up to the end, or (in a group) up to its `,` or `}`, which are left for the caller.
fn sequence(chars: &[char], i: &mut usize, in_group: bool) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    while let Some(&c) = chars.get(*i) {
        let token = match c {
            ',' | '}' if in_group => break,
            '}' => return Err("has a '}' without its '{'".into()),
            '*' if chars.get(*i + 1) == Some(&'*') => {
                *i += 1;
                Token::Any
            }
            '*' => Token::Segment,
            '?' => Token::One,
            '[' => class(chars, i)?,
            '{' if in_group => {
                return Err("nests '{' groups, which the glob syntax does not allow".into());
            }
            '{' => group(chars, i)?,
            c => Token::Char(c),
        };
        tokens.push(token);
        *i += 1;
    }
    Ok(tokens)
}

/// `{a,b}` from its `{` at `i`; leaves `i` at its `}`.
fn group(chars: &[char], i: &mut usize) -> Result<Token, String> {
    let mut alternatives = Vec::new();
    loop {
        *i += 1;
        alternatives.push(sequence(chars, i, true)?);
        match chars.get(*i) {
            Some(',') => continue,
            Some('}') => return Ok(Token::Group(alternatives)),
            _ => return Err("has a '{' without its '}'".into()),
        }
    }
}

/// `[...]` from its `[` at `i`; leaves `i` at its `]`.
fn class(chars: &[char], i: &mut usize) -> Result<Token, String> {
    *i += 1;
    let negated = chars.get(*i) == Some(&'!');
    if negated {
        *i += 1;
    }
    let mut ranges = Vec::new();
    let first = *i;
    loop {
        let Some(&c) = chars.get(*i) else {
            return Err("has a '[' without its ']'".into());
        };
        match c {
            ']' if *i > first => break,
            ']' => return Err("has an empty '[]'".into()),
            '/' => return Err("has '/' inside '[...]', which never matches a segment".into()),
            c if chars.get(*i + 1) == Some(&'-')
                && chars.get(*i + 2).is_some_and(|&e| e != ']') =>
            {
                let end = chars[*i + 2];
                if end < c {
                    return Err(format!("has the range {c}-{end}, which is backwards"));
                }
                ranges.push((c, end));
                *i += 2;
            }
            c => ranges.push((c, c)),
        }
        *i += 1;
    }
    Ok(Token::Class { negated, ranges })
}

fn regex_of(tokens: &[Token]) -> String {
    tokens.iter().map(token_regex).collect()
}

fn token_regex(token: &Token) -> String {
    match token {
        Token::Char(c) => escaped(*c),
        Token::Segment => "[^/]*".into(),
        Token::Any => ".*".into(),
        Token::One => "[^/]".into(),
        Token::Class { negated, ranges } => {
            let body: String = ranges
                .iter()
                .map(|&(a, b)| match a == b {
                    true => escaped(a),
                    false => format!("{}-{}", escaped(a), escaped(b)),
                })
                .collect();
            // A glob's set never matches the segment separator, negated or not.
            match negated {
                true => format!("[^/{body}]"),
                false => format!("[{body}]"),
            }
        }
        Token::Group(alternatives) => {
            let alternatives: Vec<String> = alternatives.iter().map(|a| regex_of(a)).collect();
            format!("(?:{})", alternatives.join("|"))
        }
    }
}

/// A character as itself: ASCII punctuation backslash-escaped, which Java's, the `regex`
/// crate's and Python's syntaxes (AWS, the tests, the bed's engine) all read as the character
/// itself, in and out of classes (`&&` would otherwise intersect in a Java class).
fn escaped(c: char) -> String {
    match c.is_ascii_punctuation() && c != '/' && c != '_' {
        true => format!("\\{c}"),
        false => c.to_string(),
    }
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
        assert!(glob_matches("v1.0", "v1.0"));
        assert!(!glob_matches("v1.0", "v1x0"), "a dot is a dot");
    }

    /// The syntax page's brackets and braces, as the bed's engine reads them
    /// (tests/moto_ext/engine.py `glob_regex`).
    #[test]
    fn sets_ranges_negations_and_groups() {
        let rows = [
            ("release/[0-9].x", "release/1.x", true),
            ("release/[0-9].x", "release/a.x", false),
            ("hotfix/[!a-c]*", "hotfix/d1", true),
            ("hotfix/[!a-c]*", "hotfix/b1", false),
            ("hotfix/[!a-c]", "hotfix//", false),
            ("[-a]x", "-x", true),
            ("[!-a]x", "-x", false),
            ("[!-a]x", "bx", true),
            ("{main,develop}", "develop", true),
            ("{main,develop}", "dev", false),
            ("release/{1,2}.*", "release/2.0", true),
            ("release/{1,2}.*", "release/3.0", false),
            ("{feature/**,fix-?}", "feature/a/b", true),
            ("{feature/**,fix-?}", "fix-1", true),
            ("{a,}b", "b", true),
            ("x!y", "x!y", true),
            ("a+b", "a+b", true),
            ("a+b", "aab", false),
        ];
        for (pattern, branch, want) in rows {
            assert_eq!(glob_matches(pattern, branch), want, "{pattern} ~ {branch}");
        }
    }

    #[test]
    fn malformed_patterns_are_named() {
        for (pattern, why) in [
            ("release/[0-9", "without its ']'"),
            ("release/[]", "empty"),
            ("{a,{b,c}}", "nests"),
            ("{a,b", "without its '}'"),
            ("a}", "without its '{'"),
            ("[z-a]", "backwards"),
            ("[a/b]", "'/'"),
        ] {
            let error = parse_error(pattern).unwrap_or_else(|| panic!("{pattern} parses"));
            assert!(error.contains(why), "{pattern}: {error}");
        }
        assert_eq!(parse_error("release/{1,2}.[0-9]*"), None);
        assert!(
            !glob_matches("[", "["),
            "an unparsable pattern matches nothing"
        );
    }

    #[test]
    fn coverage() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(covers(&p(&["release/*"]), "release/1"));
        assert!(covers(&p(&["release/*"]), "release/*"));
        assert!(!covers(&p(&["release/1"]), "release/*"));
        assert!(covers(&p(&["**"]), "feature/*"));
        assert!(!covers(&p(&["develop"]), "main"));
        assert!(covers(&p(&["{main,develop}"]), "main"));
        assert!(
            !covers(&p(&["release/*"]), "release/{1,2}"),
            "not proven: a pattern is only covered by itself or **"
        );
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
        let sets = vec!["release/[!0-4]*".to_string(), "{main,develop}".to_string()];
        assert_eq!(
            to_java_regex(&sets),
            r"^(?:release/[^/0-4][^/]*|(?:main|develop))$"
        );
    }
}
