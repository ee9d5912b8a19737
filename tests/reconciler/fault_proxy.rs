//! A small HTTP proxy in front of moto that answers some requests with AWS throttling errors
//! and 5xx responses instead of forwarding them: the failures a real AWS endpoint produces under
//! load, injected on a schedule so the test is repeatable.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct FaultProxy {
    pub url: String,
    pub faults: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// Which requests fail, and how.
#[derive(Clone)]
enum Plan {
    /// Every `every`-th request, alternating throttling and 503, up to `max` faults.
    Transient { every: usize, max: usize },
    /// Every call of one operation is refused with AccessDeniedException.
    Deny { operation: String },
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every `every`-th request fails (alternating throttling and HTTP 503) until `max_faults`
/// failures have been injected; everything else goes to `upstream` (`http://host:port`).
pub async fn start(upstream: &str, every: usize, max_faults: usize) -> FaultProxy {
    start_with(
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
    start_with(
        upstream,
        Plan::Deny {
            operation: operation.to_string(),
        },
    )
    .await
}

async fn start_with(upstream: &str, plan: Plan) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    let seen = Arc::new(AtomicUsize::new(0));
    let faults = Arc::new(AtomicUsize::new(0));
    let faults_task = faults.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let seen = seen.clone();
            let faults = faults_task.clone();
            let plan = plan.clone();
            tokio::spawn(async move {
                let _ = serve(conn, &upstream, &seen, &faults, &plan).await;
            });
        }
    });
    FaultProxy { url, faults, task }
}

async fn serve(
    mut conn: TcpStream,
    upstream: &str,
    seen: &AtomicUsize,
    faults: &AtomicUsize,
    plan: &Plan,
) -> std::io::Result<()> {
    loop {
        let Some(request) = read_message(&mut conn).await? else {
            return Ok(());
        };
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        let fault = match plan {
            Plan::Transient { every, max }
                if n.is_multiple_of(*every) && faults.load(Ordering::SeqCst) < *max =>
            {
                let k = faults.fetch_add(1, Ordering::SeqCst);
                Some(if k.is_multiple_of(2) {
                    error_response(400, "ThrottlingException", "Rate exceeded")
                } else {
                    error_response(503, "ServiceUnavailableException", "Service is unavailable")
                })
            }
            Plan::Deny { operation }
                if target(&request).is_some_and(|t| t.ends_with(&format!(".{operation}"))) =>
            {
                faults.fetch_add(1, Ordering::SeqCst);
                Some(error_response(
                    400,
                    "AccessDeniedException",
                    "User is not authorized to perform this operation",
                ))
            }
            _ => None,
        };
        let response = match fault {
            Some(response) => response,
            None => forward(upstream, &request).await?,
        };
        conn.write_all(&response).await?;
    }
}

fn error_response(status: u16, code: &str, message: &str) -> Vec<u8> {
    let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
    let reason = if status == 400 {
        "Bad Request"
    } else {
        "Service Unavailable"
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

/// The `X-Amz-Target` header: the AWS JSON-protocol operation.
fn target(request: &[u8]) -> Option<String> {
    let end = find(request, b"\r\n\r\n")?;
    String::from_utf8_lossy(&request[..end])
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("x-amz-target")
                .then(|| v.trim().to_string())
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
