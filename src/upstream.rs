//! The outbound side: connections to the Zoho Meeting API, built once and shared.
//!
//! TLS 1.2+ is always verified against the Mozilla roots (webpki-roots, so a scratch
//! container needs no CA bundle) plus any certificates in `upstream.ca_file`; `http://` only
//! for the loopback hosts configuration validation allows. Nothing here follows redirects.
//!
//! Requests go out on upstream HTTP/1.1 keep-alive connections kept by the client
//! connection they came on, as nginx's upstream keep-alive does: each client connection's
//! service (`proxy::Connection`) owns an [`Affinity`] per route, and [`Affinity::send`]
//! takes a connection from an atomic slot and puts it back, with no pool lookup, no hash,
//! no lock and no task spawned per request. An HTTP/1 client connection, whose requests
//! come one after another, keeps one; an HTTP/2 client connection keeps up to [`SLOTS`] for
//! its concurrent streams. When the client connection closes (or more are idle than it
//! keeps), its upstream connections are parked for other client connections, at most
//! `MAX_PARKED` of them for `upstream.idle_timeout` each: a short list behind a lock, taken
//! only when a client connection has no idle upstream connection of its own (its first
//! request, or more concurrent HTTP/2 streams than it keeps) and when it hands one back.
//! A kept connection that the upstream has closed is replaced before the request is sent;
//! a request whose connection closed just as it was handed over, before a byte of it was
//! written, is sent once more on a new one.
//!
//! Connections offer HTTP/2 by ALPN. An upstream that chooses it gets every request from
//! then on over multiplexed HTTP/2 connections: as many as the streams in flight need, up
//! to `upstream.max_h2_connections` (the `h2` module: the pool, its stream accounting and
//! `GOAWAY`). The HTTP/1.1 path above serves upstreams that do not choose HTTP/2 (and
//! `http://` ones). Until the first connection has told which the upstream speaks,
//! connections open one at a time.
//!
//! (Why slots of the client connection's own rather than hyper-util's pooled client, which
//! looks its pool up for every request: BENCHMARKS.md, "Design measurements".)

pub mod body;
mod h2;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::Method;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_rustls::HttpsConnector;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::time::Instant;

use self::body::{BoxError, RequestBody, UpstreamBody};
use crate::config::UpstreamConfig;

/// A connection to the upstream, TLS or not.
pub(crate) type UpstreamIo = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// A reconnect found the upstream had switched to HTTP/2; the next request uses it.
const SWITCHED: &str = "the upstream switched to HTTP/2";

/// At most this many parked upstream connections wait for a client connection.
const MAX_PARKED: usize = 256;

/// Idle upstream connections one client connection keeps (an HTTP/1 one uses the first).
pub const SLOTS: usize = 8;

/// The upstream: where requests go and the connections they go on.
pub struct Upstream {
    /// Offers `h2` and `http/1.1` by ALPN.
    connector: HttpsConnector<HttpConnector>,
    /// The upstream chose HTTP/2 by ALPN: requests go over `h2`.
    speaks_h2: AtomicBool,
    /// A connection has told whether the upstream speaks HTTP/2.
    known: AtomicBool,
    /// Until then, connections open one at a time.
    discovering: tokio::sync::Mutex<()>,
    /// The HTTP/2 connections, once the upstream has chosen HTTP/2.
    h2: h2::Pool,
    origin: Uri,
    parked: Mutex<Vec<Parked>>,
    /// `upstream.idle_timeout`: how long a parked connection is kept.
    idle: Duration,
}

