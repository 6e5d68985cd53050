//! `config::AccessRule::parse` and `matches`.
//!
//! Input: `rule \n method \n path` (split at the first two newlines). Must never panic or
//! take long (the `**` glob); `* /**` allows every method and every path starting with '/'.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zoho_meeting_proxy::config::AccessRule;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = s.splitn(3, '\n');
    let rule = parts.next().unwrap_or("");
    let method = parts.next().unwrap_or("GET");
    let path = parts.next().unwrap_or("/");
    if let Ok(rule) = AccessRule::parse(rule) {
        let _ = rule.matches(method, path);
    }
    if path.starts_with('/') {
        let all = AccessRule::parse("* /**").expect("valid rule");
        assert!(all.matches(method, path));
    }
});
