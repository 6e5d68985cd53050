//! Who may use the proxy, and what may pass: checked before anything is forwarded.
//!
//! The proxy holds a credential for a whole Zoho Meeting account and lends it to whoever
//! reaches its port, so every request passes these checks, in this order, before a token is
//! even looked at:
//! 1. size: URI over `limits.max_uri_bytes` → 414; headers over `limits.max_header_bytes`
//!    → 431; a declared body over `limits.max_body_bytes` → 413;
//! 2. a head that is ambiguous about where it goes → 400, whatever else it says: no `Host`
//!    (nor HTTP/2 `:authority`), more than one `Host` (RFC 9112 §3.2), an HTTP/2 `host` that
//!    disagrees with `:authority` (RFC 9113 §8.3.1), or a path with a `.` or `..` segment,
//!    also percent-encoded, which an upstream that normalises would resolve after step 6
//!    matched the raw path (see [`headers::has_dot_segment`]);
//! 3. `Host` outside `server.allowed_hosts` (any port) → 403. A web page can point a DNS name
//!    it controls at 127.0.0.1 (DNS rebinding); its requests then carry that name;
//! 4. a browser's cross-site request — an `Origin` not in `server.allowed_origins`, or
//!    `Sec-Fetch-Site: cross-site` / `same-site` — → 403, so a page the developer visits
//!    cannot create meetings through their proxy;
//! 5. with client keys configured (`server.client_keys`, or an account's), `Proxy-Authorization:
//!    Bearer <key>` must name one (SHA-256 digests compared in constant time) → else 407. A key
//!    listed under an account chooses that account ([`Guard::bound_account`]);
//! 6. `access.read_only` (GET and HEAD only) and `access.rules` → else 403.
//!
//! The proxy runs [`Guard::check`] on every request before anything is forwarded, CORS
//! preflights included, and none of its checks allocates for a request that passes.
//!
//! The proxy holds the guard behind an `ArcSwap` and loads it once per request, so SIGHUP
//! can put a new one in place (new keys, rules, hosts, origins, limits) without a lock and
//! without touching a request in flight.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};
use sha2::{Digest, Sha256};

use super::{ProxyError, headers};
use crate::config::{AccessRule, Config};

/// Sent by browsers; `cross-site` / `same-site` requests are refused.
static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// What [`Guard::admit`] decided.
#[derive(Debug)]
pub struct Admission {
    /// The `Access-Control-Allow-Origin` every answer carries, for an allowed `Origin`
    /// (refusals too, so that a page can read them).
    pub cors: Option<HeaderValue>,
    /// Forward, answer a CORS preflight, or refuse.
    pub verdict: Result<Verdict, ProxyError>,
}

/// A request that passed every check.
#[derive(Debug)]
pub enum Verdict {
    /// Forward it.
    Forward,
    /// A CORS preflight from an allowed origin: the proxy answers it itself (Zoho never sees
    /// it) with these headers and 204.
    Preflight(HeaderMap),
}

/// The checks, built once from configuration.
#[derive(Debug)]
pub struct Guard {
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    key_digests: Vec<[u8; 32]>,
    /// The account of each key of `key_digests` listed under an account (`None`: any).
    key_accounts: Vec<Option<String>>,
    /// Some key is bound to an account.
    bound_keys: bool,
    rules: Vec<AccessRule>,
    read_only: bool,
    max_uri_bytes: usize,
    max_header_bytes: usize,
    max_body_bytes: Option<u64>,
    max_in_flight: Option<usize>,
}

// === impl Guard ===

