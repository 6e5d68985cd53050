//! Pure header and URI rewrites and checks for the request path.
//!
//! Each rewrite does one thing to a [`HeaderMap`] or [`Uri`] and says in its name whether it
//! strips, overrides or builds; each check (`has_*`, `*_disagrees_*`) answers one question
//! about a request head for the [guard](super::guard), which owns the refusal. None of them
//! allocates per request except where a new map entry is unavoidable; the token header
//! arrives prebuilt from the token cache.

use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;

/// `X-Request-Id`, kept from the client or created.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers that apply to one connection only.
///
/// RFC 9110 §7.6.1 (<https://www.rfc-editor.org/rfc/rfc9110#section-7.6.1>): "Intermediaries
/// MUST parse a received Connection header field before a message is forwarded and, for each
/// connection-option in this field, remove any header or trailer field(s) from the message
/// with the same name as the connection-option, and then remove the Connection header field
/// itself". `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding` and
/// `Upgrade` are removed too: hyper frames each hop's message itself.
const HOPS: usize = 7;
const HOP_BY_HOP: [HeaderName; HOPS] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including every header named in `Connection`
/// (RFC 9110 §7.6.1). Used on requests and on responses.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let present = present(headers, &HOP_BY_HOP);
    if present == [false; HOPS] {
        return;
    }
    // Names listed in Connection (`HOP_BY_HOP[0]`), e.g. `Connection: close, x-foo`. Only
    // names present in the map are collected, so the usual `keep-alive` / `close` allocate
    // nothing.
    if present[0] {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|name| !is_plain_connection_option(name) && headers.contains_key(*name))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    remove_present(headers, &HOP_BY_HOP, present);
}

/// Whether a `Connection` option names nothing to remove besides what [`HOP_BY_HOP`] covers:
/// an empty one, or `keep-alive` (which nearly every HTTP/1.1 response carries; looking it up
/// in the map would parse and hash a name that is removed anyway).
fn is_plain_connection_option(name: &str) -> bool {
    name.is_empty() || name.eq_ignore_ascii_case("keep-alive")
}

/// The client credentials this proxy removes.
const CREDENTIALS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// Removes the client's credentials: `Authorization` (replaced by ours), `Cookie` and
/// `Proxy-Authorization` (meant for this proxy, never for Zoho).
pub fn strip_client_credentials(headers: &mut HeaderMap) {
    let present = present(headers, &CREDENTIALS);
    remove_present(headers, &CREDENTIALS, present);
}

/// Which of `names` the map holds. Most messages hold few or none of the names this module
/// removes: one pass over the map's names is cheaper than a hashed removal for each.
fn present<const N: usize>(headers: &HeaderMap, names: &[HeaderName; N]) -> [bool; N] {
    let mut present = [false; N];
    for name in headers.keys() {
        if let Some(i) = names.iter().position(|n| n == name) {
            present[i] = true;
        }
    }
    present
}

/// Removes each of `names` that [`present`] found.
fn remove_present<const N: usize>(
    headers: &mut HeaderMap,
    names: &[HeaderName; N],
    present: [bool; N],
) {
    for (name, present) in names.iter().zip(present) {
        if present {
            headers.remove(name);
        }
    }
}

/// Sets `Authorization` to the token's prebuilt, sensitive value, replacing any other.
pub fn override_authorization(headers: &mut HeaderMap, token: HeaderValue) {
    headers.insert(header::AUTHORIZATION, token);
}

/// Sets `Host` to the upstream's, replacing the client's (hyper-util adds `Host` only when
/// it is missing, so the client's `localhost:8080` would otherwise reach Zoho).
pub fn override_host(headers: &mut HeaderMap, host: &HeaderValue) {
    headers.insert(header::HOST, host.clone());
}

/// The upstream request target: the request's path and query exactly as received (no
/// decoding, re-encoding or normalisation), in origin-form. The scheme and authority an
/// HTTP/2 request carries go: the connection and `Host` say where the request goes.
pub fn origin_form(original: &Uri) -> Uri {
    if is_origin_form(original) {
        return original.clone();
    }
    original
        .path_and_query()
        .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()))
}

/// Whether a target is origin-form already (a path and query, no scheme or authority), as
/// every HTTP/1 target that is forwarded is: [`origin_form`] would only copy it.
pub fn is_origin_form(uri: &Uri) -> bool {
    uri.scheme().is_none() && uri.authority().is_none() && uri.path_and_query().is_some()
}

