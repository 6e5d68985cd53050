//! `[[routes]]`: which route a request takes (`Routes::select`) and the target it is
//! forwarded with (`proxy::upstream_target`: `headers::origin_form`, then `Route::target`),
//! after the guard (`Guard::admit`) let it through.
//!
//! Input, one item a line:
//! - line 1: the path of `upstream.url` (`https://meeting.zoho.eu` + it): the default
//!   route's base path;
//! - then up to four routes, `<flag><prefix> <path>`: flag `s` strips the prefix, any other
//!   byte keeps it; the route's upstream is `https://r<i>.zoho.eu` + path;
//! - the last line: the request target, an HTTP/1.1 request line's; after a `h2:` prefix an
//!   HTTP/2 `:path` (`:scheme` http, `:authority` localhost:8080).
//!
//! A configuration the validator refuses is skipped. Otherwise, against an independent
//! string model of the documented rule (interface.md "Routes"; route.rs):
//! - the route is the longest prefix that matches whole segments (a prefix `p`, trailing
//!   `/` aside, matches `p` and `p/…`), else the default route;
//! - the request is refused, or forwarded in origin-form with exactly: the route's base path
//!   (its upstream URL's path without a trailing `/`) + the path as received, or, with
//!   `strip_prefix`, base + `/` + what follows `p/` in the path; then `?` and the query as
//!   received when there is one. Nothing is decoded, re-encoded or normalised (fragment
//!   aside: `http` drops it);
//! - so a forwarded path never leaves the route's base path; a target that is not a path
//!   (`OPTIONS *`) is refused or forwarded untouched, never put after a base path;
//! - a path with a dot segment is never forwarded.
//!
//! An HTTP/2 `:path` that is neither origin-form nor `*` (RFC 9113 §8.3.1), such as `?x` or
//! `#x`, is skipped: h2 accepts it and `http` reads its path as `/`, so it goes to the base
//! path + `/`.
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use figment::Figment;
use figment::value::{Dict, Value};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Uri, Version, header};
use libfuzzer_sys::fuzz_target;
use zoho_meeting_proxy::config::Config;
use zoho_meeting_proxy::proxy::route::Routes;
use zoho_meeting_proxy::proxy::{Guard, upstream_target};

/// One route as the model sees it.
struct ModelRoute {
    /// The prefix without its trailing `/`; `None` for the default route.
    prefix: Option<String>,
    /// The label `Routes` gives it.
    label: String,
    base: String,
    strip: bool,
}

struct Setup {
    guard: Guard,
    routes: Routes,
    model: Vec<ModelRoute>,
}

const MAX_ROUTES: usize = 4;

fn build(lines: &[&[u8]]) -> Option<Setup> {
    let base = std::str::from_utf8(lines.first()?).ok()?;
    let mut routes = Vec::new();
    for (i, line) in lines[1..].iter().enumerate().take(MAX_ROUTES) {
        let line = std::str::from_utf8(line).ok()?;
        let mut chars = line.chars();
        let strip = chars.next()? == 's';
        let (prefix, path) = chars
            .as_str()
            .split_once(' ')
            .unwrap_or((chars.as_str(), ""));
        let mut route = Dict::new();
        route.insert("prefix".into(), Value::from(prefix.to_owned()));
        route.insert(
            "upstream".into(),
            Value::from(format!("https://r{i}.zoho.eu{path}")),
        );
        route.insert("strip_prefix".into(), Value::from(strip));
        routes.push(route);
    }
    let figment = Figment::new()
        .merge(("oauth.data_center", "eu"))
        .merge(("upstream.url", format!("https://meeting.zoho.eu{base}")))
        .merge(("routes", routes));
    let config = Config::from_figment(&figment, None).ok()?;
    let mut model: Vec<ModelRoute> = config
        .routes
        .iter()
        .map(|r| ModelRoute {
            prefix: Some(r.prefix.trim_end_matches('/').to_owned()),
            label: r.prefix.clone(),
            base: config.route_url(r).path().trim_end_matches('/').to_owned(),
            strip: r.strip_prefix,
        })
        .collect();
    model.push(ModelRoute {
        prefix: None,
        label: "default".into(),
        base: config.upstream.url.path().trim_end_matches('/').to_owned(),
        strip: false,
    });
    Some(Setup {
        guard: Guard::new(&config),
        routes: Routes::new(&config).ok()?,
        model,
    })
}

thread_local! {
    /// Built routes by configuration lines: building one costs TLS set-up per route.
    static CACHE: RefCell<HashMap<Vec<u8>, Option<Rc<Setup>>>> = RefCell::new(HashMap::new());
}

