//! Reconcile errors, split by what the controller should do about them.

use crate::aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// AWS refused or failed a call. Retryable ones back off; terminal ones wait for a change.
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer handling failed: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("object has no {0}; it cannot be reconciled")]
    MissingMetadata(&'static str),
}

impl Error {
    /// Whether backing off and retrying may succeed with nothing else changed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aws(e) => e.is_retryable(),
            Error::Kube(_) => true,
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.is_retryable(),
                _ => true,
            },
            Error::MissingMetadata(_) => false,
        }
    }
}