/// An upstream connection waiting for a client connection.
struct Parked {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

/// The upstream connections of one client connection, kept between its requests.
///
/// A request swaps a connection out of the first occupied slot, sends, and swaps it back
/// into the first empty one when the response head has arrived (a next request on it waits,
/// in `ready`, for this response's body to be read). HTTP/1 serves a connection's requests
/// one after another, so its connection stays in the first slot.
pub struct Affinity {
    upstream: Arc<Upstream>,
    slots: [ArcSwapOption<Held>; SLOTS],
}

/// `Arc` so that a slot can hold it; unique whenever it is out of the slots (nothing else
/// ever loads them), so [`Arc::get_mut`] always succeeds and no allocation is made per
/// request.
struct Held(SendRequest<RequestBody>);

// === impl Upstream ===

impl Upstream {
    /// The upstream of `config`.
    ///
    /// # Errors
    /// [`UpstreamError`] for a bad CA file or TLS configuration, or a URL without a host
    /// (validation prevents it).
    pub fn new(config: &UpstreamConfig) -> Result<Self, UpstreamError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(config)?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http_connector(config));
        Ok(Self {
            connector,
            speaks_h2: AtomicBool::new(false),
            known: AtomicBool::new(false),
            discovering: tokio::sync::Mutex::new(()),
            h2: h2::Pool::new(
                config.max_h2_connections,
                config.idle_timeout,
                config.connect_timeout,
            ),
            origin: origin(&config.url).ok_or(UpstreamError::Url)?,
            parked: Mutex::new(Vec::new()),
            idle: config.idle_timeout,
        })
    }

    /// The upstream's `host[:port]` (the `Host` requests carry).
    pub fn authority(&self) -> Option<&Authority> {
        self.origin.authority()
    }

    /// Waits for the connection to finish the previous exchange, or replaces it when the
    /// server has closed it (the end of a keep-alive) since the last request.
    async fn make_ready(&self, sender: &mut SendRequest<RequestBody>) -> Result<(), BoxError> {
        if sender.ready().await.is_err() {
            *sender = self.connect().await?.ok_or(SWITCHED)?;
        }
        Ok(())
    }

    /// Sends `req` on a new connection, which replaces `sender`.
    async fn resend(
        &self,
        sender: &mut SendRequest<RequestBody>,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, BoxError> {
        *sender = self.connect().await?.ok_or(SWITCHED)?;
        sender.ready().await?;
        Ok(sender.send_request(req).await?)
    }

    /// Sends `req` over HTTP/2, with the absolute URI HTTP/2 needs, on a connection of the
    /// pool. A request the upstream did not process (refused, or sent after its `GOAWAY`), or
    /// an idempotent one whose connection failed under it, is sent again on another
    /// connection when its body is kept in memory, up to [`H2_ATTEMPTS`] times in all; one
    /// that never left is sent again whatever its body.
    async fn send_h2(
        &self,
        mut req: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, BoxError> {
        let mut parts = self.origin.clone().into_parts();
        parts.path_and_query = req.uri().path_and_query().cloned();
        *req.uri_mut() = Uri::from_parts(parts)?;
        let idempotent = is_idempotent(req.method());
        for attempt in 1.. {
            let again = (attempt < H2_ATTEMPTS).then(|| copy(&req)).flatten();
            let (mut sender, slot) = self.h2.stream(|| self.open()).await?;
            let error = match sender.ready().await {
                Err(error) => {
                    // Closed before it took the request: nothing was sent.
                    slot.retire_connection();
                    if attempt < H2_ATTEMPTS {
                        continue;
                    }
                    error
                }
                Ok(()) => match sender.try_send_request(req).await {
                    Ok(response) => return Ok(response.map(|b| UpstreamBody::on_stream(b, slot))),
                    Err(mut error) => match error.take_message() {
                        Some(unsent) if attempt < H2_ATTEMPTS => {
                            slot.retire_connection();
                            req = unsent;
                            continue;
                        }
                        _ => error.into_error(),
                    },
                },
            };
            let refused = h2::not_processed(&error);
            let broken = sender.is_closed();
            if refused || broken {
                slot.retire_connection();
            }
            match again {
                Some(copy) if refused || (broken && idempotent) => {
                    tracing::debug!(error = %error, "upstream HTTP/2 request sent again on another connection");
                    req = copy;
                }
                _ => return Err(error.into()),
            }
        }
        unreachable!("the loop returns")
    }

    /// A parked connection that is still open, or a new one.
    async fn checkout(&self) -> Result<Option<SendRequest<RequestBody>>, BoxError> {
        let found = {
            let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
            std::iter::from_fn(|| parked.pop()).find(|p| p.usable(self.idle))
        };
        match found {
            Some(p) => Ok(Some(p.sender)),
            None => self.connect().await,
        }
    }

    /// Opens an HTTP/1.1 connection; its driver runs as a task until either side closes it.
    /// `None` when the upstream chose HTTP/2 by ALPN: the connection becomes the shared
    /// HTTP/2 one, and from then on requests go over it.
    ///
    /// Until a first connection has told whether the upstream speaks HTTP/2, connections open
    /// one at a time: concurrent first requests would otherwise each open one, where HTTP/2
    /// needs one.
    async fn connect(&self) -> Result<Option<SendRequest<RequestBody>>, BoxError> {
        let discovering = if self.known.load(Ordering::Acquire) {
            None
        } else {
            let guard = self.discovering.lock().await;
            (!self.known.load(Ordering::Acquire)).then_some(guard)
        };
        if self.speaks_h2.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let io = self.open().await?;
        let h2 = io.connected().is_negotiated_h2();
        if h2 {
            self.speaks_h2.store(true, Ordering::Relaxed);
        }
        self.known.store(true, Ordering::Release);
        if h2 {
            tracing::debug!("the upstream chose HTTP/2: requests go over multiplexed connections");
            // Those waiting find it in the pool.
            let adopted = self.h2.adopt(io).await;
            drop(discovering);
            adopted?;
            return Ok(None);
        }
        drop(discovering);
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await?;
        drive(connection);
        Ok(Some(sender))
    }

    /// A TCP (and TLS) connection to the upstream.
    async fn open(&self) -> Result<UpstreamIo, BoxError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut connector, cx)).await?;
        tower_service::Service::call(&mut connector, self.origin.clone()).await
    }

    /// Keeps a client connection's upstream connection for the next client connection.
    fn park(&self, sender: SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        parked.retain(|p| p.usable(self.idle));
        if parked.len() < MAX_PARKED {
            parked.push(Parked {
                sender,
                since: Instant::now(),
            });
        }
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

// === impl Parked ===

impl Parked {
    /// Still open, and not idle for longer than `idle` (`upstream.idle_timeout`).
    fn usable(&self, idle: Duration) -> bool {
        !self.sender.is_closed() && self.since.elapsed() < idle
    }
}

// === impl Affinity ===

impl Affinity {
    /// An empty slot for a new client connection.
    pub fn new(upstream: Arc<Upstream>) -> Self {
        Self {
            upstream,
            slots: std::array::from_fn(|_| ArcSwapOption::empty()),
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) on one of this client connection's upstream
    /// connections, or a parked or new one; over HTTP/2 once the upstream has chosen it.
    /// Connecting is boxed: it is rare, and its future would otherwise make every request's
    /// state larger.
    ///
    /// # Errors
    /// The connection or the exchange failed; the chain holds hyper's error.
    pub async fn send(
        &self,
        req: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, BoxError> {
        let upstream = &*self.upstream;
        if upstream.speaks_h2.load(Ordering::Relaxed) {
            return Box::pin(upstream.send_h2(req)).await;
        }
        let mut held = match self.take() {
            Some(held) => held,
            None => match Box::pin(upstream.checkout()).await? {
                Some(sender) => Arc::new(Held(sender)),
                None => return Box::pin(upstream.send_h2(req)).await,
            },
        };
        let Some(Held(sender)) = Arc::get_mut(&mut held) else {
            // Never: the slot is the only other owner, and it was emptied.
            return Err("upstream connection shared unexpectedly".into());
        };
        if !sender.is_ready() {
            Box::pin(upstream.make_ready(sender)).await?;
        }
        let unsent = match sender.try_send_request(req).await {
            Ok(response) => {
                self.put(held);
                return Ok(response.map(UpstreamBody::new));
            }
            Err(mut error) => match error.take_message() {
                Some(req) => req,
                None => return Err(error.into_error().into()),
            },
        };
        // Closed just as the request was handed over, before a byte of it was written: safe
        // to send again, once, on a new connection.
        let response = Box::pin(upstream.resend(sender, unsent)).await?;
        self.put(held);
        Ok(response.map(UpstreamBody::new))
    }

    /// An idle connection of this client connection, if it keeps one.
    fn take(&self) -> Option<Arc<Held>> {
        self.slots.iter().find_map(|slot| slot.swap(None))
    }

    /// Keeps `held` in the first empty slot. A slot filled meanwhile by a concurrent
    /// request hands its connection on to the next slot; one left over is parked.
    fn put(&self, held: Arc<Held>) {
        let mut item = held;
        for slot in &self.slots {
            match slot.swap(Some(item)) {
                None => return,
                Some(displaced) => item = displaced,
            }
        }
        self.park(item);
    }

    /// Parks a connection this client connection no longer keeps.
    fn park(&self, held: Arc<Held>) {
        if let Ok(Held(sender)) = Arc::try_unwrap(held) {
            self.upstream.park(sender);
        }
    }
}

impl Drop for Affinity {
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Some(held) = slot.swap(None) {
                self.park(held);
            }
        }
    }
}

impl std::fmt::Debug for Affinity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Affinity").finish_non_exhaustive()
    }
}

