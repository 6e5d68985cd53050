//! `token::rejection::is_token_rejection_with_headers`: the proxy's peek at a 400/401 body,
//! seeing through `Content-Encoding` gzip, deflate and br (the body is untrusted).
//!
//! Input, by its first byte:
//! - even: **raw**. The rest is `content-encoding \n body`: the first line is the header,
//!   `|` separating several `Content-Encoding` field lines; the body is anything (garbage,
//!   truncated streams, bombs).
//! - odd: **round trip**. The second byte picks up to three codings (gzip, zlib deflate, raw
//!   deflate, brotli with a window of at most 1 MiB) and the rest is a plain body; the target
//!   compresses it, sends it with the matching `Content-Encoding`, and, when the documented
//!   limits allow decoding it whole (the compressed body fits the peek, each layer fits
//!   `DECODED_LIMIT`), checks that the verdict is the plain body's.
//!
//! Always: no panic, and the heap the call uses (measured by a counting global allocator)
//! stays under a bound derived from the code, whatever the body:
//! - no content coding: judging at most `PEEK_LIMIT` bytes ([`judge_bound`]);
//! - codings: [`DECODE_BOUND`] for the decoders and two decoded layers, plus judging at most
//!   `DECODED_LIMIT` bytes.
//!
//! Time is bounded by libFuzzer's `-timeout`; memory also by `-rss_limit_mb` (see the
//! README).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::header::{CONTENT_ENCODING, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use zoho_meeting_proxy::token::rejection::{
    BROTLI_WINDOW_LIMIT, DECODED_LIMIT, MAX_CODINGS, PEEK_LIMIT, is_token_rejection,
    is_token_rejection_with_headers,
};

/// Counts the bytes live on the Rust heap and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as the new block arriving before the old one leaves (what a moving
            // realloc costs at its peak).
            grew(new_size);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// `BROTLI_HUFFMAN_MAX_TABLE_SIZE` in brotli-decompressor: the entries reserved per Huffman
/// tree.
const HUFFMAN_TABLE: usize = 1080;
/// A brotli `HuffmanCode` (`u16` value, `u8` bits, padded).
const HUFFMAN_CODE: usize = 4;

/// The decoders' heap, whatever the input (from the code of `rejection.rs` and its decoders):
/// - two decoded layers alive at once (`decode` keeps the current one while `read_capped`
///   fills the next, each at most `DECODED_LIMIT`);
/// - brotli: the ring buffer, refused beyond `BROTLI_WINDOW_LIMIT` + 1024 by `WindowCap`;
///   three Huffman tree groups (literals, insert-and-copy, distances), each of at most 256
///   trees of `HUFFMAN_TABLE` codes; context maps (256 block types << 6 and << 2 bytes);
///   block-type and context-map tables (7 × `HUFFMAN_TABLE` codes) and the 1 KiB input
///   buffer;
/// - flate2: the inflate state (32 KiB window and tables) and gzip header fields (name,
///   comment, extra: at most the layer's input, so `DECODED_LIMIT`).
///
/// Brotli and flate2 are never alive at once (one step at a time); both are counted.
const DECODE_BOUND: usize = 2 * DECODED_LIMIT
    + (BROTLI_WINDOW_LIMIT + 1024)
    + 3 * 256 * HUFFMAN_TABLE * HUFFMAN_CODE
    + (256 << 6)
    + (256 << 2)
    + 7 * HUFFMAN_TABLE * HUFFMAN_CODE
    + 1024
    + 64 * 1024
    + DECODED_LIMIT;

/// Judging `len` plain bytes: `serde_json`'s `Value` tree is the largest part. Its worst
/// case is one-entry objects (`[{"":0},{"":0},…]`): 7 input bytes make a B-tree leaf of 11
/// (`String`, `Value`) slots, about 640 bytes, plus a 32-byte `Value` in the array (doubled
/// while the array grows): under 110 bytes per input byte. The whitespace-free copy of
/// `contains_compact` adds one byte per byte. 160 per byte leaves room for allocator
/// rounding of the collections' growth.
fn judge_bound(len: usize) -> usize {
    160 * len + 4096
}

/// The largest peak seen so far, reported on stderr as it grows.
static MAX_SEEN: AtomicUsize = AtomicUsize::new(0);

/// Calls the check and asserts its heap bound; returns its verdict.
fn judged(headers: &HeaderMap, body: &[u8], coded: bool) -> bool {
    let bound = if coded {
        DECODE_BOUND + judge_bound(DECODED_LIMIT)
    } else {
        judge_bound(PEEK_LIMIT)
    };
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let verdict = is_token_rejection_with_headers(headers, body);
    let used = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(
        used <= bound,
        "used {used} bytes of heap, bound {bound} (coded: {coded}, body {} bytes, {headers:?})",
        body.len()
    );
    if used > MAX_SEEN.fetch_max(used, Ordering::Relaxed) {
        eprintln!(
            "rejection_compressed: new peak {used} bytes (bound {bound}, coded: {coded}, body {} bytes)",
            body.len()
        );
    }
    verdict
}

