//! softbus_lite's C API over the softbus node: `discovery_service.h` and
//! `session.h` (in `include/`), so a program written for softbus_lite links
//! against `libsoftbus` unchanged.
//!
//! - The first successful `PublishService` starts one node in this process
//!   (the runtime of this project), configured from the `SOFTBUS_*`
//!   environment variables ([`config`]); the last `UnPublishService` stops it.
//! - Session servers are the node's servers in `ServerMode::App`; their events
//!   reach the `ISessionListener` callbacks on one library thread, one at a
//!   time, so a callback may call any function of the API (an echo server's
//!   `onBytesReceived` calls `SendBytes`).
//! - `onPublishSuccess` / `onPublishFail` run inside `PublishService`, before
//!   it returns, as in softbus_lite.
//! - Every pointer and length from C is checked; no panic crosses into C
//!   (each entry point returns its failure code instead).
//!
//! This is the only crate with more than one `unsafe` block: each reads or
//! writes memory C handed over, and says why that is sound.
// The workspace denies unsafe code; this crate is the C boundary.
#![allow(unsafe_code)]

pub mod config;

use softbus_runtime::{
    AppEvent, NodeHandle, PublishInfo as RustPublishInfo, ServerMode, SessionId,
};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uchar, c_uint, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// `ExchangeMedium`, `ExchangeFreq`, `PublishFailReason` and `CommonDeviceKey`
/// are C enums: `int`.
pub type CEnum = c_int;

/// `struct PublishInfo`.
#[repr(C)]
#[derive(Debug)]
#[allow(non_snake_case)]
pub struct PublishInfo {
    pub publishId: c_int,
    pub mode: c_int,
    pub medium: CEnum,
    pub freq: CEnum,
    pub capability: *const c_char,
    pub capabilityData: *mut c_uchar,
    pub dataLen: c_uint,
}

/// `struct IPublishCallback`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_snake_case)]
pub struct IPublishCallback {
    pub onPublishSuccess: Option<extern "C" fn(c_int)>,
    pub onPublishFail: Option<extern "C" fn(c_int, CEnum)>,
}

/// `struct CommonDeviceInfo`.
#[repr(C)]
#[derive(Debug)]
pub struct CommonDeviceInfo {
    pub key: CEnum,
    pub value: *const c_char,
}

/// `struct ISessionListener`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_snake_case)]
pub struct ISessionListener {
    pub onSessionOpened: Option<extern "C" fn(c_int) -> c_int>,
    pub onSessionClosed: Option<extern "C" fn(c_int)>,
    pub onBytesReceived: Option<extern "C" fn(c_int, *const c_void, c_uint)>,
}

/// Discovery return codes (`discovery_error.h`).
pub const ERROR_SUCCESS: c_int = 0;
pub const ERROR_FAIL: c_int = -1;
pub const ERROR_INVALID: c_int = -2;
pub const ERROR_NONEXIST: c_int = -3;
/// `PublishFailReason`.
pub const PUBLISH_FAIL_REASON_PARAMETER_INVALID: CEnum = 2;
pub const PUBLISH_FAIL_REASON_UNKNOWN: CEnum = 0xFF;
/// Names (module, session) are shorter than this.
pub const NAME_MAX: usize = 64;
/// `SendBytes` payloads are 1..=this.
pub const SEND_BYTES_MAX: usize = 4048;
/// `SetCommonDeviceInfo` values are shorter than this.
const VALUE_MAX: usize = 96;

/// The node this process runs, once something is published.
struct Running {
    node: softbus_runtime::NodeTask,
    handle: NodeHandle,
    rt: tokio::runtime::Runtime,
    /// Tells the callback thread to end.
    stop: Arc<std::sync::atomic::AtomicBool>,
    callbacks: Option<std::thread::JoinHandle<()>>,
    callback_thread: std::thread::ThreadId,
}

