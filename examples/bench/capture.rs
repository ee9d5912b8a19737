//! Records the request bodies the Rust plain loop sends, so the boto3 loop can send the very
//! same Create calls. CodePipeline and CodeBuild speak AWS's JSON protocol: a request body is
//! the operation's input as boto3 takes it, and `X-Amz-Target` names the operation.

use std::fmt;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// One request: `X-Amz-Target` (`CodeBuild_20161006.CreateProject`) and its JSON body.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Captured {
    pub target: String,
    pub body: String,
}

pub type Log = Arc<Mutex<Vec<Captured>>>;

/// An SDK HTTP client that copies each request into `log`, then sends it with `inner`.
pub struct Capture {
    inner: SharedHttpClient,
    log: Log,
}

impl Capture {
    pub fn new(inner: SharedHttpClient, log: Log) -> Self {
        Self { inner, log }
    }
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Capture")
    }
}

impl HttpClient for Capture {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CaptureConnector {
            inner: self.inner.http_connector(settings, components),
            log: self.log.clone(),
        })
    }
}

struct CaptureConnector {
    inner: SharedHttpConnector,
    log: Log,
}

impl fmt::Debug for CaptureConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaptureConnector")
    }
}

impl HttpConnector for CaptureConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").map(str::to_owned);
        let body = request.body().bytes().map(String::from_utf8_lossy);
        if let (Some(target), Some(body)) = (target, body) {
            let captured = Captured {
                target,
                body: body.into_owned(),
            };
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(captured);
        }
        self.inner.call(request)
    }
}
