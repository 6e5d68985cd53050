//! Errors the proxy itself answers, as RFC 9457 `application/problem+json` documents.
//!
//! Every [`ProxyError`] maps to one status through one exhaustive `match` (no wildcard arm:
//! a new variant does not compile until it is mapped). Bodies say what happened and what to
//! do, and never carry upstream error text, tokens or other secrets. Each response also has
//! an `x-proxy-error` header naming the problem, so clients can tell the proxy's answers from
//! Zoho's.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::token::Unavailable;

/// Header naming the proxy's own problem.
pub static X_PROXY_ERROR: http::HeaderName = http::HeaderName::from_static("x-proxy-error");

/// A failure answered by the proxy instead of Zoho.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No valid access token can be had.
    #[error("no access token")]
    NoToken(#[source] Unavailable),
    /// The upstream could not be reached, or the exchange broke off before the response head.
    #[error("upstream unreachable")]
    UpstreamUnreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No response head within `upstream.timeout`.
    #[error("upstream timed out")]
    UpstreamTimeout(Duration),
    /// A `Transfer-Encoding` other than plain `chunked` (`gzip, chunked` would be dropped
    /// silently when the body is re-framed upstream).
    #[error("unsupported transfer coding")]
    TransferCoding,
    /// An absolute-form target (`GET http://host/ HTTP/1.1`): how forward proxies are
    /// addressed; this reverse proxy is never an open relay.
    #[error("absolute-form request target")]
    AbsoluteForm,
    /// The request body ended early, was malformed, or arrived slower than `upstream.timeout`.
    #[error("request body incomplete")]
    BodyIncomplete,
    /// Neither a `Host` header nor an authority (HTTP/2 `:authority`): RFC 9112 §3.2.
    #[error("no Host header")]
    MissingHost,
    /// More than one `Host` header field line, or one value listing several: RFC 9112 §3.2.
    #[error("more than one Host header")]
    DuplicateHost,
    /// An HTTP/2 request whose `host` header names another origin than its `:authority`:
    /// malformed by RFC 9113 §8.3.1.
    #[error("host header disagrees with :authority")]
    HostMismatch,
    /// A `.` or `..` path segment, plain or percent-encoded (RFC 3986 §3.3): refused, not
    /// normalised, so that `access.rules` match what the upstream serves.
    #[error("dot segment in the request path")]
    DotSegment,
    /// `CONNECT` and other methods this reverse proxy never forwards.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request target is longer than `limits.max_uri_bytes`.
    #[error("request target too long")]
    UriTooLong(usize),
    /// The request headers exceed `limits.max_header_bytes`.
    #[error("request headers too large")]
    HeadersTooLarge(usize),
    /// The request body exceeds `limits.max_body_bytes`.
    #[error("request body too large")]
    BodyTooLarge(u64),
    /// `Host` is not in `server.allowed_hosts`.
    #[error("host not allowed")]
    ForbiddenHost,
    /// A browser's cross-site request.
    #[error("cross-site request")]
    CrossSite,
    /// Client keys are configured and the request has no valid one.
    #[error("client key required")]
    ClientKeyRequired,
    /// Refused by `access.rules` or `access.read_only`.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// More than `limits.max_in_flight` requests are being served.
    #[error("too many requests in flight")]
    Overloaded,
    /// `X-Zoho-Account` names no configured account.
    #[error("unknown account")]
    UnknownAccount,
    /// The client key is bound to another account than `X-Zoho-Account` names.
    #[error("account not allowed for this client key")]
    AccountForbidden,
}

/// The RFC 9457 document.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

// === impl ProxyError ===

