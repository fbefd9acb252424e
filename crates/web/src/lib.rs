//! HTTP for a node (spec/interfaces.md): the dashboard page, the JSON API and
//! live events. A request must name this node in its Host header (the bound
//! address, `localhost`, or a `--web-host` name); CORS answers only the origins
//! given with `--web-origin` (none by default).
//!
//! Every `/api/*`, `/rtc/*`, `/whip/*` and `/whep/*` request needs the node's
//! web token, as `Authorization: Bearer TOKEN` or as the session cookie that
//! `GET /login?token=TOKEN` (the dashboard link the node prints) sets; without
//! it, `401`. A cookie request from a page of another origin is refused (`403`):
//! the cookie is `SameSite=Strict`, but a page on another port of the same
//! host is "same-site". A paired node may instead sign its offer's DTLS
//! fingerprint (`Softbus-Device`, `Softbus-Signature`). Only the credential
//! that created a peer connection may `DELETE` it.
//!
//! - `GET /` dashboard (with a data channel chat to any session server);
//!   `GET /api/device`, `/api/devices`, `/api/sessions`, `/api/servers`, `/api/gateway`,
//!   `/api/trusted` JSON; `GET /api/events` server-sent events (the `--json`
//!   lines, and each in words as a `words` event); `GET /api/recent` the last
//!   200 events.
//! - `POST /rtc/offer` (application/sdp): answers as ICE-lite with a host
//!   candidate, `201` + `Location: /rtc/<id>`; bad SDP `400` with the reason.
//!   `DELETE /rtc/<id>` closes it. Each data channel is bridged to the session
//!   server named by its label.
//! - WHIP (RFC 9725) and WHEP: `POST /whip/<stream>` publishes (the offer's
//!   audio and video, received), `POST /whep/<stream>` plays (sent to the
//!   viewer), both `201` + `Location: /whip|whep/<stream>/<id>`; `DELETE` on it
//!   ends that side, `PATCH` takes trickled candidates (`204`; the node is
//!   ICE-lite and learns addresses from the checks). `GET /api/streams` lists
//!   streams and viewers.
#![forbid(unsafe_code)]

use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures_util::Stream;
use softbus_runtime::{NodeHandle, Principal};
use std::convert::Infallible;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use tower_http::cors::CorsLayer;

pub mod launch;
mod serve;
use serve::{read_body_within, ConnTag};
pub use serve::{serve, serve_with, WebLimits, MAX_BODY};

const DASHBOARD: &str = include_str!("../assets/dashboard.html");
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");
/// The dashboard's policy: its own script and style only (no inline code, so
/// markup injected into it cannot run), requests to this node only, and no
/// framing by another page.
const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; media-src 'self' blob:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Who may talk to the web side: which Host names a request may carry (besides
/// the bound address and `localhost`), which other origins a browser may call
/// from (none by default: CORS never answers `*`), and the credential.
#[derive(Debug, Clone)]
pub struct WebAccess {
    pub hosts: Vec<String>,
    pub origins: Vec<String>,
    pub auth: WebAuth,
}

impl WebAccess {
    /// Only this token (and dashboard sessions made from it) gets in.
    pub fn with_token(token: WebToken) -> Self {
        Self {
            hosts: Vec::new(),
            origins: Vec::new(),
            auth: WebAuth::Token(token),
        }
    }

    /// No credential asked: anyone who can reach the address may use the node.
    /// Only for a caller that authenticates in front of it, or a test.
    pub fn open() -> Self {
        Self {
            hosts: Vec::new(),
            origins: Vec::new(),
            auth: WebAuth::Open,
        }
    }
}

/// The web side's credential.
#[derive(Debug, Clone)]
pub enum WebAuth {
    Token(WebToken),
    /// No authentication (an explicit opt-in).
    Open,
}

/// The node's web token: a secret of at least 128 bits, and the name sessions
/// opened with it show.
#[derive(Clone)]
pub struct WebToken {
    pub name: String,
    secret: String,
}

impl std::fmt::Debug for WebToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebToken")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Shortest token accepted: 32 characters (128 bits as hex).
pub const MIN_TOKEN_LEN: usize = 32;

impl WebToken {
    /// A token with this secret; too short (under [`MIN_TOKEN_LEN`]), or with
    /// characters a header or a cookie cannot carry, is refused.
    pub fn new(name: &str, secret: &str) -> Result<Self, &'static str> {
        if secret.len() < MIN_TOKEN_LEN {
            return Err("a web token needs at least 32 characters (128 bits as hex)");
        }
        if !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err("a web token may hold letters, digits and - . _ ~ only");
        }
        Ok(Self {
            name: name.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// The secret, for the dashboard link.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    fn matches(&self, given: &str) -> bool {
        ct_eq(self.secret.as_bytes(), given.as_bytes())
    }
}

/// Constant-time equality (no early exit on the first differing byte).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Dashboard sessions made from the token with `/login`: cookie value → its
/// credential name. Bounded; the oldest is forgotten first.
#[derive(Debug, Default)]
struct Sessions {
    list: std::collections::VecDeque<(String, std::time::Instant)>,
}

/// Dashboard sessions remembered at once, and how long each lasts.
const MAX_SESSIONS: usize = 64;
const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
const COOKIE: &str = "softbus_session";

impl Sessions {
    fn create(&mut self) -> String {
        let mut b = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut b[..]);
        let id = hex::encode(b);
        if self.list.len() >= MAX_SESSIONS {
            self.list.pop_front();
        }
        self.list.push_back((id.clone(), std::time::Instant::now()));
        id
    }

    /// The session's credential name, if it is one of ours and alive.
    fn find(&mut self, given: &str) -> Option<String> {
        self.list.retain(|(_, at)| at.elapsed() < SESSION_LIFETIME);
        self.list
            .iter()
            .find(|(id, _)| ct_eq(id.as_bytes(), given.as_bytes()))
            .map(|(id, _)| format!("session:{id}"))
    }
}

