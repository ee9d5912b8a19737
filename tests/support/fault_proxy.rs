//! A small HTTP proxy in front of moto that answers some requests with AWS throttling errors,
//! 5xx responses or AccessDeniedException instead of forwarding them, or forwards them and
//! holds the answer back: the failures a real AWS endpoint produces, injected on a schedule so
//! the test is repeatable. A faulted request never reaches moto, so moto's request log holds
//! only the calls AWS would have carried out.
//!
//! The [`Plan`] can be switched while the proxy runs ([`FaultProxy::set_plan`]), e.g. to lift a
//! denial.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which requests fail, and how.
#[derive(Clone, Debug)]
pub enum Plan {
    /// Everything is forwarded.
    Pass,
    /// Every `every`-th request, alternating throttling and 503, up to `max` faults.
    Transient { every: usize, max: usize },
    /// Every call of one operation (e.g. `DeletePipeline`) is refused with
    /// AccessDeniedException.
    Deny { operation: String },
    /// Until `until`, each request fails with probability `percent`/100, drawn from a
    /// fixed-seed generator over the request's sequence number; the faults cycle through
    /// throttling (400), HTTP 500, throttling, HTTP 503. After `until` everything passes.
    Storm {
        until: Instant,
        percent: u64,
        seed: u64,
    },
    /// Calls of these operations are forwarded at once, but their answer is held back for
    /// `delay`: AWS has done the work and the caller does not know yet.
    SlowResponses {
        operations: Vec<String>,
        delay: Duration,
    },
}

impl Plan {
    /// A storm starting now and lasting `length`.
    pub fn storm(length: Duration, percent: u64, seed: u64) -> Self {
        Plan::Storm {
            until: Instant::now() + length,
            percent,
            seed,
        }
    }

    pub fn deny(operation: &str) -> Self {
        Plan::Deny {
            operation: operation.to_string(),
        }
    }
}

/// Faults injected so far, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FaultCounts {
    pub throttled: usize,
    pub internal_errors: usize,
    pub unavailable: usize,
    pub denied: usize,
}

impl FaultCounts {
    pub fn total(&self) -> usize {
        self.throttled + self.internal_errors + self.unavailable + self.denied
    }
}

#[derive(Debug)]
struct State {
    plan: Mutex<Plan>,
    /// Requests received, faulted or not.
    seen: AtomicUsize,
    faults: Arc<AtomicUsize>,
    counts: Mutex<FaultCounts>,
}

pub struct FaultProxy {
    pub url: String,
    /// Faults injected so far (all kinds).
    pub faults: Arc<AtomicUsize>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Replaces the plan; requests already being answered keep the old one.
    pub fn set_plan(&self, plan: Plan) {
        *self.state.plan.lock().unwrap_or_else(|e| e.into_inner()) = plan;
    }

    /// Requests received so far, faulted or forwarded.
    pub fn requests(&self) -> usize {
        self.state.seen.load(Ordering::SeqCst)
    }

    pub fn fault_counts(&self) -> FaultCounts {
        *self.state.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every `every`-th request fails (alternating throttling and HTTP 503) until `max_faults`
/// failures have been injected; everything else goes to `upstream` (`http://host:port`).
pub async fn start(upstream: &str, every: usize, max_faults: usize) -> FaultProxy {
    with_plan(
        upstream,
        Plan::Transient {
            every,
            max: max_faults,
        },
    )
    .await
}

/// Refuses every call of `operation` (e.g. `CreatePipeline`) as AWS does without permission.
pub async fn deny(upstream: &str, operation: &str) -> FaultProxy {
    with_plan(upstream, Plan::deny(operation)).await
}

/// A proxy to `upstream` (`http://host:port`) following `plan` until it is replaced.
pub async fn with_plan(upstream: &str, plan: Plan) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port for the fault proxy");
    let url = format!(
        "http://{}",
        listener.local_addr().expect("the proxy's local address")
    );
    let upstream = upstream.trim_start_matches("http://").to_string();
    let faults = Arc::new(AtomicUsize::new(0));
    let state = Arc::new(State {
        plan: Mutex::new(plan),
        seen: AtomicUsize::new(0),
        faults: faults.clone(),
        counts: Mutex::new(FaultCounts::default()),
    });
    let task_state = state.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let state = task_state.clone();
            tokio::spawn(async move {
                let _ = serve(conn, &upstream, &state).await;
            });
        }
    });
    FaultProxy {
        url,
        faults,
        state,
        task,
    }
}

