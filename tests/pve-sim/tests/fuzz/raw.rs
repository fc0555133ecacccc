//! A strict raw HTTP/1.1 client: one request per connection, the answer parsed byte by byte so
//! that a malformed answer (or none at all) is caught, not papered over by a client library.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The statuses Proxmox VE's API answers with.
/// Header name and raw value bytes (values may be non-UTF-8 on purpose).
pub type Headers = Vec<(String, Vec<u8>)>;

pub const STATUSES: &[u16] = &[200, 400, 401, 403, 413, 500, 501, 595];

/// A parsed HTTP/1.1 answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
    pub body: Vec<u8>,
}

/// Send raw bytes on a fresh connection and parse the answer strictly.
pub async fn exchange(addr: SocketAddr, request: Vec<u8>, head: bool) -> Result<Answer, String> {
    let io = async {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let (mut rd, mut wr) = stream.into_split();
        // Write while reading: a server that refuses a body early must still be heard.
        let writer = tokio::spawn(async move {
            let _ = wr.write_all(&request).await;
            let _ = wr.flush().await;
            wr
        });
        let mut raw = Vec::new();
        let read = rd.read_to_end(&mut raw).await;
        drop(writer.await);
        if raw.is_empty() {
            return Err(format!("no answer at all ({read:?})"));
        }
        Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(20), io).await.map_err(|_| "timed out".to_string())??;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of headers")?;
    let head_text = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let rest = status_line.strip_prefix("HTTP/1.1 ").ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let status: u16 = code.parse().map_err(|_| format!("bad status code in {status_line:?}"))?;
    let mut length = None;
    for l in lines {
        let (k, v) = l.split_once(':').ok_or_else(|| format!("bad header line {l:?}"))?;
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.trim().parse::<usize>().map_err(|_| format!("bad content-length {v:?}"))?);
        }
        if k.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("unexpected transfer-encoding {v:?}"));
        }
    }
    let body = raw[end + 4..].to_vec();
    match length {
        Some(n) if !head && n != body.len() => return Err(format!("content-length {n} but {} body bytes", body.len())),
        None if !body.is_empty() => return Err("a body without content-length".into()),
        _ => {}
    }
    Ok(Answer { status, reason: reason.to_string(), body: if head { Vec::new() } else { body } })
}

pub fn request_bytes(method: &str, target: &str, headers: &[(String, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n").into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The answer is well formed, has a Proxmox status and an empty or `{"data": …}` body.
pub fn check(a: &Answer) -> Result<(), String> {
    if !STATUSES.contains(&a.status) {
        return Err(format!("status {} {} is not one Proxmox uses", a.status, a.reason));
    }
    if a.body.is_empty() {
        return Ok(());
    }
    let v: Value = serde_json::from_slice(&a.body).map_err(|e| format!("body is not JSON ({e})"))?;
    if v.get("data").is_none() {
        return Err(format!("JSON body without `data`: {v}"));
    }
    Ok(())
}
