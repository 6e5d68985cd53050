//! HTTP/2 to the upstream: as many multiplexed connections as the streams in flight need.
//!
//! A server caps the concurrent streams of one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`,
//! often 100–128); past that, a client can only queue requests on that connection. The pool
//! sends each new stream on the least loaded connection that is below its server's limit,
//! opens another connection when every open one is at its limit (up to
//! `upstream.max_h2_connections`; at the cap, streams queue on the least loaded), and closes
//! extra connections that stay idle for `upstream.idle_timeout` (the first one stays: it keeps
//! itself alive with pings). A stream counts from its request until its response body has
//! been read or dropped: the [`StreamSlot`] travels in the response body.
//!
//! A new connection is used once the server's first `SETTINGS` frame has told its limit (the
//! client starts with a limit of zero, so nothing is sent before). A connection that received
//! `GOAWAY`, or failed, takes no new stream and leaves the pool; its streams in progress
//! finish. What a server refused without processing it (streams beyond the `GOAWAY`'s last
//! stream id, `REFUSED_STREAM`) may be sent again on another connection, whatever the
//! method: [`not_processed`] tells, and `Upstream::send_h2` decides.
//!
//! The request path loads the connection list atomically and reserves a stream with one
//! atomic add: no lock. Opening a connection is serialised (a waiting request may find that
//! the connection opened meanwhile has room).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::UpstreamIo;
use super::body::{BoxError, RequestBody};
use crate::telemetry::error_chain;

/// The HTTP/2 connections to one upstream.
pub(super) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    /// The open connections, oldest first. Replaced whole (rarely); loaded per request.
    conns: ArcSwap<Vec<Arc<Conn>>>,
    /// Serialises opening, adopting and closing connections (never sending on one).
    changing: tokio::sync::Mutex<()>,
    /// `upstream.max_h2_connections`.
    max: usize,
    /// `upstream.idle_timeout`: an extra connection idle this long is closed.
    idle: Duration,
    /// How long a new connection may take to tell its stream limit.
    settle: Duration,
    /// Whether the reaper task runs (it stops when only the first connection is left).
    reaping: AtomicBool,
    /// The zero of [`Conn::idle_since`].
    epoch: Instant,
}

/// One HTTP/2 connection of the pool.
pub(super) struct Conn {
    sender: http2::SendRequest<RequestBody>,
    /// The server's current `SETTINGS_MAX_CONCURRENT_STREAMS` (0 until its first SETTINGS),
    /// published by the connection's driver.
    limit: Arc<Limit>,
    /// Streams reserved and not finished.
    in_flight: AtomicUsize,
    /// Milliseconds after the pool's epoch when `in_flight` last fell to zero.
    idle_since: AtomicU64,
    /// `GOAWAY` received, or a request failed on it: no new streams.
    draining: AtomicBool,
}

/// The server's stream limit, as the connection's driver last saw it.
struct Limit {
    value: AtomicUsize,
    changed: Notify,
}

