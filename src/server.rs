//! Accept loops and connection serving, with a connection limit and graceful drain.
//!
//! One task per connection, served by hyper-util's auto builder: HTTP/1.1 with keep-alive,
//! and HTTP/2 cleartext for clients that open with the HTTP/2 preface (prior knowledge, as
//! `curl --http2-prior-knowledge` sends). Each connection is served by its own service,
//! [`Proxy::connection`], which keeps the connection's upstream connections for its
//! requests, and gets a span, [`telemetry::CONNECTION_SPAN`] at `debug`, with the client's
//! address ([`telemetry::CLIENT_ADDR`], TCP only) and the protocol its first request came in
//! ([`telemetry::HTTP_PROTOCOL`]: `http1` or `h2`): every request's span is its child. An
//! HTTP/1 connection with no request in flight for `limits.header_read_timeout` is closed
//! ([`Idle`]): that bounds slow-loris clients and idle keep-alive connections. At most
//! `limits.max_connections` connections are served at once: the accept loop waits for a
//! slot, so further clients queue in the kernel's backlog until one closes. On shutdown the
//! loop stops accepting, and in-flight requests get `server.shutdown_grace` to finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::proxy::Proxy;
use crate::telemetry;

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix domain socket, removed when dropped.
    Unix(UnixListener, PathBuf),
}

/// Connection-level settings.
#[derive(Clone, Debug)]
pub struct ConnSettings {
    /// `limits.max_connections`.
    pub max_connections: usize,
    /// `limits.max_header_bytes`: the HTTP/1 read buffer and HTTP/2 header list limit.
    pub max_header_bytes: usize,
    /// `limits.header_read_timeout`: how long an HTTP/1 connection may stay without a
    /// request in flight (idle, or sending a request's headers) before it is closed.
    pub header_read_timeout: Duration,
}

/// Whether a client connection has a request in flight, and since when it has had none: one
/// per connection, shared by its requests ([`Idle::busy`]) and its task, which closes the
/// connection once [`Idle::expired`] resolves.
///
/// hyper's own header read timeout arms a timer for every request (a boxed `Sleep`,
/// registered in the timer wheel and removed again). This costs a request two atomic
/// updates and a clock read, and a connection one timer, which wakes once per
/// `header_read_timeout` at most: about 1,000 fewer instructions per proxied GET of some
/// 38,400 (callgrind, `ZMP_BENCH_PARTS=instructions cargo bench --bench load`).
#[derive(Debug)]
pub struct Idle {
    opened: Instant,
    /// Requests in flight (one at a time on HTTP/1.1).
    in_flight: AtomicU32,
    /// When the last request ended, in milliseconds since `opened`.
    since_ms: AtomicU64,
    /// An HTTP/2 connection: never closed for idleness (its keep-alive pings find a dead
    /// peer, and a client may hold one open between bursts).
    multiplexed: AtomicBool,
}

/// A request in flight on its connection; ends it when dropped (with the response body, or
/// with the request when the client goes away first).
#[derive(Debug)]
pub struct Busy(Arc<Idle>);

// === impl Idle ===

impl Idle {
    /// A connection opened now, with no request yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            since_ms: AtomicU64::new(0),
            multiplexed: AtomicBool::new(false),
        })
    }

    /// A request of protocol `version` started: in flight until the returned guard drops.
    /// `None` for HTTP/2, whose connection this exempts from closing.
    pub fn busy(self: &Arc<Self>, version: http::Version) -> Option<Busy> {
        if version == http::Version::HTTP_2 {
            self.multiplexed.store(true, Ordering::Relaxed);
            return None;
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Busy(self.clone()))
    }

    /// Resolves once the connection has had no request in flight for `timeout`: since it
    /// opened, or since its last request ended. Never, for an HTTP/2 connection.
    pub async fn expired(&self, timeout: Duration) {
        let mut deadline = self.opened + timeout;
        loop {
            tokio::time::sleep_until(deadline).await;
            if self.multiplexed.load(Ordering::Relaxed) {
                return std::future::pending().await;
            }
            deadline = if self.in_flight.load(Ordering::Acquire) > 0 {
                Instant::now() + timeout
            } else {
                let since =
                    self.opened + Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
                if since + timeout <= Instant::now() {
                    return;
                }
                since + timeout
            };
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let idle = &*self.0;
        let ms = Instant::now()
            .saturating_duration_since(idle.opened)
            .as_millis();
        idle.since_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
        idle.in_flight.fetch_sub(1, Ordering::Release);
    }
}

// === impl Listener ===

