//! HTTP for a node (spec/interfaces.md): the dashboard page, the JSON API and
//! live events, with CORS open to any origin.
//!
//! - `GET /` dashboard; `GET /api/device`, `/api/devices`, `/api/sessions`,
//!   `/api/trusted` JSON; `GET /api/events` server-sent events (the `--json` lines).
//! - `POST /rtc/offer`, `DELETE /rtc/<id>`, WHIP/WHEP: answered `501` until the
//!   WebRTC transport lands.
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

/// The router for `node`.
pub fn router(node: NodeHandle) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/device", get(device))
        .route("/api/devices", get(devices))
        .route("/api/sessions", get(sessions))
        .route("/api/trusted", get(trusted))
        .route("/api/events", get(events))
        .route("/rtc/offer", post(not_yet))
        .route("/rtc/{id}", delete(not_yet))
        .route("/whip/{stream}", post(not_yet))
        .route("/whep/{stream}", post(not_yet))
        .layer(CorsLayer::permissive())
        .with_state(node)
}

/// Serves `router(node)` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, node: NodeHandle) -> std::io::Result<()> {
    axum::serve(listener, router(node)).await
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

async fn not_yet() -> Response {
    (
        StatusCode::NOT_IMPLEMENTED,
        [(header::CONTENT_TYPE, "text/plain")],
        "WebRTC is not available on this node yet\n",
    )
        .into_response()
}