/// Whether a client's `X-Request-Id` is fit to forward and log: 1–128 visible ASCII bytes.
pub fn is_valid_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// Whether a request carries more than one `Host`: two field lines, or one value listing
/// several (`Host: a, b`, as an intermediary that merged two lines would send).
///
/// RFC 9112 §3.2 (<https://www.rfc-editor.org/rfc/rfc9112#section-3.2>): "A server MUST
/// respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a
/// Host header field and to any that contains more than one Host header field line or a Host
/// header field with an invalid field value." The `Host` grammar (RFC 9110 §7.2,
/// <https://www.rfc-editor.org/rfc/rfc9110#section-7.2>) is one `uri-host [ ":" port ]`,
/// which has no comma, so a listed value is as ambiguous as two lines: which host did the
/// client mean? The same holds for HTTP/2, whose `host` field has the same grammar.
pub fn has_duplicate_host(headers: &HeaderMap) -> bool {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => true,
        (Some(only), None) => only.as_bytes().contains(&b','),
        (None, _) => false,
    }
}

/// Whether an HTTP/2 request's `host` header names another origin than its `:authority`
/// pseudo-header (which hyper puts in the request URI), after scheme-based normalisation.
///
/// RFC 9113 §8.3.1 (<https://www.rfc-editor.org/rfc/rfc9113#section-8.3.1>): "Clients MUST
/// NOT generate a request with a Host header field that differs from the ":authority"
/// pseudo-header field. A server SHOULD treat a request as malformed if it contains a Host
/// header field that identifies an entity that differs from the entity in the ":authority"
/// pseudo-header field. The values of fields need to be normalized to compare them (see
/// Section 6.2 of \[RFC3986\]). An origin server can apply any normalization method, whereas
/// other servers MUST perform scheme-based normalization (see Section 6.2.3 of \[RFC3986\]) of
/// the two fields." This proxy is such an other server, so the comparison is scheme-based
/// (RFC 3986 §6.2.3, <https://www.rfc-editor.org/rfc/rfc3986#section-6.2.3>): host names
/// compare without regard to case, and an empty or absent port equals the scheme's default
/// (`default_port`: 80 for `http`, 443 for `https`). Userinfo in the authority is ignored,
/// as [`Authority::host`] does. A `host` value that is not a `host[:port]` disagrees.
pub fn host_disagrees_with_authority(
    host: &HeaderValue,
    authority: &Authority,
    default_port: Option<u16>,
) -> bool {
    let Ok(host) = host.to_str() else {
        return true;
    };
    let Some((name, port)) = split_host_port(host.trim()) else {
        return true;
    };
    let port = match port {
        None => default_port,
        Some(digits) => match digits.parse::<u16>() {
            Ok(port) => Some(port),
            Err(_) => return true,
        },
    };
    let authority_port = authority.port_u16().or(default_port);
    !name.eq_ignore_ascii_case(authority.host()) || port != authority_port
}

/// `host[:port]` split into its name and its port digits (`None` when absent or empty);
/// `None` when it is not of that shape. IPv6 literals keep their brackets, as
/// [`Authority::host`] does.
fn split_host_port(value: &str) -> Option<(&str, Option<&str>)> {
    let (name, rest) = if value.starts_with('[') {
        let end = value.find(']')?;
        value.split_at(end + 1)
    } else {
        match value.find(':') {
            Some(colon) => value.split_at(colon),
            None => (value, ""),
        }
    };
    if name.is_empty() {
        return None;
    }
    let port = match rest.strip_prefix(':') {
        Some("") => None,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => Some(digits),
        Some(_) => return None,
        None if rest.is_empty() => None,
        None => return None,
    };
    Some((name, port))
}