#[derive(Clone)]
struct AuthState {
    auth: WebAuth,
    sessions: std::sync::Arc<std::sync::Mutex<Sessions>>,
    /// Origins a cookie request may come from: this node's own, and `--web-origin`.
    origins: std::sync::Arc<Vec<String>>,
    /// To check, before its body is read, that a signed offer names a paired device.
    node: NodeHandle,
}

fn cookie_value<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// 401; the connection closes after it, so a caller without a credential
/// cannot keep it for another slow request.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Bearer realm=\"softbus\""),
            (header::CONTENT_TYPE, "text/plain"),
            (header::CONNECTION, "close"),
        ],
        "this node needs its web token: open the dashboard link the node printed, or send Authorization: Bearer TOKEN (the token is in the data directory's web-token file)\n",
    )
        .into_response()
}

/// Who is calling, or a refusal: Bearer token, or a dashboard cookie from a
/// page of this node's origin.
async fn authenticate(
    State(st): State<AuthState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let token = match &st.auth {
        WebAuth::Open => {
            if let Some(tag) = req.extensions().get::<ConnTag>() {
                tag.forget();
            }
            req.extensions_mut().insert(Principal::WebToken {
                name: "web".into(),
                credential: "open".into(),
            });
            return next.run(req).await;
        }
        WebAuth::Token(t) => t,
    };
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let principal = if let Some(given) = bearer {
        if !token.matches(given.trim()) {
            return unauthorized();
        }
        Some(Principal::WebToken {
            name: token.name.clone(),
            credential: "bearer".into(),
        })
    } else if let Some(c) = cookie_value(headers, COOKIE) {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let own = format!("http://{host}");
        if let Some(o) = origin {
            if o != own && !st.origins.iter().any(|a| a == o) {
                return (
                    StatusCode::FORBIDDEN,
                    format!("a page of {o} may not use this node's dashboard session\n"),
                )
                    .into_response();
            }
        }
        let found = st.sessions.lock().ok().and_then(|mut s| s.find(c));
        match found {
            Some(credential) => Some(Principal::WebToken {
                name: token.name.clone(),
                credential,
            }),
            None => return unauthorized(),
        }
    } else {
        None
    };
    match principal {
        Some(p) => {
            // A credential: this connection is never evicted for a newcomer.
            if let Some(tag) = req.extensions().get::<ConnTag>() {
                tag.forget();
            }
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        // A paired node signs its offer instead. The signature covers the
        // offer's fingerprint, so it is checked once the body is in (within
        // its deadline); before that, the request must name a paired device
        // and carry a signature of the right form, or no body is awaited.
        None if req.method() == axum::http::Method::POST
            && req.uri().path() == "/rtc/offer"
            && req.headers().contains_key(softbus_runtime::DEVICE_HEADER) =>
        {
            let h = req.headers();
            let device = h
                .get(softbus_runtime::DEVICE_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|d| d.len() <= 64)
                .unwrap_or_default();
            let signature_form = h
                .get(softbus_runtime::SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.len() == 128 && v.bytes().all(|b| b.is_ascii_hexdigit()));
            if !signature_form || !matches!(st.node.is_paired(device).await, Ok(true)) {
                return unauthorized();
            }
            next.run(req).await
        }
        None => unauthorized(),
    }
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    token: String,
    /// Where to go after (a path of this node only).
    next: Option<String>,
}

/// `GET /login?token=TOKEN`: the dashboard link. Sets the session cookie and
/// sends the browser to the dashboard (so the token leaves the address bar).
async fn login(
    State(st): State<AuthState>,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    let WebAuth::Token(token) = &st.auth else {
        return axum::response::Redirect::to("/").into_response();
    };
    if !token.matches(&q.token) {
        return unauthorized();
    }
    let Ok(mut sessions) = st.sessions.lock() else {
        return unavailable();
    };
    let id = sessions.create();
    // Only a path on this node: never an open redirect.
    let next = q
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains(['\\', '\r', '\n']))
        .unwrap_or_else(|| "/".to_owned());
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, next),
            (
                header::SET_COOKIE,
                format!(
                    "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                    SESSION_LIFETIME.as_secs()
                ),
            ),
        ],
    )
        .into_response()
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
    router_within(node, bound, access, WebLimits::default().body_timeout)
}

