//! Does this upstream answer reject the access token?
//!
//! Zoho Meeting rejects an invalid or expired token with **HTTP 400**
//! `{"error":{"code":2000,"message":"INVALID_OAUTHTOKEN"}}`; other Zoho APIs answer 401
//! `{"code":"INVALID_TOKEN",...}` (zoho-facts §9). A 401 `UNAUTHORIZED_USER`, a 401
//! `OAUTH_SCOPE_MISMATCH` or any 403 is a permission problem that a new token cannot fix, so
//! only these shapes count, and only on 400 or 401. The proxy reads at most
//! [`PEEK_LIMIT`] bytes of such an answer to decide; success bodies are never read.

use http::StatusCode;
use serde_json::Value;

/// The most bytes of a 400/401 body read to look for a token rejection.
pub const PEEK_LIMIT: usize = 4096;

/// Whether a status may carry a token rejection.
pub fn may_reject(status: StatusCode) -> bool {
    status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED
}

/// Whether `body` (all of it, or its first [`PEEK_LIMIT`] bytes) says the token is invalid.
pub fn is_token_rejection(body: &[u8]) -> bool {
    if contains(body, b"INVALID_OAUTHTOKEN") {
        return true;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(json) => {
            json.get("code").and_then(Value::as_str) == Some("INVALID_TOKEN")
                || json
                    .get("error")
                    .and_then(|e| e.get("code"))
                    .and_then(Value::as_i64)
                    == Some(2000)
        }
        // A prefix that is not whole JSON: fall back to the textual shapes.
        Err(_) => contains_compact(body, b"\"code\":\"INVALID_TOKEN\""),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `contains`, ignoring ASCII whitespace in the haystack (`"code": "INVALID_TOKEN"`).
fn contains_compact(haystack: &[u8], needle: &[u8]) -> bool {
    let compact: Vec<u8> = haystack
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    contains(&compact, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoho_shapes_are_rejections() {
        for body in [
            r#"{"error":{"code":2000,"message":"INVALID_OAUTHTOKEN"}}"#,
            r#"{"error":{"code":2000,"message":"Invalid DC or Invalid token"}}"#,
            r#"{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}"#,
            r#"{"error":[{"error_code":"INVALID_OAUTHTOKEN"}]}"#,
            "INVALID_OAUTHTOKEN",
        ] {
            assert!(is_token_rejection(body.as_bytes()), "{body}");
        }
        // A truncated prefix still counts.
        assert!(is_token_rejection(
            br#"{"code" : "INVALID_TOKEN", "details": {"x": "#
        ));
    }

    #[test]
    fn permission_errors_are_not_rejections() {
        for body in [
            r#"{"error":{"errorCode":3001,"message":"You do not have permission to access this organization account.","key":"UNAUTHORIZED_USER"}}"#,
            r#"{"code":"OAUTH_SCOPE_MISMATCH","message":"invalid oauth scope to access this URL","status":"error"}"#,
            r#"{"error":{"code":1025,"message":"Org doesn't matches with request uri"}}"#,
            r#"{"error":{"errorCode":4000,"key":"INVALID_MEETING_KEY"}}"#,
            r#"{"error":{"code":"2000"}}"#,
            "",
            "<html>bad request</html>",
        ] {
            assert!(!is_token_rejection(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn only_400_and_401_are_examined() {
        assert!(may_reject(StatusCode::BAD_REQUEST));
        assert!(may_reject(StatusCode::UNAUTHORIZED));
        assert!(!may_reject(StatusCode::FORBIDDEN));
        assert!(!may_reject(StatusCode::OK));
    }
}
