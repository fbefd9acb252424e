//! Serving: connections and their bounds (the header and body deadlines, the
//! per-address cap, the share of the slots connections without a credential
//! may hold).

use crate::{router_within, WebAccess, WebToken};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use softbus_runtime::NodeHandle;

/// Bounds of the HTTP side, so slow or many clients cannot hold the node.
#[derive(Debug, Clone, Copy)]
pub struct WebLimits {
    /// A request's headers must arrive within this (also the idle time between
    /// requests on a kept-alive connection).
    pub header_timeout: std::time::Duration,
    /// A request's whole body must arrive within this once its credential
    /// was checked (a body is read only after that check).
    pub body_timeout: std::time::Duration,
    /// HTTP connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// HTTP connections from one address at once; more are closed as they
    /// arrive, so a few addresses cannot take every slot.
    pub max_per_address: usize,
}

impl Default for WebLimits {
    fn default() -> Self {
        Self {
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(5),
            max_connections: 256,
            max_per_address: 32,
        }
    }
}

/// Largest request body (what axum's extractors take by default).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Reads a request's whole body (at most [`MAX_BODY`]) within the deadline
/// before the handler runs: a slow body costs its sender the connection
/// (`408`, closed), not a slot for as long as it likes.
pub(crate) async fn read_body_within(
    State(deadline): State<std::time::Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("a request body is at most {MAX_BODY} bytes\n"),
        )
            .into_response()
    };
    // A declared length over the bound is refused before any of it is awaited.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Ok(Err(_)) => too_large(),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            format!(
                "the request's body did not arrive within {} s\n",
                deadline.as_secs_f32()
            ),
        )
            .into_response(),
    }
}

/// Serves the node on `listener` with the default [`WebLimits`], letting in
/// only `token`, until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: NodeHandle,
    token: WebToken,
) -> std::io::Result<()> {
    serve_with(
        listener,
        node,
        WebLimits::default(),
        WebAccess::with_token(token),
    )
    .await
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
    let app = router_within(node, listener.local_addr()?, &access, limits.body_timeout);
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let per_address: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    > = Default::default();
    // A quarter of the slots (at least one) is never held by connections that
    // have not shown a credential: past that, the oldest of them gives way.
    let unproven_cap = limits
        .max_connections
        .saturating_sub((limits.max_connections / 4).max(1))
        .max(1);
    let unproven: std::sync::Arc<std::sync::Mutex<Unproven>> = Default::default();
    let mut next_id = 0u64;
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
        let Some(from_here) = AddressSlot::take(&per_address, peer.ip(), limits.max_per_address)
        else {
            tracing::debug!(%peer, "HTTP connections of this address at their limit; closed");
            continue;
        };
        next_id += 1;
        let tag = ConnTag {
            id: next_id,
            unproven: unproven.clone(),
        };
        let evicted = tag.register(unproven_cap);
        let slots = slots.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _from_here = from_here;
            // Room is made by evicting the oldest unproven connection; its slot
            // comes free as its task ends.
            let permit = match slots.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => tokio::time::timeout(EVICTION_WAIT, slots.acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok),
            };
            let Some(permit) = permit else {
                tracing::debug!(%peer, "HTTP connection limit reached; closed");
                tag.forget();
                return;
            };
            let per_request = tag.clone();
            let svc = tower::service_fn(
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(per_request.clone());
                    tower::ServiceExt::oneshot(app.clone(), req)
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(
                    TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(svc),
                );
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                },
                () = evicted.notified() => {
                    tracing::debug!(%peer, "HTTP connection without a credential gave way");
                }
            }
            tag.forget();
            drop(permit);
        });
    }
}

/// How long a new connection waits for the slot of the one it evicted.
const EVICTION_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Connections that have not shown a credential yet, oldest first.
#[derive(Default)]
struct Unproven {
    list: std::collections::VecDeque<(u64, std::sync::Arc<tokio::sync::Notify>)>,
}

/// A connection's place in [`Unproven`], carried by its requests so the
/// credential check can take it out (it is then never evicted).
#[derive(Clone)]
pub(crate) struct ConnTag {
    id: u64,
    unproven: std::sync::Arc<std::sync::Mutex<Unproven>>,
}

impl ConnTag {
    /// Enters the connection as unproven; with `cap` there already, the oldest
    /// is told to give way. Returns what tells this one.
    fn register(&self, cap: usize) -> std::sync::Arc<tokio::sync::Notify> {
        let notify = std::sync::Arc::new(tokio::sync::Notify::new());
        if let Ok(mut u) = self.unproven.lock() {
            while u.list.len() >= cap {
                match u.list.pop_front() {
                    Some((_, oldest)) => oldest.notify_one(),
                    None => break,
                }
            }
            u.list.push_back((self.id, notify.clone()));
        }
        notify
    }

    /// The connection showed a credential, or ended: it is no longer unproven.
    pub(crate) fn forget(&self) {
        if let Ok(mut u) = self.unproven.lock() {
            u.list.retain(|(id, _)| *id != self.id);
        }
    }
}

/// One connection counted against its address; the count drops with it.
struct AddressSlot {
    counts: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl AddressSlot {
    /// Counts a connection from `ip`, unless `max` are open from there.
    fn take(
        counts: &std::sync::Arc<
            std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
        >,
        ip: std::net::IpAddr,
        max: usize,
    ) -> Option<Self> {
        let mut c = counts.lock().ok()?;
        let n = c.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Self {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut c) = self.counts.lock() {
            if let Some(n) = c.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    c.remove(&self.ip);
                }
            }
        }
    }
}