#[derive(Default)]
struct Lib {
    running: Option<Running>,
    /// Session servers and their listeners.
    servers: HashMap<String, ISessionListener>,
    /// Open sessions and the listener they were opened under (kept after
    /// their server is removed, for onSessionClosed).
    sessions: HashMap<SessionId, ISessionListener>,
    /// Services published now.
    published: usize,
}

static LIB: Mutex<Option<Lib>> = Mutex::new(None);

fn lib() -> MutexGuard<'static, Option<Lib>> {
    // A poisoned lock only means a panic was caught while it was held; the
    // tables stay consistent (every change is one insert or remove).
    LIB.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f`, turning a panic into `fail`: no unwinding crosses into C.
fn guard<T>(fail: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fail)
}

/// Reads a C string of fewer than `max` bytes (at most `max` bytes are read);
/// `None` for NULL, too long, or not UTF-8.
fn c_str(p: *const c_char, max: usize) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let mut bytes = Vec::new();
    for i in 0..max {
        // SAFETY: `p` is non-null and the caller passes a NUL-terminated
        // string; the loop stops at its NUL and never reads more than `max`
        // bytes, so it reads only the string itself (or, for a string that is
        // too long, its first `max` bytes).
        let b = unsafe { *p.add(i) } as u8;
        if b == 0 {
            return String::from_utf8(bytes).ok();
        }
        bytes.push(b);
    }
    None
}

/// Copies `s` NUL-terminated into `buf[len]`; -1 if it does not fit.
fn copy_out(s: &str, buf: *mut c_char, len: c_uint) -> c_int {
    if buf.is_null() || s.len() + 1 > len as usize {
        return -1;
    }
    // SAFETY: `buf` is non-null and the caller gives `len` writable bytes;
    // `s.len() + 1 <= len` bytes are written.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        *buf.add(s.len()) = 0;
    }
    0
}

fn handle() -> Option<(NodeHandle, tokio::runtime::Handle)> {
    lib()
        .as_ref()
        .and_then(|l| l.running.as_ref())
        .map(|r| (r.handle.clone(), r.rt.handle().clone()))
}

fn publish_result(cb: IPublishCallback, id: c_int, r: Result<(), (CEnum, c_int)>) -> c_int {
    match r {
        Ok(()) => {
            if let Some(f) = cb.onPublishSuccess {
                f(id);
            }
            ERROR_SUCCESS
        }
        Err((reason, code)) => {
            if let Some(f) = cb.onPublishFail {
                f(id, reason);
            }
            code
        }
    }
}

/// `int PublishService(const char *moduleName, const struct PublishInfo *info,
/// const struct IPublishCallback *cb)`.
///
/// # Safety
///
/// Each pointer is NULL or points to a valid object of its type (a string
/// NUL-terminated, `capabilityData` holding `dataLen` bytes) for the call.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn PublishService(
    moduleName: *const c_char,
    info: *const PublishInfo,
    cb: *const IPublishCallback,
) -> c_int {
    guard(ERROR_FAIL, || {
        if info.is_null() || cb.is_null() {
            return ERROR_INVALID;
        }
        // SAFETY: both are non-null and point to the caller's structs for
        // the duration of the call; they are copied, never kept.
        let (info, cb) = unsafe { (&*info, *cb) };
        let module = c_str(moduleName, NAME_MAX);
        let data = if info.capabilityData.is_null() || info.dataLen == 0 {
            Vec::new()
        } else if info.dataLen as usize > 2 {
            // Over the limit: the checks below refuse it; nothing is read, and
            // nothing of the claimed size is allocated.
            vec![0; 3]
        } else {
            // SAFETY: non-null, and `dataLen` (1 or 2) bytes are read, which
            // the caller says it holds.
            unsafe { std::slice::from_raw_parts(info.capabilityData, info.dataLen as usize) }
                .to_vec()
        };
        let p = RustPublishInfo {
            publish_id: info.publishId,
            mode: info.mode,
            medium: info.medium,
            freq: info.freq,
            capability: c_str(info.capability, 32),
            capability_data: data,
        };
        // softbus_lite's checks that need no node first (same order, same codes).
        if let Err(e) =
            softbus_runtime::wire::Publications::check_args(module.as_deref(), &p, false)
        {
            return publish_result(cb, info.publishId, Err((e.reason as CEnum, e.code)));
        }
        let r = match ensure_running() {
            Ok((h, rt)) => match rt.block_on(h.publish(module.as_deref(), p)) {
                Ok(()) => Ok(()),
                Err(softbus_runtime::Error::Publish(e)) => Err((e.reason as CEnum, e.code)),
                Err(_) => Err((PUBLISH_FAIL_REASON_UNKNOWN, ERROR_FAIL)),
            },
            Err(e) => {
                eprintln!("softbus: cannot start the node: {e}");
                Err((PUBLISH_FAIL_REASON_UNKNOWN, ERROR_FAIL))
            }
        };
        let ok = r.is_ok();
        if let Some(l) = lib().as_mut() {
            l.published += usize::from(ok);
        }
        if !ok {
            // A first publish that failed leaves no node behind.
            stop_if_idle();
        }
        publish_result(cb, info.publishId, r)
    })
}