impl ProxyError {
    /// The status, a short problem name, and a title.
    pub fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ProxyError::NoToken(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no-token",
                "No valid Zoho access token",
            ),
            ProxyError::UpstreamUnreachable(_) => (
                StatusCode::BAD_GATEWAY,
                "upstream-unreachable",
                "Zoho Meeting could not be reached",
            ),
            ProxyError::UpstreamTimeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                "Zoho Meeting did not answer in time",
            ),
            ProxyError::TransferCoding => (
                StatusCode::BAD_REQUEST,
                "transfer-coding",
                "Only Transfer-Encoding: chunked is accepted",
            ),
            ProxyError::AbsoluteForm => (
                StatusCode::BAD_REQUEST,
                "absolute-form",
                "Absolute-form targets are not forwarded",
            ),
            ProxyError::BodyIncomplete => (
                StatusCode::BAD_REQUEST,
                "body-incomplete",
                "The request body is incomplete",
            ),
            ProxyError::MissingHost => (
                StatusCode::BAD_REQUEST,
                "missing-host",
                "A Host header is required",
            ),
            ProxyError::DuplicateHost => (
                StatusCode::BAD_REQUEST,
                "duplicate-host",
                "More than one Host header",
            ),
            ProxyError::HostMismatch => (
                StatusCode::BAD_REQUEST,
                "host-mismatch",
                "The host header disagrees with :authority",
            ),
            ProxyError::DotSegment => (
                StatusCode::BAD_REQUEST,
                "dot-segment",
                "The request path has a dot segment",
            ),
            ProxyError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "This method is not forwarded",
            ),
            ProxyError::UriTooLong(_) => (
                StatusCode::URI_TOO_LONG,
                "uri-too-long",
                "The request target is too long",
            ),
            ProxyError::HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "The request headers are too large",
            ),
            ProxyError::BodyTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "The request body is too large",
            ),
            ProxyError::ForbiddenHost => (
                StatusCode::FORBIDDEN,
                "forbidden-host",
                "This Host is not served",
            ),
            ProxyError::CrossSite => (
                StatusCode::FORBIDDEN,
                "cross-site",
                "Cross-site browser requests are refused",
            ),
            ProxyError::ClientKeyRequired => (
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                "client-key-required",
                "A valid client key is required",
            ),
            ProxyError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Refused by the access rules",
            ),
            ProxyError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Too many requests in flight",
            ),
            ProxyError::UnknownAccount => (
                StatusCode::BAD_REQUEST,
                "unknown-account",
                "X-Zoho-Account names no account",
            ),
            ProxyError::AccountForbidden => (
                StatusCode::FORBIDDEN,
                "account-forbidden",
                "This client key may not use that account",
            ),
        }
    }

    /// The human explanation for the `detail` member.
    fn detail(&self) -> String {
        match self {
            ProxyError::NoToken(reason) => format!(
                "{reason}. Retry after {} s; `zoho-meeting-proxy status` shows the token state.",
                retry_after_secs(reason.retry_after())
            ),
            ProxyError::UpstreamUnreachable(_) => {
                "The connection to the Zoho Meeting API failed. Check network access and upstream.url.".to_owned()
            }
            ProxyError::UpstreamTimeout(limit) => format!(
                "No response headers from the Zoho Meeting API within {} (upstream.timeout).",
                humantime::format_duration(*limit)
            ),
            ProxyError::TransferCoding => {
                "Send the body with Transfer-Encoding: chunked alone (or a Content-Length); other \
                 transfer codings are not forwarded."
                    .to_owned()
            }
            ProxyError::AbsoluteForm => {
                "Absolute-form request targets are not forwarded: send origin-form (GET /path)."
                    .to_owned()
            }
            ProxyError::BodyIncomplete => {
                "The request body ended early, was malformed, or arrived more slowly than \
                 upstream.timeout allows."
                    .to_owned()
            }
            ProxyError::MissingHost => {
                "Send a Host header (RFC 9112 §3.2), or :authority over HTTP/2.".to_owned()
            }
            ProxyError::DuplicateHost => {
                "The request carries more than one Host header line, or a Host listing several \
                 hosts; RFC 9112 §3.2 requires a 400. Send exactly one Host."
                    .to_owned()
            }
            ProxyError::HostMismatch => {
                "This HTTP/2 request's host header names another origin than its :authority, \
                 which RFC 9113 §8.3.1 makes malformed. Send :authority alone, or the same \
                 value in both."
                    .to_owned()
            }
            ProxyError::DotSegment => {
                "The request path has a \".\" or \"..\" segment, plain or percent-encoded \
                 (%2e), possibly behind an encoded slash (%2f). Such paths are refused rather \
                 than normalised, so that access.rules match what the upstream serves; send the \
                 path with the segments resolved."
                    .to_owned()
            }
            ProxyError::MethodNotAllowed => {
                "This is a reverse proxy for the Zoho Meeting API: CONNECT is not supported."
                    .to_owned()
            }
            ProxyError::UriTooLong(max) => {
                format!("The request target exceeds {max} bytes (limits.max_uri_bytes).")
            }
            ProxyError::HeadersTooLarge(max) => {
                format!("The request headers exceed {max} bytes (limits.max_header_bytes).")
            }
            ProxyError::BodyTooLarge(max) => {
                format!("The request body exceeds {max} bytes (limits.max_body_bytes).")
            }
            ProxyError::ForbiddenHost => "The Host header names a host outside server.allowed_hosts \
                 (a guard against DNS rebinding)."
                .to_owned(),
            ProxyError::CrossSite => "Requests from web pages are refused unless their Origin is \
                 listed in server.allowed_origins."
                .to_owned(),
            ProxyError::ClientKeyRequired => {
                "Send Proxy-Authorization: Bearer <key> with a key from server.client_keys or \
                 server.client_keys_file."
                    .to_owned()
            }
            ProxyError::Forbidden(why) => format!("{why}."),
            ProxyError::Overloaded => {
                "More requests are in flight than limits.max_in_flight allows; retry shortly."
                    .to_owned()
            }
            ProxyError::UnknownAccount => {
                "The X-Zoho-Account header names no account of this proxy: use \"default\" \
                 (or no header) or a name of [[accounts]]; `zoho-meeting-proxy check` lists them."
                    .to_owned()
            }
            ProxyError::AccountForbidden => {
                "This client key is listed under one account's client_keys and may use that \
                 account only: drop X-Zoho-Account, or name that account."
                    .to_owned()
            }
        }
    }

    /// Renders the problem+json response.
    pub fn to_response(&self) -> Response<Bytes> {
        let (status, name, title) = self.classify();
        let retry_after = match self {
            ProxyError::NoToken(reason) => Some(retry_after_secs(reason.retry_after())),
            ProxyError::Overloaded => Some(1),
            ProxyError::UpstreamUnreachable(_)
            | ProxyError::UpstreamTimeout(_)
            | ProxyError::TransferCoding
            | ProxyError::AbsoluteForm
            | ProxyError::BodyIncomplete
            | ProxyError::MissingHost
            | ProxyError::DuplicateHost
            | ProxyError::HostMismatch
            | ProxyError::DotSegment
            | ProxyError::MethodNotAllowed
            | ProxyError::UnknownAccount
            | ProxyError::AccountForbidden
            | ProxyError::UriTooLong(_)
            | ProxyError::HeadersTooLarge(_)
            | ProxyError::BodyTooLarge(_)
            | ProxyError::ForbiddenHost
            | ProxyError::CrossSite
            | ProxyError::ClientKeyRequired
            | ProxyError::Forbidden(_) => None,
        };
        let kind = format!("urn:zoho-meeting-proxy:problem:{name}");
        let detail = self.detail();
        let body = problem_json(&kind, title, status, &detail, retry_after);
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(&X_PROXY_ERROR, HeaderValue::from_static(name));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            headers.insert(
                header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"zoho-meeting-proxy\""),
            );
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            );
        }
        response
    }
}

