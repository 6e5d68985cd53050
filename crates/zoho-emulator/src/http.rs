//! The HTTP plumbing every emulator shares.
//!
//! Each emulator answers requests its own way, but binds, accepts, handshakes and frames
//! them the same way. Those parts live here, once, so the emulators hold only Zoho's
//! behaviour:
//!
//! - [`Listener`] binds a TCP socket and works out the emulator's base URL before its state
//!   is built (the accounts server puts its own URL in its redirects);
//!   [`Listener::serve`] then runs the accept loop for a [`Handler`] and returns a
//!   [`Server`], which stops when shut down or dropped.
//! - Every connection is served over HTTP/1.1 or HTTP/2 (hyper-util's `auto` builder),
//!   after a TLS handshake with a timeout when the emulator has a `rustls` configuration.
//! - [`read_body`] reads a request body under a size limit, refusing a larger declared
//!   `Content-Length` without reading; [`json`] and [`response`] build full-body answers.
//!
//! Nothing here logs more than a connection's errors: the emulators log each request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// `Content-Type` of every JSON answer, spelled as Zoho spells it.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// How long a TLS client may take to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the accept loop waits after a failed `accept` before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The body of every answer: emulator answers are small and built in full.
pub(crate) type Body = Full<Bytes>;

/// An emulator's answer to one request; implemented by each emulator's shared state.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Answers `req`. Never fails: every error is an HTTP answer.
    fn handle(&self, req: Request<Incoming>) -> impl Future<Output = Response<Body>> + Send;
}

/// A bound socket that does not serve yet.
pub(crate) struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
}

/// A running accept loop.
///
/// It stops on [`Server::shutdown`] or when dropped; stopping it closes every open
/// connection.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// The body is over the limit; `read` bytes were read before refusing (`0` when the
    /// declared `Content-Length` was refused).
    #[error("request body is larger than the limit")]
    TooLarge { read: usize },
    /// The connection failed while the body was read.
    #[error("request body could not be read")]
    Read,
}

// === impl Listener ===

impl Listener {
    /// Binds `addr`; `tls` makes the server answer HTTPS only.
    ///
    /// # Errors
    ///
    /// Returns the error from binding the socket or reading its local address.
    pub(crate) async fn bind(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            tls: tls.map(TlsAcceptor::from),
        })
    }

    /// Returns the bound socket address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the base URL, without a trailing slash: `http://127.0.0.1:PORT`, or
    /// `https://localhost:PORT` with TLS (the name test certificates are issued for).
    pub(crate) fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", reachable(self.addr)),
        }
    }

    /// Spawns the accept loop, answering every request with `handler`.
    pub(crate) fn serve<H: Handler>(self, handler: Arc<H>) -> Server {
        let addr = self.addr;
        let task = tokio::spawn(accept_loop(self.listener, self.tls, handler));
        Server {
            addr,
            task: Some(task),
        }
    }
}

// === impl Server ===

impl Server {
    /// Returns the bound socket address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, closes the open ones and waits for the task to end.
    pub(crate) async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The task was aborted on purpose; a cancellation error is the expected result.
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// === server ===

/// Accepts connections until the task is aborted; dropping the task drops every connection.
async fn accept_loop<H: Handler>(listener: TcpListener, tls: Option<TlsAcceptor>, handler: Arc<H>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, tls.clone(), Arc::clone(&handler)));
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::debug!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one connection, after a TLS handshake when configured.
async fn serve_connection<H: Handler>(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    handler: Arc<H>,
) {
    // Latency matters more than packet count for these small answers.
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_io(stream, handler).await,
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => serve_io(tls_stream, handler).await,
                Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 on an established stream.
async fn serve_io<I, H>(io: I, handler: Arc<H>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Infallible>(handler.handle(req).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(error) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

// === requests ===

/// Reads a body of at most `limit` bytes; a larger declared `Content-Length` is refused
/// without reading.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    mut body: Incoming,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if declared_length(headers).is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge { read: 0 });
    }
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            let read = bytes.len() + data.len();
            if read > limit {
                return Err(BodyError::TooLarge { read });
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// The request's `Content-Type`, when readable.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE)?.to_str().ok()
}

/// Whether a `Content-Type` value is `application/x-www-form-urlencoded`.
pub(crate) fn is_form(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|essence| {
        essence
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// Parses a query string into a map; later values win.
pub(crate) fn query_params(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The `Content-Length` a request declares, if valid.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

// === responses ===

/// A JSON response, with `Content-Type: application/json;charset=UTF-8`.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    // Serializing the emulators' plain structs and `json!` values cannot fail; fall back to
    // `{}` all the same.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    response(status, JSON_CONTENT_TYPE, Bytes::from(body))
}

/// A response with a full body and a `Content-Type`.
pub(crate) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Adds an `Allow` header, for a `405` answer.
pub(crate) fn with_allow(mut response: Response<Body>, allow: &'static str) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

// === helpers ===

/// Replaces an unspecified bind address (`0.0.0.0`, `::`) by loopback, so the URL is usable.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers the emulators' unit tests share.

    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// 127.0.0.1 on a port the OS picks.
    pub(crate) fn localhost() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// A CA and a "localhost" leaf signed by it: the server config (offering `h2` and
    /// `http/1.1`) and the CA's PEM.
    pub(crate) fn test_tls() -> (Arc<rustls::ServerConfig>, String) {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sandbox test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();

        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        );
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        (Arc::new(config), ca_cert.pem())
    }

    /// Sends raw bytes and returns whatever the server answers before closing.
    pub(crate) async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // The server may answer and close before reading everything: ignore write errors.
        let _ = stream.write_all(bytes).await;
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Asserts that a server dropped a moment ago stops answering at `addr` within half a
    /// second.
    pub(crate) async fn assert_stops_serving(addr: SocketAddr) {
        // The abort is processed at the task's next poll; give it a moment.
        tokio::task::yield_now().await;
        let client = reqwest::Client::new();
        let mut refused = false;
        for _ in 0..50 {
            if client.get(format!("http://{addr}/")).send().await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused);
    }
}
