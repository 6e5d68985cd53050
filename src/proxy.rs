//! The request path: one client request in, one upstream request out, the answer streamed
//! back.
//!
//! Each client connection gets its own service, [`Proxy::connection`], which keeps the
//! connection's upstream connections (one [`Affinity`] per route) and the connection's span;
//! hyper calls it for every request on the connection. A request then goes through these
//! phases (the names follow pingora's hooks):
//! 1. admission (`handle`): the account is chosen ([`account`]: `X-Zoho-Account`, removed
//!    here so that it never reaches Zoho, else the account the client key is bound to, else
//!    `default`), then its route ([`route`]); the request id is kept or made,
//!    and the request span opened as a child of the connection's. [`Guard::admit`] refuses,
//!    before anything else, what a reverse proxy for one upstream must not forward —
//!    `CONNECT` (405) and absolute-form targets (400) — and a request beyond
//!    `limits.max_in_flight` (503), then runs the [`guard`]'s checks (sizes, an ambiguous
//!    head, `Host`, `Origin`, client keys, access rules). A CORS preflight from an allowed
//!    origin is answered here with 204 and never forwarded.
//! 2. `upstream_request`: the target becomes origin-form under the route's upstream URL, path
//!    and query exactly as received; hop-by-hop headers and the client's credentials
//!    (`Authorization`, `Cookie`, `Proxy-Authorization`) go; `Host` becomes the upstream's and
//!    `X-Request-Id` is set. A body up to `upstream.replay_body_limit` is then kept in memory
//!    for a replay (one of unknown length is read up to that limit first), a larger one
//!    streams; and the token is read from the [`TokenSource`] (one atomic load; only when
//!    there is none does the request wait for one). Each account has its own token source:
//!    a request only ever carries its account's token.
//! 3. `send`: `Authorization` is set to the token's prebuilt header value
//!    ([`headers::override_authorization`]: a reference-count bump, no allocation), and the
//!    request goes out on one of the connection's upstream connections, bounded by
//!    `upstream.timeout` until the response head.
//! 4. `downstream_response`: a 400/401 is peeked (at most [`rejection::PEEK_LIMIT`] bytes)
//!    for a token rejection; on one, the rejection is reported to the [`TokenSource`]: the
//!    token is refreshed once — single-flight, so fifty rejected requests cause one mint —
//!    and the request replayed if its body was kept (at most twice, `MAX_REPLAYS`). When no
//!    replacement can be had the token is dead and the request gets 503 with `Retry-After`;
//!    when the rejected token was a replacement that Zoho rejected before accepting any
//!    request with it, Zoho's answer passes through. Any other answer marks the token
//!    accepted (an atomic load once it is) and streams back untouched apart from hop-by-hop
//!    headers.
//! 5. completion (`Completion::finish`): one event per request when the response body ends
//!    or is dropped, with method, path (never the query), status, bytes, latencies, request
//!    id and whether it was replayed, and the request's metrics.
//!
//! Failures the proxy answers itself (refusals, timeouts, an unreachable upstream, no token)
//! are [`ProxyError`]s rendered as problem+json; every answer carries the request's
//! `X-Request-Id`, and the allowed `Origin` in `Access-Control-Allow-Origin` when there is one.

pub mod account;
pub mod body;
pub mod error;
pub mod guard;
pub mod headers;
pub mod route;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use http::header::HeaderValue;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;
use tracing::{Instrument as _, Span};

use self::account::{Account, Accounts, Choice};
use self::body::ResponseBody;
pub use self::error::ProxyError;
pub use self::guard::Guard;
use self::guard::Verdict;
use self::headers::X_REQUEST_ID;
use self::route::Route;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::server::{Busy, Idle};
use crate::telemetry;
use crate::telemetry::error_chain;
use crate::token::{self, AccessToken, Rejection, rejection};
use crate::upstream::Affinity;
use crate::upstream::body::{self as request_body, RequestBody, UpstreamBody};

/// Replays of one request at most: one per token that Zoho rejects while the request is in
/// flight. A second happens only when the replacement served other requests and was revoked
/// before this replay reached Zoho; a replacement rejected before any acceptance is never
/// replayed (see [`Rejection::Repeated`]).
const MAX_REPLAYS: u32 = 2;