impl Listener {
    /// The TCP address, if any.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// Where it listens, for logs.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string()),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves the proxy on `listener` until `shutdown` turns true, then drains for at most
/// `grace`. Returns whether every connection finished in time.
pub async fn serve(
    listener: Listener,
    proxy: Arc<Proxy>,
    settings: ConnSettings,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> bool {
    let builder = builder(&settings);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = accept(&listener) => accepted,
        };
        let Some((io, client)) = accepted else {
            continue;
        };
        let span = tracing::debug_span!(
            telemetry::CONNECTION_SPAN,
            { telemetry::CLIENT_ADDR } = client.map(tracing::field::display),
            { telemetry::HTTP_PROTOCOL } = tracing::field::Empty,
        );
        let idle = Idle::new();
        let service = proxy.connection(span.clone(), idle.clone());
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let watched = graceful.watch(connection);
        let timeout = settings.header_read_timeout;
        tokio::spawn(async move {
            tokio::select! {
                // The connection first: it is what wakes the task, nearly always.
                biased;
                ended = watched => if let Err(error) = ended {
                    tracing::debug!(parent: &span, error = %error, "connection ended with an error");
                },
                () = idle.expired(timeout) => {
                    tracing::debug!(parent: &span, "closing a connection without a request for limits.header_read_timeout");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    drain(graceful, grace).await
}

/// Waits up to `grace` for watched connections to finish their in-flight requests.
pub async fn drain(graceful: GracefulShutdown, grace: Duration) -> bool {
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => true,
        Err(_) => {
            tracing::warn!(
                grace_s = grace.as_secs_f32(),
                "graceful shutdown did not complete in time; closing remaining connections"
            );
            false
        }
    }
}

/// The connection builder: HTTP/1.1 keep-alive plus HTTP/2 prior knowledge.
///
/// HTTP/1 connections support half-closes: a client that shuts down its write side after
/// sending a request (`nc -N`, `shutdown(SHUT_WR)`) still gets the answer. Without it hyper
/// closes the connection as soon as it reads the end of the stream, and a request still
/// waiting for the upstream is answered to nobody.
pub fn builder(settings: &ConnSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // [`Idle`] instead: hyper's would arm a timer for every request.
        .header_read_timeout(None)
        .keep_alive(true)
        .half_close(true)
        .max_buf_size(settings.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(60)));
    builder
}

/// Accepts one connection, with the client's address when it came over TCP; transient
/// accept errors (too many open files) back off instead of spinning.
async fn accept(listener: &Listener) -> Option<(Box<dyn Io>, Option<SocketAddr>)> {
    let result: std::io::Result<(Box<dyn Io>, Option<SocketAddr>)> = match listener {
        Listener::Tcp(l) => l.accept().await.map(|(stream, client)| {
            let _ = stream.set_nodelay(true);
            (Box::new(stream) as Box<dyn Io>, Some(client))
        }),
        Listener::Unix(l, _) => l
            .accept()
            .await
            .map(|(stream, _)| (Box::new(stream) as Box<dyn Io>, None)),
    };
    match result {
        Ok(accepted) => Some(accepted),
        Err(error) => {
            tracing::warn!(error = %error, "accept failed; retrying shortly");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// A client connection of any kind.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Resolves when `rx` turns true (or its sender is gone).
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    /// Whether `expired` has resolved once the paused clock reaches `at` after `start`.
    async fn expired_by(
        expired: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        start: Instant,
        at: Duration,
    ) -> bool {
        tokio::select! {
            biased;
            () = expired.as_mut() => true,
            () = tokio::time::sleep_until(start + at) => false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_any_request_expires_one_timeout_after_it_opened() {
        let start = Instant::now();
        let idle = Idle::new();
        let mut expired = pin!(idle.expired(TIMEOUT));
        assert!(!expired_by(&mut expired, start, TIMEOUT - Duration::from_millis(1)).await);
        assert!(expired_by(&mut expired, start, TIMEOUT).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_holds_it_and_the_timeout_counts_from_its_end() {
        let start = Instant::now();
        let idle = Idle::new();
        let mut expired = pin!(idle.expired(TIMEOUT));
        assert!(!expired_by(&mut expired, start, Duration::from_secs(10)).await);
        // A request from 10 s to 100 s: three timeouts.
        let busy = idle.busy(http::Version::HTTP_11);
        assert!(busy.is_some());
        assert!(!expired_by(&mut expired, start, Duration::from_secs(100)).await);
        drop(busy);
        // Two at once (pipelined): busy until both end.
        let (a, b) = (
            idle.busy(http::Version::HTTP_11),
            idle.busy(http::Version::HTTP_10),
        );
        assert!(!expired_by(&mut expired, start, Duration::from_secs(110)).await);
        drop(a);
        assert!(!expired_by(&mut expired, start, Duration::from_secs(150)).await);
        drop(b);
        // Idle since 150 s.
        assert!(!expired_by(&mut expired, start, Duration::from_secs(179)).await);
        assert!(expired_by(&mut expired, start, Duration::from_secs(180)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_connection_never_expires() {
        let start = Instant::now();
        let idle = Idle::new();
        assert!(idle.busy(http::Version::HTTP_2).is_none());
        let mut expired = pin!(idle.expired(TIMEOUT));
        assert!(!expired_by(&mut expired, start, TIMEOUT * 10).await);
    }
}