/// [`router_for`], with request bodies due within `body_timeout`.
pub(crate) fn router_within(
    node: NodeHandle,
    bound: std::net::SocketAddr,
    access: &WebAccess,
    body_timeout: std::time::Duration,
) -> Router {
    let mut hosts = vec![bound.ip().to_string(), "localhost".to_owned()];
    if let std::net::IpAddr::V6(v6) = bound.ip() {
        hosts.push(format!("[{v6}]"));
    }
    hosts.extend(access.hosts.iter().cloned());
    let st = AuthState {
        auth: access.auth.clone(),
        sessions: Default::default(),
        origins: std::sync::Arc::new(access.origins.clone()),
        node: node.clone(),
    };
    let mut app = routes(node, st, body_timeout).layer(axum::middleware::from_fn_with_state(
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
                    axum::http::Method::PATCH,
                ])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    header::IF_MATCH,
                ])
                .expose_headers([header::LOCATION, header::LINK, header::ETAG]),
        );
    }
    app
}

/// The router for `node` with no Host check and no CORS (for embedding behind
/// another server that checks them), with `auth` as the credential.
pub fn router(node: NodeHandle, auth: WebAuth) -> Router {
    routes(
        node.clone(),
        AuthState {
            auth,
            sessions: Default::default(),
            origins: Default::default(),
            node,
        },
        WebLimits::default().body_timeout,
    )
}

fn routes(node: NodeHandle, st: AuthState, body_timeout: std::time::Duration) -> Router {
    let protected = Router::new()
        .route("/api/device", get(device))
        .route("/api/devices", get(devices))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/closed", get(closed_sessions))
        .route("/api/trusted", get(trusted))
        .route("/api/paired", get(paired))
        .route("/api/paired/{device}", delete(unpair))
        .route("/api/pair", post(pair))
        .route(
            "/api/discover",
            post(discover).layer(Extension(DiscoverLimiter::default())),
        )
        .route("/api/servers", get(servers))
        .route("/api/gateway", get(gateway))
        .route("/api/ice-servers", get(ice_servers))
        .route("/api/events", get(events))
        .route("/api/recent", get(recent))
        .route("/rtc/offer", post(rtc_offer))
        .route("/rtc/{id}", delete(rtc_close).patch(rtc_patch))
        .route("/api/streams", get(streams))
        .route("/whip/{stream}", post(whip))
        .route("/whep/{stream}", post(whep))
        .route(
            "/whip/{stream}/{id}",
            delete(media_close).patch(media_patch),
        )
        .route(
            "/whep/{stream}/{id}",
            delete(media_close).patch(media_patch),
        )
        .with_state(node)
        // Inside the credential check: no body is awaited before it.
        .layer(axum::middleware::from_fn_with_state(
            body_timeout,
            read_body_within,
        ))
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            authenticate,
        ));
    Router::new()
        .route("/", get(dashboard))
        .route("/dashboard.js", get(dashboard_js))
        .route("/dashboard.css", get(dashboard_css))
        .route("/login", get(login))
        .with_state(st)
        .merge(protected)
}