/// The forwarding service, shared by every connection.
pub struct Proxy {
    timeout: Duration,
    replay_limit: u64,
    metrics: Arc<Metrics>,
    /// The guard and the accounts, replaced on reload; each request loads them once.
    current: ArcSwap<Current>,
    /// 8 random hex digits, this process's prefix of generated request ids.
    id_prefix: [u8; 8],
    next_id: AtomicU64,
    /// `log.requests`.
    log_requests: AtomicBool,
}

/// What a request sees from start to end, whatever a reload does meanwhile.
#[derive(Debug)]
struct Current {
    guard: Arc<Guard>,
    accounts: Arc<Accounts>,
}

/// What the completion of one request reports.
#[derive(Debug)]
pub(crate) struct Completion {
    started: Instant,
    method: Method,
    uri: Uri,
    status: StatusCode,
    upstream_latency: Option<Duration>,
    request_id: HeaderValue,
    replayed: bool,
    /// The index of the route (the metrics' `route` label).
    route: usize,
    /// The account chosen (its index among the request's accounts), or why none was.
    account: Choice,
    /// The guard and accounts the request saw.
    current: Arc<Current>,
    metrics: Arc<Metrics>,
    /// `log.requests`: the request's line at `info`, else at `debug`.
    log_at_info: bool,
    /// The request in flight on its HTTP/1 connection, until the completion runs.
    _busy: Option<Busy>,
}

/// The service of one client connection, which hyper calls for each of its requests (one
/// after another on HTTP/1.1, concurrently on HTTP/2).
///
/// It holds the shared [`Proxy`], the upstream connections this client connection keeps (an
/// [`Affinity`] per route) and the connection's span, the parent of each request's span.
/// Each request holds the connection's state until its response is handed back, so the
/// upstream connections are parked for other client connections once the connection has
/// closed and its last request ended. Made by [`Proxy::connection`].
///
/// `R` is the closure that answers a request ([`ConnectionState::handle`]). It is a type
/// parameter only so that the `Service` impl can name the future of one request, whose type
/// cannot be written out: boxing that future instead would allocate (and copy) a request's
/// whole state for every request, and a function pointer would keep the call from being
/// inlined, which costs a copy too.
struct Connection<R> {
    state: Arc<ConnectionState>,
    respond: R,
}

/// What a [`Connection`]'s requests share.
struct ConnectionState {
    proxy: Arc<Proxy>,
    /// One per upstream client, in the order of [`route::Upstreams`] when the connection
    /// opened ([`Route`]'s `slot`).
    upstreams: Box<[Affinity]>,
    /// The connection's span: a [`telemetry::CONNECTION_SPAN`].
    span: Span,
    /// [`telemetry::HTTP_PROTOCOL`] has been recorded, or the span is disabled.
    protocol_known: AtomicBool,
    /// Whether a request is in flight, for the server's idle deadline.
    idle: Arc<Idle>,
}

/// What forwarding produced, before completion is attached.
struct Forwarded {
    response: Response<ResponseBody>,
    upstream_latency: Option<Duration>,
    replayed: bool,
}

/// An upstream response whose body may have been partly read.
struct Peeked {
    head: Bytes,
    rest: Option<UpstreamBody>,
}

// === impl Proxy ===

impl Proxy {
    /// A proxy for `accounts` (each with its tokens and [`route`]s).
    pub fn new(config: &Config, accounts: Accounts, metrics: Arc<Metrics>) -> Self {
        let mut id_prefix = [0u8; 8];
        id_prefix.copy_from_slice(format!("{:08x}", rand::random::<u32>()).as_bytes());
        Self {
            timeout: config.upstream.timeout,
            replay_limit: config.upstream.replay_body_limit,
            metrics,
            current: ArcSwap::from_pointee(Current {
                guard: Arc::new(Guard::new(config)),
                accounts: Arc::new(accounts),
            }),
            id_prefix,
            next_id: AtomicU64::new(1),
            log_requests: AtomicBool::new(config.log.requests),
        }
    }

    /// `log.requests` from a reloaded configuration.
    pub fn set_log_requests(&self, on: bool) {
        self.log_requests.store(on, Ordering::Relaxed);
    }

