//! Which BranchPipelines this controller process serves, so several Deployments can split them:
//! `--shard N/M` takes the objects whose `namespace/name` hashes to N modulo M, and
//! `--selector` the ones whose labels match. A BranchPipelineRun goes with its BranchPipeline.
//! Each shard holds its own leader Lease (the chart names them apart).

use std::collections::BTreeMap;
use std::fmt;

use kube::core::{Expression, Selector, SelectorExt};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `N/M` with `0 <= N < M`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a shard; use N/M with 0 <= N < M, e.g. 0/2");
        let (index, count) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = index.parse().map_err(|_| bad())?;
        let count: u32 = count.parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    /// Whether `namespace/name` is this shard's. SHA-256, not the standard library's hasher,
    /// so every version of the controller splits the same way during a rolling upgrade.
    pub fn owns(&self, namespace: &str, name: &str) -> bool {
        let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A label selector in the equality-based syntax `kubectl` takes: `k=v`, `k==v`, `k!=v`, `k`,
/// `!k`, comma-separated. Kept as text for the watch (the API server filters) and parsed to
/// match a run's BranchPipeline.
#[derive(Debug, Clone)]
pub struct LabelSelector {
    pub text: String,
    selector: Selector,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut expressions = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            expressions.push(expression(part)?);
        }
        if expressions.is_empty() {
            return Err(format!("{text:?} selects nothing; use e.g. team=orders"));
        }
        Ok(Self {
            text: text.trim().to_string(),
            selector: expressions.into_iter().collect(),
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.matches(labels)
    }
}

fn expression(part: &str) -> Result<Expression, String> {
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    };
    let bad = || format!("{part:?} is not a label requirement; use k=v, k!=v, k or !k");
    let (key, expression) = if let Some((k, v)) = part.split_once("!=") {
        (k, Expression::NotEqual(k.trim().into(), v.trim().into()))
    } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        (k, Expression::Equal(k.trim().into(), v.trim().into()))
    } else if let Some(k) = part.strip_prefix('!') {
        (k, Expression::DoesNotExist(k.trim().into()))
    } else {
        (part, Expression::Exists(part.into()))
    };
    if key_ok(key.trim()) {
        Ok(expression)
    } else {
        Err(bad())
    }
}

/// What this process serves.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub shard: Option<Shard>,
    pub selector: Option<LabelSelector>,
}

impl Scope {
    /// Whether `namespace/name` falls in this shard (the selector is checked separately,
    /// against labels).
    pub fn owns(&self, namespace: &str, name: &str) -> bool {
        self.shard.is_none_or(|s| s.owns(namespace, name))
    }

    pub fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        self.selector
            .as_ref()
            .is_none_or(|s| s.matches(labels.unwrap_or(&empty)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/3", "1/0", "1", "a/b", "-1/2", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_split_every_object_exactly_once_and_evenly() {
        let shards = [
            Shard::parse("0/2").expect("ok"),
            Shard::parse("1/2").expect("ok"),
        ];
        let mut counts = [0usize; 2];
        for i in 0..1000 {
            let name = format!("bp-{i}");
            let owners: Vec<usize> = (0..2).filter(|&s| shards[s].owns("ns", &name)).collect();
            assert_eq!(owners.len(), 1, "{name}");
            counts[owners[0]] += 1;
        }
        assert!(
            counts.iter().all(|&c| (420..=580).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn selectors_take_the_equality_syntax() {
        let s = LabelSelector::parse("team=orders, tier!=legacy, shard, !paused").expect("parses");
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(s.matches(&labels(&[("team", "orders"), ("shard", "a")])));
        assert!(
            !s.matches(&labels(&[("team", "orders")])),
            "shard must exist"
        );
        assert!(!s.matches(&labels(&[
            ("team", "orders"),
            ("shard", "a"),
            ("paused", "")
        ])));
        assert!(!s.matches(&labels(&[
            ("team", "orders"),
            ("shard", "a"),
            ("tier", "legacy")
        ])));
        assert!(LabelSelector::parse("").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
        let scope = Scope {
            shard: None,
            selector: Some(s),
        };
        assert!(!scope.selects(None));
    }
}
