//! HTTP for a node (spec/interfaces.md): the dashboard page, the JSON API and
//! live events. A request must name this node in its Host header (the bound
//! address, `localhost`, or a `--web-host` name); CORS answers only the origins
//! given with `--web-origin` (none by default).
//!
//! - `GET /` dashboard (with a data channel chat to any session server);
//!   `GET /api/device`, `/api/devices`, `/api/sessions`, `/api/servers`,
//!   `/api/trusted` JSON; `GET /api/events` server-sent events (the `--json` lines).
//! - `POST /rtc/offer` (application/sdp): answers as ICE-lite with a host
//!   candidate, `201` + `Location: /rtc/<id>`; bad SDP `400` with the reason.
//!   `DELETE /rtc/<id>` closes it. Each data channel is bridged to the session
//!   server named by its label.
//! - WHIP/WHEP: `501` until media lands.
#![forbid(unsafe_code)]

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures_util::Stream;
use softbus_runtime::NodeHandle;
use std::convert::Infallible;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use tower_http::cors::CorsLayer;

const DASHBOARD: &str = include_str!("../assets/dashboard.html");

/// Who may talk to the web side: which Host names a request may carry (besides
/// the bound address and `localhost`), and which other origins a browser may
/// call from (none by default: CORS never answers `*`).
#[derive(Debug, Clone, Default)]
pub struct WebAccess {
    pub hosts: Vec<String>,
    pub origins: Vec<String>,
}

/// Refuses a request whose Host is not the bound address, `localhost` or a
/// name allowed by `--web-host` (a DNS-rebinding page names its own host).
async fn check_host(
    State(allowed): State<std::sync::Arc<Vec<String>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    // The name without the port (an IPv6 literal keeps its brackets).
    let name = match host.rsplit_once(':') {
        Some((n, p)) if !n.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => host,
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        next.run(req).await
    } else {
        (
            StatusCode::FORBIDDEN,
            format!("Host {host:?} is not this node's; use its address, localhost, or a name given with --web-host\n"),
        )
            .into_response()
    }
}

/// The router for `node`, served on `bound`, within `access`.
pub fn router_for(node: NodeHandle, bound: std::net::SocketAddr, access: &WebAccess) -> Router {
    let mut hosts = vec![bound.ip().to_string(), "localhost".to_owned()];
    if let std::net::IpAddr::V6(v6) = bound.ip() {
        hosts.push(format!("[{v6}]"));
    }
    hosts.extend(access.hosts.iter().cloned());
    let mut app = routes(node).layer(axum::middleware::from_fn_with_state(
        std::sync::Arc::new(hosts),
        check_host,
    ));
    let origins: Vec<axum::http::HeaderValue> = access
        .origins
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect();
    if !origins.is_empty() {
        app = app.layer(
            CorsLayer::new()
                .allow_origin(tower_http::cors::AllowOrigin::list(origins))
                .allow_methods([
                    axum::http::Method::GET,
                    axum::http::Method::POST,
                    axum::http::Method::DELETE,
                ])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
                .expose_headers([header::LOCATION]),
        );
    }
    app
}

/// The router for `node` with no Host check and no CORS (for embedding behind
/// another server that checks them).
pub fn router(node: NodeHandle) -> Router {
    routes(node)
}

fn routes(node: NodeHandle) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/device", get(device))
        .route("/api/devices", get(devices))
        .route("/api/sessions", get(sessions))
        .route("/api/trusted", get(trusted))
        .route("/api/servers", get(servers))
        .route("/api/events", get(events))
        .route("/rtc/offer", post(rtc_offer))
        .route("/rtc/{id}", delete(rtc_close))
        .route("/whip/{stream}", post(not_yet))
        .route("/whep/{stream}", post(not_yet))
        .with_state(node)
}

/// Bounds of the HTTP side, so slow or many clients cannot hold the node.
#[derive(Debug, Clone, Copy)]
pub struct WebLimits {
    /// A request's headers must arrive within this (also the idle time between
    /// requests on a kept-alive connection).
    pub header_timeout: std::time::Duration,
    /// HTTP connections open at once; more are closed as they arrive.
    pub max_connections: usize,
}

impl Default for WebLimits {
    fn default() -> Self {
        Self {
            header_timeout: std::time::Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// Serves the node on `listener` with the default [`WebLimits`] and
/// [`WebAccess`] until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, node: NodeHandle) -> std::io::Result<()> {
    serve_with(listener, node, WebLimits::default(), WebAccess::default()).await
}

/// Serves the node on `listener` within `limits` (each connection has its
/// header timeout, connections over the cap are closed at once) and `access`
/// (the Host check, the origins CORS allows).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    node: NodeHandle,
    limits: WebLimits,
    access: WebAccess,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let app = router_for(node, listener.local_addr()?, &access);
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "web accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "HTTP connection limit reached; closed");
            continue;
        };
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
            drop(permit);
        });
    }
}

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

async fn device(State(n): State<NodeHandle>) -> Response {
    Json(serde_json::to_value(n.info()).unwrap_or_default()).into_response()
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "node stopped").into_response()
}

async fn devices(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => Json(s.devices).into_response(),
        Err(_) => unavailable(),
    }
}

async fn sessions(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => Json(s.sessions).into_response(),
        Err(_) => unavailable(),
    }
}

async fn servers(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => Json(s.servers).into_response(),
        Err(_) => unavailable(),
    }
}

async fn trusted(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => Json(s.trusted).into_response(),
        Err(_) => unavailable(),
    }
}

async fn events(State(n): State<NodeHandle>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // A slow viewer misses events (lagged) rather than holding memory.
    let s = BroadcastStream::new(n.subscribe())
        .filter_map(|e| e.ok())
        .map(|e| Ok(Event::default().data(e.to_json())));
    Sse::new(s).keep_alive(KeepAlive::default())
}

/// Largest offer accepted.
const MAX_OFFER: usize = 64 * 1024;

async fn rtc_offer(
    State(n): State<NodeHandle>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("application/sdp") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/sdp\n",
        )
            .into_response();
    }
    if body.len() > MAX_OFFER {
        return (StatusCode::PAYLOAD_TOO_LARGE, "offer too large\n").into_response();
    }
    let Ok(sdp) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "offer is not UTF-8\n").into_response();
    };
    match n.rtc_offer(sdp).await {
        Ok(Ok((id, answer))) => (
            StatusCode::CREATED,
            [
                (header::CONTENT_TYPE, "application/sdp".to_owned()),
                (header::LOCATION, format!("/rtc/{id}")),
            ],
            answer,
        )
            .into_response(),
        Ok(Err(reason)) => {
            // A full node is not the offer's fault: 503, and the reason.
            let status = match reason {
                softbus_runtime::NodeError::Rtc(softbus_runtime::HostError::TooManyPeers(_)) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::BAD_REQUEST,
            };
            (
                status,
                [(header::CONTENT_TYPE, "text/plain".to_owned())],
                format!("{reason}\n"),
            )
                .into_response()
        }
        Err(_) => unavailable(),
    }
}

async fn rtc_close(
    State(n): State<NodeHandle>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> Response {
    match n.rtc_close(id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, "no such peer connection\n").into_response(),
        Err(_) => unavailable(),
    }
}

async fn not_yet() -> Response {
    (
        StatusCode::NOT_IMPLEMENTED,
        [(header::CONTENT_TYPE, "text/plain")],
        "WebRTC is not available on this node yet\n",
    )
        .into_response()
}