    /// Puts a guard built from a reloaded configuration in place: requests that start from
    /// now on are checked by it; requests in flight keep the one they started with.
    pub fn set_guard(&self, guard: Guard) {
        let accounts = self.current.load().accounts.clone();
        self.current.store(Arc::new(Current {
            guard: Arc::new(guard),
            accounts,
        }));
    }

    /// Puts a guard and a table of accounts from a reloaded configuration in place at once
    /// (the guard's client keys name the accounts): requests that start from now on see
    /// them; requests in flight finish with the ones they started with.
    pub fn set_accounts(&self, guard: Guard, accounts: Accounts) {
        self.current.store(Arc::new(Current {
            guard: Arc::new(guard),
            accounts: Arc::new(accounts),
        }));
    }

    /// The accounts requests are served for now.
    pub fn accounts(&self) -> Arc<Accounts> {
        self.current.load().accounts.clone()
    }

    /// The service (hyper's) of a new client connection, whose requests' spans are children
    /// of `span` (a [`telemetry::CONNECTION_SPAN`]; its [`telemetry::HTTP_PROTOCOL`] is
    /// recorded at the first request): it keeps the connection's upstream connections, one
    /// set per route, hands each request to the request path, and tells `idle` when one is
    /// in flight.
    pub fn connection(
        self: &Arc<Self>,
        span: Span,
        idle: Arc<Idle>,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<ResponseBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Send
    + 'static {
        let upstreams = self
            .current
            .load()
            .accounts
            .upstreams()
            .iter()
            .map(|upstream| Affinity::new(upstream.clone()))
            .collect();
        Connection {
            state: Arc::new(ConnectionState {
                proxy: self.clone(),
                upstreams,
                protocol_known: AtomicBool::new(span.is_disabled()),
                span,
                idle,
            }),
            // The request holds the connection's state until its response is handed back. A
            // closure, not an `async fn`: that would copy the request once more, moving its
            // argument into a local.
            respond: |state: Arc<ConnectionState>, req| async move { Ok(state.handle(req).await) },
        }
    }

    /// The client's `X-Request-Id` when it is sound, else a new one.
    ///
    /// Marked sensitive, which HTTP/2's HPACK encodes as a literal never indexed: a value
    /// that never repeats would otherwise be added to the connection's dynamic table with
    /// every request, evicting the entries that do repeat, after a walk comparing it with
    /// every id already there (h2's `Table::index_occupied`). Over an HTTP/2 upstream that
    /// was 7.6 % of ours' instructions per request: HPACK and its comparisons went from
    /// 15.5 % of them to 8.5 % (callgrind on the `tls` part's HTTP/2 run, normalised by
    /// hyper's response head encoding, one per request). HTTP/1.1 ignores the mark.
    fn request_id(&self, headers: &HeaderMap) -> HeaderValue {
        let mut id = match headers.get(&X_REQUEST_ID) {
            Some(id) if headers::is_valid_request_id(id) => id.clone(),
            _ => generated_request_id(
                &self.id_prefix,
                self.next_id.fetch_add(1, Ordering::Relaxed),
            ),
        };
        id.set_sensitive(true);
        id
    }

    /// Keeps bodies up to `upstream.replay_body_limit` in memory for the replay; streams
    /// the rest, limited to `max_body` (`limits.max_body_bytes`).
    ///
    /// A body that may fit (a `Content-Length` within the limit, or an unknown length:
    /// chunked, HTTP/2 without `content-length`) is read up to the limit, bounded by
    /// `upstream.timeout`: one that ends within it is kept; a longer one streams on, the
    /// bytes already read first, and is not replayed. A declared length over the limit
    /// streams without being read first.
    async fn keep_for_replay(
        &self,
        body: Incoming,
        max_body: Option<u64>,
    ) -> Result<Kept, ProxyError> {
        let hint = body.size_hint();
        // No body (most GETs): nothing to read, no timer to arm.
        if hint.exact() == Some(0) && body.is_end_stream() {
            return Ok(Kept::Buffered(Bytes::new()));
        }
        if hint.lower() > self.replay_limit {
            return Ok(Kept::Stream(RequestBody::stream(body, max_body)));
        }
        let start = request_body::read_start(body, max_body, self.replay_limit);
        match tokio::time::timeout(self.timeout, start).await {
            Ok(Ok(request_body::Start::Whole(bytes))) => Ok(Kept::Buffered(bytes)),
            Ok(Ok(request_body::Start::Longer(body))) => Ok(Kept::Stream(body)),
            Ok(Err(error)) => Err(too_large(&*error).unwrap_or(ProxyError::BodyIncomplete)),
            Err(_) => Err(ProxyError::BodyIncomplete),
        }
    }

