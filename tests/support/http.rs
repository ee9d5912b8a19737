//! A minimal HTTP/1.0 client for the loopback moto server: the crate has no direct
//! HTTP client dependency, and moto's control endpoints and IAM only need plain requests.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `base` is `http://host:port`. HTTP/1.0 with `Connection: close`, so the response
/// ends at EOF and is never chunked.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response> {
    // A server that never answers must fail the caller with the request's name, not hang it.
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(base, method, path, headers, body))
        .await
        .with_context(|| {
            format!("{method} {base}{path}: no complete response within {REQUEST_TIMEOUT:?}")
        })?
}

/// Longer than any loopback request of the bed takes, moto's whole request log included.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

async fn exchange(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response> {
    let authority = base
        .strip_prefix("http://")
        .with_context(|| format!("{base}: only http:// URLs are supported"))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await?;
    if !body.is_empty() {
        // Half-close: the request is complete. Werkzeug (moto's server), after answering,
        // drains what the handler left unread with a blocking read that only EOF ends, so a
        // body the handler ignored (POST /_bpl/requests/reset ignores "{}") that arrived just
        // after the headers held the server and this client, each waiting for the other's EOF
        // (35 of 40 such requests in a reproduction). Bodiless requests skip it: hyper, the
        // controller's metrics server, drops a connection half-closed before it answers.
        // A failure means the server has already closed, having answered without reading the
        // body: the answer is read below.
        let _ = stream.shutdown().await;
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;

    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("malformed HTTP response: no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("malformed HTTP status line in {head:?}"))?;
    Ok(Response {
        status,
        body: raw[split + 4..].to_vec(),
    })
}

pub async fn get_json(base: &str, path: &str) -> Result<serde_json::Value> {
    let response = request(base, "GET", path, &[], b"").await?;
    json_body(path, response)
}

pub async fn post_json(
    base: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let payload = serde_json::to_vec(body)?;
    let response = request(
        base,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &payload,
    )
    .await?;
    json_body(path, response)
}

fn json_body(path: &str, response: Response) -> Result<serde_json::Value> {
    if response.status != 200 {
        bail!("{path}: HTTP {}: {}", response.status, response.text());
    }
    serde_json::from_slice(&response.body).with_context(|| format!("{path}: response is not JSON"))
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
