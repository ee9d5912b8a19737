//! Counts every AWS request where it is sent: an SDK interceptor, so each HTTP attempt
//! (including the SDK's own retries, and both halves of a two-request trait method such as
//! GetPipeline + ListTagsForResource) is one sample, labelled by operation and outcome.

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::error::{Retry, classify};
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct MeterRequests {
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for MeterRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MeterRequests")
    }
}

impl MeterRequests {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl Intercept for MeterRequests {
    fn name(&self) -> &'static str {
        "branchpipeline-meter-requests"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("Unknown", Metadata::name);
        let outcome = match context.response() {
            None => "retryable_error",
            Some(response) => {
                let status = response.status().as_u16();
                let code = response
                    .headers()
                    .get("x-amzn-errortype")
                    .map(str::to_string)
                    .or_else(|| response.body().bytes().and_then(error_type));
                if code.as_deref().is_some_and(is_throttling) || status == 429 {
                    self.metrics.aws_throttled(operation);
                }
                outcome(status, code.as_deref())
            }
        };
        self.metrics.aws_request(operation, outcome);
        Ok(())
    }
}

/// `success`, `retryable_error` or `terminal_error`, by HTTP status and AWS error code.
fn outcome(status: u16, error_type: Option<&str>) -> &'static str {
    if (200..300).contains(&status) {
        return "success";
    }
    // awsJson error types may carry a namespace prefix or a ":<uri>" suffix.
    let code = error_type
        .map(|t| t.split(':').next().unwrap_or(t))
        .map(|t| t.rsplit('#').next().unwrap_or(t))
        .unwrap_or_default();
    match classify(code, Some(status)) {
        Retry::Retryable => "retryable_error",
        Retry::Terminal => "terminal_error",
    }
}

fn is_throttling(error_type: &str) -> bool {
    let code = error_type.split(':').next().unwrap_or(error_type);
    code.rsplit('#').next().unwrap_or(code).contains("Throttl")
}

/// `__type` of an awsJson error body.
fn error_type(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("__type")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_error_classification() {
        assert_eq!(outcome(200, None), "success");
        assert_eq!(outcome(400, Some("ThrottlingException")), "retryable_error");
        assert_eq!(
            outcome(400, Some("ThrottlingException:http://internal.amazon.com/")),
            "retryable_error"
        );
        assert_eq!(
            outcome(400, Some("com.amazonaws.codepipeline#ThrottlingException")),
            "retryable_error"
        );
        assert_eq!(
            outcome(400, Some("AccessDeniedException")),
            "terminal_error"
        );
        assert_eq!(outcome(503, None), "retryable_error");
        assert!(is_throttling("ThrottlingException:http://x"));
        assert!(!is_throttling("AccessDeniedException"));
        assert_eq!(
            error_type(br#"{"__type":"ValidationException","message":"x"}"#).as_deref(),
            Some("ValidationException")
        );
    }
}