    /// Reads up to [`rejection::PEEK_LIMIT`] bytes of a 400/401 body.
    async fn peek(&self, mut body: UpstreamBody) -> Peeked {
        let mut head = BytesMut::new();
        let deadline = Instant::now() + self.timeout;
        while head.len() < rejection::PEEK_LIMIT {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        head.extend_from_slice(&data);
                    }
                }
                Ok(None) | Ok(Some(Err(_))) => {
                    return Peeked {
                        head: head.freeze(),
                        rest: None,
                    };
                }
                Err(_) => break,
            }
        }
        Peeked {
            head: head.freeze(),
            rest: Some(body),
        }
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("accounts", &self.current.load().accounts)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

// === impl Connection ===

impl<R, F> hyper::service::Service<Request<Incoming>> for Connection<R>
where
    R: Fn(Arc<ConnectionState>, Request<Incoming>) -> F,
    F: Future<Output = Result<Response<ResponseBody>, Infallible>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = F;

    fn call(&self, req: Request<Incoming>) -> F {
        (self.respond)(self.state.clone(), req)
    }
}

// === impl ConnectionState ===

impl ConnectionState {
    /// Handles one request: the guard's admission, then [`ConnectionState::forward`], a
    /// CORS preflight's answer or a refusal, and the completion attached to the response
    /// body. Never fails: errors become problem+json responses.
    async fn handle(&self, mut req: Request<Incoming>) -> Response<ResponseBody> {
        let proxy = &*self.proxy;
        let started = Instant::now();
        let busy = self.idle.busy(req.version());
        if !self.protocol_known.load(Ordering::Relaxed) {
            self.record_protocol(req.version());
        }
        // One atomic load: this request sees one guard and one table of accounts from start
        // to end, whatever a reload does meanwhile.
        let current = proxy.current.load_full();
        let guard = &*current.guard;
        // The account's header never reaches Zoho.
        let named = account::take_header(req.headers_mut());
        let choice = current
            .accounts
            .choose(named, guard.bound_account(req.headers()));
        let account_index = match choice {
            Choice::Account(index) => index,
            Choice::Unknown | Choice::Forbidden => 0,
        };
        let account = current.accounts.get(account_index);
        let (route_index, route) = account.routes.select(req.uri().path());
        let before = proxy.metrics.in_flight().inc();
        let request_id = proxy.request_id(req.headers());
        let method = req.method().clone();
        let uri = req.uri().clone();
        // Every log line of this request names it, guard refusals included; on HTTP/2 the
        // request runs in a task of its own, hence the explicit parent.
        let span = tracing::info_span!(
            parent: &self.span,
            "request",
            request.id = %request_id.to_str().unwrap_or("-"),
            http.method = %method,
            http.path = uri.path(),
            account = current.accounts.name(choice),
            route = route.label(),
        );
        let admission = span.in_scope(|| guard.admit(&req, before));
        let result = match (admission.verdict, choice) {
            (Ok(Verdict::Forward), Choice::Account(_)) => {
                // Boxed: hyper keeps a slot the size of this request's future for the whole
                // life of its connection, and forwarding's state is most of it (3,360 of
                // 4,744 bytes). An idle keep-alive connection holds 3.7 KB less (25.5 →
                // 21.8 KB with an HTTP/2 upstream, `ZMP_BENCH_PARTS=memory`), for 0.3 % more
                // instructions per request (37,386 → 37,492).
                Box::pin(self.forward(req, &request_id, guard, account, route))
                    .instrument(span.clone())
                    .await
            }
            (Ok(_), Choice::Unknown) => Err(ProxyError::UnknownAccount),
            (Ok(_), Choice::Forbidden) => Err(ProxyError::AccountForbidden),
            (Ok(Verdict::Preflight(headers)), Choice::Account(_)) => {
                Ok(Forwarded::answer(StatusCode::NO_CONTENT, headers))
            }
            (Err(refusal), _) => Err(refusal),
        };
        let forwarded = match result {
            Ok(f) => f,
            Err(error) => {
                span.in_scope(|| log_proxy_error(&error));
                let (parts, body) = error.to_response().into_parts();
                Forwarded {
                    response: Response::from_parts(parts, ResponseBody::full(body)),
                    upstream_latency: None,
                    replayed: false,
                }
            }
        };
        let (mut parts, body) = forwarded.response.into_parts();
        parts.headers.insert(&X_REQUEST_ID, request_id.clone());
        if let Some(origin) = admission.cors {
            parts
                .headers
                .insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            parts
                .headers
                .append(http::header::VARY, HeaderValue::from_static("Origin"));
        }
        let completion = Completion {
            started,
            method,
            uri,
            status: parts.status,
            upstream_latency: forwarded.upstream_latency,
            request_id,
            replayed: forwarded.replayed,
            route: route_index,
            account: choice,
            current,
            metrics: proxy.metrics.clone(),
            log_at_info: proxy.log_requests.load(Ordering::Relaxed),
            _busy: busy,
        };
        Response::from_parts(parts, body.on_complete(completion))
    }

