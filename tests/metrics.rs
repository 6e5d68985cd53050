//! `/metrics` as a dashboard reads it: parsed by real parsers (Python's `prometheus_client`,
//! installed when missing by `support::tools`) of OpenMetrics and of the classic text format,
//! whichever the scraper's `Accept` asks for; every name exactly as README documents it, and
//! the documented ones all there.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{self, TestProxy, TestUpstream, client};

/// The parser, reading the page on stdin and printing one JSON object per metric family:
/// the OpenMetrics one, or with the argument `classic` the classic text format's.
const PARSE: &str = r#"
import json, sys
if sys.argv[1:] == ["classic"]:
    from prometheus_client.parser import text_string_to_metric_families
else:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    print(json.dumps({
        "name": family.name,
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }))
"#;

/// The families `PARSE` printed for `page` (OpenMetrics); panics with the parser's error when
/// it refuses it.
fn parse(page: &str) -> Vec<serde_json::Value> {
    parse_as(page, Format::OpenMetrics)
}

/// The two formats `/metrics` serves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    OpenMetrics,
    Classic,
}

/// The families `PARSE` printed for `page` read as `format`.
fn parse_as(page: &str, format: Format) -> Vec<serde_json::Value> {
    support::tools::prometheus_client();
    let mode = match format {
        Format::OpenMetrics => "openmetrics",
        Format::Classic => "classic",
    };
    let mut child = Command::new("python3")
        .args(["-c", PARSE, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "the tests need Python's prometheus_client (`python3 -m pip install prometheus_client`): {stderr}"
    );
    assert!(
        out.status.success(),
        "the {format:?} parser refuses the page: {stderr}\n{page}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The name a user types in a query: counters with `_total`, info with `_info`.
fn exposed_name(family: &serde_json::Value) -> String {
    let name = family["name"].as_str().unwrap();
    match family["type"].as_str().unwrap() {
        "counter" => format!("{name}_total"),
        "info" => format!("{name}_info"),
        _ => name.to_owned(),
    }
}

/// Every metric name README's admin table documents for `/metrics`.
fn documented_names() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `GET /metrics` |"))
        .expect("README documents /metrics");
    let mut names: Vec<String> = row
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|code| code.split('{').next().unwrap().to_owned())
        .filter(|name| name.starts_with("zoho_proxy_") || name.starts_with("process_"))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The value of the sample `name` with exactly these labels.
fn sample(families: &[serde_json::Value], name: &str, labels: serde_json::Value) -> f64 {
    families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .find(|s| s[0] == name && s[1] == labels)
        .unwrap_or_else(|| panic!("no sample {name} {labels}"))[2]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn metrics_parse_as_openmetrics_with_the_documented_names() {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::start(&accounts, &upstream.url(), &[]).await;
    proxy.ready().await;
    let response = client().get(proxy.url("/x")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();

    let response = client()
        .get(proxy.admin_url("/metrics"))
        .header("accept", OPENMETRICS)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    assert!(page.ends_with("# EOF\n"), "{page}");
    assert!(
        !page.contains("zoho_proxy_zoho_proxy"),
        "one prefix:\n{page}"
    );
    let families = parse(&page);

    let mut exposed: Vec<String> = families.iter().map(exposed_name).collect();
    exposed.sort();
    assert_eq!(
        exposed,
        documented_names(),
        "README's /metrics row names exactly what /metrics serves"
    );

    let version = serde_json::json!({ "version": env!("CARGO_PKG_VERSION") });
    assert_eq!(sample(&families, "zoho_proxy_build_info", version), 1.0);
    let labels = serde_json::json!({ "account": "default", "route": "default", "method": "GET", "status_class": "2xx" });
    assert_eq!(
        sample(&families, "zoho_proxy_http_requests_total", labels),
        1.0
    );
    let ok = serde_json::json!({ "account": "default", "outcome": "ok" });
    assert_eq!(
        sample(&families, "zoho_proxy_token_refreshes_total", ok),
        1.0
    );
    let inf = serde_json::json!({ "account": "default", "le": "+Inf" });
    assert_eq!(
        sample(
            &families,
            "zoho_proxy_http_request_duration_seconds_bucket",
            inf
        ),
        1.0
    );
    assert_eq!(
        sample(
            &families,
            "zoho_proxy_ready",
            serde_json::json!({ "account": "default" })
        ),
        1.0
    );
    assert!(
        sample(
            &families,
            "process_resident_memory_bytes",
            serde_json::json!({})
        ) > 1e6
    );
    assert!(
        sample(
            &families,
            "process_start_time_seconds",
            serde_json::json!({})
        ) > 1.7e9
    );
}

/// What Prometheus sends (2.x and 3.x put OpenMetrics first).
const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `/metrics` as `accept` gets it: its `Content-Type` and the page.
async fn scrape(proxy: &TestProxy, accept: Option<&str>) -> (String, String) {
    let mut request = client().get(proxy.admin_url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, response.text().await.unwrap())
}

/// The samples of `families` whose values are read at scrape time (process figures, the
/// token's remaining seconds) left out: `(name, labels) -> value`.
fn steady_samples(
    families: &[serde_json::Value],
) -> std::collections::BTreeMap<(String, String), f64> {
    families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .map(|s| {
            (
                (s[0].as_str().unwrap().to_owned(), s[1].to_string()),
                s[2].as_f64().unwrap_or(f64::NAN),
            )
        })
        .filter(|((name, _), _)| {
            !name.starts_with("process_") && name != "zoho_proxy_token_expiry_seconds"
        })
        .collect()
}

/// A scraper that does not name OpenMetrics in `Accept` (older agents send
/// `text/plain;version=0.0.4`; curl sends `*/*`; some send nothing) gets the classic text
/// format, which the classic parser reads as the same families with the same samples as the
/// OpenMetrics page. See issue 20, item 4.
#[tokio::test]
async fn scrapers_that_do_not_ask_for_openmetrics_get_the_classic_text_format() {
    let accounts = support::emulator(support::options(Duration::from_secs(3600))).await;
    let upstream = TestUpstream::start().await;
    let proxy = TestProxy::start(&accounts, &upstream.url(), &[]).await;
    proxy.ready().await;
    for path in ["/x", "/status/404"] {
        client().get(proxy.url(path)).send().await.unwrap();
    }

    let (content_type, openmetrics) = scrape(&proxy, Some(OPENMETRICS)).await;
    assert!(content_type.starts_with("application/openmetrics-text"));
    let reference = parse(&openmetrics);
    let mut reference_names: Vec<String> = reference.iter().map(exposed_name).collect();
    reference_names.sort();

    for accept in [
        Some("text/plain;version=0.0.4"),
        Some("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"),
        Some("*/*"),
        None,
    ] {
        let (content_type, page) = scrape(&proxy, accept).await;
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        assert!(
            !page.contains("# EOF") && !page.contains("# UNIT"),
            "{page}"
        );
        let classic = parse_as(&page, Format::Classic);
        // Every sample belongs to a declared family: the classic parser makes an untyped
        // family of any sample whose name its family's `# TYPE` does not cover.
        for family in &classic {
            assert_ne!(family["type"], "untyped", "{accept:?}: {family}\n{page}");
        }
        let mut names: Vec<String> = classic.iter().map(exposed_name).collect();
        names.sort();
        assert_eq!(names, reference_names, "{accept:?}");
        assert_eq!(names, documented_names());
        // The info family is a gauge named as its sample.
        let build = classic
            .iter()
            .find(|f| f["name"] == "zoho_proxy_build_info")
            .unwrap();
        assert_eq!(build["type"], "gauge");
        assert_eq!(
            steady_samples(&classic),
            steady_samples(&reference),
            "{accept:?}"
        );
    }

    let labels = serde_json::json!({ "account": "default", "route": "default", "method": "GET", "status_class": "4xx" });
    let classic = parse_as(&scrape(&proxy, None).await.1, Format::Classic);
    assert_eq!(
        sample(&classic, "zoho_proxy_http_requests_total", labels),
        1.0
    );
}
