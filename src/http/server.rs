//! The accept loop: hyper connections with the limits `axum::serve` does not offer.
//!
//! - `HEADER_READ_TIMEOUT`: once a request's first byte has arrived (or the connection has
//!   opened), its headers must be complete within this; a slowloris client that never ends
//!   its headers is disconnected.
//! - `KEEP_ALIVE_TIMEOUT`: a connection idle between requests is closed after this.
//! - `MAX_CONNECTIONS`: connections served at once; beyond it new ones wait in the kernel's
//!   listen backlog instead of exhausting file descriptors.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection is idle, so it
//! cannot tell the two limits apart; both are enforced here from what the connection reads
//! and whether a request is in flight.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
    time::Instant,
};
use tower::ServiceExt;

use crate::{config::ServerLimits, http::middleware};

/// Largest request head hyper buffers, and the most headers it parses. Both sit above the
/// URI and header limits the middleware enforces (`http::middleware`), so a request just
/// over ours gets the JSON error shape with a request id; only one beyond these too, or one
/// hyper cannot parse at all, gets hyper's own empty 400/414/431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 2 * middleware::MAX_HEADER_COUNT;
const _: () =
    assert!(MAX_HEAD_BYTES >= 3 * (middleware::MAX_URI_BYTES + middleware::MAX_HEADER_BYTES) / 2);
const NONE: u64 = u64::MAX;

/// Serves `app` until `shutdown` resolves, then stops accepting, lets in-flight requests
/// finish and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(slots as usize));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let closing = closing_rx.clone();
        tokio::spawn(async move {
            metrics::gauge!("http_connections_open").increment(1);
            serve_connection(stream, peer, app, limits, closing).await;
            metrics::gauge!("http_connections_open").decrement(1);
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Every connection holds a permit until it is closed.
    let _ = permits.acquire_many(slots).await;
    Ok(())
}

/// Per-connection errors (a client resetting during the handshake) are not worth a pause;
/// running out of file descriptors is, or the loop would spin.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What a connection has been doing, as milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_io: AtomicU64,
    /// When the first byte of the request head now being read arrived (`NONE`: none yet).
    head_started: AtomicU64,
    in_flight: AtomicUsize,
    requests: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_io: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, limits: &ServerLimits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let header = limits.header_read_timeout.as_millis() as u64;
        match self.head_started.load(Ordering::Acquire) {
            NONE if self.requests.load(Ordering::Relaxed) == 0 => {
                (now >= header).then_some("header_timeout")
            }
            NONE => {
                let idle = now.saturating_sub(self.last_io.load(Ordering::Relaxed));
                (idle >= limits.keep_alive_timeout.as_millis() as u64).then_some("idle")
            }
            started => (now.saturating_sub(started) >= header).then_some("header_timeout"),
        }
    }
}

/// Marks a request in flight from the moment its head is parsed until its response is
/// handed back (or the handler is dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.head_started.store(NONE, Ordering::Release);
        a.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.wrote();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ServerLimits,
    mut closing: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = InFlight::start(&service_activity);
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let response = app.oneshot(req.map(Body::new)).await;
            drop(guard);
            response.map_err(|e: Infallible| match e {})
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    // HTTP/2's default header list limit (16 KiB) is below ours; raise it the same way.
    builder.http2().max_header_list_size(MAX_HEAD_BYTES as u32);
    let conn = builder.serve_connection(io, service);
    let mut conn = pin!(conn);
    let tick = (limits.header_read_timeout.min(limits.keep_alive_timeout) / 4)
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = ticker.tick() => {
                if let Some(reason) = activity.expired(&limits) {
                    metrics::counter!("http_connections_closed_total", "reason" => reason).increment(1);
                    tracing::debug!(%peer, reason, "closing a slow or idle connection");
                    return;
                }
            }
            changed = closing.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The socket, noting every read and write in the connection's activity.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