/// Whether a request path has a `.` or `..` segment, written plainly or percent-encoded in
/// any case (`%2e`, `%2E`, `.%2e`, `%2E%2E`, …). The query does not count: pass
/// [`Uri::path`]. Empty segments (`//`) are not dot segments; `..b`, `b.` and `.well-known`
/// are ordinary names.
///
/// RFC 3986 §3.3 (<https://www.rfc-editor.org/rfc/rfc3986#section-3.3>): "The path segments
/// "." and ".." [...] are intended for use at the beginning of a relative-path reference
/// [...]. They are only interpreted within the URI path hierarchy and are removed as part of
/// the resolution process", and §2.3: "For consistency, percent-encoded octets in the ranges
/// of [...] period (%2E) [...] should not be created by URI producers and, when found in a
/// URI, should be decoded to their corresponding unreserved characters by URI normalizers."
/// The proxy forwards paths byte for byte and does not normalise them; an upstream that does
/// would resolve `/api/v2/../../echo` to `/echo` after `access.rules` matched the raw path.
/// Refusing such paths keeps the rules sound whatever the upstream does.
///
/// Segments are split on `/`, and for this check also on an encoded slash (`%2f`, `%2F`):
/// the path is still forwarded untouched, but an upstream that decodes `%2f` before splitting
/// would see `/a/%2e%2e%2fb` as `/a/../b`, so a dot segment hidden behind one is refused too.
/// Without such decoding `..%2fb` is one odd name, and refusing it costs no real API path.
pub fn has_dot_segment(path: &str) -> bool {
    let bytes = path.as_bytes();
    // Dots seen in the current segment, or `None` once it holds anything else.
    let mut dots = Some(0u8);
    let mut i = 0;
    while i < bytes.len() {
        let (step, unit) = match bytes[i] {
            b'/' => (1, Unit::Slash),
            b'.' => (1, Unit::Dot),
            b'%' => match bytes.get(i + 1..i + 3) {
                Some(hex) if hex.eq_ignore_ascii_case(b"2e") => (3, Unit::Dot),
                Some(hex) if hex.eq_ignore_ascii_case(b"2f") => (3, Unit::Slash),
                _ => (1, Unit::Other),
            },
            _ => (1, Unit::Other),
        };
        match unit {
            Unit::Slash => {
                if matches!(dots, Some(1 | 2)) {
                    return true;
                }
                dots = Some(0);
            }
            Unit::Dot => dots = dots.map(|n| n.saturating_add(1)),
            Unit::Other => dots = None,
        }
        i += step;
    }
    matches!(dots, Some(1 | 2))
}