    /// Phases 2 to 4: the upstream request, then one send-and-replay loop: a token
    /// rejection is reported, and the request replayed with the replacement when its body
    /// was kept (at most [`MAX_REPLAYS`] times); a token that cannot be replaced gets 503.
    async fn forward(
        &self,
        req: Request<Incoming>,
        request_id: &HeaderValue,
        guard: &Guard,
        account: &Account,
        route: &Route,
    ) -> Result<Forwarded, ProxyError> {
        // Before the first use of `self.proxy`: the compiler copies the request once more
        // when a dereference comes between the start and this move.
        let (mut head, body) = upstream_request(req, request_id, route);
        let proxy = &*self.proxy;
        let kept = proxy.keep_for_replay(body, guard.max_body_bytes()).await?;
        let tokens = &*account.tokens;
        let mut token = match tokens.current() {
            Some(token) => token,
            // Rare (no token yet, or it expired or died during an outage).
            None => tokens.wait().await.map_err(ProxyError::NoToken)?,
        };
        let (mut body, replay) = match kept {
            Kept::Buffered(bytes) => (
                RequestBody::Buffered((!bytes.is_empty()).then(|| bytes.clone())),
                Some((clone_head(&head), bytes)),
            ),
            Kept::Stream(body) => (body, None),
        };
        let mut replays = 0;
        loop {
            let (response, latency) = self.send(head, body, &token, account, route).await?;
            let replayed = replays > 0;
            let pass = |response| {
                Ok(Forwarded {
                    response: downstream_response(response),
                    upstream_latency: Some(latency),
                    replayed,
                })
            };
            if !rejection::may_reject(response.status()) {
                token::record_acceptance(tokens, &token);
                return pass(response.map(ResponseBody::stream));
            }
            let (parts, incoming) = response.into_parts();
            let peeked = proxy.peek(incoming).await;
            let rejected = rejection::is_token_rejection_with_headers(&parts.headers, &peeked.head);
            let response = Response::from_parts(parts, peeked.into_body());
            if !rejected {
                token::record_acceptance(tokens, &token);
                return pass(response);
            }
            if !replayed {
                account.metrics.record_rejection();
            }
            match tokens.report_rejected(&token).await {
                Rejection::Dead(unavailable) => return Err(ProxyError::NoToken(unavailable)),
                // New tokens do not help (wrong data centre or scopes): Zoho's answer.
                Rejection::Repeated => return pass(response),
                Rejection::Replaced(fresh) => {
                    // A body too large to have been kept: the client retries; the next
                    // request has the new token. A replay whose token Zoho had accepted
                    // before and rejects now (revoked meanwhile) is replayed once more.
                    let Some((replay_head, bytes)) =
                        replay.as_ref().filter(|_| replays < MAX_REPLAYS)
                    else {
                        return pass(response);
                    };
                    drop(response);
                    account.metrics.record_replay();
                    replays += 1;
                    (head, body, token) = (
                        clone_head(replay_head),
                        RequestBody::Buffered((!bytes.is_empty()).then(|| bytes.clone())),
                        fresh,
                    );
                }
            }
        }
    }