/// The dashboard may not be framed by another page (clickjacking its
/// buttons: pair, unpair) and runs only its own script.
async fn dashboard() -> Response {
    (
        [
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CONTENT_SECURITY_POLICY, DASHBOARD_CSP),
        ],
        Html(DASHBOARD),
    )
        .into_response()
}

async fn dashboard_js() -> Response {
    asset("text/javascript; charset=utf-8", DASHBOARD_JS)
}

async fn dashboard_css() -> Response {
    asset("text/css; charset=utf-8", DASHBOARD_CSS)
}

/// A static part of the dashboard (it holds no data: the data needs the token).
fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
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

async fn closed_sessions(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => Json(s.closed_sessions).into_response(),
        Err(_) => unavailable(),
    }
}

async fn servers(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => Json(s.servers).into_response(),
        Err(_) => unavailable(),
    }
}

async fn gateway(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => Json(s.gateway).into_response(),
        Err(_) => unavailable(),
    }
}

async fn trusted(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => Json(s.trusted).into_response(),
        Err(_) => unavailable(),
    }
}

async fn paired(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => {
            let list: Vec<serde_json::Value> = s
                .paired
                .iter()
                .map(|d| {
                    let mut v = serde_json::to_value(d).unwrap_or_default();
                    v["id"] = d.id_proof().into();
                    v
                })
                .collect();
            Json(list).into_response()
        }
        Err(_) => unavailable(),
    }
}

async fn unpair(
    State(n): State<NodeHandle>,
    axum::extract::Path(device): axum::extract::Path<String>,
) -> Response {
    match n.unpair(&device).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, "no such paired device\n").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// How long pairing from the dashboard may take (the key agreement over a
/// slow link included).
const PAIR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Longest PIN `POST /api/pair` takes.
const MAX_PIN: usize = 64;

#[derive(serde::Deserialize)]
struct PairRequest {
    device_id: String,
    pin: zeroize::Zeroizing<String>,
}

/// `POST /api/pair {"device_id", "pin"}`: this node pairs with a device it has
/// discovered (hichain BIND with the device's PIN). 200 with the device, 404
/// when it is not known here, 403 when the key agreement fails (a wrong PIN,
/// or the device refusing more guesses), 504 when it does not finish.
async fn pair(State(n): State<NodeHandle>, Json(r): Json<PairRequest>) -> Response {
    // A device id is 64 hex digits; a PIN is short. Anything longer is not
    // one (and is not echoed back).
    if r.device_id.len() > 64 || r.pin.len() > MAX_PIN {
        return (
            StatusCode::BAD_REQUEST,
            format!("pair: device_id is at most 64 characters, pin at most {MAX_PIN} bytes\n"),
        )
            .into_response();
    }
    let d = match n.auth_target(&r.device_id).await {
        Ok(d) => d,
        Err(
            e @ softbus_runtime::Error::Node(
                softbus_runtime::NodeError::NotDiscovered(_)
                | softbus_runtime::NodeError::NoAuthPort { .. },
            ),
        ) => return (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
        Err(_) => return unavailable(),
    };
    let addr = d.addr;
    match tokio::time::timeout(PAIR_TIMEOUT, n.pair(addr, &r.pin)).await {
        Ok(Ok(p)) => Json(serde_json::json!({
            "device_id": p.peer.device_id,
            "name": p.peer.device_name,
            "ip": addr.ip().to_string(),
        }))
        .into_response(),
        Ok(Err(softbus_runtime::Error::Stopped)) => unavailable(),
        Ok(Err(e)) => (
            StatusCode::FORBIDDEN,
            format!("pairing with {} at {addr} failed: {e}\n", d.name),
        )
            .into_response(),
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "pairing with {} at {addr}: no answer within {} s\n",
                d.name,
                PAIR_TIMEOUT.as_secs()
            ),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize, Default)]
