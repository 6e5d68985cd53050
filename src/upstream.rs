//! The outbound side: connections to the Zoho Meeting API, built once and shared.
//!
//! TLS 1.2+ is always verified against the Mozilla roots (webpki-roots, so a scratch
//! container needs no CA bundle) plus any certificates in `upstream.ca_file`; `http://` only
//! for the loopback hosts configuration validation allows. Nothing here follows redirects.
//!
//! Requests go out on upstream HTTP/1.1 keep-alive connections kept by the client
//! connection they came on ([`Affinity`]), as nginx's upstream keep-alive does: the request
//! path takes one from an atomic slot and puts it back, with no pool lookup, no hash, no lock
//! and no task spawned per request. An HTTP/1 client connection, whose requests come one
//! after another, keeps one; an HTTP/2 client connection keeps up to [`SLOTS`] for its
//! concurrent streams. When the client connection closes (or more are idle than it keeps),
//! upstream connections are parked for other client connections (a short list touched when
//! a client connection starts and ends, not per request).
//!
//! Connections offer HTTP/2 by ALPN. An upstream that chooses it gets every request from
//! then on over one shared HTTP/2 connection, multiplexed: its sender is cloned from an
//! atomic slot per request (no lock either); only opening a new one, when it has closed, is
//! serialised. The HTTP/1.1 path above serves upstreams that do not choose HTTP/2 (and
//! `http://` ones).
//!
//! Why not hyper-util's pooled client (`hyper_util::client::legacy::Client`, which does all
//! of this in 60 lines)? Measured (issue 13, item 6) with the pool built as above (ALPN,
//! 90 s idle, 256 idle, `set_host(false)`), `ZMP_BENCH_PARTS=throughput,instructions
//! ZMP_BENCH_SECS=3 cargo bench --bench load`, two runs each on a shared 2-CPU machine, 64
//! connections, `worker_threads = 1`: requests/s relative to the bench's hyper floor 0.74 and
//! 0.91 with these slots, 0.58 and 0.77 with the pool; 39,500 instructions per proxied GET
//! with the slots, 49,300 with the pool (the pool hashes its key, takes a mutex and, when a
//! connection is not idle yet, spawns a task to return it). The slots stay. (Reaching them
//! through a tokio task-local instead of a parameter cost about 900 instructions more, so
//! the proxy passes its route's [`Affinity`] to [`Upstream::send`].)

pub mod body;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::client::conn::http2;
use hyper_rustls::HttpsConnector;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::time::Instant;

use self::body::{BoxError, RequestBody};
use crate::config::UpstreamConfig;