    /// Phase 3: sends with the token on one of this connection's upstream connections,
    /// bounded by `upstream.timeout` until the head.
    async fn send(
        &self,
        mut head: Parts,
        body: RequestBody,
        token: &AccessToken,
        account: &Account,
        route: &Route,
    ) -> Result<(Response<UpstreamBody>, Duration), ProxyError> {
        let proxy = &*self.proxy;
        headers::override_authorization(&mut head.headers, token.header().clone());
        // The HTTP/2 client reports a body past the limit as a reset stream, without the
        // cause: the body tells.
        let overflow = body.overflow();
        let request = Request::from_parts(head, body);
        let sent = Instant::now();
        // An upstream added by a reload after this connection opened: connections of its own
        // for this request (parked for others when it ends).
        let added;
        let upstream = match self.upstreams.get(route.slot) {
            Some(affinity) => affinity,
            None => {
                added = Affinity::new(route.upstream.clone());
                &added
            }
        };
        match tokio::time::timeout(proxy.timeout, upstream.send(request)).await {
            Err(_) => Err(ProxyError::UpstreamTimeout(proxy.timeout)),
            Ok(Err(error)) => {
                if let Some(max) = overflow.as_ref().and_then(request_body::Overflow::exceeded) {
                    return Err(ProxyError::BodyTooLarge(max));
                }
                // Before the hyper error that wraps it (a "user body" error, below).
                if let Some(too_large) = too_large(&*error) {
                    return Err(too_large);
                }
                // The body we send is either kept in memory (cannot fail) or the client's
                // stream: a failure of "the user's body" is the client's.
                if error_chain(&*error).any(|e| {
                    e.downcast_ref::<hyper::Error>()
                        .is_some_and(hyper::Error::is_user)
                }) {
                    return Err(ProxyError::BodyIncomplete);
                }
                Err(ProxyError::UpstreamUnreachable(error))
            }
            Ok(Ok(response)) => {
                let latency = sent.elapsed();
                account.metrics.record_upstream(latency);
                Ok((response, latency))
            }
        }
    }

    /// Records the connection's protocol on its span, at its first request: hyper-util's
    /// builder tells HTTP/1 and HTTP/2 apart by the connection's first bytes, so the first
    /// request says. Out of line: it runs once per connection.
    #[cold]
    #[inline(never)]
    fn record_protocol(&self, version: Version) {
        self.protocol_known.store(true, Ordering::Relaxed);
        let protocol = if version == Version::HTTP_2 {
            "h2"
        } else {
            "http1"
        };
        self.span.record(telemetry::HTTP_PROTOCOL, protocol);
    }
}

/// A request body as decided by [`Proxy::keep_for_replay`].
enum Kept {
    Buffered(Bytes),
    Stream(RequestBody),
}

// === impl Forwarded ===

impl Forwarded {
    /// An answer of the proxy's own with an empty body (a CORS preflight's 204).
    fn answer(status: StatusCode, headers: HeaderMap) -> Self {
        let mut response = Response::new(ResponseBody::full(Bytes::new()));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Self {
            response,
            upstream_latency: None,
            replayed: false,
        }
    }
}

// === impl Peeked ===

impl Peeked {
    fn into_body(self) -> ResponseBody {
        match self.rest {
            Some(rest) => ResponseBody::prefixed(self.head, rest),
            None => ResponseBody::full(self.head),
        }
    }
}

// === impl Completion ===

impl Completion {
    /// Phase 5: metrics and the request log line.
    pub(crate) fn finish(self, bytes: u64) {
        let total = self.started.elapsed();
        let accounts = &self.current.accounts;
        accounts.metrics(self.account).record_request(
            self.route,
            &self.method,
            self.status.as_u16(),
            total,
        );
        self.metrics.in_flight().dec();
        let account = accounts.name(self.account);
        macro_rules! request_line {
            ($level:ident) => {
                tracing::$level!(
                    account,
                    http.method = %self.method,
                    http.path = self.uri.path(),
                    http.status = self.status.as_u16(),
                    bytes,
                    latency_ms = telemetry::millis(total),
                    upstream.latency_ms = self.upstream_latency.map(telemetry::millis),
                    request.id = self.request_id.to_str().unwrap_or("-"),
                    replayed = self.replayed,
                    "request"
                )
            };
        }
        if self.log_at_info {
            request_line!(info);
        } else {
            request_line!(debug);
        }
    }
}

