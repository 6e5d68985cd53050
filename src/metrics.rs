//! Prometheus metrics, recorded without locks on the request path.
//!
//! prometheus-client's `Family` looks labels up behind a read-write lock and its `Histogram`
//! takes a lock per observation. The request path here only touches atomics: each account's
//! per-route, per-method, per-status-class counters are resolved from their family once,
//! when the account starts ([`Metrics::account`]; a cloned `Counter` shares the family's
//! atomic), and the latency histograms are [`AtomicHistogram`]s. Every request and token
//! series carries an `account` label. Token metrics are read from the token managers at
//! scrape time, and
//! the `process_*` metrics from `/proc/self` (Linux; elsewhere they are left out).
//!
//! The page is encoded as OpenMetrics 1.0 text: every name of the proxy starts with one
//! `zoho_proxy_`, counters end in `_total`, the last histogram bucket is `le="+Inf"`, and the
//! page ends in `# EOF`. `/metrics` serves it as is (`application/openmetrics-text`) to
//! scrapers whose `Accept` names OpenMetrics ([`prefers_openmetrics`], as Prometheus'
//! client libraries negotiate), and rewritten in the classic text format 0.0.4
//! ([`openmetrics_to_text`]) to the others: older agents that send
//! `Accept: text/plain;version=0.0.4`, or nothing.
//! See <https://prometheus.io/docs/instrumenting/exposition_formats/> and
//! <https://github.com/prometheus/OpenMetrics/blob/main/specification/OpenMetrics.md>.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use std::time::Duration;

use http::{HeaderValue, Method};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::token::{TokenStatus, TokenStatusView};

/// Methods with their own label value; the rest count as `OTHER`.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
];
/// Status classes.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Latency bucket upper bounds, seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The token views of the running accounts, by name.
type TokenViews = Arc<ArcSwap<Vec<(String, Arc<dyn TokenStatusView>)>>>;

/// Label sets of the families with an `account` label.
type Labels = Vec<(&'static str, String)>;

/// How the histogram families make a histogram.
type HistogramFamily = Family<Labels, AtomicHistogram, fn() -> AtomicHistogram>;

/// Every metric the proxy records.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    request_duration: HistogramFamily,
    upstream_latency: HistogramFamily,
    in_flight: Gauge,
    replays: Family<Labels, Counter>,
    rejections: Family<Labels, Counter>,
    /// Every account's series made so far, for [`Metrics::totals`] (never on the request
    /// path).
    accounts: Mutex<Vec<AccountMetrics>>,
    /// The token views of the accounts that run now, read at scrape time.
    tokens: TokenViews,
}

/// One account's series, resolved from the families once: recording is atomic adds.
#[derive(Clone, Debug)]
pub struct AccountMetrics {
    /// Route × method × status class, in [`Metrics::account`]'s order.
    requests: Vec<Counter>,
    request_duration: AtomicHistogram,
    upstream_latency: AtomicHistogram,
    replays: Counter,
    rejections: Counter,
}

/// Counts since start, for the log's summary line ([`Totals::summary`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Finished requests by status class (1xx to 5xx).
    pub by_class: [u64; 5],
    /// Requests replayed after a token rejection.
    pub replays: u64,
    /// Upstream round trips, and their total time in nanoseconds.
    pub upstream: (u64, u64),
}

/// A histogram whose observations are atomic adds. Clones share the same counts.
#[derive(Clone, Debug)]
pub struct AtomicHistogram {
    inner: Arc<HistogramInner>,
}

