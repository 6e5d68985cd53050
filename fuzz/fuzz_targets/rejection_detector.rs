//! `token::rejection::is_token_rejection` on any (peeked) body.
//!
//! Must never panic, and a body containing `INVALID_OAUTHTOKEN` anywhere is a rejection by
//! design (zoho-facts §9), whatever surrounds it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zoho_meeting_proxy::token::rejection::is_token_rejection;

fuzz_target!(|data: &[u8]| {
    let _ = is_token_rejection(data);
    assert!(is_token_rejection(&[data, b"INVALID_OAUTHTOKEN"].concat()));
    assert!(is_token_rejection(&[b"INVALID_OAUTHTOKEN", data].concat()));
});
