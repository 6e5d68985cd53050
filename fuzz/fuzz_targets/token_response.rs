//! `token::parse_grant`: any status and body from the token endpoint.
//!
//! Input: two bytes of big-endian HTTP status, then the body. Must never panic; a grant's
//! `Debug` output must never show the access or refresh token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zoho_meeting_proxy::token::parse_grant;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => return,
    };
    match parse_grant(status, body) {
        Ok(grant) => {
            let debug = format!("{grant:?}");
            let mut secrets = vec![grant.access_token.expose().clone()];
            if let Some(r) = &grant.refresh_token {
                secrets.push(r.expose().clone());
            }
            // Text that may legitimately contain the token's characters.
            let public = format!(
                "Grant access_token refresh_token lifetime api_domain scope Some None \
                 {:?} {:?} {:?}",
                grant.api_domain, grant.scope, grant.lifetime
            );
            for secret in secrets {
                // Token-like values only (Zoho's are `1000.<hex>.<hex>`): such a value cannot
                // straddle the punctuation between Debug fields, so finding it is a leak.
                let token_like = secret.len() >= 8
                    && secret
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if token_like && !public.contains(secret.as_str()) {
                    assert!(!debug.contains(secret.as_str()), "token in Debug: {debug}");
                }
            }
        }
        Err(e) => {
            let _ = (e.class(), e.to_string(), format!("{e:?}"));
        }
    }
});
