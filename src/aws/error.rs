//! AWS errors, classified so the reconciler knows whether to retry.

use std::fmt;

/// Whether retrying the same call can succeed without anyone changing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Throttling, 5xx, timeouts, connection failures: back off and try again.
    Retryable,
    /// Access denied, invalid input, limits: retrying gives the same answer.
    Terminal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AwsError {
    /// The API operation, e.g. `CreatePipeline`.
    pub operation: &'static str,
    /// The pipeline, project or ARN the call was about, when it was about one.
    pub resource: Option<String>,
    /// The AWS error code, e.g. `ThrottlingException`, or a transport class such as `Timeout`.
    pub code: String,
    pub message: String,
    pub retry: Retry,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operation)?;
        if let Some(resource) = &self.resource {
            write!(f, " {resource}")?;
        }
        write!(f, " failed with {}", self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl AwsError {
    /// Names the resource the failed call was about.
    pub fn on(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.retry == Retry::Retryable
    }
}

/// Error codes AWS documents as throttling or transient (AWS SDKs' retry classification).
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "ConcurrentModificationException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    // A create raced with another writer: observing again shows who owns the name.
    "PipelineNameInUseException",
    "ResourceAlreadyExistsException",
];

/// Classifies a service error from its code and HTTP status.
pub fn classify(code: &str, http_status: Option<u16>) -> Retry {
    if RETRYABLE_CODES.contains(&code) || http_status.is_some_and(|s| s >= 500 || s == 429) {
        Retry::Retryable
    } else {
        Retry::Terminal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_5xx_are_retryable() {
        assert_eq!(classify("ThrottlingException", Some(400)), Retry::Retryable);
        assert_eq!(classify("Whatever", Some(503)), Retry::Retryable);
        assert_eq!(classify("", Some(429)), Retry::Retryable);
    }

    #[test]
    fn access_and_validation_errors_are_terminal() {
        assert_eq!(
            classify("AccessDeniedException", Some(400)),
            Retry::Terminal
        );
        assert_eq!(
            classify("InvalidStructureException", Some(400)),
            Retry::Terminal
        );
        assert_eq!(classify("ValidationException", Some(400)), Retry::Terminal);
    }

    #[test]
    fn display_names_operation_and_code() {
        let e = AwsError {
            operation: "UpdatePipeline",
            resource: None,
            code: "AccessDeniedException".into(),
            message: "no".into(),
            retry: Retry::Terminal,
        };
        assert_eq!(
            e.to_string(),
            "UpdatePipeline failed with AccessDeniedException: no"
        );
        assert_eq!(
            e.on("ns-a-test").to_string(),
            "UpdatePipeline ns-a-test failed with AccessDeniedException: no"
        );
    }
}