impl Guard {
    /// The guard for this configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            allowed_hosts: config
                .server
                .allowed_hosts
                .iter()
                .map(|h| host_only(h).to_ascii_lowercase())
                .collect(),
            allowed_origins: config
                .server
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            key_digests: config
                .server
                .client_keys
                .iter()
                .chain(config.accounts.iter().flat_map(|a| &a.client_keys))
                .map(|k| digest(k.expose().as_bytes()))
                .collect(),
            key_accounts: config
                .server
                .client_keys
                .iter()
                .map(|_| None)
                .chain(
                    config
                        .accounts
                        .iter()
                        .flat_map(|a| a.client_keys.iter().map(|_| Some(a.oauth.account.clone()))),
                )
                .collect(),
            bound_keys: config.accounts.iter().any(|a| !a.client_keys.is_empty()),
            rules: config.access.rules.clone(),
            read_only: config.access.read_only,
            max_uri_bytes: config.limits.max_uri_bytes,
            max_header_bytes: config.limits.max_header_bytes,
            max_body_bytes: config.limits.max_body_bytes,
            max_in_flight: config.limits.max_in_flight,
        }
    }

    /// Whether client keys are required.
    pub fn requires_keys(&self) -> bool {
        !self.key_digests.is_empty()
    }

    /// The account the request's client key is listed under, if it is one of an account's
    /// keys (`None` for a key of `server.client_keys`, no key, or a wrong one: the key check
    /// answers those). Computes nothing when no key is bound to an account.
    pub fn bound_account(&self, headers: &HeaderMap) -> Option<&str> {
        if !self.bound_keys {
            return None;
        }
        let candidate = digest(presented_key(headers)?.as_bytes());
        self.key_digests
            .iter()
            .zip(&self.key_accounts)
            .find(|(d, _)| constant_time_eq(d, &candidate))
            .and_then(|(_, account)| account.as_deref())
    }

    /// The largest body allowed, if limited.
    pub fn max_body_bytes(&self) -> Option<u64> {
        self.max_body_bytes
    }

    /// The admission step: every refusal, and CORS. `in_flight` is how many requests were
    /// in flight before this one (`limits.max_in_flight`).
    ///
    /// Before the checks of [`Guard::check`] come what a reverse proxy for one upstream must
    /// not forward at all: `CONNECT` (405) and absolute-form targets (`GET http://host/`, how
    /// forward proxies are addressed: 400; HTTP/2 requests always carry scheme and
    /// authority), and a full proxy (503).
    pub fn admit<B>(&self, req: &Request<B>, in_flight: i64) -> Admission {
        let cors = self.cors_origin(req.headers());
        let verdict = self.verdict(req, in_flight);
        Admission { cors, verdict }
    }

    fn verdict<B>(&self, req: &Request<B>, in_flight: i64) -> Result<Verdict, ProxyError> {
        if req.method() == Method::CONNECT {
            return Err(ProxyError::MethodNotAllowed);
        }
        if req.version() <= Version::HTTP_11 && req.uri().authority().is_some() {
            return Err(ProxyError::AbsoluteForm);
        }
        if self
            .max_in_flight
            .is_some_and(|max| usize::try_from(in_flight).unwrap_or(usize::MAX) >= max)
        {
            return Err(ProxyError::Overloaded);
        }
        self.check(req)?;
        Ok(match preflight_headers(req.headers(), req.method()) {
            Some(headers) => Verdict::Preflight(headers),
            None => Verdict::Forward,
        })
    }

    /// Runs every check on a request head.
    ///
    /// # Errors
    /// The [`ProxyError`] to answer with.
    pub fn check<B>(&self, req: &Request<B>) -> Result<(), ProxyError> {
        let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if target_len > self.max_uri_bytes {
            return Err(ProxyError::UriTooLong(self.max_uri_bytes));
        }
        if header_bytes(req.headers()) > self.max_header_bytes {
            return Err(ProxyError::HeadersTooLarge(self.max_header_bytes));
        }
        // hyper refuses codings after `chunked`; one before it (`gzip, chunked`) would be
        // dropped silently when the body is re-framed upstream, so only plain `chunked` passes.
        if req
            .headers()
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .any(|te| !te.as_bytes().eq_ignore_ascii_case(b"chunked"))
        {
            return Err(ProxyError::TransferCoding);
        }
        if let (Some(max), Some(declared)) = (self.max_body_bytes, content_length(req.headers()))
            && declared > max
        {
            return Err(ProxyError::BodyTooLarge(max));
        }
        check_target(req)?;
        self.check_host(req.headers(), req.uri())?;
        self.check_origin(req.headers())?;
        self.check_key(req.headers())?;
        self.check_access(req.method(), req.uri().path())
    }

    /// The CORS headers for an allowed `Origin`, or `None` (no CORS headers otherwise).
    pub fn cors_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.origin_allowed(text).then(|| origin.clone())
    }

    fn check_host(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), ProxyError> {
        let host = match headers.get(header::HOST) {
            Some(value) => value.to_str().map_err(|_| ProxyError::ForbiddenHost)?,
            // HTTP/2 carries it as :authority, which hyper puts in the URI.
            None => uri
                .authority()
                .map(|a| a.as_str())
                .ok_or(ProxyError::MissingHost)?,
        };
        let name = host_only(host);
        if self
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
        {
            Ok(())
        } else {
            tracing::warn!(host = %truncate(host), "refused a request for a host outside server.allowed_hosts");
            Err(ProxyError::ForbiddenHost)
        }
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), ProxyError> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
            if allowed {
                return Ok(());
            }
            tracing::warn!(origin = %truncate(origin.to_str().unwrap_or("?")), "refused a cross-site browser request");
            return Err(ProxyError::CrossSite);
        }
        match headers.get(&SEC_FETCH_SITE).and_then(|v| v.to_str().ok()) {
            Some(site)
                if site.eq_ignore_ascii_case("cross-site")
                    || site.eq_ignore_ascii_case("same-site") =>
            {
                tracing::warn!(
                    sec_fetch_site = site,
                    "refused a cross-site browser request"
                );
                Err(ProxyError::CrossSite)
            }
            _ => Ok(()),
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }

    fn check_key(&self, headers: &HeaderMap) -> Result<(), ProxyError> {
        if self.key_digests.is_empty() {
            return Ok(());
        }
        let Some(key) = presented_key(headers) else {
            return Err(ProxyError::ClientKeyRequired);
        };
        let candidate = digest(key.as_bytes());
        // Compare against every key without stopping early.
        let matched = self
            .key_digests
            .iter()
            .fold(false, |found, d| found | constant_time_eq(d, &candidate));
        if matched {
            Ok(())
        } else {
            tracing::warn!("refused a request with a wrong client key");
            Err(ProxyError::ClientKeyRequired)
        }
    }

    fn check_access(&self, method: &Method, path: &str) -> Result<(), ProxyError> {
        if self.read_only && method != Method::GET && method != Method::HEAD {
            tracing::warn!(http.method = %method, http.path = path, "refused by access.read_only");
            return Err(ProxyError::Forbidden(
                "access.read_only allows GET and HEAD only",
            ));
        }
        if self.rules.is_empty() || self.rules.iter().any(|r| r.matches(method.as_str(), path)) {
            return Ok(());
        }
        tracing::warn!(http.method = %method, http.path = path, "refused by access.rules");
        Err(ProxyError::Forbidden(
            "the request matches none of access.rules",
        ))
    }
}

