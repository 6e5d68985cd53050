//! Pure header and URI rewrites for the request path.
//!
//! Each function does one thing to a [`HeaderMap`] or [`Uri`] and says in its name whether it
//! strips, overrides or builds. None of them allocates per request except where a new map
//! entry is unavoidable; the token header arrives prebuilt from the token cache.

use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

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
}
