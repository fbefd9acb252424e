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

/// An HTTP response: status, headers (names lower-case) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns status, Location and body.
pub async fn http(
    web: &str,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, Option<String>, String), Error> {
    let r = request(web, method, path, &[], body, timeout).await?;
    let location = r.header("location").map(str::to_owned);
    Ok((r.status, location, r.body))
}

/// One HTTP/1.1 request with extra `headers` and `Connection: close`; the
/// body is `application/sdp` unless `headers` name another Content-Type.
pub async fn request(
    web: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
    timeout: Duration,
) -> Result<Response, Error> {
    let host = authority(web)?;
    let mut s = tokio::time::timeout(timeout, TcpStream::connect(host))
        .await
        .map_err(|_| Error::Timeout("HTTP connect"))??;
    let is_type = |k: &str| k.eq_ignore_ascii_case("content-type");
    let content_type = headers
        .iter()
        .find(|(k, _)| is_type(k))
        .map_or("application/sdp", |(_, v)| v.as_str());
    let extra: String = headers
        .iter()
        .filter(|(k, v)| !k.contains(['\r', '\n']) && !v.contains(['\r', '\n']) && !is_type(k))
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let content_type: String = content_type
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
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
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}