/// `int UnPublishService(const char *moduleName, int publishId)`.
///
/// # Safety
///
/// `moduleName` is NULL or NUL-terminated.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn UnPublishService(moduleName: *const c_char, publishId: c_int) -> c_int {
    guard(ERROR_FAIL, || {
        let module = c_str(moduleName, NAME_MAX);
        let Some((h, rt)) = handle() else {
            // Nothing ever published (or already stopped).
            return ERROR_INVALID;
        };
        match rt.block_on(h.unpublish(module.as_deref(), publishId)) {
            Ok(last) => {
                if let Some(l) = lib().as_mut() {
                    l.published = l.published.saturating_sub(1);
                }
                if last {
                    stop();
                }
                ERROR_SUCCESS
            }
            Err(softbus_runtime::Error::Discovery(e)) => e.code(),
            Err(_) => ERROR_FAIL,
        }
    })
}

/// `int SetCommonDeviceInfo(const struct CommonDeviceInfo *devInfo, unsigned int num)`.
///
/// # Safety
///
/// `devInfo` is NULL or points to `num` entries whose values are NULL or
/// NUL-terminated strings, for the call.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn SetCommonDeviceInfo(
    devInfo: *const CommonDeviceInfo,
    num: c_uint,
) -> c_int {
    guard(ERROR_FAIL, || {
        if devInfo.is_null() || num == 0 || num > 3 {
            return ERROR_FAIL;
        }
        // SAFETY: non-null, and the caller passes an array of `num` (1..=3)
        // entries; they are copied, never kept.
        let entries = unsafe { std::slice::from_raw_parts(devInfo, num as usize) };
        let mut copied = Vec::new();
        for e in entries {
            let Some(v) = c_str(e.value, VALUE_MAX) else {
                return ERROR_FAIL;
            };
            copied.push((e.key, v));
        }
        let Some((h, rt)) = handle() else {
            // Only after the first PublishService, as in softbus_lite.
            return ERROR_FAIL;
        };
        match rt.block_on(h.set_common_device_info(copied)) {
            Ok(()) => ERROR_SUCCESS,
            Err(softbus_runtime::Error::Discovery(e)) => e.code(),
            Err(_) => ERROR_FAIL,
        }
    })
}

/// `int CreateSessionServer(const char *mouduleName, const char *sessionName,
/// struct ISessionListener *listener)`.
///
/// # Safety
///
/// The names are NULL or NUL-terminated; `listener` is NULL or points to a
/// listener (its function pointers are copied during the call).
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn CreateSessionServer(
    mouduleName: *const c_char,
    sessionName: *const c_char,
    listener: *mut ISessionListener,
) -> c_int {
    guard(-1, || {
        let (Some(_module), Some(name)) =
            (c_str(mouduleName, NAME_MAX), c_str(sessionName, NAME_MAX))
        else {
            return -1;
        };
        if listener.is_null() || name.is_empty() {
            return -1;
        }
        // SAFETY: non-null; the listener's function pointers are copied now,
        // so the caller's struct need not outlive the call.
        let listener = unsafe { *listener };
        let Some((h, rt)) = handle() else {
            return -1;
        };
        match rt.block_on(h.create_session_server(&name, ServerMode::App)) {
            Ok(()) => {
                if let Some(l) = lib().as_mut() {
                    l.servers.insert(name, listener);
                }
                0
            }
            Err(e) => {
                tracing::debug!(error = %e, "CreateSessionServer refused");
                -1
            }
        }
    })
}

