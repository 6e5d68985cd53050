//! The admin listener (`server.admin_listen`), separate from the proxy's.
//!
//! | Endpoint | Answer |
//! | --- | --- |
//! | `GET /livez` | `200 ok` while the process runs. |
//! | `GET /readyz` | `200 ready` while every account holds a token with more than the refresh margin left; `503` otherwise (naming the accounts that do not) and from the moment shutdown begins. `?account=NAME`: that account alone (`404` for an unknown name). Never calls Zoho. |
//! | `GET /metrics` | Prometheus metrics, every request and token series with an `account` label: requests by route, method and status class, request and upstream latency histograms, in-flight requests, replays, token rejections, token refreshes by outcome, seconds until expiry, mints left in the window. OpenMetrics text when `Accept` names `application/openmetrics-text` (as Prometheus sends it), else the classic text format 0.0.4 ([`crate::metrics::prefers_openmetrics`]). |
//! | `GET /status` | JSON: `default`'s `ready`, `token_expires_in_s`, `last_refresh`, `last_error`, `mints_in_window`, `token_fingerprint` (a SHA-256 prefix, never the token) and more, and `accounts`: the same fields for every account by name, `default` included. |
//!
//! Anything else is `404`; other methods than `GET`/`HEAD` are `405`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::token::TokenStatus;

/// What the admin endpoints read.
#[derive(Debug)]
pub struct Admin {
    proxy: Arc<Proxy>,
    metrics: Arc<Metrics>,
    draining: AtomicBool,
}

/// `/status`: `default`'s token status, every account's, and the process's.
#[derive(Serialize)]
struct Status<'a> {
    #[serde(flatten)]
    token: &'a TokenStatus,
    accounts: std::collections::BTreeMap<&'a str, TokenStatus>,
    draining: bool,
    version: &'static str,
}

// === impl Admin ===

impl Admin {
    /// Endpoints over the accounts of `proxy` and these metrics.
    pub fn new(proxy: Arc<Proxy>, metrics: Arc<Metrics>) -> Self {
        Self {
            proxy,
            metrics,
            draining: AtomicBool::new(false),
        }
    }

    /// Marks the process as shutting down: `/readyz` answers 503 from now on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether `/readyz` would answer 200: not draining, and every account ready.
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Relaxed)
            && self.proxy.accounts().iter().all(|a| a.status().is_ready())
    }

    /// `/readyz`, `/readyz?account=NAME`.
    fn readyz(&self, query: Option<&str>) -> Response<Full<Bytes>> {
        if self.draining.load(Ordering::Relaxed) {
            return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
        }
        let accounts = self.proxy.accounts();
        let asked = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("account="));
        let not_ready: Vec<&str> = match asked {
            Some(name) => match accounts.find(name) {
                Some(account) => (!account.status().is_ready())
                    .then_some(account.name())
                    .into_iter()
                    .collect(),
                None => {
                    return text(
                        StatusCode::NOT_FOUND,
                        "no such account; /status lists them\n",
                    );
                }
            },
            None => accounts
                .iter()
                .filter(|a| !a.status().is_ready())
                .map(|a| a.name())
                .collect(),
        };
        if not_ready.is_empty() {
            text(StatusCode::OK, "ready\n")
        } else if accounts.iter().count() == 1 {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no token with more than the refresh margin left\n",
            )
        } else {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no token with more than the refresh margin left for account {}\n",
                    not_ready.join(", ")
                ),
            )
        }
    }

    /// Answers one admin request.
    pub fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        match req.uri().path() {
            "/livez" => text(StatusCode::OK, "ok\n"),
            "/readyz" => self.readyz(req.uri().query()),
            "/metrics" => {
                let page = self.metrics.encode();
                let (body, content_type) =
                    if crate::metrics::prefers_openmetrics(req.headers().get_all(header::ACCEPT)) {
                        (page, crate::metrics::CONTENT_TYPE)
                    } else {
                        (
                            crate::metrics::openmetrics_to_text(&page),
                            crate::metrics::TEXT_CONTENT_TYPE,
                        )
                    };
                let mut r = text(StatusCode::OK, body);
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                r.headers_mut()
                    .insert(header::VARY, HeaderValue::from_static("accept"));
                r
            }
            "/status" => {
                let draining = self.draining.load(Ordering::Relaxed);
                let table = self.proxy.accounts();
                let accounts: std::collections::BTreeMap<&str, TokenStatus> = table
                    .iter()
                    .map(|a| {
                        let mut status = a.status().status();
                        status.ready = status.ready && !draining;
                        (a.name(), status)
                    })
                    .collect();
                let mut token = accounts
                    .get(crate::config::DEFAULT_ACCOUNT)
                    .cloned()
                    .unwrap_or_else(|| table.get(0).status().status());
                // The top level is `default`'s.
                token.ready = token.ready && !draining;
                let status = Status {
                    token: &token,
                    accounts,
                    draining: self.draining.load(Ordering::Relaxed),
                    version: env!("CARGO_PKG_VERSION"),
                };
                let body = serde_json::to_vec_pretty(&status).unwrap_or_default();
                let mut r = Response::new(Full::new(Bytes::from(body)));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /livez /readyz /metrics /status\n",
            ),
        }
    }
}

/// Serves the admin endpoints until `shutdown` turns true.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, shutdown: watch::Receiver<bool>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut stop = shutdown;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let admin = admin.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let admin = admin.clone();
            async move { Ok::<_, Infallible>(admin.handle(&req)) }
        });
        let conn = graceful.watch(
            builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), graceful.shutdown()).await;
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