#[derive(Debug)]
struct HistogramInner {
    bounds: &'static [f64],
    /// One per bound, plus +Inf.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// Token metrics read at scrape time, one series per account.
#[derive(Debug)]
struct TokenCollector {
    tokens: TokenViews,
}

/// The conventional `process_*` metrics, read from `/proc/self` at scrape time.
#[derive(Debug)]
struct ProcessCollector;

/// The OpenMetrics content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of Prometheus' classic text format ([`openmetrics_to_text`]).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

// === impl Metrics ===

impl Metrics {
    /// Registers every metric. Accounts' series are made by [`Metrics::account`], and their
    /// token metrics read from the views [`Metrics::set_token_views`] gives.
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("zoho_proxy");
        registry.register(
            "build",
            "The proxy's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "Proxied requests by account, route, method and status class",
            requests.clone(),
        );
        let histogram: fn() -> AtomicHistogram = || AtomicHistogram::new(&LATENCY_BUCKETS);
        let request_duration = Family::new_with_constructor(histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head, including token waits and replays",
            request_duration.clone(),
        );
        let upstream_latency = Family::new_with_constructor(histogram);
        registry.register(
            "upstream_latency_seconds",
            "Time from sending a request upstream to its response head",
            upstream_latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Requests being proxied",
            in_flight.clone(),
        );
        let replays = Family::<Labels, Counter>::default();
        registry.register(
            "replays",
            "Requests replayed after the upstream rejected the token",
            replays.clone(),
        );
        let rejections = Family::<Labels, Counter>::default();
        registry.register(
            "token_rejections",
            "Upstream answers that rejected the access token",
            rejections.clone(),
        );
        let tokens = Arc::new(ArcSwap::from_pointee(Vec::new()));
        registry.register_collector(Box::new(TokenCollector {
            tokens: tokens.clone(),
        }));
        Self {
            registry: root,
            requests,
            request_duration,
            upstream_latency,
            in_flight,
            replays,
            rejections,
            accounts: Mutex::new(Vec::new()),
            tokens,
        }
    }

    /// The series of account `account`, whose routes are `routes` (the `route` label: a
    /// prefix, or `default`), in the order requests report them. The same account asked for
    /// again (after a reload) shares the counts made before.
    pub fn account(&self, account: &str, routes: &[String]) -> AccountMetrics {
        let mut requests = Vec::with_capacity(routes.len() * METHODS.len() * CLASSES.len());
        for route in routes {
            for method in METHODS {
                for class in CLASSES {
                    let labels = vec![
                        ("account", account.to_owned()),
                        ("route", route.clone()),
                        ("method", method.to_owned()),
                        ("status_class", class.to_owned()),
                    ];
                    requests.push(self.requests.get_or_create(&labels).clone());
                }
            }
        }
        let labels = vec![("account", account.to_owned())];
        let metrics = AccountMetrics {
            requests,
            request_duration: self.request_duration.get_or_create(&labels).clone(),
            upstream_latency: self.upstream_latency.get_or_create(&labels).clone(),
            replays: self.replays.get_or_create(&labels).clone(),
            rejections: self.rejections.get_or_create(&labels).clone(),
        };
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        // Made again (a reload): the same series, counted once by `totals`.
        accounts
            .retain(|a| !Arc::ptr_eq(&a.upstream_latency.inner, &metrics.upstream_latency.inner));
        accounts.push(metrics.clone());
        metrics
    }

    /// The token views of the accounts that run now, by name (the `account` label of the
    /// token metrics); replaced whole when a reload adds or removes accounts.
    pub fn set_token_views(&self, views: Vec<(String, Arc<dyn TokenStatusView>)>) {
        self.tokens.store(Arc::new(views));
    }

    /// The in-flight gauge.
    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// Counts since start, every account's.
    pub fn totals(&self) -> Totals {
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut totals = Totals::default();
        for account in accounts.iter() {
            let t = account.totals();
            for (sum, n) in totals.by_class.iter_mut().zip(t.by_class) {
                *sum += n;
            }
            totals.replays += t.replays;
            totals.upstream.0 += t.upstream.0;
            totals.upstream.1 += t.upstream.1;
        }
        totals
    }