/// A stream's place on a connection, held until the response body is read or dropped.
pub(super) struct StreamSlot {
    conn: Arc<Conn>,
    epoch: Instant,
}

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSlot")
            .field("in_flight", &self.conn.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

// === impl Pool ===

impl Pool {
    /// An empty pool of at most `max` connections (at least one).
    pub(super) fn new(max: usize, idle: Duration, settle: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                conns: ArcSwap::from_pointee(Vec::new()),
                changing: tokio::sync::Mutex::new(()),
                max: max.max(1),
                idle,
                settle,
                reaping: AtomicBool::new(false),
                epoch: Instant::now(),
            }),
        }
    }

    /// A sender and a reserved stream on a connection with room, opening one with `open`
    /// when none has room and the pool is below its cap.
    pub(super) async fn stream<F, Fut>(
        &self,
        open: F,
    ) -> Result<(http2::SendRequest<RequestBody>, StreamSlot), BoxError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<UpstreamIo, BoxError>>,
    {
        if let Some(found) = self.shared.reserve() {
            return Ok(found);
        }
        let _changing = self.shared.changing.lock().await;
        // A connection opened (or a stream finished) while this request waited.
        if let Some(found) = self.shared.reserve() {
            return Ok(found);
        }
        self.shared.prune();
        if self.shared.conns.load().len() >= self.shared.max {
            // At the cap: queue on the least loaded connection.
            if let Some(found) = self.shared.reserve_over_limit() {
                return Ok(found);
            }
        }
        let io = open().await?;
        let conn = self.handshake(io).await?;
        Ok(self.shared.add(conn))
    }

    /// Makes `io`, on which the upstream chose HTTP/2 by ALPN, a connection of the pool, or
    /// closes it when the pool is at its cap.
    pub(super) async fn adopt(&self, io: UpstreamIo) -> Result<(), BoxError> {
        let _changing = self.shared.changing.lock().await;
        self.shared.prune();
        if self.shared.conns.load().len() >= self.shared.max {
            return Ok(());
        }
        let conn = self.handshake(io).await?;
        let (_, slot) = self.shared.add(conn);
        drop(slot);
        Ok(())
    }

    /// The HTTP/2 handshake; returns once the server has told its stream limit.
    async fn handshake(&self, io: UpstreamIo) -> Result<Arc<Conn>, BoxError> {
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(60)))
            // Nothing is sent before the server's SETTINGS: then the pool knows its limit.
            .initial_max_send_streams(0)
            // Boxed: hyper spawns every request's response future as a task of the same type
            // as the connection's, as large as its largest kind, the connection with its IO
            // (1,104 bytes of TLS state inline). Boxed: 2.6 % fewer instructions per request
            // over HTTP/2 (callgrind during the bench's `tls` part, memcpy 18.0 → 16.0 %).
            .handshake(Box::new(io))
            .await?;
        let limit = Arc::new(Limit {
            value: AtomicUsize::new(0),
            changed: Notify::new(),
        });
        drive(connection, limit.clone(), self.shared.settle);
        let deadline = Instant::now() + self.shared.settle;
        loop {
            let changed = limit.changed.notified();
            let mut changed = pin!(changed);
            changed.as_mut().enable();
            if limit.value.load(Ordering::Acquire) > 0 {
                break;
            }
            if sender.is_closed() {
                return Err(
                    "the upstream closed the HTTP/2 connection during its handshake".into(),
                );
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err("the upstream sent no HTTP/2 SETTINGS allowing a stream".into());
            }
        }
        Ok(Arc::new(Conn {
            sender,
            limit,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.shared.now_ms()),
            draining: AtomicBool::new(false),
        }))
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("connections", &self.shared.conns.load().len())
            .field("max", &self.shared.max)
            .finish()
    }
}

// === impl Shared ===

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A stream on the least loaded usable connection below its limit.
    fn reserve(&self) -> Option<(http2::SendRequest<RequestBody>, StreamSlot)> {
        let conns = self.conns.load();
        // Reserving can lose a race for the last stream of a connection: try the others.
        for _ in 0..conns.len() {
            let conn = conns
                .iter()
                .filter(|c| c.usable() && c.has_room())
                .min_by_key(|c| c.in_flight.load(Ordering::Relaxed))?;
            if let Some(slot) = conn.try_reserve(self.epoch) {
                return Some((conn.sender.clone(), slot));
            }
        }
        None
    }

    /// A stream on the least loaded usable connection, over its limit (the stream waits in
    /// that connection's queue).
    fn reserve_over_limit(&self) -> Option<(http2::SendRequest<RequestBody>, StreamSlot)> {
        let conns = self.conns.load();
        let conn = conns
            .iter()
            .filter(|c| c.usable())
            .min_by_key(|c| c.in_flight.load(Ordering::Relaxed))?;
        Some((conn.sender.clone(), conn.reserve(self.epoch)))
    }

    /// Adds `conn` to the pool with one stream reserved on it. Called with `changing` held.
    fn add(self: &Arc<Self>, conn: Arc<Conn>) -> (http2::SendRequest<RequestBody>, StreamSlot) {
        let found = (conn.sender.clone(), conn.reserve(self.epoch));
        let mut conns = Vec::clone(&self.conns.load());
        conns.push(conn);
        let extra = conns.len() > 1;
        self.conns.store(Arc::new(conns));
        if extra && !self.reaping.swap(true, Ordering::AcqRel) {
            tokio::spawn(reap(Arc::downgrade(self)));
        }
        found
    }

    /// Drops the connections that take no new streams. Called with `changing` held.
    fn prune(&self) {
        let conns = self.conns.load();
        if conns.iter().all(|c| c.usable()) {
            return;
        }
        let kept: Vec<Arc<Conn>> = conns.iter().filter(|c| c.usable()).cloned().collect();
        self.conns.store(Arc::new(kept));
    }

    /// Closes the extra connections idle for `idle`; whether extra ones are left.
    fn close_idle(&self) -> bool {
        let now = self.now_ms();
        let idle = u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX);
        let conns = self.conns.load();
        let kept: Vec<Arc<Conn>> = conns
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                c.usable()
                    && (*i == 0
                        || c.in_flight.load(Ordering::Acquire) > 0
                        || now.saturating_sub(c.idle_since.load(Ordering::Acquire)) < idle)
            })
            .map(|(_, c)| c.clone())
            .collect();
        if kept.len() != conns.len() {
            tracing::debug!(
                closed = conns.len() - kept.len(),
                open = kept.len(),
                "idle upstream HTTP/2 connections closed"
            );
            self.conns.store(Arc::new(kept));
        }
        self.conns.load().len() > 1
    }
}

