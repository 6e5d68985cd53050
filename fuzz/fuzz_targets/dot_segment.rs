//! The dot-segment refusal: `proxy::Guard` (via `Guard::admit`, as the proxy calls it) and
//! `proxy::headers::has_dot_segment`, then what the default route forwards
//! (`proxy::upstream_target`).
//!
//! Input: a request target. Plain, it is an HTTP/1.1 request line's target (parsed as
//! hyper does, with `http::Uri`); after a `h2:` prefix it is an HTTP/2 `:path` (the URI
//! built as h2 builds it, with `:scheme` http and `:authority` localhost:8080; a `:path`
//! that is neither origin-form nor `*`, such as `#x` or `?x`, is skipped: h2 accepts it and
//! `http` reads its path as `/`).
//!
//! Property, against an independent model of the documented rule (interface.md, "Requests
//! refused before forwarding"; `has_dot_segment`'s docs): percent-decode `%2e`/`%2E` to `.`
//! and `%2f`/`%2F` to `/` in the path (the target before `?`), split at `/`; a `.` or `..`
//! segment means the request is refused before forwarding — with 400 `DotSegment` when no
//! earlier check refuses it. Without one, a request the guard has no other reason to refuse
//! (`GET`, `Host: localhost`, an origin-form target within `limits.max_uri_bytes`) is
//! forwarded, and its target upstream is byte for byte what the client sent (fragment
//! aside: `http` drops it).
#![no_main]

use std::sync::OnceLock;

use figment::Figment;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, StatusCode, Uri, Version, header};
use libfuzzer_sys::fuzz_target;
use zoho_meeting_proxy::config::Config;
use zoho_meeting_proxy::proxy::guard::Verdict;
use zoho_meeting_proxy::proxy::headers::has_dot_segment;
use zoho_meeting_proxy::proxy::route::Routes;
use zoho_meeting_proxy::proxy::{Guard, ProxyError, upstream_target};

struct Setup {
    guard: Guard,
    routes: Routes,
    max_uri_bytes: usize,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let figment = Figment::new()
            .merge(("oauth.data_center", "eu"))
            .merge(("upstream.url", "https://meeting.zoho.eu"));
        let config = Config::from_figment(&figment, None).expect("valid configuration");
        Setup {
            guard: Guard::new(&config),
            routes: Routes::new(&config).expect("routes"),
            max_uri_bytes: config.limits.max_uri_bytes,
        }
    })
}

/// The model: `%2e` → `.`, `%2f` → `/` (any case, left to right), then any `.` or `..`
/// segment.
fn model_has_dot_segment(path: &[u8]) -> bool {
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let rest = &path[i..];
        if rest.len() >= 3 && rest[0] == b'%' && rest[1] == b'2' {
            match rest[2] {
                b'e' | b'E' => {
                    decoded.push(b'.');
                    i += 3;
                    continue;
                }
                b'f' | b'F' => {
                    decoded.push(b'/');
                    i += 3;
                    continue;
                }
                _ => {}
            }
        }
        decoded.push(path[i]);
        i += 1;
    }
    decoded
        .split(|&b| b == b'/')
        .any(|segment| segment == b"." || segment == b"..")
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let (h2, target) = match data.strip_prefix(b"h2:") {
        Some(path) => (true, path),
        None => (false, data),
    };
    let uri = if h2 {
        // A :path must be origin-form or `*` (RFC 9113 §8.3.1). h2 refuses only an empty one
        // and leaves the rest to `PathAndQuery`, which takes `#x` and `?x` with `/` as their
        // path: what the guard, the rules and the upstream all see, but not what was sent.
        if !(target.starts_with(b"/") || target == b"*") {
            return;
        }
        let Ok(path) = PathAndQuery::try_from(target) else {
            return;
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(Authority::from_static("localhost:8080"));
        parts.path_and_query = Some(path);
        let Ok(uri) = Uri::from_parts(parts) else {
            return;
        };
        uri
    } else {
        let Ok(uri) = Uri::try_from(target) else {
            return;
        };
        uri
    };
    // What the client sent, as `http` keeps it: the fragment goes.
    let sent = target.split(|&b| b == b'#').next().unwrap_or_default();
    let raw_path = sent.split(|&b| b == b'?').next().unwrap_or_default();
    let dot = model_has_dot_segment(raw_path);
    // The function the guard uses agrees with the model on the path `http` parsed.
    assert_eq!(
        has_dot_segment(uri.path()),
        model_has_dot_segment(uri.path().as_bytes()),
        "{:?}",
        uri.path()
    );

    let mut builder = Request::builder().method(Method::GET).uri(uri.clone());
    if h2 {
        builder = builder.version(Version::HTTP_2);
    } else {
        builder = builder
            .version(Version::HTTP_11)
            .header(header::HOST, "localhost:8080");
    }
    let req = builder.body(()).expect("request");
    let admission = setup.guard.admit(&req, 0);
    let too_long = uri.path_and_query().map_or(0, |p| p.as_str().len()) > setup.max_uri_bytes;
    let origin_form = uri.scheme().is_none() && uri.authority().is_none();
    // A request the guard has no reason to refuse but (maybe) its path.
    let plain = raw_path.starts_with(b"/") && !too_long && (h2 || origin_form);
    match admission.verdict {
        Err(refusal) => {
            if dot && plain {
                assert!(
                    matches!(refusal, ProxyError::DotSegment),
                    "{target:?}: {refusal:?}"
                );
                assert_eq!(refusal.classify().0, StatusCode::BAD_REQUEST);
            }
            assert!(!(plain && !dot), "{target:?} refused: {refusal:?}");
        }
        Ok(verdict) => {
            assert!(!dot, "{target:?} with a dot segment was let through");
            assert!(matches!(verdict, Verdict::Forward), "{verdict:?}");
            let (_, route) = setup.routes.select(uri.path());
            let forwarded = upstream_target(uri.clone(), route);
            assert_eq!(forwarded.scheme(), None);
            assert_eq!(forwarded.authority(), None);
            let up = forwarded.path_and_query().map_or("", |pq| pq.as_str());
            assert_eq!(
                up.as_bytes(),
                sent,
                "{target:?} forwarded as {up:?}, not as sent"
            );
        }
    }
});