fn setup(config: &[u8], lines: &[&[u8]]) -> Option<Rc<Setup>> {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(found) = cache.get(config) {
            return found.clone();
        }
        if cache.len() >= 256 {
            cache.clear();
        }
        let built = build(lines).map(Rc::new);
        cache.insert(config.to_vec(), built.clone());
        built
    })
}

/// `%2e` → `.`, `%2f` → `/` (any case), then any `.` or `..` segment.
fn model_has_dot_segment(path: &[u8]) -> bool {
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let rest = &path[i..];
        if rest.len() >= 3 && rest[0] == b'%' && rest[1] == b'2' {
            let byte = match rest[2] {
                b'e' | b'E' => Some(b'.'),
                b'f' | b'F' => Some(b'/'),
                _ => None,
            };
            if let Some(byte) = byte {
                decoded.push(byte);
                i += 3;
                continue;
            }
        }
        decoded.push(path[i]);
        i += 1;
    }
    decoded
        .split(|&b| b == b'/')
        .any(|segment| segment == b"." || segment == b"..")
}

/// The route the documented rule picks for `path`: the longest prefix matching whole
/// segments, else the default (last).
fn model_select<'a>(model: &'a [ModelRoute], path: &[u8]) -> &'a ModelRoute {
    model
        .iter()
        .filter(|r| match &r.prefix {
            None => false,
            Some(p) => {
                let p = p.as_bytes();
                path == p || (path.starts_with(p) && path.get(p.len()) == Some(&b'/'))
            }
        })
        .max_by_key(|r| r.prefix.as_ref().map_or(0, String::len))
        .unwrap_or_else(|| model.last().expect("the default route"))
}

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let Some((&target, config_lines)) = lines.split_last() else {
        return;
    };
    if config_lines.is_empty() || config_lines.len() > 1 + MAX_ROUTES {
        return;
    }
    let config_bytes = &data[..data.len() - target.len()];
    let Some(setup) = setup(config_bytes, config_lines) else {
        return;
    };

    let (h2, target) = match target.strip_prefix(b"h2:") {
        Some(path) => (true, path),
        None => (false, target),
    };
    let uri = if h2 {
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
    let method = if uri.path() == "*" {
        Method::OPTIONS
    } else {
        Method::GET
    };
    let mut builder = Request::builder().method(method).uri(uri.clone());
    if h2 {
        builder = builder.version(Version::HTTP_2);
    } else {
        builder = builder
            .version(Version::HTTP_11)
            .header(header::HOST, "localhost:8080");
    }
    let req = builder.body(()).expect("request");
    if setup.guard.admit(&req, 0).verdict.is_err() {
        // Refused: nothing is forwarded.
        return;
    }

    // The model, from the bytes the client sent.
    let sent = target.split(|&b| b == b'#').next().unwrap_or_default();
    let (path, query) = match sent.iter().position(|&b| b == b'?') {
        Some(i) => (&sent[..i], Some(&sent[i + 1..])),
        None => (sent, None),
    };
    assert!(
        !model_has_dot_segment(path),
        "{target:?}: a dot segment was forwarded"
    );
    let expected_route = model_select(&setup.model, path);

    let (_, route) = setup.routes.select(uri.path());
    assert_eq!(route.label(), expected_route.label, "{target:?}");
    let forwarded = upstream_target(uri.clone(), route);
    assert_eq!(forwarded.scheme(), None);
    assert_eq!(forwarded.authority(), None);
    let up = forwarded
        .path_and_query()
        .map_or(&b""[..], |pq| pq.as_str().as_bytes());

    let base = expected_route.base.as_bytes();
    if !path.starts_with(b"/") {
        // Not a path (`*`): nothing to put after a base path.
        assert!(
            up == sent,
            "{target:?} forwarded as {:?} by route {}",
            String::from_utf8_lossy(up),
            expected_route.label
        );
        return;
    }
    let mut expected = base.to_vec();
    match (&expected_route.prefix, expected_route.strip) {
        (Some(prefix), true) => {
            // `path` is `prefix` or `prefix/rest`.
            let rest = &path[prefix.len()..];
            if rest.is_empty() {
                expected.push(b'/');
            } else {
                expected.extend_from_slice(rest);
            }
        }
        _ => expected.extend_from_slice(path),
    }
    if let Some(query) = query {
        expected.push(b'?');
        expected.extend_from_slice(query);
    }
    assert_eq!(
        String::from_utf8_lossy(up),
        String::from_utf8_lossy(&expected),
        "{target:?} on route {} (base {:?}, strip {})",
        expected_route.label,
        expected_route.base,
        expected_route.strip
    );
    assert_eq!(up, expected.as_slice());
});
