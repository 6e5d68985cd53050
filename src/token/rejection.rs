//! Does this upstream answer reject the access token?
//!
//! Zoho Meeting rejects an invalid or expired token with **HTTP 400**
//! `{"error":{"code":2000,"message":"INVALID_OAUTHTOKEN"}}`; other Zoho APIs answer 401
//! `{"code":"INVALID_TOKEN",...}` (zoho-facts §9). A 401 `UNAUTHORIZED_USER`, a 401
//! `OAUTH_SCOPE_MISMATCH` or any 403 is a permission problem that a new token cannot fix, so
//! only these shapes count, and only on 400 or 401. The proxy reads at most
//! [`PEEK_LIMIT`] bytes of such an answer to decide; success bodies are never read.
//!
//! The client's `Accept-Encoding` is forwarded, so the answer may be compressed. The check
//! sees through the answer's `Content-Encoding`:
//! - `gzip` and `x-gzip` (several gzip members are read one after another);
//! - `deflate`, zlib-wrapped as RFC 9110 says, or raw deflate as browsers also accept (a body
//!   that does not start with a zlib header, or whose zlib decoding yields nothing);
//! - `br`;
//! - `identity`, and no header at all: the body is plain.
//!
//! Several codings (`Content-Encoding: gzip, br`, or one header line each) are undone in
//! reverse order, the last applied first, up to [`MAX_CODINGS`] of them. Any other coding
//! (`compress`, `zstd`, an unknown name, a header that is not text), or more than
//! [`MAX_CODINGS`], is judged **not** a rejection: the answer is passed through.
//!
//! Decoding is bounded both ways. The input is what was peeked, at most [`PEEK_LIMIT`]
//! (compressed) bytes, and each decoding step stops after [`DECODED_LIMIT`] bytes of output,
//! so a decompression bomb costs at most that much output and the time to produce it. A
//! brotli decoder also keeps a window, which a stream may declare as large as 16 MiB; one
//! larger than [`BROTLI_WINDOW_LIMIT`] is refused (judged not a rejection), not allocated.
//! A stream cut short (the peek stops at [`PEEK_LIMIT`]) or corrupt after a valid start
//! decodes as far as it goes and that prefix is judged, as a plain prefix is; garbage
//! decodes to nothing and is not a rejection. Nothing here panics on any input.
//!
//! [`is_token_rejection_with_headers`] is the proxy's check; [`is_token_rejection`] judges a
//! body known to be plain (`check --online`, whose client asks for no compression).
//!
//! Decoding is only for the judgement: the bytes the client receives are exactly the ones
//! Zoho sent, still compressed, with their `Content-Encoding`.

use std::borrow::Cow;
use std::io::Read;

use brotli_decompressor::{Allocator, StandardAlloc};
use http::StatusCode;
use http::header::{CONTENT_ENCODING, HeaderMap};
use serde_json::Value;

/// The most bytes of a 400/401 body read to look for a token rejection.
pub const PEEK_LIMIT: usize = 4096;

/// The most decoded bytes one decoding step produces; the rest of a larger (or bomb) body
/// is not decoded.
pub const DECODED_LIMIT: usize = 16 * 1024;

/// The most content codings undone for one answer (`gzip, br` is two).
pub const MAX_CODINGS: usize = 3;

/// The largest brotli window (ring buffer) allocated, in bytes: 1 MiB (`lgwin` 20; nginx's
/// brotli module defaults to 512 KiB). A body sent whole as one final metablock, as servers
/// send short answers, needs only about twice its length whatever window it declares; a
/// stream that needs a larger window is not decoded (not a rejection).
pub const BROTLI_WINDOW_LIMIT: usize = 1 << 20;

/// Output is read in steps of this many bytes, so that a decoder error loses at most one
/// step of what it had decoded.
const READ_STEP: usize = 512;

/// Whether a status may carry a token rejection.
pub fn may_reject(status: StatusCode) -> bool {
    status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED
}

/// Whether an answer with these `headers` and `body` (all of it, or what the peek read)
/// says the token is invalid: what the proxy asks of a 400/401. Only the first
/// [`PEEK_LIMIT`] bytes are judged (the peek keeps whole frames, so it may hand over more);
/// a compressed body is decoded first, as the module documentation describes.
pub fn is_token_rejection_with_headers(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(codings) = content_codings(headers) else {
        return false;
    };
    let peeked = body.get(..PEEK_LIMIT).unwrap_or(body);
    if codings.is_empty() {
        return is_token_rejection(peeked);
    }
    match decode(&codings, peeked) {
        Some(decoded) => is_token_rejection(&decoded),
        None => false,
    }
}