struct DiscoverRequest {
    /// Discovery ports to ask besides the broadcast address (`IP:PORT`).
    #[serde(default)]
    targets: Vec<std::net::SocketAddrV4>,
}

/// Most targets one `POST /api/discover` may name.
const MAX_DISCOVER_TARGETS: usize = 16;

/// The least time between two discovery starts from the web side.
pub const DISCOVER_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// When the web side last started discovery.
type DiscoverLimiter = std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>;

/// `POST /api/discover {"targets": ["IP:PORT", ...]}`: asks the network (and
/// the targets) who is there; answers arrive as `device_found` events. 202.
async fn discover(
    State(n): State<NodeHandle>,
    Extension(limiter): Extension<DiscoverLimiter>,
    body: axum::body::Bytes,
) -> Response {
    let r: DiscoverRequest = if body.is_empty() {
        DiscoverRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("discover: {e}\n")).into_response(),
        }
    };
    // The same target twice is asked once.
    let mut targets = Vec::new();
    for t in r.targets {
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    if targets.len() > MAX_DISCOVER_TARGETS {
        return (
            StatusCode::BAD_REQUEST,
            format!("discover: at most {MAX_DISCOVER_TARGETS} targets\n"),
        )
            .into_response();
    }
    // Each start sends 12 requests to each target (a restart begins the
    // fast part again): at most one start per DISCOVER_EVERY.
    let now = std::time::Instant::now();
    if let Ok(mut last) = limiter.lock() {
        if last.is_some_and(|t| now.saturating_duration_since(t) < DISCOVER_EVERY) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "discover: at most one start per second\n",
            )
                .into_response();
        }
        *last = Some(now);
    }
    match n.discover(targets).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => unavailable(),
    }
}

async fn events(State(n): State<NodeHandle>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // A slow viewer misses events (lagged) rather than holding memory. Each
    // event goes as its JSON line (the default event) and, for people, as a
    // `words` event.
    let s = futures_util::StreamExt::flat_map(
        BroadcastStream::new(n.subscribe()).filter_map(|e| e.ok()),
        |e| {
            tokio_stream::iter([
                Ok(Event::default().data(e.to_json())),
                Ok(Event::default().event("words").data(e.to_words())),
            ])
        },
    );
    Sse::new(s).keep_alive(KeepAlive::default())
}

/// The node's last events (words, JSON, time), for a dashboard that reloads.
async fn recent(State(n): State<NodeHandle>) -> Response {
    Json(n.recent_events()).into_response()
}

/// Largest offer accepted.
const MAX_OFFER: usize = 64 * 1024;

async fn rtc_offer(
    State(n): State<NodeHandle>,
    principal: Option<Extension<Principal>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let sdp = match sdp_body(&headers, &body) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let answered = match principal {
        Some(Extension(p)) => n
            .rtc_offer(sdp, p)
            .await
            .map(|(id, answer)| (id, answer, Vec::new())),
        None => {
            // A paired node: its device id and its signature over the offer's
            // DTLS fingerprint; we answer with ours.
            let device = headers
                .get(softbus_runtime::DEVICE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let Some(sig) = headers
                .get(softbus_runtime::SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|h| hex::decode(h).ok())
            else {
                return unauthorized();
            };
            match n.rtc_offer_paired(sdp, device, sig).await {
                Err(softbus_runtime::Error::Node(softbus_runtime::NodeError::BadSignature)) => {
                    return unauthorized()
                }
                r => r.map(|(id, answer, sig)| {
                    let own = n.info().device_id.clone();
                    (
                        id,
                        answer,
                        vec![
                            (softbus_runtime::DEVICE_HEADER, own),
                            (softbus_runtime::SIGNATURE_HEADER, hex::encode(sig)),
                        ],
                    )
                }),
            }
        }
    };
    match answered {
        Ok((id, answer, extra)) => {
            let etag = softbus_runtime::answer_etag(&answer);
            let mut resp = (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, "application/sdp".to_owned()),
                    (header::LOCATION, format!("/rtc/{id}")),
                ],
                answer,
            )
                .into_response();
            for (k, v) in extra {
                if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
                    resp.headers_mut().insert(k, v);
                }
            }
            add_ice_links(&mut resp, &n);
            add_etag(&mut resp, etag);
            resp
        }
        Err(softbus_runtime::Error::Node(reason)) => refused(&reason),
        Err(_) => unavailable(),
    }
}