/// The request target sent upstream for a request to `uri` that [`Routes::select`] gave to
/// `route`: origin-form, path and query exactly as received, after the route's base path or
/// with its prefix stripped ([`Route::target`]).
///
/// Part of phase 2; public (hidden) so that the fuzz targets check what is really forwarded.
#[doc(hidden)]
pub fn upstream_target(uri: Uri, route: &Route) -> Uri {
    // HTTP/1 targets are origin-form already (the common case: no copy).
    let uri = if headers::is_origin_form(&uri) {
        uri
    } else {
        headers::origin_form(&uri)
    };
    // The access rules saw the path as the client sent it.
    route.target(&uri).unwrap_or(uri)
}

/// Phase 2: the upstream request head, and the body as received. The target is sent in
/// origin-form, path and query exactly as received (HTTP/2 requests carry scheme and
/// authority, which go), after the route's base path or with its prefix stripped.
fn upstream_request(
    req: Request<Incoming>,
    request_id: &HeaderValue,
    route: &Route,
) -> (Parts, Incoming) {
    let (mut head, body) = req.into_parts();
    head.uri = upstream_target(std::mem::take(&mut head.uri), route);
    head.version = Version::HTTP_11;
    head.extensions = http::Extensions::new();
    headers::strip_hop_by_hop(&mut head.headers);
    headers::strip_client_credentials(&mut head.headers);
    headers::override_host(&mut head.headers, &route.host);
    head.headers.insert(&X_REQUEST_ID, request_id.clone());
    (head, body)
}

/// Phase 4 for answers passed through: hop-by-hop headers go, all else stays.
fn downstream_response(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    headers::strip_hop_by_hop(response.headers_mut());
    response
}

/// A copy of a request head for the replay (`Parts` is not `Clone`).
fn clone_head(head: &Parts) -> Parts {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = head.method.clone();
    parts.uri = head.uri.clone();
    parts.version = head.version;
    parts.headers = head.headers.clone();
    parts
}

/// 413 when `error` or one of its sources is the request body's [`request_body::BodyTooLarge`].
fn too_large(error: &(dyn std::error::Error + 'static)) -> Option<ProxyError> {
    error_chain(error)
        .find_map(|e| e.downcast_ref::<request_body::BodyTooLarge>())
        .map(|too_large| ProxyError::BodyTooLarge(too_large.0))
}

/// `<prefix>-<n in hex>`, written on the stack: one allocation, the value's.
fn generated_request_id(prefix: &[u8; 8], n: u64) -> HeaderValue {
    let mut buf = [0u8; 8 + 1 + 16];
    buf[..8].copy_from_slice(prefix);
    buf[8] = b'-';
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, out) in buf[9..9 + digits].iter_mut().enumerate() {
        let nibble = (n >> (4 * (digits - 1 - i))) & 0xf;
        *out = b"0123456789abcdef"[nibble as usize];
    }
    HeaderValue::from_bytes(&buf[..9 + digits]).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

fn log_proxy_error(error: &ProxyError) {
    let (status, name, _) = error.classify();
    let status = status.as_u16();
    match error {
        ProxyError::NoToken(reason) => {
            tracing::warn!(problem = name, status, error = %reason, "no token for request");
        }
        ProxyError::UpstreamUnreachable(source) => {
            let error = crate::telemetry::chain(source.as_ref());
            tracing::warn!(problem = name, status, error = %error, "upstream unreachable");
        }
        // Refusals of the client's request, and timeouts: the request's line (and the
        // minute's summary) says it all.
        _ => tracing::debug!(problem = name, status, "request refused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_request_ids_are_prefix_dash_hex() {
        let prefix = *b"0a1b2c3d";
        for (n, hex) in [
            (0, "0"),
            (1, "1"),
            (15, "f"),
            (16, "10"),
            (255, "ff"),
            (0x1234_5678_9abc, "123456789abc"),
            (u64::MAX, "ffffffffffffffff"),
        ] {
            assert_eq!(
                generated_request_id(&prefix, n).to_str().unwrap(),
                format!("0a1b2c3d-{hex}")
            );
            assert_eq!(format!("{n:x}"), hex);
        }
    }
}