/// Closes extra idle connections every half `idle_timeout` while there are extra ones.
async fn reap(shared: Weak<Shared>) {
    loop {
        let Some(period) = shared
            .upgrade()
            .map(|s| (s.idle / 2).max(Duration::from_millis(10)))
        else {
            return;
        };
        tokio::time::sleep(period).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let _changing = shared.changing.lock().await;
        if !shared.close_idle() {
            shared.reaping.store(false, Ordering::Release);
            return;
        }
    }
}

// === impl Conn ===

impl Conn {
    /// Takes new streams: open, and no `GOAWAY` or failure seen.
    fn usable(&self) -> bool {
        !self.draining.load(Ordering::Relaxed) && !self.sender.is_closed()
    }

    fn has_room(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) < self.limit.value.load(Ordering::Relaxed)
    }

    /// Reserves a stream when the connection is below its limit.
    fn try_reserve(self: &Arc<Self>, epoch: Instant) -> Option<StreamSlot> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = StreamSlot {
            conn: self.clone(),
            epoch,
        };
        // Dropping the slot gives the stream back.
        (before < self.limit.value.load(Ordering::Relaxed)).then_some(slot)
    }

    /// Reserves a stream whatever the limit.
    fn reserve(self: &Arc<Self>, epoch: Instant) -> StreamSlot {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        StreamSlot {
            conn: self.clone(),
            epoch,
        }
    }
}

// === impl StreamSlot ===

impl StreamSlot {
    /// The request on this stream failed so that its connection should take no more: it
    /// received `GOAWAY`, or failed.
    pub(super) fn retire_connection(&self) {
        self.conn.draining.store(true, Ordering::Relaxed);
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if self.conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.conn.idle_since.store(now, Ordering::Release);
        }
    }
}

/// Runs a connection's dispatcher as a task until either side closes it, publishing the
/// server's stream limit whenever it runs (it runs for every request sent).
///
/// hyper reads the server's frames in a task of its own, which does not wake this one: until
/// the first SETTINGS have been read (the limit is no longer zero), this one looks again every
/// millisecond, for at most `settle`.
fn drive(
    connection: http2::Connection<Box<UpstreamIo>, RequestBody, TokioExecutor>,
    limit: Arc<Limit>,
    settle: Duration,
) {
    tokio::spawn(async move {
        let mut connection = pin!(connection);
        let settle_until = Instant::now() + settle;
        let mut look_again: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let result = std::future::poll_fn(|cx| {
            let poll = connection.as_mut().poll(cx);
            let now = connection.current_max_send_streams();
            if limit.value.swap(now, Ordering::AcqRel) != now || poll.is_ready() {
                limit.changed.notify_waiters();
            }
            if poll.is_pending() && now == 0 && Instant::now() < settle_until {
                let mut sleep = Box::pin(tokio::time::sleep(Duration::from_millis(1)));
                // Registers the timer, which wakes this task.
                let _ = sleep.as_mut().poll(cx);
                look_again = Some(sleep);
            } else {
                look_again = None;
            }
            poll
        })
        .await;
        if let Err(error) = result {
            tracing::debug!(error = %error, "upstream HTTP/2 connection ended with an error");
        }
    });
}

/// Whether the upstream refused the request without processing it: a stream beyond a
/// `GOAWAY`'s last stream id (or opened after the `GOAWAY`), or reset with
/// `REFUSED_STREAM` (RFC 9113 §8.7): safe to send again, whatever the method.
pub(super) fn not_processed(error: &(dyn std::error::Error + 'static)) -> bool {
    error_chain(error).any(|e| {
        e.downcast_ref::<h2::Error>()
            .is_some_and(|e| e.is_go_away() || e.reason() == Some(h2::Reason::REFUSED_STREAM))
    })
}