    /// The OpenMetrics text exposition ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

// === impl AccountMetrics ===

impl AccountMetrics {
    /// Counts a finished request of route number `route`.
    pub fn record_request(&self, route: usize, method: &Method, status: u16, duration: Duration) {
        let m = match *method {
            Method::GET => 0,
            Method::HEAD => 1,
            Method::POST => 2,
            Method::PUT => 3,
            Method::PATCH => 4,
            Method::DELETE => 5,
            Method::OPTIONS => 6,
            _ => 7,
        };
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        let index = (route * METHODS.len() + m) * CLASSES.len() + class;
        if let Some(counter) = self.requests.get(index) {
            counter.inc();
        }
        self.request_duration.observe(duration);
    }

    /// Records an upstream round trip to the response head.
    pub fn record_upstream(&self, latency: Duration) {
        self.upstream_latency.observe(latency);
    }

    /// Counts a replay.
    pub fn record_replay(&self) {
        self.replays.inc();
    }

    /// Counts a token rejection by the upstream.
    pub fn record_rejection(&self) {
        self.rejections.inc();
    }

    /// This account's counts since start.
    fn totals(&self) -> Totals {
        let mut by_class = [0; 5];
        for (i, counter) in self.requests.iter().enumerate() {
            by_class[i % CLASSES.len()] += counter.get();
        }
        let upstream = &self.upstream_latency.inner;
        Totals {
            by_class,
            replays: self.replays.get(),
            upstream: (
                upstream.count.load(Ordering::Relaxed),
                upstream.sum_nanos.load(Ordering::Relaxed),
            ),
        }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

// === impl Totals ===

impl Totals {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Totals) -> Totals {
        let mut by_class = [0; 5];
        for (i, n) in by_class.iter_mut().enumerate() {
            *n = self.by_class[i].saturating_sub(before.by_class[i]);
        }
        Totals {
            by_class,
            replays: self.replays.saturating_sub(before.replays),
            upstream: (
                self.upstream.0.saturating_sub(before.upstream.0),
                self.upstream.1.saturating_sub(before.upstream.1),
            ),
        }
    }

    /// Finished requests.
    pub fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// The log's summary of these counts, e.g. `120 requests: 2xx 118, 4xx 2; 1 replayed;
    /// upstream 45.12 ms mean` (classes with no request left out).
    pub fn summary(&self) -> String {
        let classes: Vec<String> = CLASSES
            .iter()
            .zip(self.by_class)
            .filter(|(_, n)| *n > 0)
            .map(|(class, n)| format!("{class} {n}"))
            .collect();
        let mut text = format!("{} requests: {}", self.requests(), classes.join(", "));
        if self.replays > 0 {
            text.push_str(&format!("; {} replayed", self.replays));
        }
        let (count, nanos) = self.upstream;
        if count > 0 {
            let mean_ms = nanos as f64 / count as f64 / 1e6;
            text.push_str(&format!("; upstream {:.2} ms mean", mean_ms));
        }
        text
    }
}

// === impl AtomicHistogram ===

impl AtomicHistogram {
    /// A histogram with these bucket upper bounds (seconds), plus +Inf.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            inner: Arc::new(HistogramInner {
                bounds,
                buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                count: AtomicU64::new(0),
                sum_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let h = &*self.inner;
        let secs = d.as_secs_f64();
        let idx = h
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(h.bounds.len());
        if let Some(bucket) = h.buckets.get(idx) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        h.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        let h = &*self.inner;
        let buckets: Vec<(f64, u64)> = h
            .bounds
            .iter()
            .copied()
            // prometheus-client writes `+Inf` for `f64::MAX`.
            .chain(std::iter::once(f64::MAX))
            .zip(h.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            sum,
            h.count.load(Ordering::Relaxed),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

// === impl TokenCollector ===

impl Collector for TokenCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let accounts = self.tokens.load();
        let statuses: Vec<(&str, TokenStatus)> = accounts
            .iter()
            .map(|(name, view)| (name.as_str(), view.status()))
            .collect();
        let mut refreshes = encoder.encode_descriptor(
            "token_refreshes",
            "Access-token refresh attempts by account and outcome",
            None,
            MetricType::Counter,
        )?;
        for (name, view) in accounts.iter() {
            for (outcome, value) in view.refresh_counts().by_outcome() {
                refreshes
                    .encode_family(&vec![("account", name.as_str()), ("outcome", outcome)])?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                        &value, None,
                    )?;
            }
        }
        type Read = fn(&TokenStatus) -> i64;
        let gauges: [(&str, &str, Read); 6] = [
            (
                "token_expiry_seconds",
                "Seconds until the current access token expires",
                |s| {
                    s.token_expires_in_s
                        .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX))
                },
            ),
            (
                "token_mints_left",
                "Access-token mints still allowed in the 10-minute window",
                |s| i64::from(s.mints_left),
            ),
            (
                "token_mints_in_window",
                "Access-token mints in the current 10-minute window",
                |s| i64::from(s.mints_in_window),
            ),
            (
                "ready",
                "1 while a token with more than the refresh margin left is held",
                |s| i64::from(s.ready),
            ),
            (
                "token_rejected_by_upstream",
                "1 while Zoho rejected the access token held and no replacement can be had (no request is sent with it)",
                |s| i64::from(s.reason == Some("rejected_by_upstream")),
            ),
            (
                "upstream_rejects_fresh_tokens",
                "1 while Zoho's rejections pass through: it rejected a replacement token before accepting any request with it (wrong data centre or scopes?), and has accepted no token since",
                |s| i64::from(s.upstream_rejects_fresh_tokens),
            ),
        ];
        for (name, help, read) in gauges {
            let mut gauge = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (account, status) in &statuses {
                gauge
                    .encode_family(&vec![("account", *account)])?
                    .encode_gauge(&read(status))?;
            }
        }
        Ok(())
    }
}