/// An offer the node did not answer: the status its reason deserves (a full
/// node or stream is not the offer's fault: 503), and the reason as text.
fn refused(e: &softbus_runtime::NodeError) -> Response {
    use softbus_runtime::{HostError, MediaRefusal, NodeError, PeerError};
    let status = match e {
        NodeError::Media(MediaRefusal::NoSuchStream(_)) => StatusCode::NOT_FOUND,
        NodeError::Media(MediaRefusal::Busy(_)) => StatusCode::CONFLICT,
        NodeError::Media(
            MediaRefusal::TooManyStreams(_)
            | MediaRefusal::TooManyViewers(_)
            | MediaRefusal::TooManyViewersInAll(_),
        )
        | NodeError::Rtc(HostError::TooManyPeers(_)) => StatusCode::SERVICE_UNAVAILABLE,
        NodeError::Refused(_) => StatusCode::FORBIDDEN,
        // A viewer that takes none of the stream's formats would see nothing.
        NodeError::Rtc(HostError::Peer(PeerError::NoCommonFormat { .. })) => {
            StatusCode::NOT_ACCEPTABLE
        }
        _ => StatusCode::BAD_REQUEST,
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain".to_owned())],
        format!("{e}\n"),
    )
        .into_response()
}

/// `DELETE` of a peer connection by `by`: `done` if it was closed; another
/// credential's is as good as unknown (`404` saying `unknown`).
async fn close_as(
    n: &NodeHandle,
    id: u64,
    by: Principal,
    done: StatusCode,
    unknown: &'static str,
) -> Response {
    match n.rtc_close_as(id, by).await {
        Ok(true) => done.into_response(),
        Ok(false) | Err(softbus_runtime::Error::Node(softbus_runtime::NodeError::NotOwner)) => {
            (StatusCode::NOT_FOUND, unknown).into_response()
        }
        Err(softbus_runtime::Error::Node(e)) => {
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
        Err(_) => unavailable(),
    }
}

async fn rtc_close(
    State(n): State<NodeHandle>,
    Extension(by): Extension<Principal>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> Response {
    close_as(
        &n,
        id,
        by,
        StatusCode::NO_CONTENT,
        "no such peer connection\n",
    )
    .await
}

async fn streams(State(n): State<NodeHandle>) -> Response {
    match n.snapshot().await {
        Ok(s) => Json(s.streams).into_response(),
        Err(_) => unavailable(),
    }
}

/// The SDP offer in a request's body, or the status and reason refusing it.
fn sdp_body(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<String, (StatusCode, &'static str)> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("application/sdp") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/sdp\n",
        ));
    }
    if body.len() > MAX_OFFER {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "offer too large\n"));
    }
    String::from_utf8(body.to_vec()).map_err(|_| (StatusCode::BAD_REQUEST, "offer is not UTF-8\n"))
}

async fn whip(
    State(n): State<NodeHandle>,
    Extension(p): Extension<Principal>,
    axum::extract::Path(stream): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let sdp = match sdp_body(&headers, &body) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let mut resp = media_answer("whip", &stream, n.whip(stream.clone(), sdp, p).await);
    if resp.status() == StatusCode::CREATED {
        add_ice_links(&mut resp, &n);
    }
    resp
}

async fn whep(
    State(n): State<NodeHandle>,
    Extension(p): Extension<Principal>,
    axum::extract::Path(stream): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let sdp = match sdp_body(&headers, &body) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let mut resp = media_answer("whep", &stream, n.whep(stream.clone(), sdp, p).await);
    if resp.status() == StatusCode::CREATED {
        add_ice_links(&mut resp, &n);
    }
    resp
}