// === impl AccessRule: matching (the guard owns it; config only parses rules) ===

impl AccessRule {
    /// Whether a request with this method and path (no query) is allowed by the rule.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if self.method != "*" && !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let Some(path) = path.strip_prefix('/') else {
            return false;
        };
        let path: Vec<&str> = path.split('/').collect();
        glob(&self.segments, &path)
    }
}

/// The key of `Proxy-Authorization: Bearer <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::PROXY_AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
}

/// Segment glob: `*` one segment, `**` zero or more.
///
/// Dynamic programming over (pattern suffix, path suffix), one row at a time: O(pattern ×
/// path) time, O(path) memory. A backtracking matcher is exponential in the number of `**`
/// (`/**/**/**/**/**/**/**/**/x` against a long path took seconds; found by the
/// `access_rules` fuzz target).
fn glob(pattern: &[String], path: &[&str]) -> bool {
    let n = path.len();
    // `next[j]`: whether the pattern after the current segment matches `path[j..]`.
    // Before any segment, the empty pattern matches only the empty path.
    let mut next = vec![false; n + 1];
    next[n] = true;
    let mut row = vec![false; n + 1];
    for segment in pattern.iter().rev() {
        if segment == "**" {
            // `**` then the rest matches path[j..] when the rest matches some path[k..], k >= j.
            row[n] = next[n];
            for j in (0..n).rev() {
                row[j] = next[j] || row[j + 1];
            }
        } else {
            row[n] = false;
            for j in 0..n {
                row[j] = (segment == "*" || segment == path[j]) && next[j + 1];
            }
        }
        std::mem::swap(&mut row, &mut next);
    }
    next[0]
}