/// How many times, at most, an HTTP/2 request is sent (see [`Upstream::send_h2`]).
const H2_ATTEMPTS: u32 = 3;

/// RFC 9110 §9.2.2: sending it twice has the effect of sending it once.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// A second copy of `req` when its body is kept in memory.
fn copy(req: &Request<RequestBody>) -> Option<Request<RequestBody>> {
    let body = req.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// Runs a connection's driver as a task until either side closes it.
fn drive<C>(connection: C)
where
    C: std::future::Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error, "upstream connection ended with an error");
        }
    });
}

/// `scheme://authority/` of the upstream URL: what the connector connects to.
fn origin(url: &url::Url) -> Option<Uri> {
    let scheme: Scheme = url.scheme().parse().ok()?;
    let host = url.host_str()?;
    let authority: Authority = match url.port() {
        Some(port) => format!("{host}:{port}").parse().ok()?,
        None => host.parse().ok()?,
    };
    Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query("/")
        .build()
        .ok()
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// `upstream.ca_file` cannot be read or holds no certificate.
    #[error("upstream.ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// `upstream.url` has no host.
    #[error("upstream.url has no host")]
    Url,
}

/// The trust roots: Mozilla's plus `ca_file`'s.
///
/// # Errors
/// [`UpstreamError::CaFile`] when the file cannot be read or parsed.
pub fn root_store(config: &UpstreamConfig) -> Result<RootCertStore, UpstreamError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &config.ca_file {
        let ca_error = |reason: String| UpstreamError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no certificate found".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
    }
    Ok(roots)
}

fn tls_config(config: &UpstreamConfig) -> Result<rustls::ClientConfig, UpstreamError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(config)?)
        .with_no_client_auth())
}

fn http_connector(config: &UpstreamConfig) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    http
}