/// `GET /api/ice-servers`: the `iceServers` a page gives its
/// `RTCPeerConnection` (TURN credentials made fresh per request from
/// `--turn-secret`), and how each server is doing for this node.
async fn ice_servers(State(n): State<NodeHandle>) -> Response {
    let status = n.ice_status().await.unwrap_or_default();
    axum::Json(serde_json::json!({
        "ice_servers": n.ice_servers_for_browser(),
        "status": status.iter().map(|s| serde_json::json!({
            "url": s.url,
            "state": s.state,
            "address": s.address.map(|a| a.to_string()),
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// The ICE session's entity tag (RFC 9725 §4.3.1) on a 201.
fn add_etag(resp: &mut Response, etag: Option<String>) {
    if let Some(v) = etag.and_then(|e| axum::http::HeaderValue::from_str(&e).ok()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
}

/// The node's ICE servers as `Link: <…>; rel="ice-server"` headers of a 201
/// (RFC 9725 §4.6): a browser page needs no configuration of its own.
fn add_ice_links(resp: &mut Response, n: &NodeHandle) {
    for v in n.ice_links() {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            resp.headers_mut().append(header::LINK, v);
        }
    }
}

/// `201` with the answer and its `Location`, or the refusal with its status.
fn media_answer(
    kind: &str,
    stream: &str,
    r: Result<(softbus_runtime::PeerId, String), softbus_runtime::Error>,
) -> Response {
    match r {
        Ok((id, answer)) => {
            let etag = softbus_runtime::answer_etag(&answer);
            let mut resp = (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, "application/sdp".to_owned()),
                    (header::LOCATION, format!("/{kind}/{stream}/{id}")),
                ],
                answer,
            )
                .into_response();
            add_etag(&mut resp, etag);
            resp
        }
        Err(softbus_runtime::Error::Node(e)) => refused(&e),
        Err(_) => unavailable(),
    }
}

/// `DELETE /whip|whep/<stream>/<id>`: ends that publisher or viewer (`200`,
/// RFC 9725 §4.2); another credential's is as good as unknown (`404`).
async fn media_close(
    State(n): State<NodeHandle>,
    Extension(by): Extension<Principal>,
    axum::extract::Path((_stream, id)): axum::extract::Path<(String, u64)>,
) -> Response {
    close_as(&n, id, by, StatusCode::OK, "no such session\n").await
}

/// `PATCH` with trickled candidates (RFC 9725 §4.3) on a WHIP or WHEP session.
async fn media_patch(
    State(n): State<NodeHandle>,
    Extension(by): Extension<Principal>,
    axum::extract::Path((_stream, id)): axum::extract::Path<(String, u64)>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    trickle(&n, id, by, &headers, body).await
}

/// `PATCH /rtc/<id>` with trickled candidates, as for WHIP and WHEP.
async fn rtc_patch(
    State(n): State<NodeHandle>,
    Extension(by): Extension<Principal>,
    axum::extract::Path(id): axum::extract::Path<u64>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    trickle(&n, id, by, &headers, body).await
}

/// A `PATCH` (RFC 9725 §4.3, §4.4): trickled candidates (`204`, or `200`
/// with the node's own candidates as a fragment when it is a full ICE
/// agent), or an ICE restart with new credentials (`200` with the node's new
/// ones). Every answer carries the session's `ETag`; a restart needs
/// `If-Match` (`428` without), and a stale tag is refused (`412`).
async fn trickle(
    n: &NodeHandle,
    id: u64,
    by: Principal,
    headers: &axum::http::HeaderMap,
    body: String,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("application/trickle-ice-sdpfrag") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/trickle-ice-sdpfrag\n",
        )
            .into_response();
    }
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    use softbus_runtime::{HostError, NodeError, Patched};
    let frag_response = |etag: String, frag: Option<String>| {
        let mut r = match frag {
            Some(f) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/trickle-ice-sdpfrag")],
                f,
            )
                .into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        };
        if let Ok(v) = axum::http::HeaderValue::from_str(&etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        r
    };
    match n.rtc_patch(id, by, if_match, body).await {
        Ok(Patched::Trickled { fragment, etag }) => frag_response(etag, fragment),
        Ok(Patched::Restarted { fragment, etag }) => frag_response(etag, Some(fragment)),
        Err(softbus_runtime::Error::Node(NodeError::Rtc(e))) => {
            let status = match e {
                HostError::UnknownPeer => StatusCode::NOT_FOUND,
                HostError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
                HostError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
                _ => StatusCode::BAD_REQUEST,
            };
            let text = match e {
                HostError::UnknownPeer => "no such session\n".to_owned(),
                e => format!("{e}\n"),
            };
            (status, text).into_response()
        }
        Err(_) => unavailable(),
    }
}