/// The answer headers of a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`), or `None` for any other request. Preflights from
/// origins that are not allowed were refused by the checks like any cross-site request.
fn preflight_headers(headers: &HeaderMap, method: &Method) -> Option<HeaderMap> {
    if method != Method::OPTIONS || !headers.contains_key(header::ORIGIN) {
        return None;
    }
    let requested = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
    let mut out = HeaderMap::new();
    out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, requested.clone());
    if let Some(names) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, names.clone());
    }
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    Some(out)
}

/// Refuses a head that is ambiguous about where it goes (step 2 of the [module
/// docs](self)): more than one `Host`, an HTTP/2 `host` that disagrees with `:authority`, a
/// dot segment in the path. The query is not looked at (`?next=../x` passes).
fn check_target<B>(req: &Request<B>) -> Result<(), ProxyError> {
    let headers = req.headers();
    if headers::has_duplicate_host(headers) {
        tracing::warn!("refused a request with more than one Host header");
        return Err(ProxyError::DuplicateHost);
    }
    // RFC 9113 §8.3.1: a server SHOULD treat an HTTP/2 request whose `host` identifies
    // another entity than `:authority` as malformed, and an intermediary MUST compare them
    // after scheme-based normalisation. This proxy does: it would otherwise match
    // `server.allowed_hosts` against one name while the request claims another, and an
    // HTTP/2 client never needs to send both (curl and hyper send `:authority` alone). The
    // rule is HTTP/2's: an HTTP/1.1 absolute-form target overrides `Host` instead (RFC 9112
    // §3.2.2), and such targets are refused before the guard anyway.
    if req.version() >= Version::HTTP_2
        && let (Some(host), Some(authority)) = (headers.get(header::HOST), req.uri().authority())
    {
        let default_port = match req.uri().scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        };
        if headers::host_disagrees_with_authority(host, authority, default_port) {
            tracing::warn!(host = %truncate(host.to_str().unwrap_or("?")), "refused an HTTP/2 request whose host disagrees with :authority");
            return Err(ProxyError::HostMismatch);
        }
    }
    let path = req.uri().path();
    if headers::has_dot_segment(path) {
        tracing::warn!(http.path = %truncate(path), "refused a request path with a dot segment");
        return Err(ProxyError::DotSegment);
    }
    Ok(())
}