/// What to do with one request.
enum Verdict {
    Forward,
    Fail(Fault),
    ForwardSlowly(Duration),
}

#[derive(Clone, Copy)]
enum Fault {
    Throttled,
    InternalError,
    Unavailable,
    Denied,
}

impl Fault {
    fn response(self) -> Vec<u8> {
        match self {
            Fault::Throttled => error_response(400, "ThrottlingException", "Rate exceeded"),
            Fault::InternalError => {
                error_response(500, "InternalFailure", "An internal error occurred")
            }
            Fault::Unavailable => {
                error_response(503, "ServiceUnavailableException", "Service is unavailable")
            }
            Fault::Denied => error_response(
                400,
                "AccessDeniedException",
                "User is not authorized to perform this operation",
            ),
        }
    }
}

fn decide(state: &State, n: usize, request: &[u8]) -> Verdict {
    let plan = state.plan.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let fault = match plan {
        Plan::Pass => None,
        Plan::Transient { every, max }
            if n.is_multiple_of(every) && state.faults.load(Ordering::SeqCst) < max =>
        {
            let k = state.faults.load(Ordering::SeqCst);
            Some(if k.is_multiple_of(2) {
                Fault::Throttled
            } else {
                Fault::Unavailable
            })
        }
        Plan::Transient { .. } => None,
        Plan::Deny { operation } => operation_of(request)
            .is_some_and(|op| op == operation)
            .then_some(Fault::Denied),
        Plan::Storm {
            until,
            percent,
            seed,
        } => (Instant::now() < until && splitmix64(seed ^ n as u64) % 100 < percent).then(|| {
            match state.faults.load(Ordering::SeqCst) % 4 {
                0 | 2 => Fault::Throttled,
                1 => Fault::InternalError,
                _ => Fault::Unavailable,
            }
        }),
        Plan::SlowResponses { operations, delay } => {
            return if operation_of(request).is_some_and(|op| operations.contains(&op)) {
                Verdict::ForwardSlowly(delay)
            } else {
                Verdict::Forward
            };
        }
    };
    match fault {
        Some(fault) => {
            state.faults.fetch_add(1, Ordering::SeqCst);
            let mut counts = state.counts.lock().unwrap_or_else(|e| e.into_inner());
            match fault {
                Fault::Throttled => counts.throttled += 1,
                Fault::InternalError => counts.internal_errors += 1,
                Fault::Unavailable => counts.unavailable += 1,
                Fault::Denied => counts.denied += 1,
            }
            Verdict::Fail(fault)
        }
        None => Verdict::Forward,
    }
}

/// SplitMix64: a fixed, well-mixed function of the seed and the request number, so a storm
/// is the same sequence of faults on every run.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn serve(mut conn: TcpStream, upstream: &str, state: &State) -> std::io::Result<()> {
    loop {
        let Some(request) = read_message(&mut conn).await? else {
            return Ok(());
        };
        let n = state.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let response = match decide(state, n, &request) {
            Verdict::Fail(fault) => fault.response(),
            Verdict::Forward => forward(upstream, &request).await?,
            Verdict::ForwardSlowly(delay) => {
                let response = forward(upstream, &request).await?;
                tokio::time::sleep(delay).await;
                response
            }
        };
        conn.write_all(&response).await?;
    }
}

fn error_response(status: u16, code: &str, message: &str) -> Vec<u8> {
    let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
    let reason = match status {
        400 => "Bad Request",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one HTTP/1.1 message (headers plus a Content-Length body); `None` at EOF before
/// any header.
async fn read_message(conn: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let length = content_length(&buf[..header_end]);
    while buf.len() < header_end + length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buf))
}

/// Sends the request upstream on a fresh connection and returns the whole response.
async fn forward(upstream: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(request).await?;
    Ok(read_message(&mut up).await?.unwrap_or_default())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The operation of an AWS JSON-protocol call: the end of its `X-Amz-Target` header, e.g.
/// `DeletePipeline` for `CodePipeline_20150709.DeletePipeline`.
fn operation_of(request: &[u8]) -> Option<String> {
    let end = find(request, b"\r\n\r\n")?;
    String::from_utf8_lossy(&request[..end])
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("x-amz-target")
                .then(|| v.trim().rsplit('.').next().unwrap_or_default().to_string())
        })
}

fn content_length(headers: &[u8]) -> usize {
    String::from_utf8_lossy(headers)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}