/// Whether a plain (not content-coded) `body`, or a prefix of one, says the token is
/// invalid. For answers whose `Content-Encoding` is unknown to the caller, use
/// [`is_token_rejection_with_headers`].
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

/// A content coding this module can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Brotli,
}

/// The codings applied to the body, in the order they were applied (`identity` left out);
/// `None` when one is unknown or there are more than [`MAX_CODINGS`].
fn content_codings(headers: &HeaderMap) -> Option<Vec<Coding>> {
    let mut codings = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let value = value.to_str().ok()?;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let coding = if name.eq_ignore_ascii_case("identity") {
                continue;
            } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                Coding::Gzip
            } else if name.eq_ignore_ascii_case("deflate") {
                Coding::Deflate
            } else if name.eq_ignore_ascii_case("br") {
                Coding::Brotli
            } else {
                return None;
            };
            if codings.len() == MAX_CODINGS {
                return None;
            }
            codings.push(coding);
        }
    }
    Some(codings)
}

/// Undoes `codings` (in reverse order of application); `body` itself when there are none.
fn decode<'a>(codings: &[Coding], body: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    let mut current = Cow::Borrowed(body);
    for coding in codings.iter().rev() {
        let decoded = match coding {
            Coding::Gzip => read_capped(flate2::bufread::MultiGzDecoder::new(&current[..])),
            Coding::Deflate => inflate(&current),
            Coding::Brotli => unbrotli(&current),
        };
        if decoded.is_empty() {
            return None;
        }
        current = Cow::Owned(decoded);
    }
    Some(current)
}

/// `deflate`: zlib when the body starts with a zlib header, else (or when that yields
/// nothing) raw deflate.
fn inflate(body: &[u8]) -> Vec<u8> {
    if has_zlib_header(body) {
        let decoded = read_capped(flate2::bufread::ZlibDecoder::new(body));
        if !decoded.is_empty() {
            return decoded;
        }
    }
    read_capped(flate2::bufread::DeflateDecoder::new(body))
}