/// Whether the `Content-Encoding` lines name a coding the check undoes (gzip, x-gzip,
/// deflate, br), i.e. whether it may decode (the bound it gets).
fn names_a_coding(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|n| {
            ["gzip", "x-gzip", "deflate", "br"]
                .iter()
                .any(|c| n.eq_ignore_ascii_case(c))
        })
}

/// What is judged of a plain body: its first `PEEK_LIMIT` bytes ("the proxy reads at most
/// PEEK_LIMIT bytes of such an answer to decide").
fn peeked(body: &[u8]) -> &[u8] {
    body.get(..PEEK_LIMIT).unwrap_or(body)
}

fn raw(data: &[u8]) {
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let mut headers = HeaderMap::new();
    if !line.is_empty() {
        for value in line.split(|&b| b == b'|') {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.append(CONTENT_ENCODING, value);
            }
        }
    }
    let coded = names_a_coding(&headers);
    let verdict = judged(&headers, body, coded);
    if headers.is_empty() {
        // No Content-Encoding: the body is plain, judged by its first PEEK_LIMIT bytes.
        assert_eq!(verdict, is_token_rejection(peeked(body)));
    }
}

#[derive(Clone, Copy, Debug)]
enum Coding {
    Gzip,
    Zlib,
    RawDeflate,
    /// quality 0–9 (10 and 11 made the round trip three times slower over a whole corpus;
    /// raw-mode seeds hold quality-11 streams), window bits 10–20 (at most
    /// `BROTLI_WINDOW_LIMIT`).
    Brotli(u32, u32),
}

fn compress(coding: Coding, body: &[u8]) -> Vec<u8> {
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    let written = match coding {
        Coding::Gzip => {
            let mut e = GzEncoder::new(Vec::new(), Compression::fast());
            e.write_all(body).and_then(|()| e.finish())
        }
        Coding::Zlib => {
            let mut e = ZlibEncoder::new(Vec::new(), Compression::fast());
            e.write_all(body).and_then(|()| e.finish())
        }
        Coding::RawDeflate => {
            let mut e = DeflateEncoder::new(Vec::new(), Compression::fast());
            e.write_all(body).and_then(|()| e.finish())
        }
        Coding::Brotli(quality, lgwin) => {
            let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, quality, lgwin);
            e.write_all(body).map(|()| e.into_inner())
        }
    };
    written.expect("compressing into a Vec")
}

/// RFC 1950's header check, as a raw deflate stream may pass it by chance (then the check
/// tries zlib first, as documented, and may decode something else).
fn looks_like_zlib(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && ((u16::from(*cmf) << 8) | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

fn round_trip(selector: u8, plain: &[u8]) {
    // Bits 0-1: how many codings (0 to 3); then 2 bits per coding.
    let count = usize::from(selector & 3).min(MAX_CODINGS);
    let lgwin_limit = BROTLI_WINDOW_LIMIT.trailing_zeros();
    let mut codings = Vec::new();
    for i in 0..count {
        let pick = (selector >> (2 + 2 * i)) & 3;
        codings.push(match pick {
            0 => Coding::Gzip,
            1 => Coding::Zlib,
            2 => Coding::RawDeflate,
            _ => {
                let seed = plain.len() as u32 + u32::from(selector);
                Coding::Brotli(seed % 10, 10 + seed % (lgwin_limit - 9))
            }
        });
    }
    let mut body = plain.to_vec();
    // Every layer must be decodable whole for the verdict to be the plain body's.
    let mut whole = plain.len() <= DECODED_LIMIT && !plain.is_empty();
    for &coding in &codings {
        body = compress(coding, &body);
        if matches!(coding, Coding::RawDeflate) && looks_like_zlib(&body) {
            whole = false;
        }
        if body.len() > DECODED_LIMIT {
            whole = false;
        }
    }
    whole &= body.len() <= PEEK_LIMIT;
    let names: Vec<&str> = codings
        .iter()
        .map(|c| match c {
            Coding::Gzip => "gzip",
            Coding::Zlib | Coding::RawDeflate => "deflate",
            Coding::Brotli(..) => "br",
        })
        .collect();
    let mut headers = HeaderMap::new();
    if !names.is_empty() {
        let value = HeaderValue::from_str(&names.join(", ")).expect("coding names are text");
        headers.insert(CONTENT_ENCODING, value);
    }
    let verdict = judged(&headers, &body, !codings.is_empty());
    if codings.is_empty() {
        assert_eq!(verdict, is_token_rejection(peeked(plain)));
    } else if whole {
        assert_eq!(
            verdict,
            is_token_rejection(plain),
            "{codings:?}: {} compressed bytes",
            body.len()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    match data {
        [mode, selector, plain @ ..] if mode & 1 == 1 => round_trip(*selector, plain),
        [_, rest @ ..] => raw(rest),
        [] => {}
    }
});
