//! The outbound HTTP client to the Zoho Meeting API, built once and shared.
//!
//! hyper-util's pooled client over hyper-rustls: TLS 1.2+ always verified against the
//! Mozilla roots (webpki-roots, so a scratch container needs no CA bundle) plus any
//! certificates in `upstream.ca_file`; HTTP/2 when the server offers it by ALPN, HTTP/1.1
//! otherwise; `http://` only for the loopback hosts configuration validation allows. The
//! client never follows redirects (hyper's never does).

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::UpstreamConfig;
use crate::proxy::body::RequestBody;

/// The shared upstream client type.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

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

/// Builds the pooled client.
///
/// # Errors
/// [`UpstreamError`] for a bad CA file or TLS configuration.
pub fn client(config: &UpstreamConfig) -> Result<UpstreamClient, UpstreamError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(config)?)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector))
}