/// The host part of a `Host` value: `[::1]:8080` → `[::1]`, `localhost:8080` → `localhost`.
fn host_only(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Caps client-supplied text before it is logged.
fn truncate(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> AccessRule {
        AccessRule::parse(text).unwrap()
    }

    #[test]
    fn access_rules_glob_by_segment() {
        let r = rule("GET /api/v2/**");
        assert!(r.matches("GET", "/api/v2/user.json"));
        assert!(r.matches("get", "/api/v2/1/sessions/2.json"));
        assert!(r.matches("GET", "/api/v2"));
        assert!(!r.matches("POST", "/api/v2/user.json"));
        assert!(!r.matches("GET", "/meeting/api/v2/x"));
        let r = rule("POST /api/v2/*/sessions.json");
        assert!(r.matches("POST", "/api/v2/123/sessions.json"));
        assert!(!r.matches("POST", "/api/v2/123/456/sessions.json"));
        assert!(!r.matches("POST", "/api/v2/sessions.json"));
        assert!(rule("* /**").matches("DELETE", "/anything/at/all"));
    }

    #[test]
    fn double_star_glob_is_not_exponential() {
        // Regression, fuzz target `access_rules` (timeout): the backtracking matcher took
        // seconds on eight `**` and ~40 segments, and doubled with each further `**`.
        let r = rule(&format!("* {}/x", "/**".repeat(12)));
        let long = "/a".repeat(2000);
        let start = std::time::Instant::now();
        assert!(!r.matches("GET", &long));
        assert!(r.matches("GET", &format!("{long}/x")));
        assert!(r.matches("GET", "/x"));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn glob_edge_cases() {
        assert!(rule("GET /**").matches("GET", "/"));
        assert!(rule("GET /").matches("GET", "/"));
        assert!(!rule("GET /").matches("GET", "/a"));
        assert!(rule("GET /*").matches("GET", "/"));
        assert!(!rule("GET /*").matches("GET", "/a/b"));
        assert!(rule("GET /a/**/b/**").matches("GET", "/a/x/y/b"));
        assert!(rule("GET /a/**/b/*").matches("GET", "/a/b/c"));
        assert!(!rule("GET /a/**/b/*").matches("GET", "/a/x/b"));
        assert!(rule("GET /**/**").matches("GET", "/a//b/"));
        assert!(!rule("GET /api/**").matches("GET", "api/v2"));
    }

    use crate::config::Config;

    #[test]
    fn an_accounts_keys_choose_it_and_are_required_like_the_others() {
        let g = guard(&[
            ("server.client_keys", vec!["any"].into()),
            ("accounts.acme.refresh_token", "1000.acme".into()),
            ("accounts.acme.client_keys", vec!["acme-1", "acme-2"].into()),
            ("accounts.globex.refresh_token", "1000.globex".into()),
        ]);
        let h = ("host", "localhost");
        let with = |key: &str| {
            let value = format!("Bearer {key}");
            let request = req("GET", "/", &[h, ("proxy-authorization", &value)]);
            (
                status(g.check(&request)),
                g.bound_account(request.headers()).map(str::to_owned),
            )
        };
        assert_eq!(with("acme-2"), (200, Some("acme".to_owned())));
        assert_eq!(with("acme-1"), (200, Some("acme".to_owned())));
        assert_eq!(with("any"), (200, None));
        assert_eq!(with("nope"), (407, None));
        assert_eq!(status(g.check(&req("GET", "/", &[h]))), 407);
        // Keys only under an account: still required of every request.
        let g = guard(&[
            ("accounts.acme.refresh_token", "1000.acme".into()),
            ("accounts.acme.client_keys", vec!["acme-1"].into()),
        ]);
        assert!(g.requires_keys());
        assert_eq!(status(g.check(&req("GET", "/", &[h]))), 407);
        // None anywhere: none bound, nothing computed.
        let g = guard(&[("accounts.acme.refresh_token", "1000.acme".into())]);
        let request = req("GET", "/", &[h, ("proxy-authorization", "Bearer x")]);
        assert_eq!(g.bound_account(request.headers()), None);
        assert_eq!(status(g.check(&request)), 200);
    }

    fn guard(pairs: &[(&str, toml::Value)]) -> Guard {
        let mut figment = figment::Figment::new();
        for (k, v) in pairs {
            figment = figment.merge((*k, v.clone()));
        }
        Guard::new(&Config::from_figment(&figment, None).unwrap())
    }

    fn req(method: &str, target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(target);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn status(r: Result<(), ProxyError>) -> u16 {
        match r {
            Ok(()) => 200,
            Err(e) => e.classify().0.as_u16(),
        }
    }

    #[test]
    fn hosts_match_with_any_port() {
        let g = guard(&[]);
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert_eq!(
                status(g.check(&req("GET", "/", &[("host", host)]))),
                200,
                "{host}"
            );
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.2",
            "localhost.evil.example",
            "[::2]",
        ] {
            assert_eq!(
                status(g.check(&req("GET", "/", &[("host", host)]))),
                403,
                "{host}"
            );
        }
        assert_eq!(
            status(g.check(&req("GET", "/", &[]))),
            400,
            "no Host at all"
        );
        // HTTP/2: the authority.
        assert_eq!(
            status(g.check(&req("GET", "http://localhost:8080/x", &[]))),
            200
        );
    }

    #[test]
    fn cross_site_browser_requests_are_refused() {
        let g = guard(&[(
            "server.allowed_origins",
            vec!["http://localhost:3000"].into(),
        )]);
        let h = ("host", "localhost");
        assert_eq!(
            status(g.check(&req("POST", "/", &[h, ("origin", "https://evil.example")]))),
            403
        );
        assert_eq!(
            status(g.check(&req("POST", "/", &[h, ("origin", "null")]))),
            403
        );
        assert_eq!(
            status(g.check(&req("GET", "/", &[h, ("sec-fetch-site", "cross-site")]))),
            403
        );
        assert_eq!(
            status(g.check(&req("GET", "/", &[h, ("sec-fetch-site", "same-site")]))),
            403
        );
        assert_eq!(
            status(g.check(&req("GET", "/", &[h, ("sec-fetch-site", "none")]))),
            200
        );
        assert_eq!(
            status(g.check(&req("GET", "/", &[h, ("sec-fetch-site", "same-origin")]))),
            200
        );
        let allowed = [
            h,
            ("origin", "http://localhost:3000"),
            ("sec-fetch-site", "same-site"),
        ];
        assert_eq!(status(g.check(&req("POST", "/", &allowed))), 200);
        assert!(
            g.cors_origin(&req("GET", "/", &allowed).headers().clone())
                .is_some()
        );
        assert!(
            g.cors_origin(
                &req("GET", "/", &[h, ("origin", "https://evil.example")])
                    .headers()
                    .clone()
            )
            .is_none()
        );
    }

    #[test]
    fn client_keys_are_required_when_configured() {
        let g = guard(&[("server.client_keys", vec!["k-one", "k-two"].into())]);
        let h = ("host", "localhost");
        assert_eq!(status(g.check(&req("GET", "/", &[h]))), 407);
        assert_eq!(
            status(g.check(&req(
                "GET",
                "/",
                &[h, ("proxy-authorization", "Bearer nope")]
            ))),
            407
        );
        assert_eq!(
            status(g.check(&req(
                "GET",
                "/",
                &[h, ("proxy-authorization", "Basic k-one")]
            ))),
            407
        );
        assert_eq!(
            status(g.check(&req(
                "GET",
                "/",
                &[h, ("proxy-authorization", "Bearer k-two")]
            ))),
            200
        );
        assert_eq!(
            status(g.check(&req(
                "GET",
                "/",
                &[h, ("proxy-authorization", "bearer  k-one ")]
            ))),
            200
        );
    }

    #[test]
    fn access_rules_and_read_only() {
        let g = guard(&[(
            "access.rules",
            vec!["GET /api/v2/**", "POST /api/v2/*/sessions.json"].into(),
        )]);
        let h = ("host", "localhost");
        assert_eq!(status(g.check(&req("GET", "/api/v2/user.json", &[h]))), 200);
        assert_eq!(
            status(g.check(&req("POST", "/api/v2/1/sessions.json", &[h]))),
            200
        );
        assert_eq!(
            status(g.check(&req("DELETE", "/api/v2/1/sessions/2.json", &[h]))),
            403
        );
        assert_eq!(
            status(g.check(&req("GET", "/meeting/api/v2/1/recordings.json", &[h]))),
            403
        );
        let g = guard(&[("access.read_only", true.into())]);
        assert_eq!(status(g.check(&req("HEAD", "/x", &[h]))), 200);
        assert_eq!(status(g.check(&req("PUT", "/x", &[h]))), 403);
    }

    #[test]
    fn limits() {
        let g = guard(&[
            ("limits.max_uri_bytes", 20.into()),
            ("limits.max_header_bytes", 200.into()),
            ("limits.max_body_bytes", 10.into()),
        ]);
        let h = ("host", "localhost");
        assert_eq!(
            status(g.check(&req("GET", "/0123456789012345678901", &[h]))),
            414
        );
        let big = "x".repeat(300);
        assert_eq!(
            status(g.check(&req("GET", "/", &[h, ("x-big", &big)]))),
            431
        );
        assert_eq!(
            status(g.check(&req("POST", "/", &[h, ("content-length", "11")]))),
            413
        );
        assert_eq!(
            status(g.check(&req("POST", "/", &[h, ("content-length", "10")]))),
            200
        );
    }

    fn h2_req(target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut r = req("GET", target, headers);
        *r.version_mut() = Version::HTTP_2;
        r
    }

    fn problem(r: Result<(), ProxyError>) -> &'static str {
        match r {
            Ok(()) => "none",
            Err(e) => e.classify().1,
        }
    }

    #[test]
    fn more_than_one_host_is_400_before_the_host_is_judged() {
        let g = guard(&[]);
        let mut two = req("GET", "/", &[("host", "localhost")]);
        two.headers_mut()
            .append(header::HOST, HeaderValue::from_static("localhost"));
        assert_eq!(problem(g.check(&two)), "duplicate-host");
        assert_eq!(status(g.check(&two)), 400);
        // Not a 403: the duplicate is refused whatever the names are.
        let mut foreign = req("GET", "/", &[("host", "evil.example")]);
        foreign
            .headers_mut()
            .append(header::HOST, HeaderValue::from_static("localhost"));
        assert_eq!(problem(g.check(&foreign)), "duplicate-host");
        assert_eq!(
            problem(g.check(&req("GET", "/", &[("host", "localhost, localhost")]))),
            "duplicate-host"
        );
        // HTTP/2 too.
        let mut h2 = h2_req("http://localhost/", &[("host", "localhost")]);
        h2.headers_mut()
            .append(header::HOST, HeaderValue::from_static("localhost"));
        assert_eq!(problem(g.check(&h2)), "duplicate-host");
        assert_eq!(problem(g.check(&req("GET", "/", &[]))), "missing-host");
    }

    #[test]
    fn http2_host_must_agree_with_authority() {
        let g = guard(&[]);
        let ok = [
            h2_req("http://localhost:8080/x", &[]),
            h2_req("http://localhost:8080/x", &[("host", "localhost:8080")]),
            h2_req("http://localhost/x", &[("host", "LOCALHOST:80")]),
            h2_req("https://localhost:443/x", &[("host", "localhost")]),
        ];
        for r in &ok {
            assert_eq!(status(g.check(r)), 200, "{:?}", r.headers());
        }
        let bad = [
            // An allowed host header cannot vouch for a foreign :authority, nor the reverse.
            h2_req("http://evil.example:8080/x", &[("host", "localhost:8080")]),
            h2_req("http://localhost:8080/x", &[("host", "evil.example:8080")]),
            h2_req("http://localhost:8080/x", &[("host", "localhost:8081")]),
            h2_req("https://localhost/x", &[("host", "localhost:80")]),
        ];
        for r in &bad {
            assert_eq!(problem(g.check(r)), "host-mismatch", "{}", r.uri());
        }
        // HTTP/1.1 with an absolute-form target: RFC 9112 §3.2.2 lets the target win (the
        // proxy refuses such targets before the guard).
        assert_eq!(
            status(g.check(&req(
                "GET",
                "http://localhost:8080/x",
                &[("host", "localhost:9")]
            ))),
            200
        );
    }

    #[test]
    fn dot_segments_are_400_even_where_rules_would_allow_the_raw_path() {
        let g = guard(&[("access.rules", vec!["GET /api/v2/**"].into())]);
        let h = ("host", "localhost");
        for target in [
            "/api/v2/../../echo/x",
            "/api/v2/%2e%2e/%2E%2E/echo/x",
            "/api/v2/./user.json",
            "/api/v2/..%2f..%2fecho",
        ] {
            assert_eq!(
                problem(g.check(&req("GET", target, &[h]))),
                "dot-segment",
                "{target}"
            );
            assert_eq!(
                problem(g.check(&h2_req(&format!("http://localhost{target}"), &[]))),
                "dot-segment",
                "HTTP/2 {target}"
            );
        }
        for target in [
            "/api/v2/user.json?next=../x",
            "/api/v2/..b/c",
            "/api/v2/b.",
            "/api/v2//b",
        ] {
            assert_eq!(status(g.check(&req("GET", target, &[h]))), 200, "{target}");
        }
        // Refused before the client key is looked at, and for preflights too.
        let g = guard(&[
            ("server.client_keys", vec!["k"].into()),
            (
                "server.allowed_origins",
                vec!["http://localhost:3000"].into(),
            ),
        ]);
        let preflight = req(
            "OPTIONS",
            "/a/%2e%2e/b",
            &[
                h,
                ("origin", "http://localhost:3000"),
                ("access-control-request-method", "POST"),
            ],
        );
        assert_eq!(problem(g.check(&preflight)), "dot-segment");
    }

    #[test]
    fn host_parsing() {
        assert_eq!(host_only("[::1]:80"), "[::1]");
        assert_eq!(host_only("[::1]"), "[::1]");
        assert_eq!(host_only("a.b:80"), "a.b");
        assert_eq!(host_only("a.b"), "a.b");
        assert_eq!(host_only("a.b:x"), "a.b:x");
    }
}