/// `int RemoveSessionServer(const char *mouduleName, const char *sessionName)`.
///
/// # Safety
///
/// The names are NULL or NUL-terminated.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn RemoveSessionServer(
    mouduleName: *const c_char,
    sessionName: *const c_char,
) -> c_int {
    guard(-1, || {
        let (Some(_module), Some(name)) =
            (c_str(mouduleName, NAME_MAX), c_str(sessionName, NAME_MAX))
        else {
            return -1;
        };
        let Some((h, rt)) = handle() else {
            return -1;
        };
        match rt.block_on(h.remove_session_server(&name)) {
            Ok(()) => {
                if let Some(l) = lib().as_mut() {
                    l.servers.remove(&name);
                }
                0
            }
            Err(_) => -1,
        }
    })
}

/// `int SendBytes(int sessionId, const void *data, unsigned int len)`.
///
/// # Safety
///
/// `data` is NULL or holds `len` readable bytes, for the call.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn SendBytes(sessionId: c_int, data: *const c_void, len: c_uint) -> c_int {
    guard(-1, || {
        if data.is_null() || len == 0 || len as usize > SEND_BYTES_MAX {
            return -1;
        }
        // SAFETY: non-null, and the caller holds `len` (1..=4048) readable
        // bytes at `data`; they are copied before the call returns.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len as usize) }.to_vec();
        let Some((h, rt)) = handle() else {
            return -1;
        };
        match rt.block_on(h.send_bytes(SessionId(sessionId), bytes)) {
            Ok(()) => 0,
            Err(_) => -1,
        }
    })
}

fn session_field(
    id: c_int,
    f: impl FnOnce(&softbus_runtime::SessionInfo) -> String,
) -> Option<String> {
    let (h, rt) = handle()?;
    let info = rt.block_on(h.session(SessionId(id))).ok()??;
    Some(f(&info))
}

/// `int GetMySessionName(int sessionId, char *sessionName, unsigned int len)`.
///
/// # Safety
///
/// `sessionName` is NULL or holds `len` writable bytes.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn GetMySessionName(
    sessionId: c_int,
    sessionName: *mut c_char,
    len: c_uint,
) -> c_int {
    guard(-1, || {
        match session_field(sessionId, |i| i.session.clone()) {
            Some(name) => copy_out(&name, sessionName, len),
            None => -1,
        }
    })
}

/// `int GetPeerSessionName(int sessionId, char *sessionName, unsigned int len)`:
/// the same name (softbus_lite: "peer session name equal to my session name").
///
/// # Safety
///
/// `sessionName` is NULL or holds `len` writable bytes.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn GetPeerSessionName(
    sessionId: c_int,
    sessionName: *mut c_char,
    len: c_uint,
) -> c_int {
    // SAFETY: the same contract as this function's.
    unsafe { GetMySessionName(sessionId, sessionName, len) }
}

/// `int GetPeerDeviceId(int sessionId, char *devId, unsigned int len)`.
///
/// # Safety
///
/// `devId` is NULL or holds `len` writable bytes.
#[no_mangle]
#[allow(non_snake_case)]
pub unsafe extern "C" fn GetPeerDeviceId(
    sessionId: c_int,
    devId: *mut c_char,
    len: c_uint,
) -> c_int {
    guard(-1, || {
        match session_field(sessionId, |i| i.peer_device_id.clone()) {
            Some(id) => copy_out(&id, devId, len),
            None => -1,
        }
    })
}

