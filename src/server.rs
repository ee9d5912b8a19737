//! The metrics and probe endpoint: `/metrics`, `/healthz`, `/readyz`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;

/// What the probes report.
#[derive(Debug, Default)]
pub struct Health {
    /// The leader's watch has listed every resource once.
    watch_synced: AtomicBool,
    /// This replica holds the lease (always true without leader election).
    leader: AtomicBool,
    /// Leader election is on and its loop is talking to the API server.
    standby_ok: AtomicBool,
}

impl Health {
    pub fn set_watch_synced(&self, synced: bool) {
        self.watch_synced.store(synced, Ordering::SeqCst);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
        if !leader {
            self.watch_synced.store(false, Ordering::SeqCst);
        }
    }

    pub fn set_standby_ok(&self, ok: bool) {
        self.standby_ok.store(ok, Ordering::SeqCst);
    }

    /// Ready: the leader with a synced watch, or a healthy standby that can take over.
    pub fn ready(&self) -> bool {
        if self.leader.load(Ordering::SeqCst) {
            self.watch_synced.load(Ordering::SeqCst)
        } else {
            self.standby_ok.load(Ordering::SeqCst)
        }
    }
}

pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    info!(addr = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    loop {
        let (stream, _) = listener.accept().await?;
        let (metrics, health) = (metrics.clone(), health.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = route(&req, &metrics, &health);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

fn route(req: &Request<Incoming>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match req.uri().path() {
        "/metrics" => Response::builder()
            .header(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(Full::new(Bytes::from(metrics.encode())))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n")),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if health.ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => {
            warn!("readiness probe: not ready");
            text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_rules() {
        let h = Health::default();
        assert!(!h.ready(), "nothing yet");
        h.set_standby_ok(true);
        assert!(h.ready(), "a healthy standby is ready");
        h.set_leader(true);
        assert!(!h.ready(), "a new leader waits for its watch");
        h.set_watch_synced(true);
        assert!(h.ready());
        h.set_leader(false);
        h.set_standby_ok(false);
        assert!(!h.ready());
    }
}