/// RFC 1950: method 8 (deflate), a window of at most 32 KiB, and the header check bits.
fn has_zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && ((u16::from(*cmf) << 8) | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// `br`, with the decoder's window bounded by [`BROTLI_WINDOW_LIMIT`] ([`WindowCap`]).
fn unbrotli(body: &[u8]) -> Vec<u8> {
    let mut alloc = StandardAlloc::default();
    let input_buffer = <StandardAlloc as Allocator<u8>>::alloc_cell(&mut alloc, 1024);
    read_capped(brotli_decompressor::reader::DecompressorCustomAlloc::new(
        body,
        input_buffer,
        WindowCap(StandardAlloc::default()),
        StandardAlloc::default(),
        StandardAlloc::default(),
    ))
}

/// The brotli decoder's byte allocator, refusing (with an empty allocation, which the
/// decoder reports as an error) anything larger than a window of [`BROTLI_WINDOW_LIMIT`]
/// plus the decoder's slack. The decoder's other byte allocations are at most 16 KiB.
struct WindowCap(StandardAlloc);

impl Allocator<u8> for WindowCap {
    type AllocatedMemory = <StandardAlloc as Allocator<u8>>::AllocatedMemory;

    fn alloc_cell(&mut self, len: usize) -> Self::AllocatedMemory {
        if len > BROTLI_WINDOW_LIMIT + 1024 {
            return Self::AllocatedMemory::default();
        }
        self.0.alloc_cell(len)
    }

    fn free_cell(&mut self, data: Self::AllocatedMemory) {
        self.0.free_cell(data);
    }
}

/// Up to [`DECODED_LIMIT`] bytes from `reader`, stopping at its end or its first error
/// (a truncated or corrupt stream) with what it produced until then.
fn read_capped(mut reader: impl Read) -> Vec<u8> {
    let mut out = vec![0; DECODED_LIMIT];
    let mut len = 0;
    while len < out.len() {
        let end = (len + READ_STEP).min(out.len());
        let Some(step) = out.get_mut(len..end) else {
            break;
        };
        match reader.read(step) {
            Ok(0) | Err(_) => break,
            Ok(n) => len = (len + n).min(end),
        }
    }
    out.truncate(len);
    out
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
    use std::io::Write;
    use std::time::{Duration, Instant};

    use http::HeaderValue;

    use super::*;

    const MEETING_REJECTION: &[u8] = br#"{"error":{"code":2000,"message":"INVALID_OAUTHTOKEN"}}"#;
    const UNAUTHORIZED_USER: &[u8] = br#"{"error":{"errorCode":3001,"message":"You do not have permission to access this organization account.","key":"UNAUTHORIZED_USER"}}"#;
    const INVALID_MEETING_KEY: &[u8] =
        br#"{"error":{"errorCode":4000,"key":"INVALID_MEETING_KEY","message":"Invalid meeting key"}}"#;

    fn plain() -> HeaderMap {
        HeaderMap::new()
    }

    /// Headers with one `Content-Encoding` line per entry of `codings`.
    fn encoded(codings: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for coding in codings {
            headers.append(CONTENT_ENCODING, HeaderValue::from_str(coding).unwrap());
        }
        headers
    }

    fn gzip(body: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    }

    fn zlib(body: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(body: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    }

    /// Brotli with window `lgwin`; `flush` first ends a metablock that is not the last, as
    /// streaming encoders do, so the decoder needs the whole window.
    fn brotli_with(body: &[u8], quality: u32, lgwin: u32, flush: bool) -> Vec<u8> {
        let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, quality, lgwin);
        e.write_all(body).unwrap();
        if flush {
            e.flush().unwrap();
        }
        e.into_inner()
    }

    fn br(body: &[u8]) -> Vec<u8> {
        brotli_with(body, 11, 22, false)
    }

    /// Every way the tests compress a body: (Content-Encoding lines, compressed body).
    fn compressions(body: &[u8]) -> Vec<(Vec<&'static str>, Vec<u8>)> {
        vec![
            (vec!["gzip"], gzip(body)),
            (vec!["x-gzip"], gzip(body)),
            (vec!["GZip"], gzip(body)),
            (vec!["deflate"], zlib(body)),
            (vec!["deflate"], raw_deflate(body)),
            (vec!["br"], br(body)),
            (vec!["br"], brotli_with(body, 5, 24, false)),
            (vec!["br"], brotli_with(body, 5, 18, true)),
            (vec!["identity"], body.to_vec()),
            (vec!["identity, gzip"], gzip(body)),
            // Applied in order: gzip first, then br; undone br first. (Brotli stores gzip's
            // incompressible output in uncompressed metablocks, which need the whole window
            // when cut short: a window within the limit.)
            (vec!["gzip, br"], brotli_with(&gzip(body), 11, 20, false)),
            (vec!["gzip", "br"], brotli_with(&gzip(body), 11, 20, false)),
            (
                vec!["deflate,gzip,br"],
                brotli_with(&gzip(&zlib(body)), 11, 20, false),
            ),
        ]
    }

    /// Deterministic bytes that do not compress (xorshift).
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

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
            assert!(
                is_token_rejection_with_headers(&plain(), body.as_bytes()),
                "{body}"
            );
            assert!(
                is_token_rejection_with_headers(&encoded(&["identity"]), body.as_bytes()),
                "{body}"
            );
        }
        // A truncated prefix still counts.
        assert!(is_token_rejection_with_headers(
            &plain(),
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
            assert!(
                !is_token_rejection_with_headers(&plain(), body.as_bytes()),
                "{body}"
            );
        }
    }

    #[test]
    fn compressed_rejections_are_recognised() {
        for body in [
            MEETING_REJECTION,
            br#"{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}"#,
            br#"{"error":{"code":2000,"message":"Invalid DC or Invalid token"}}"#,
        ] {
            for (codings, compressed) in compressions(body) {
                assert!(
                    is_token_rejection_with_headers(&encoded(&codings), &compressed),
                    "{codings:?}: {}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn compressed_permission_errors_are_not_rejections() {
        for body in [UNAUTHORIZED_USER, INVALID_MEETING_KEY] {
            for (codings, compressed) in compressions(body) {
                // The decoding works: the same bytes with the rejection's shape would count.
                assert!(
                    decode(&content_codings(&encoded(&codings)).unwrap(), &compressed)
                        .is_some_and(|d| *d == *body),
                    "{codings:?}"
                );
                assert!(
                    !is_token_rejection_with_headers(&encoded(&codings), &compressed),
                    "{codings:?}"
                );
            }
        }
    }

    #[test]
    fn the_declared_coding_is_what_counts() {
        // Compressed bytes without Content-Encoding are judged as they are: not JSON.
        let repeated = MEETING_REJECTION.repeat(4);
        let compressed = zlib(&repeated);
        assert!(!contains(&compressed, b"INVALID_OAUTHTOKEN"));
        assert!(is_token_rejection_with_headers(
            &encoded(&["deflate"]),
            &compressed
        ));
        assert!(!is_token_rejection_with_headers(&plain(), &compressed));
        // A plain rejection mislabelled as compressed does not decode.
        for coding in ["gzip", "deflate", "br"] {
            assert!(
                !is_token_rejection_with_headers(&encoded(&[coding]), MEETING_REJECTION),
                "{coding}"
            );
        }
        // The wrong order of two codings does not decode.
        assert!(!is_token_rejection_with_headers(
            &encoded(&["br, gzip"]),
            &br(&gzip(MEETING_REJECTION))
        ));
    }

    #[test]
    fn unknown_or_too_many_codings_are_not_rejections() {
        for codings in [
            vec!["zstd"],
            vec!["compress"],
            vec!["gzip, zstd"],
            vec!["x-custom", "gzip"],
        ] {
            assert!(
                !is_token_rejection_with_headers(&encoded(&codings), MEETING_REJECTION),
                "{codings:?}"
            );
            assert!(
                !is_token_rejection_with_headers(&encoded(&codings), &gzip(MEETING_REJECTION)),
                "{codings:?}"
            );
        }
        let three = gzip(&gzip(&gzip(MEETING_REJECTION)));
        assert!(is_token_rejection_with_headers(
            &encoded(&["gzip, gzip, gzip"]),
            &three
        ));
        let four = gzip(&three);
        assert!(!is_token_rejection_with_headers(
            &encoded(&["gzip, gzip, gzip, gzip"]),
            &four
        ));
        // Header bytes that are not text.
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_ENCODING,
            HeaderValue::from_bytes(b"gzip\xff").unwrap(),
        );
        assert!(!is_token_rejection_with_headers(
            &headers,
            &gzip(MEETING_REJECTION)
        ));
    }

    #[test]
    fn a_truncated_stream_is_judged_by_its_prefix() {
        // The rejection first, then incompressible padding: the compressed body is larger
        // than the peek, which sees only its start.
        let mut body =
            br#"{"error":{"code":2000,"message":"INVALID_OAUTHTOKEN","detail":""#.to_vec();
        body.extend(noise(3 * PEEK_LIMIT).iter().map(|b| b'a' + b % 26));
        body.extend_from_slice(br#""}}"#);
        for (codings, compressed) in compressions(&body) {
            assert!(compressed.len() > PEEK_LIMIT, "{codings:?}");
            let peeked = &compressed[..PEEK_LIMIT];
            assert!(
                is_token_rejection_with_headers(&encoded(&codings), peeked),
                "{codings:?}"
            );
        }
        // Cut inside the rejection itself: not (yet) a rejection, and no panic.
        let gzipped = gzip(MEETING_REJECTION);
        assert!(!is_token_rejection_with_headers(
            &encoded(&["gzip"]),
            &gzipped[..12]
        ));
    }

    #[test]
    fn garbage_and_every_truncation_neither_panic_nor_count() {
        for coding in ["gzip", "deflate", "br", "gzip, br"] {
            let headers = encoded(&[coding]);
            for len in [0, 1, 2, 3, 10, 100, PEEK_LIMIT, 3 * PEEK_LIMIT] {
                assert!(
                    !is_token_rejection_with_headers(&headers, &noise(len)),
                    "{coding} {len}"
                );
            }
            // Valid magic, then garbage.
            let mut fake_gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
            fake_gzip.extend(noise(500));
            assert!(
                !is_token_rejection_with_headers(&headers, &fake_gzip),
                "{coding}"
            );
        }
        // Every prefix of every compressed form decodes without panicking; the whole form
        // counts.
        for (codings, compressed) in compressions(MEETING_REJECTION) {
            let headers = encoded(&codings);
            for len in 0..compressed.len() {
                let _ = is_token_rejection_with_headers(&headers, &compressed[..len]);
            }
            assert!(
                is_token_rejection_with_headers(&headers, &compressed),
                "{codings:?}"
            );
        }
    }

    /// Caught by the `rejection_compressed` fuzz target (seed `plain_many_objects`, over its
    /// heap bound): a plain body was judged whole, however much the peek had read (it keeps
    /// whole frames: up to a frame past [`PEEK_LIMIT`]), and its JSON parse costs about a
    /// hundred times its length in heap. Only the first [`PEEK_LIMIT`] bytes count, as for a
    /// compressed body.
    #[test]
    fn a_plain_body_is_judged_by_its_first_peek_limit_bytes() {
        let mut late = vec![b' '; PEEK_LIMIT];
        late.extend_from_slice(MEETING_REJECTION);
        assert!(is_token_rejection(&late));
        for headers in [plain(), encoded(&["identity"])] {
            assert!(!is_token_rejection_with_headers(&headers, &late));
            assert!(is_token_rejection_with_headers(
                &headers,
                &late[late.len() - PEEK_LIMIT..]
            ));
        }
        // Within the limit, a prefix still counts.
        let mut early = MEETING_REJECTION.to_vec();
        early.extend(std::iter::repeat_n(b'x', 3 * PEEK_LIMIT));
        assert!(is_token_rejection_with_headers(&plain(), &early));
    }

    /// `count` gzip members of 256 KiB of zeros each, the last ending with `tail`.
    fn gzip_bomb(count: usize, tail: &[u8]) -> Vec<u8> {
        let zeros = vec![0u8; 256 * 1024];
        let member = gzip(&zeros);
        let mut bomb = Vec::new();
        for _ in 1..count {
            bomb.extend_from_slice(&member);
        }
        let mut last = zeros;
        last.extend_from_slice(tail);
        bomb.extend_from_slice(&gzip(&last));
        bomb
    }

    #[test]
    fn a_bomb_is_cut_at_the_decoded_limit_and_judged_quickly() {
        // Under 4 KiB that inflate to megabytes; the rejection comes only at the end.
        let bomb = gzip_bomb(13, MEETING_REJECTION);
        assert!(bomb.len() <= PEEK_LIMIT, "{}", bomb.len());
        let inflated = read_capped(flate2::bufread::MultiGzDecoder::new(&bomb[..]));
        assert_eq!(inflated.len(), DECODED_LIMIT);
        let started = Instant::now();
        let decoded = decode(&[Coding::Gzip], &bomb).unwrap();
        assert_eq!(decoded.len(), DECODED_LIMIT);
        // Decoded in full it would count: only the cap keeps the verdict from the tail.
        assert!(!is_token_rejection_with_headers(&encoded(&["gzip"]), &bomb));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        // zlib and raw deflate: 1 MiB of zeros in about 1 KiB.
        let zeros = vec![0u8; 1 << 20];
        for (compressed, name) in [(zlib(&zeros), "zlib"), (raw_deflate(&zeros), "raw")] {
            assert!(
                compressed.len() <= PEEK_LIMIT,
                "{name}: {}",
                compressed.len()
            );
            let decoded = decode(&[Coding::Deflate], &compressed).unwrap();
            assert_eq!(decoded.len(), DECODED_LIMIT, "{name}");
        }

        // br: 8 MiB of zeros in a few bytes, within the window limit.
        let big = vec![0u8; 8 << 20];
        let compressed = brotli_with(&big, 5, 20, false);
        assert!(compressed.len() <= PEEK_LIMIT, "{}", compressed.len());
        let decoded = decode(&[Coding::Brotli], &compressed).unwrap();
        assert_eq!(decoded.len(), DECODED_LIMIT);
        // Nested: each step stops at the limit.
        let nested = br(&gzip_bomb(13, b""));
        let decoded = decode(&[Coding::Gzip, Coding::Brotli], &nested).unwrap();
        assert_eq!(decoded.len(), DECODED_LIMIT);
    }

    #[test]
    fn a_brotli_window_beyond_the_limit_is_not_allocated() {
        let lgwin_for_limit = BROTLI_WINDOW_LIMIT.trailing_zeros();
        // A stream that needs its whole window (a metablock that is not the last).
        let within = brotli_with(MEETING_REJECTION, 5, lgwin_for_limit, true);
        assert!(is_token_rejection_with_headers(&encoded(&["br"]), &within));
        let beyond = brotli_with(MEETING_REJECTION, 5, lgwin_for_limit + 1, true);
        assert!(!is_token_rejection_with_headers(&encoded(&["br"]), &beyond));
        // The same large window on a short final metablock needs only a small buffer.
        let short = brotli_with(MEETING_REJECTION, 5, 24, false);
        assert!(is_token_rejection_with_headers(&encoded(&["br"]), &short));
        // A 16 MiB window bomb: refused, not allocated.
        let bomb = brotli_with(&vec![0u8; 16 << 20], 5, 24, false);
        assert!(bomb.len() <= PEEK_LIMIT, "{}", bomb.len());
        assert!(decode(&[Coding::Brotli], &bomb).is_none());
    }

    #[test]
    fn only_400_and_401_are_examined() {
        assert!(may_reject(StatusCode::BAD_REQUEST));
        assert!(may_reject(StatusCode::UNAUTHORIZED));
        assert!(!may_reject(StatusCode::FORBIDDEN));
        assert!(!may_reject(StatusCode::OK));
    }
}