// === impl ProcessCollector ===

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let Some(process) = ProcessStats::read() else {
            return Ok(());
        };
        encoder
            .encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                &process.cpu_seconds,
                None,
            )?;
        let gauges: [(&str, &str, f64); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size, in bytes",
                process.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size, in bytes",
                process.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
                process.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                process.open_fds,
            ),
            (
                "process_max_fds",
                "Most file descriptors the process may open",
                process.max_fds,
            ),
            ("process_threads", "Threads of the process", process.threads),
        ];
        for (name, help, value) in gauges {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        Ok(())
    }
}

// === the classic text format ===

/// Whether a scraper's `Accept` header values ask for OpenMetrics rather than the classic
/// text format: some media range `application/openmetrics-text` with a quality above 0 and no
/// lower than that of every `text/plain` range. Other ranges (`*/*`, protobuf) do not count;
/// without any, the answer is the classic format, as Prometheus' client libraries negotiate.
pub fn prefers_openmetrics<'a>(accept: impl IntoIterator<Item = &'a HeaderValue>) -> bool {
    let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
    for value in accept {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for range in value.split(',') {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim();
            let quality = params
                .filter_map(|p| p.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, q)| q.trim().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(0.0);
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                openmetrics = openmetrics.max(quality);
            } else if media.eq_ignore_ascii_case("text/plain") {
                text = text.max(quality);
            }
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

/// Rewrites an OpenMetrics page ([`Metrics::encode`]) in Prometheus' classic text format
/// 0.0.4 ([`TEXT_CONTENT_TYPE`]), with the same samples under the names Prometheus stores:
/// - `# TYPE` and `# HELP` name a family as its samples are named: the counter `x` (samples
///   `x_total`) becomes `x_total`, the info `x` becomes the gauge `x_info`; `stateset` becomes
///   `gauge`, `gaugehistogram` `histogram`, and `unknown` `untyped` (the classic format has
///   none of them); `counter`, `gauge`, `histogram` and `summary` stay;
/// - `# UNIT` lines, `# EOF`, `_created` samples and exemplars are left out;
/// - HELP text loses OpenMetrics' `\"` escape (the classic format escapes only `\\` and
///   `\n`), and sample timestamps turn from seconds into milliseconds.
///
/// Label sets and values are written alike in both formats and pass as they are.
pub fn openmetrics_to_text(page: &str) -> String {
    // Each family's type, from its `# TYPE` line: `# HELP` may come before it.
    let types: std::collections::HashMap<&str, &str> = page
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split_once(' '))
        .collect();
    let mut out = String::with_capacity(page.len());
    // The family whose samples follow, and its OpenMetrics type.
    let mut family = ("", "unknown");
    for line in page.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let (keyword, rest) = comment.split_once(' ').unwrap_or((comment, ""));
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
                continue;
            }
            let kind = types.get(name).copied().unwrap_or("unknown");
            family = (name, kind);
            let (classic_name, classic_type) = classic_family(name, kind);
            match keyword {
                "HELP" => {
                    out.push_str(&format!("# HELP {classic_name} {}\n", classic_help(text)));
                }
                "TYPE" => out.push_str(&format!("# TYPE {classic_name} {classic_type}\n")),
                _ => {}
            }
            continue;
        }
        let (series, rest) = split_series(line);
        let name = series.split('{').next().unwrap_or(series);
        let created = name
            .strip_suffix("_created")
            .is_some_and(|base| base == family.0);
        let has_created = matches!(
            family.1,
            "counter" | "histogram" | "summary" | "gaugehistogram"
        );
        if name.is_empty() || (created && has_created) {
            continue;
        }
        // An exemplar follows ` # ` after the value (and the timestamp).
        let rest = rest.split_once(" # ").map_or(rest, |(sample, _)| sample);
        let mut fields = rest.split_whitespace();
        let Some(value) = fields.next() else {
            continue;
        };
        out.push_str(series);
        out.push(' ');
        out.push_str(value);
        if let Some(seconds) = fields.next().and_then(|t| t.parse::<f64>().ok()) {
            out.push_str(&format!(" {}", (seconds * 1000.0).round() as i64));
        }
        out.push('\n');
    }
    out
}