/// `void CloseSession(int sessionId)`.
#[no_mangle]
#[allow(non_snake_case)]
pub extern "C" fn CloseSession(sessionId: c_int) {
    guard((), || {
        if let Some((h, rt)) = handle() {
            let _ = rt.block_on(h.close_session(SessionId(sessionId)));
        }
    });
}

/// Starts the node on first use: config, runtime, node, web side, callback thread.
fn ensure_running() -> Result<(NodeHandle, tokio::runtime::Handle), String> {
    let mut g = lib();
    let l = g.get_or_insert_with(Lib::default);
    if let Some(r) = &l.running {
        return Ok((r.handle.clone(), r.rt.handle().clone()));
    }
    init_logging();
    let cfg = config::from_env(|k| std::env::var(k).ok())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("softbus-capi")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let node = rt
        .block_on(softbus_runtime::NodeTask::start(cfg.node.clone()))
        .map_err(|e| e.to_string())?;
    let handle = node.handle();
    if let Some(addr) = cfg.web {
        config::start_web(&rt, &handle, addr, &cfg)?;
    }
    let events = rt
        .block_on(handle.app_events())
        .map_err(|e| e.to_string())?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::Builder::new()
        .name("softbus-callbacks".into())
        .spawn(move || callback_loop(&events, &s))
        .map_err(|e| e.to_string())?;
    let id = thread.thread().id();
    let out = (handle.clone(), rt.handle().clone());
    l.running = Some(Running {
        node,
        handle,
        rt,
        stop,
        callbacks: Some(thread),
        callback_thread: id,
    });
    Ok(out)
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOFTBUS_LOG")
                .unwrap_or_else(|_| "warn,sctp_proto=off".into()),
        )
        .try_init();
}

/// Stops the node if nothing is published (a failed first publish).
fn stop_if_idle() {
    let idle = lib().as_ref().is_some_and(|l| l.published == 0);
    if idle {
        stop();
    }
}

/// Stops the node and the callback thread; session servers are forgotten.
fn stop() {
    let running = {
        let mut g = lib();
        let Some(l) = g.as_mut() else { return };
        l.servers.clear();
        l.sessions.clear();
        l.running.take()
    };
    let Some(mut r) = running else { return };
    r.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    r.rt.block_on(r.node.shutdown());
    // From inside a callback the thread ends by itself after it returns.
    if std::thread::current().id() != r.callback_thread {
        if let Some(t) = r.callbacks.take() {
            let _ = t.join();
        }
    }
    r.rt.shutdown_timeout(Duration::from_secs(2));
}

/// The library thread: one event at a time, the lock never held during a callback.
fn callback_loop(
    events: &std::sync::mpsc::Receiver<AppEvent>,
    stop: &std::sync::atomic::AtomicBool,
) {
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let e = match events.recv_timeout(Duration::from_millis(100)) {
            Ok(e) => e,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let _ = catch_unwind(AssertUnwindSafe(|| dispatch(e)));
    }
}

fn dispatch(e: AppEvent) {
    match e {
        AppEvent::Opened(info) => {
            let listener = {
                let mut g = lib();
                let Some(l) = g.as_mut() else { return };
                let Some(listener) = l.servers.get(&info.session).copied() else {
                    return;
                };
                l.sessions.insert(info.session_id, listener);
                listener
            };
            let keep = listener.onSessionOpened.map_or(0, |f| f(info.session_id.0));
            if keep != 0 {
                CloseSession(info.session_id.0);
            }
        }
        AppEvent::Bytes { session, data } => {
            let listener = lib()
                .as_ref()
                .and_then(|l| l.sessions.get(&session).copied());
            if let Some(f) = listener.and_then(|l| l.onBytesReceived) {
                f(session.0, data.as_ptr().cast(), data.len() as c_uint);
            }
        }
        AppEvent::Closed { session } => {
            let listener = lib().as_mut().and_then(|l| l.sessions.remove(&session));
            if let Some(f) = listener.and_then(|l| l.onSessionClosed) {
                f(session.0);
            }
        }
    }
}
