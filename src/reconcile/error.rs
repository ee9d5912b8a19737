//! Reconcile errors: which step failed, and whether retrying can help.

use std::fmt;

use crate::aws::AwsError;

/// The step of a reconcile an error comes from, for logs, status and the failure metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Observe,
    Apply,
    StartRun,
    FollowRun,
    WriteStatus,
    Cleanup,
    Finalizer,
    /// A panic caught by the reconcile guard.
    Reconcile,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Observe => "observe",
            Step::Apply => "apply",
            Step::StartRun => "start run",
            Step::FollowRun => "follow run",
            Step::WriteStatus => "write status",
            Step::Cleanup => "cleanup",
            Step::Finalizer => "finalizer",
            Step::Reconcile => "reconcile",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// AWS refused or failed a call. Retryable ones back off; terminal ones wait for a change.
    #[error("{step}: {source}")]
    Aws {
        step: Step,
        #[source]
        source: AwsError,
    },
    #[error("{step}: Kubernetes API call failed: {source}")]
    Kube {
        step: Step,
        #[source]
        source: kube::Error,
    },
    #[error("finalizer handling failed: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("object has no {0}; it cannot be reconciled")]
    MissingMetadata(&'static str),
    /// Deletion waits because the resource's deletion policy annotation is invalid.
    #[error("cleanup: {0}")]
    DeletionPolicyInvalid(String),
    /// The plan would exceed a configured quota; nothing was written.
    #[error("apply: {0}")]
    QuotaExceeded(String),
    /// The class cache has not listed the classes yet: compiling now could take a class that
    /// exists for a missing one.
    #[error(
        "observe: BranchPipelineClasses are not listed yet (is the class watch allowed to list them?)"
    )]
    ClassesNotSynced,
    /// A bug: a reconcile panicked. Caught so one object cannot take the controller down.
    #[error("reconcile panicked: {0}")]
    Panicked(String),
}

impl Error {
    pub fn aws(step: Step) -> impl FnOnce(AwsError) -> Error {
        move |source| Error::Aws { step, source }
    }

    pub fn kube(step: Step) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { step, source }
    }

    /// Whether backing off and retrying may succeed with nothing else changed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aws { source, .. } => source.is_retryable(),
            Error::Kube { .. } => true,
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.is_retryable(),
                _ => true,
            },
            Error::MissingMetadata(_)
            | Error::DeletionPolicyInvalid(_)
            | Error::QuotaExceeded(_) => false,
            Error::ClassesNotSynced => true,
            // A panic may come from a rare state (a race, a response shape) that passes.
            Error::Panicked(_) => true,
        }
    }

    /// The step that failed, looking through the finalizer wrapper.
    pub fn step(&self) -> Step {
        match self {
            Error::Aws { step, .. } | Error::Kube { step, .. } => *step,
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.step(),
                _ => Step::Finalizer,
            },
            Error::MissingMetadata(_) | Error::ClassesNotSynced => Step::Observe,
            Error::DeletionPolicyInvalid(_) => Step::Cleanup,
            Error::QuotaExceeded(_) => Step::Apply,
            Error::Panicked(_) => Step::Reconcile,
        }
    }

    /// `retryable` or `terminal`, for the failure metric.
    pub fn class(&self) -> &'static str {
        if self.is_retryable() {
            "retryable"
        } else {
            "terminal"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Retry;

    fn aws(retry: Retry) -> AwsError {
        AwsError {
            operation: "DeletePipeline",
            resource: Some("ns-a".into()),
            code: "AccessDeniedException".into(),
            message: "not allowed".into(),
            retry,
        }
    }

    #[test]
    fn steps_and_classes_survive_the_finalizer_wrapper() {
        let inner = Error::aws(Step::Cleanup)(aws(Retry::Terminal));
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::CleanupFailed(
            inner,
        )));
        assert_eq!(wrapped.step(), Step::Cleanup);
        assert_eq!(wrapped.class(), "terminal");
        assert!(!wrapped.is_retryable());
        let retryable = Error::aws(Step::Apply)(aws(Retry::Retryable));
        assert_eq!(
            (retryable.step(), retryable.class()),
            (Step::Apply, "retryable")
        );
    }

    #[test]
    fn messages_name_the_step_and_the_resource() {
        let e = Error::aws(Step::Cleanup)(aws(Retry::Terminal));
        assert_eq!(
            e.to_string(),
            "cleanup: DeletePipeline ns-a failed with AccessDeniedException: not allowed"
        );
        assert!(Error::Panicked("boom".into()).is_retryable());
    }
}
