//! Small decisions with an order of precedence, kept pure.

use std::time::Duration;

use crate::api::{BranchPipeline, DeletionPolicy, annotations};
use crate::duration;

/// ACK's order: the resource's annotation, then its spec, then the controller flag, then
/// `Delete`.
pub fn deletion_policy(bp: &BranchPipeline, flag: Option<DeletionPolicy>) -> DeletionPolicy {
    let annotated = bp
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::DELETION_POLICY));
    match annotated.map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if v == "retain" => return DeletionPolicy::Retain,
        Some(v) if v == "delete" => return DeletionPolicy::Delete,
        _ => {}
    }
    bp.spec
        .deletion_policy
        .or(flag)
        .unwrap_or(DeletionPolicy::Delete)
}

/// The per-resource resync interval annotation, else the controller's.
pub fn resync_interval(bp: &BranchPipeline, default: Duration) -> Duration {
    bp.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::RESYNC_INTERVAL))
        .and_then(|v| duration::parse(v).ok())
        .filter(|d| *d >= Duration::from_secs(1))
        .unwrap_or(default)
}

pub fn adopt(bp: &BranchPipeline) -> bool {
    bp.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::ADOPT))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Exponential backoff with full jitter on the upper half, capped.
pub fn backoff(failures: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.min(16));
    let capped = exp.min(cap);
    capped.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    fn example(annotations: &[(&str, &str)]) -> BranchPipeline {
        let mut bp = manifest::parse_documents(include_str!("../../examples/orders-api.yaml"))
            .remove(0)
            .result
            .unwrap();
        bp.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        bp
    }

    #[test]
    fn deletion_policy_precedence() {
        let plain = example(&[]);
        assert_eq!(deletion_policy(&plain, None), DeletionPolicy::Delete);
        assert_eq!(
            deletion_policy(&plain, Some(DeletionPolicy::Retain)),
            DeletionPolicy::Retain
        );
        let mut spec_delete = plain.clone();
        spec_delete.spec.deletion_policy = Some(DeletionPolicy::Delete);
        assert_eq!(
            deletion_policy(&spec_delete, Some(DeletionPolicy::Retain)),
            DeletionPolicy::Delete
        );
        let mut annotated = example(&[(annotations::DELETION_POLICY, "Retain")]);
        annotated.spec.deletion_policy = Some(DeletionPolicy::Delete);
        assert_eq!(
            deletion_policy(&annotated, Some(DeletionPolicy::Delete)),
            DeletionPolicy::Retain
        );
    }

    #[test]
    fn resync_annotation_overrides_default() {
        let d = Duration::from_secs(600);
        assert_eq!(resync_interval(&example(&[]), d), d);
        assert_eq!(
            resync_interval(&example(&[(annotations::RESYNC_INTERVAL, "30s")]), d),
            Duration::from_secs(30)
        );
        assert_eq!(
            resync_interval(&example(&[(annotations::RESYNC_INTERVAL, "soon")]), d),
            d
        );
    }

    #[test]
    fn adopt_needs_true() {
        assert!(adopt(&example(&[(annotations::ADOPT, "true")])));
        assert!(!adopt(&example(&[(annotations::ADOPT, "yes")])));
        assert!(!adopt(&example(&[])));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        for _ in 0..50 {
            let b0 = backoff(0, base, cap);
            assert!(b0 >= Duration::from_millis(500) && b0 <= base);
            let b3 = backoff(3, base, cap);
            assert!(b3 >= Duration::from_secs(4) && b3 <= Duration::from_secs(8));
            assert!(backoff(30, base, cap) <= cap);
        }
    }
}