/// Serialises a problem document; falls back to a fixed document if serialisation fails.
pub fn problem_json(
    kind: &str,
    title: &str,
    status: StatusCode,
    detail: &str,
    retry_after: Option<u64>,
) -> Bytes {
    let problem = Problem {
        kind,
        title,
        status: status.as_u16(),
        detail,
        retry_after,
    };
    match serde_json::to_vec(&problem) {
        Ok(json) => Bytes::from(json),
        Err(_) => Bytes::from_static(b"{\"type\":\"about:blank\",\"title\":\"Error\"}"),
    }
}

/// Whole seconds, at least one (a `Retry-After: 0` invites a hot loop).
fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Response<Bytes>) -> serde_json::Value {
        serde_json::from_slice(r.body()).unwrap()
    }

    #[test]
    fn no_token_is_503_with_retry_after() {
        let e = ProxyError::NoToken(Unavailable::Budget {
            max: 10,
            retry_after: Duration::from_millis(41_200),
        });
        let r = e.to_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "42");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(r.headers()[&X_PROXY_ERROR], "no-token");
        let b = body(&r);
        assert_eq!(b["status"], 503);
        assert_eq!(b["type"], "urn:zoho-meeting-proxy:problem:no-token");
        assert!(b["detail"].as_str().unwrap().contains("budget"));
    }

    #[test]
    fn every_variant_maps_to_its_status() {
        let cases: Vec<(ProxyError, u16)> = vec![
            (ProxyError::UpstreamUnreachable("refused".into()), 502),
            (ProxyError::UpstreamTimeout(Duration::from_secs(60)), 504),
            (ProxyError::AbsoluteForm, 400),
            (ProxyError::BodyIncomplete, 400),
            (ProxyError::MethodNotAllowed, 405),
        ];
        for (e, status) in cases {
            let r = e.to_response();
            assert_eq!(r.status(), status);
            assert_eq!(body(&r)["status"], status);
            assert!(r.headers().get(header::RETRY_AFTER).is_none());
        }
    }

    #[test]
    fn malformed_requests_are_400_each_with_its_own_problem() {
        let cases = [
            (ProxyError::MissingHost, "missing-host"),
            (ProxyError::DuplicateHost, "duplicate-host"),
            (ProxyError::HostMismatch, "host-mismatch"),
            (ProxyError::DotSegment, "dot-segment"),
        ];
        let mut titles = Vec::new();
        for (e, name) in cases {
            let r = e.to_response();
            assert_eq!(r.status(), 400, "{name}");
            assert_eq!(r.headers()[&X_PROXY_ERROR], name);
            assert_eq!(
                r.headers()[header::CONTENT_TYPE],
                "application/problem+json"
            );
            assert!(r.headers().get(header::RETRY_AFTER).is_none());
            let b = body(&r);
            assert_eq!(b["status"], 400);
            assert_eq!(b["type"], format!("urn:zoho-meeting-proxy:problem:{name}"));
            assert!(!b["detail"].as_str().unwrap().is_empty());
            titles.push(b["title"].as_str().unwrap().to_owned());
        }
        titles.sort_unstable();
        titles.dedup();
        assert_eq!(titles.len(), 4, "each problem has its own title");
        let detail = body(&ProxyError::DotSegment.to_response())["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            detail.contains("%2e") && detail.contains("access.rules"),
            "{detail}"
        );
    }

    #[test]
    fn upstream_error_text_is_not_echoed() {
        let e = ProxyError::UpstreamUnreachable("secret-ish detail from the socket".into());
        let r = e.to_response();
        assert!(!String::from_utf8_lossy(r.body()).contains("secret-ish"));
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(60)), 60);
    }
}
