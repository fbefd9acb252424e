//! HTTP signaling toward another node's `/rtc/*` endpoints (offer, DELETE):
//! one request per connection, bounded in size and time.

use crate::Error;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest HTTP response read.
const MAX_HTTP: usize = 256 * 1024;

/// `http://HOST:PORT` → `HOST:PORT`.
fn authority(web: &str) -> Result<&str, Error> {
    web.strip_prefix("http://")
        .map(|r| r.trim_end_matches('/'))
        .filter(|a| !a.contains('/'))
        .ok_or_else(|| Error::WebAddress(web.to_owned()))
}

/// One HTTP/1.1 request with `Connection: close`; returns status, Location and body.
pub async fn http(
    web: &str,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, Option<String>, String), Error> {
    let host = authority(web)?;
    let mut s = tokio::time::timeout(timeout, TcpStream::connect(host))
        .await
        .map_err(|_| Error::Timeout("HTTP connect"))??;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(
        timeout,
        (&mut s).take(MAX_HTTP as u64).read_to_end(&mut buf),
    )
    .await
    .map_err(|_| Error::Timeout("HTTP response"))??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(Error::Closed("malformed HTTP response"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(Error::Closed("malformed HTTP status"))?;
    let location = head.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.trim().to_owned())
    });
    Ok((status, location, body.to_owned()))
}