/// What one step of [`has_dot_segment`] read.
enum Unit {
    Slash,
    Dot,
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Foo"),
            ("connection", "x-bar"),
            ("x-foo", "1"),
            ("x-bar", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-keep", "yes"),
            ("content-type", "application/json"),
        ]);
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["content-type", "x-keep"]);
    }

    #[test]
    fn connection_options_in_any_case_remove_their_headers() {
        let mut h = map(&[
            ("connection", "Keep-Alive, CLOSE,, x-Foo"),
            ("keep-alive", "timeout=5"),
            ("close", "named by the close option"),
            ("x-foo", "1"),
            ("x-keep", "yes"),
        ]);
        strip_hop_by_hop(&mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["x-keep"]);
        // `keep-alive` alone: only the hop-by-hop headers go.
        let mut h = map(&[("connection", "keep-alive"), ("keep-alive", "timeout=5")]);
        h.append("x-keep", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-keep"]);
    }

    #[test]
    fn credentials_are_removed_and_authorization_overridden() {
        let mut h = map(&[
            ("authorization", "Basic dXNlcjpwYXNz"),
            ("authorization", "Bearer other"),
            ("cookie", "session=1"),
            ("proxy-authorization", "Bearer key"),
        ]);
        h.append("x-keep", HeaderValue::from_static("yes"));
        strip_client_credentials(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-keep"]);
        h.clear();
        let mut token = HeaderValue::from_static("Zoho-oauthtoken 1000.x");
        token.set_sensitive(true);
        override_authorization(&mut h, token);
        assert_eq!(h.len(), 1);
        assert_eq!(h.get_all(header::AUTHORIZATION).iter().count(), 1);
        assert!(h[header::AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn path_and_query_are_kept_byte_for_byte() {
        for target in [
            "/api/v2/123/sessions.json?listtype=upcoming&index=1&count=20",
            "/api/v2/a%2Fb/x.json?q=a+b&q=c%20d&empty=&=v",
            "/meeting/api/v2/1/recordings.json?x=%E2%9C%93",
            "/",
            "/a//b/../c?%zz",
        ] {
            let original: Uri = target.parse().unwrap();
            assert_eq!(origin_form(&original).to_string(), target);
            // An HTTP/2 request's scheme and authority go; path and query stay.
            let h2: Uri = format!("https://localhost:8080{target}").parse().unwrap();
            assert_eq!(origin_form(&h2).to_string(), target);
        }
        assert_eq!(origin_form(&"https://localhost".parse().unwrap()), "/");
    }

    #[test]
    fn host_is_overridden() {
        let mut h = map(&[("host", "localhost:8080")]);
        override_host(&mut h, &HeaderValue::from_static("meeting.zoho.com"));
        assert_eq!(h[header::HOST], "meeting.zoho.com");
    }

    #[test]
    fn request_ids_are_checked() {
        assert!(is_valid_request_id(&HeaderValue::from_static("abc-123")));
        assert!(!is_valid_request_id(&HeaderValue::from_static("")));
        assert!(!is_valid_request_id(&HeaderValue::from_static("a b")));
        assert!(!is_valid_request_id(
            &HeaderValue::from_str(&"x".repeat(129)).unwrap()
        ));
    }

    #[test]
    fn two_host_lines_or_a_listed_host_are_duplicates() {
        assert!(!has_duplicate_host(&map(&[])));
        assert!(!has_duplicate_host(&map(&[("host", "localhost:8080")])));
        assert!(!has_duplicate_host(&map(&[("host", "[::1]:8080")])));
        assert!(has_duplicate_host(&map(&[
            ("host", "localhost"),
            ("host", "localhost")
        ])));
        assert!(has_duplicate_host(&map(&[
            ("host", "localhost"),
            ("x-other", "1"),
            ("host", "evil.example"),
        ])));
        assert!(has_duplicate_host(&map(&[(
            "host",
            "localhost, evil.example"
        )])));
    }

    #[test]
    fn host_and_authority_compare_after_scheme_based_normalisation() {
        let disagrees = |host: &str, authority: &str, default_port| {
            host_disagrees_with_authority(
                &HeaderValue::from_str(host).unwrap(),
                &authority.parse::<Authority>().unwrap(),
                default_port,
            )
        };
        for (host, authority) in [
            ("localhost:8080", "localhost:8080"),
            ("LocalHost:8080", "localhost:8080"),
            ("localhost", "localhost:80"),
            ("localhost:80", "localhost"),
            ("localhost:", "localhost"),
            ("[::1]:8080", "[::1]:8080"),
            ("[::1]", "[::1]:80"),
            ("localhost:8080", "user@localhost:8080"),
        ] {
            assert!(
                !disagrees(host, authority, Some(80)),
                "{host} vs {authority}"
            );
        }
        for (host, authority) in [
            ("evil.example:8080", "localhost:8080"),
            ("localhost:8081", "localhost:8080"),
            ("localhost", "localhost:443"),
            ("[::2]:8080", "[::1]:8080"),
            ("localhost:x", "localhost"),
            ("localhost:99999", "localhost"),
            (":8080", "localhost:8080"),
            ("[::1", "localhost"),
            ("[::1]x", "[::1]"),
        ] {
            assert!(
                disagrees(host, authority, Some(80)),
                "{host} vs {authority}"
            );
        }
        assert!(!disagrees("localhost", "localhost:443", Some(443)));
        // An unknown scheme has no default port: only the same port, or none, agrees.
        assert!(disagrees("localhost", "localhost:80", None));
        assert!(!disagrees("localhost", "localhost", None));
        let not_utf8 = HeaderValue::from_bytes(b"local\xffhost").unwrap();
        assert!(host_disagrees_with_authority(
            &not_utf8,
            &Authority::from_static("localhost"),
            Some(80)
        ));
    }

    #[test]
    fn dot_segments_are_found_plain_and_percent_encoded() {
        for path in [
            "/.",
            "/..",
            "/./",
            "/../",
            "/a/./b",
            "/a/../b",
            "/a/%2e/b",
            "/a/%2E/b",
            "/a/%2e%2e/b",
            "/a/%2E%2e/b",
            "/a/%2e%2E/b",
            "/a/.%2e/b",
            "/a/%2e./b",
            "/a/%2E%2E",
            "/api/v2/../../echo/x",
            "..",
            "/a/b/..",
            "/a//../b",
            // Behind an encoded slash: what an upstream that decodes %2f would see.
            "/a/%2e%2e%2fb",
            "/a/..%2Fb",
            "/a%2f..%2fb",
            "/a%2F.",
        ] {
            assert!(has_dot_segment(path), "{path}");
        }
        for path in [
            "",
            "/",
            "*",
            "/a/b",
            "/a//b",
            "//",
            "/a/..b/c",
            "/a/b.",
            "/a/.b",
            "/a/...",
            "/a/%2e%2e%2e/b",
            "/.well-known/x",
            "/a/%2e%2ex",
            "/a/%2",
            "/a/%2e%2",
            "/a/%",
            "/api/v2/a%2Fb/x.json",
            "/a/%2f/b",
            "/api/v2/user.json",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }
}