/// The classic format's family name and type for the OpenMetrics family `name` of type
/// `kind` (see [`openmetrics_to_text`]).
fn classic_family<'a>(name: &'a str, kind: &'a str) -> (std::borrow::Cow<'a, str>, &'a str) {
    use std::borrow::Cow;
    match kind {
        "counter" => (Cow::Owned(format!("{name}_total")), "counter"),
        "info" => (Cow::Owned(format!("{name}_info")), "gauge"),
        "gauge" | "histogram" | "summary" => (Cow::Borrowed(name), kind),
        "stateset" => (Cow::Borrowed(name), "gauge"),
        "gaugehistogram" => (Cow::Borrowed(name), "histogram"),
        _ => (Cow::Borrowed(name), "untyped"),
    }
}

/// OpenMetrics HELP text as classic HELP text: `\"` becomes `"`; `\\` and `\n` stay.
fn classic_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push_str("\\\\"),
        }
    }
    out
}

/// Splits a sample line after its series (the name and the label set, whose quoted values
/// may hold spaces, braces and `#`); returns the series and the rest.
fn split_series(line: &str) -> (&str, &str) {
    let end = match line.find(['{', ' ']) {
        Some(brace) if line[brace..].starts_with('{') => {
            let (mut quoted, mut escaped) = (false, false);
            line[brace..]
                .char_indices()
                .find(|&(_, c)| {
                    let close = c == '}' && !quoted;
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = quoted;
                    } else if c == '"' {
                        quoted = !quoted;
                    }
                    close
                })
                .map_or(line.len(), |(i, _)| brace + i + 1)
        }
        Some(space) => space,
        None => line.len(),
    };
    line.split_at(end)
}

/// What `/proc/self` tells of this process.
#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
    threads: f64,
}