/// How long an idle connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// A connection to the upstream, TLS or not.
type UpstreamIo = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

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
    /// The shared HTTP/2 connection, once there is one.
    h2: ArcSwapOption<http2::SendRequest<RequestBody>>,
    /// Serialises opening a new HTTP/2 connection (not sending on one).
    h2_opening: tokio::sync::Mutex<()>,
    origin: Uri,
    parked: Mutex<Vec<Parked>>,
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
            h2: ArcSwapOption::empty(),
            h2_opening: tokio::sync::Mutex::new(()),
            origin: origin(&config.url).ok_or(UpstreamError::Url)?,
            parked: Mutex::new(Vec::new()),
        })
    }

    /// The upstream's `host[:port]` (the `Host` requests carry).
    pub fn authority(&self) -> Option<&Authority> {
        self.origin.authority()
    }

    /// Sends `req` (origin-form URI, `Host` set) on one of the client connection's upstream
    /// connections, or a parked or new one. Connecting is boxed: it is rare, and its future
    /// would otherwise make every request's state larger.
    ///
    /// # Errors
    /// The connection or the exchange failed; the chain holds hyper's error.
    pub async fn send(
        &self,
        affinity: &Affinity,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, BoxError> {
        if self.speaks_h2.load(Ordering::Relaxed) {
            return Box::pin(self.send_h2(req)).await;
        }
        let mut held = match affinity.take() {
            Some(held) => held,
            None => match Box::pin(self.checkout()).await? {
                Some(sender) => Arc::new(Held(sender)),
                None => return Box::pin(self.send_h2(req)).await,
            },
        };
        let Some(Held(sender)) = Arc::get_mut(&mut held) else {
            // Never: the slot is the only other owner, and it was emptied.
            return Err("upstream connection shared unexpectedly".into());
        };
        if !sender.is_ready() {
            Box::pin(self.make_ready(sender)).await?;
        }
        let unsent = match sender.try_send_request(req).await {
            Ok(response) => {
                affinity.put(held);
                return Ok(response);
            }
            Err(mut error) => match error.take_message() {
                Some(req) => req,
                None => return Err(error.into_error().into()),
            },
        };
        // Closed just as the request was handed over, before a byte of it was written: safe
        // to send again, once, on a new connection.
        let response = Box::pin(self.resend(sender, unsent)).await?;
        affinity.put(held);
        Ok(response)
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

    /// Sends `req` on the shared HTTP/2 connection, with the absolute URI HTTP/2 needs;
    /// once more on a new connection when the first one had closed before taking it.
    async fn send_h2(&self, mut req: Request<RequestBody>) -> Result<Response<Incoming>, BoxError> {
        let mut parts = self.origin.clone().into_parts();
        parts.path_and_query = req.uri().path_and_query().cloned();
        *req.uri_mut() = Uri::from_parts(parts)?;
        let mut sender = self.h2_sender().await?;
        sender.ready().await?;
        match sender.try_send_request(req).await {
            Ok(response) => Ok(response),
            Err(mut error) => match error.take_message() {
                Some(req) => {
                    let mut sender = self.h2_sender().await?;
                    sender.ready().await?;
                    Ok(sender.send_request(req).await?)
                }
                None => Err(error.into_error().into()),
            },
        }
    }

    /// A clone of the shared HTTP/2 sender, opening a connection when none is open.
    async fn h2_sender(&self) -> Result<http2::SendRequest<RequestBody>, BoxError> {
        if let Some(sender) = self.h2.load_full()
            && !sender.is_closed()
        {
            return Ok((*sender).clone());
        }
        let _opening = self.h2_opening.lock().await;
        // Another request may have opened one meanwhile.
        if let Some(sender) = self.h2.load_full()
            && !sender.is_closed()
        {
            return Ok((*sender).clone());
        }
        let io = self.open().await?;
        self.handshake_h2(io).await
    }

    /// The HTTP/2 handshake on `io`; the sender becomes the shared one.
    async fn handshake_h2(
        &self,
        io: UpstreamIo,
    ) -> Result<http2::SendRequest<RequestBody>, BoxError> {
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(60)))
            .handshake(io)
            .await?;
        drive(connection);
        self.h2.store(Some(Arc::new(sender.clone())));
        Ok(sender)
    }

    /// A parked connection that is still open, or a new one.
    async fn checkout(&self) -> Result<Option<SendRequest<RequestBody>>, BoxError> {
        let found = {
            let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
            std::iter::from_fn(|| parked.pop()).find(Parked::usable)
        };
        match found {
            Some(p) => Ok(Some(p.sender)),
            None => self.connect().await,
        }
    }

    /// Opens an HTTP/1.1 connection; its driver runs as a task until either side closes it.
    /// `None` when the upstream chose HTTP/2 by ALPN: the connection becomes the shared
    /// HTTP/2 one, and from then on requests go over it.
    async fn connect(&self) -> Result<Option<SendRequest<RequestBody>>, BoxError> {
        let io = self.open().await?;
        if io.connected().is_negotiated_h2() {
            self.speaks_h2.store(true, Ordering::Relaxed);
            tracing::debug!("the upstream chose HTTP/2: requests share one connection");
            let _opening = self.h2_opening.lock().await;
            self.handshake_h2(io).await?;
            return Ok(None);
        }
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
        parked.retain(Parked::usable);
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
    /// Still open, and not idle for longer than [`POOL_IDLE`].
    fn usable(&self) -> bool {
        !self.sender.is_closed() && self.since.elapsed() < POOL_IDLE
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
