//! `proxy::headers`: the upstream URI rewrite and the request-header rewrites.
//!
//! Input, split at `\n`: the request target; the token header value; then one
//! `name:value` header per line (a line without `:` is a name with an empty value).
//!
//! - `origin_form` keeps an origin-form request target byte for byte, and never passes on
//!   a scheme or authority (the connection and `Host` choose the upstream).
//! - After `strip_hop_by_hop`, `strip_client_credentials`, `override_host` and
//!   `override_authorization` (in the proxy's order), no hop-by-hop or client credential
//!   header is left, and exactly one `authorization` and one `host` are.
#![no_main]

use http::Uri;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use zoho_meeting_proxy::proxy::headers::{
    origin_form, override_authorization, override_host, strip_client_credentials,
    strip_hop_by_hop,
};

const GONE: [&str; 9] = [
    "connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "trailer",
    "cookie",
    "proxy-authorization",
];

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let target = lines.next().unwrap_or_default();
    let token = lines.next().unwrap_or_default();
    // Asterisk-form (`OPTIONS *`) has no path to keep; every other form must end up in
    // origin-form with its path and query untouched.
    if let Ok(uri) = Uri::try_from(target)
        && uri.path() != "*"
    {
        let up = origin_form(&uri);
        assert_eq!(up.scheme(), None);
        assert_eq!(up.authority(), None);
        let original = uri.path_and_query().map_or("/", |pq| pq.as_str());
        assert_eq!(up.path_and_query().map(|pq| pq.as_str()), Some(original));
        // Origin-form: what the client sent is what Zoho gets, byte for byte.
        if uri.scheme().is_none() && uri.authority().is_none() && !target.contains(&b'#') {
            assert_eq!(original.as_bytes(), target);
            assert_eq!(up.to_string().as_bytes(), target);
        }
    }

    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], line[i + 1..].trim_ascii()),
            None => (line, &b""[..]),
        };
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    let token = HeaderValue::from_bytes(token)
        .unwrap_or_else(|_| HeaderValue::from_static("Zoho-oauthtoken 1000.x.y"));
    let host = HeaderValue::from_static("meeting.zoho.com");
    strip_hop_by_hop(&mut headers);
    strip_client_credentials(&mut headers);
    override_host(&mut headers, &host);
    override_authorization(&mut headers, token.clone());
    for name in GONE {
        assert!(!headers.contains_key(name), "{name} left in {headers:?}");
    }
    let auth: Vec<_> = headers.get_all("authorization").iter().collect();
    assert_eq!(auth, [&token]);
    let hosts: Vec<_> = headers.get_all("host").iter().collect();
    assert_eq!(hosts, [&host]);
});