impl ProcessStats {
    /// Linux's `/proc/self`; `None` where it cannot be read.
    fn read() -> Option<Self> {
        // The kernel's USER_HZ (what `sysconf(_SC_CLK_TCK)` answers): 100 on Linux's
        // architectures but Alpha.
        const TICKS_PER_SECOND: f64 = 100.0;
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
        Self::parse(
            &read("/proc/self/stat")?,
            &read("/proc/self/status")?,
            &read("/proc/stat")?,
            &read("/proc/self/limits").unwrap_or_default(),
            open_fds,
            TICKS_PER_SECOND,
        )
    }

    /// The fields of `/proc/self/stat` and `/proc/self/status` (see proc(5)), the boot time
    /// from `/proc/stat` and the open-files limit from `/proc/self/limits`.
    fn parse(
        stat: &str,
        status: &str,
        boot: &str,
        limits: &str,
        open_fds: usize,
        ticks_per_second: f64,
    ) -> Option<Self> {
        // After the command name, which is in parentheses and may hold anything.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // `fields[0]` is field 3 (state).
        let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
        let boot_time: f64 = boot
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let max_fds = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let kib = |key: &str| -> Option<f64> {
            let value = status.lines().find_map(|l| l.strip_prefix(key))?;
            Some(
                value
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<f64>()
                    .ok()?
                    * 1024.0,
            )
        };
        Some(Self {
            cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
            threads: field(20)?,
            start_time_seconds: boot_time + field(22)? / ticks_per_second,
            virtual_bytes: kib("VmSize:")?,
            resident_bytes: kib("VmRSS:")?,
            open_fds: open_fds as f64,
            max_fds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_upper_bound() {
        let h = AtomicHistogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(10));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let counts: Vec<u64> = h
            .inner
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, vec![2, 1, 1]);
        assert_eq!(h.inner.count.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn totals_summarise_what_changed() {
        let before = Totals {
            by_class: [0, 10, 0, 1, 0],
            replays: 1,
            upstream: (10, 10_000_000),
        };
        let now = Totals {
            by_class: [0, 128, 0, 3, 0],
            replays: 2,
            upstream: (128, 5_880_000_000),
        };
        let minute = now.since(&before);
        assert_eq!(minute.requests(), 120);
        assert_eq!(
            minute.summary(),
            "120 requests: 2xx 118, 4xx 2; 1 replayed; upstream 49.75 ms mean"
        );
        assert_eq!(now.since(&now).requests(), 0);
    }

    #[test]
    fn openmetrics_is_rewritten_in_the_classic_text_format() {
        let openmetrics = concat!(
            "# HELP app_requests Requests, \\\"quoted\\\", a \\\\ and a \\n.\n",
            "# TYPE app_requests counter\n",
            "# UNIT app_requests requests\n",
            "app_requests_total{path=\"/a b\",q=\"x # {y} \\\"z\\\"\"} 3 # {trace=\"1\"} 1.0 1700000000.5\n",
            "app_requests_created{path=\"/a b\",q=\"x # {y} \\\"z\\\"\"} 1700000000.25\n",
            "# TYPE app_up gauge\n",
            "# HELP app_up Whether it is up.\n",
            "app_up 1 1700000000.125\n",
            "# HELP app_latency_seconds Latency.\n",
            "# TYPE app_latency_seconds histogram\n",
            "app_latency_seconds_sum 0.5\n",
            "app_latency_seconds_count 2\n",
            "app_latency_seconds_bucket{le=\"0.1\"} 1 # {id=\"x\"} 0.05\n",
            "app_latency_seconds_bucket{le=\"+Inf\"} 2\n",
            "app_latency_seconds_created 1700000000.0\n",
            "# HELP app_build The build.\n",
            "# TYPE app_build info\n",
            "app_build_info{version=\"1.2.3\"} 1\n",
            "# HELP app_other Something else.\n",
            "# TYPE app_other unknown\n",
            "app_other NaN\n",
            "# EOF\n",
        );
        let classic = concat!(
            "# HELP app_requests_total Requests, \"quoted\", a \\\\ and a \\n.\n",
            "# TYPE app_requests_total counter\n",
            "app_requests_total{path=\"/a b\",q=\"x # {y} \\\"z\\\"\"} 3\n",
            "# TYPE app_up gauge\n",
            "# HELP app_up Whether it is up.\n",
            "app_up 1 1700000000125\n",
            "# HELP app_latency_seconds Latency.\n",
            "# TYPE app_latency_seconds histogram\n",
            "app_latency_seconds_sum 0.5\n",
            "app_latency_seconds_count 2\n",
            "app_latency_seconds_bucket{le=\"0.1\"} 1\n",
            "app_latency_seconds_bucket{le=\"+Inf\"} 2\n",
            "# HELP app_build_info The build.\n",
            "# TYPE app_build_info gauge\n",
            "app_build_info{version=\"1.2.3\"} 1\n",
            "# HELP app_other Something else.\n",
            "# TYPE app_other untyped\n",
            "app_other NaN\n",
        );
        assert_eq!(openmetrics_to_text(openmetrics), classic);
        // Nothing to rewrite, and lines that are not samples, give nothing (and no panic).
        assert_eq!(openmetrics_to_text(""), "");
        assert_eq!(openmetrics_to_text("x{a=\"unterminated\n{}\n# EOF"), "");
    }

    #[test]
    fn only_scrapers_that_ask_for_openmetrics_get_it() {
        let asks = |values: &[&str]| {
            let values: Vec<HeaderValue> = values
                .iter()
                .map(|v| HeaderValue::from_str(v).unwrap())
                .collect();
            prefers_openmetrics(&values)
        };
        // Prometheus 2 and 3.
        assert!(asks(&[
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ]));
        assert!(asks(&[
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,*/*;q=0.1"
        ]));
        assert!(asks(&["Application/OpenMetrics-Text"]));
        assert!(asks(&["text/html", "application/openmetrics-text; q=0.2"]));
        // Older agents, curl, browsers, nothing at all.
        assert!(!asks(&["text/plain;version=0.0.4"]));
        assert!(!asks(&[
            "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"
        ]));
        assert!(!asks(&["*/*"]));
        assert!(!asks(&["text/html,application/xhtml+xml,*/*;q=0.8"]));
        assert!(!asks(&[]));
        // Refused or unreadable quality.
        assert!(!asks(&["application/openmetrics-text;q=0"]));
        assert!(!asks(&["application/openmetrics-text;q=high"]));
    }

    #[test]
    fn process_stats_from_proc() {
        let stat = "4242 (zoho (meeting) proxy) S 1 4242 4242 0 -1 4194560 1 0 0 0 \
                    250 50 0 0 20 0 7 0 12345 104857600 2560 18446744073709551615";
        let status = "Name:\tzoho\nVmSize:\t  102400 kB\nVmRSS:\t    10240 kB\nThreads:\t7\n";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let stats = ProcessStats::parse(stat, status, boot, limits, 12, 100.0).unwrap();
        assert_eq!(
            stats,
            ProcessStats {
                cpu_seconds: 3.0,
                resident_bytes: 10_240.0 * 1024.0,
                virtual_bytes: 102_400.0 * 1024.0,
                start_time_seconds: 1_700_000_123.45,
                open_fds: 12.0,
                max_fds: 1024.0,
                threads: 7.0,
            }
        );
        assert_eq!(
            ProcessStats::parse("garbage", status, boot, limits, 0, 100.0),
            None
        );
    }

    #[test]
    fn this_process_is_read() {
        if cfg!(target_os = "linux") {
            let stats = ProcessStats::read().unwrap();
            assert!(
                stats.resident_bytes > 0.0 && stats.threads >= 1.0,
                "{stats:?}"
            );
        }
    }
}
