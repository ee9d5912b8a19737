//! Builds `BranchPipeline` status. Pure: the caller supplies the clock.

use crate::api::{BranchPipelineStatus, CONDITION_READY, CONDITION_SYNCED, Condition};

pub mod reason {
    pub const SYNCED: &str = "Synced";
    pub const PROGRESSING: &str = "Progressing";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const NOT_OWNED: &str = "NotOwned";
    /// A retryable AWS failure: the controller backs off and tries again.
    pub const AWS_ERROR: &str = "AWSError";
    /// An AWS failure retrying cannot fix (permissions, invalid input, quotas).
    pub const AWS_TERMINAL_ERROR: &str = "AWSTerminalError";
    /// The resource is being deleted, but its AWS resources could not be.
    pub const DELETION_BLOCKED: &str = "DeletionBlocked";
    /// Creating what the spec renders would exceed a configured per-region quota.
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    /// A pipeline update waits for executions in flight (`spec.updatePolicy`).
    pub const UPDATE_PENDING: &str = "UpdatePending";
    /// An update or deletion went ahead and cancelled executions.
    pub const EXECUTIONS_CANCELLED: &str = "ExecutionsCancelled";
    /// A `branchpipeline.dev/` annotation has a value the controller cannot use.
    pub const INVALID_ANNOTATION: &str = "InvalidAnnotation";
}

/// Sets a condition, keeping `lastTransitionTime` when the status itself did not change, as
/// Kubernetes API conventions ask.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &str,
) {
    let status = if status { "True" } else { "False" };
    let message =
        crate::reconcile::events::fit(message, crate::reconcile::events::CONDITION_MESSAGE_MAX);
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now.to_string();
            }
            c.status = status.to_string();
            c.reason = reason.to_string();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: now.to_string(),
            observed_generation: generation,
        }),
    }
}

/// Both conditions at once: the common case.
pub fn set_ready_synced(
    status: &mut BranchPipelineStatus,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &str,
) {
    set_condition(
        &mut status.conditions,
        CONDITION_READY,
        ok,
        reason,
        message,
        generation,
        now,
    );
    set_condition(
        &mut status.conditions,
        CONDITION_SYNCED,
        ok,
        reason,
        message,
        generation,
        now,
    );
    status.observed_generation = generation;
}

/// A retryable failure marks `Synced=False` but leaves `Ready` alone: what was synced before
/// still stands, and a throttled call should not flip health checks.
pub fn set_retrying(
    status: &mut BranchPipelineStatus,
    message: &str,
    generation: Option<i64>,
    now: &str,
) {
    set_condition(
        &mut status.conditions,
        CONDITION_SYNCED,
        false,
        reason::AWS_ERROR,
        message,
        generation,
        now,
    );
    if status.condition(CONDITION_READY).is_none() {
        set_condition(
            &mut status.conditions,
            CONDITION_READY,
            false,
            reason::PROGRESSING,
            message,
            generation,
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut c = Vec::new();
        set_condition(&mut c, "Ready", true, "Synced", "", Some(1), "t1");
        set_condition(&mut c, "Ready", true, "Synced", "again", Some(2), "t2");
        assert_eq!(c[0].last_transition_time, "t1");
        assert_eq!(c[0].observed_generation, Some(2));
        assert_eq!(c[0].message, "again");
        set_condition(&mut c, "Ready", false, "InvalidSpec", "bad", Some(3), "t3");
        assert_eq!(c[0].last_transition_time, "t3");
        assert_eq!(c[0].status, "False");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn retrying_keeps_ready() {
        let mut s = BranchPipelineStatus::default();
        set_ready_synced(&mut s, true, reason::SYNCED, "", Some(1), "t1");
        set_retrying(
            &mut s,
            "UpdatePipeline failed with ThrottlingException",
            Some(1),
            "t2",
        );
        assert_eq!(
            s.condition("Ready").expect("present in the fixture").status,
            "True"
        );
        let synced = s.condition("Synced").expect("present in the fixture");
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "AWSError")
        );

        let mut fresh = BranchPipelineStatus::default();
        set_retrying(&mut fresh, "x", Some(1), "t");
        assert_eq!(
            fresh
                .condition("Ready")
                .expect("present in the fixture")
                .reason,
            "Progressing"
        );
    }
}
