//! Spots HTTP/1 requests that carry both `Content-Length` and `Transfer-Encoding`.
//!
//! hyper frames such a request by `Transfer-Encoding` and drops the `Content-Length` before
//! the service sees it, so the proxy cannot tell from the request. [`Sniffer`] wraps the
//! connection's stream and scans the bytes hyper reads, request by request: it parses each
//! head that has a line naming `Content-Length` or `Transfer-Encoding` (any other head is a
//! request without a body), then skips the body (chunked framing, or `Content-Length`
//! bytes). When a head has both headers it records that request's 0-based index on the
//! connection in a shared [`Flagged`]; the service refuses the request with that index. hyper
//! turns keep-alive off for such a request, so it is the last one on its connection and
//! sniffing stops there.
//!
//! Sniffing also stops, for good, on anything it cannot follow (bad framing, a parsed head
//! httparse refuses, a head over [`MAX_HEAD`], an HTTP/2 preface): hyper refuses the garbage
//! itself, and HTTP/2 passes through untouched.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest request head accumulated; past it sniffing stops (hyper refuses the head).
pub(super) const MAX_HEAD: usize = 128 * 1024;

/// The start of the HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// As many headers as hyper accepts by default.
const MAX_HEADERS: usize = 100;

const NONE: u64 = u64::MAX;

/// The index of the request on a connection that carried both framings, if any.
#[derive(Clone, Debug)]
pub(super) struct Flagged(Arc<AtomicU64>);

impl Flagged {
    /// Whether the request with this 0-based index on the connection is the flagged one.
    pub(super) fn is(&self, index: u64) -> bool {
        index != NONE && self.0.load(Ordering::Acquire) == index
    }
}

/// Where the scan is.
#[derive(Debug)]
enum State {
    /// Accumulating a request head.
    Head,
    /// Skipping `n` more body bytes.
    Length(u64),
    /// Skipping a chunked body.
    Chunked(Chunk),
    /// Not sniffing any more.
    Off,
}

/// The chunked decoder's states, as hyper's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size(u64),
    SizeLws(u64),
    Extension(u64),
    SizeLf(u64),
    Body(u64),
    BodyCr,
    BodyLf,
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
}

/// What a chunk step produced.
enum Step {
    /// Still in the body.
    More(Chunk),
    /// The body ended.
    Done,
    /// Bad framing.
    Bad,
}

/// The byte scanner, apart from any IO.
#[derive(Debug)]
struct Scanner {
    state: State,
    head: Vec<u8>,
    /// Where the head's line being read starts.
    line_start: usize,
    /// Whether a line of the head names `Content-Length` or `Transfer-Encoding`.
    framing: bool,
    /// The index of the request whose head or body is being read.
    index: u64,
    flagged: Arc<AtomicU64>,
    /// Tests only: parse every head, as if no head could skip parsing.
    #[cfg(test)]
    parse_always: bool,
}

impl Scanner {
    fn new() -> Self {
        Self {
            state: State::Head,
            head: Vec::new(),
            line_start: 0,
            framing: false,
            index: 0,
            flagged: Arc::new(AtomicU64::new(NONE)),
            #[cfg(test)]
            parse_always: false,
        }
    }

    fn off(&mut self) {
        self.state = State::Off;
        self.head = Vec::new();
    }

    /// The head was consumed: the next one starts empty.
    fn next_head(&mut self) {
        self.head.clear();
        self.line_start = 0;
        self.framing = false;
        self.index += 1;
    }

    /// Scans bytes hyper just read.
    fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match &mut self.state {
                State::Off => return,
                State::Length(n) => {
                    let take = usize::try_from(*n).unwrap_or(usize::MAX).min(input.len());
                    *n -= take as u64;
                    input = &input[take..];
                    if *n == 0 {
                        self.state = State::Head;
                    }
                }
                State::Chunked(chunk) => {
                    let mut chunk = *chunk;
                    loop {
                        if let Chunk::Body(n) = chunk {
                            let take = usize::try_from(n).unwrap_or(usize::MAX).min(input.len());
                            input = &input[take..];
                            let left = n - take as u64;
                            chunk = if left == 0 {
                                Chunk::BodyCr
                            } else {
                                Chunk::Body(left)
                            };
                            if input.is_empty() {
                                break;
                            }
                            continue;
                        }
                        let Some((&byte, rest)) = input.split_first() else {
                            break;
                        };
                        input = rest;
                        match step(chunk, byte) {
                            Step::More(next) => chunk = next,
                            Step::Done => {
                                self.state = State::Head;
                                break;
                            }
                            Step::Bad => {
                                self.off();
                                return;
                            }
                        }
                    }
                    if let State::Chunked(_) = self.state {
                        self.state = State::Chunked(chunk);
                    }
                }
                State::Head => {
                    // One line at a time, so the head never takes bytes past its end.
                    let (line, rest) = match memchr_nl(input) {
                        Some(at) => input.split_at(at + 1),
                        None => (input, &[][..]),
                    };
                    input = rest;
                    if self.head.len() + line.len() > MAX_HEAD {
                        self.off();
                        return;
                    }
                    self.head.extend_from_slice(line);
                    if self.index == 0
                        && self.head.len() >= H2_PREFACE.len()
                        && self.head.starts_with(H2_PREFACE)
                    {
                        self.off();
                        return;
                    }
                    if line.last() != Some(&b'\n') {
                        continue;
                    }
                    self.framing |= names_framing(&self.head[self.line_start..]);
                    self.line_start = self.head.len();
                    if self.head.ends_with(b"\n\n")
                        || self.head.ends_with(b"\n\r\n")
                        || self.head == b"\r\n"
                        || self.head == b"\n"
                    {
                        self.head_line_blank();
                    }
                }
            }
        }
    }

    /// The head ends with a blank line: parse it, unless no line names a framing header.
    fn head_line_blank(&mut self) {
        #[cfg(test)]
        let skip_parse = !self.framing && !self.parse_always;
        #[cfg(not(test))]
        let skip_parse = !self.framing;
        if skip_parse {
            // A head hyper accepts has each header on a line of its own starting with the
            // name and a colon, so without such a line it has neither framing header: a
            // request without a body. (A head hyper refuses ends the connection, so counting
            // it as a request changes nothing.) Only blank lines: leading ones; read on.
            if self.head.iter().all(|&b| b == b'\r' || b == b'\n') {
                return;
            }
            self.next_head();
            return;
        }
        // Left uninitialised for httparse to fill: no 3 KB of zeroes per request.
        let mut headers =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(&self.head, &mut headers) {
            Ok(httparse::Status::Complete(len)) => len,
            // Leading blank lines: keep reading.
            Ok(httparse::Status::Partial) => return,
            Err(_) => return self.off(),
        };
        if len != self.head.len() {
            return self.off();
        }
        let mut length: Option<u64> = None;
        let mut has_length = false;
        let mut has_encoding = false;
        let mut bad_length = false;
        for header in req.headers.iter() {
            if header.name.eq_ignore_ascii_case("transfer-encoding") {
                has_encoding = true;
            } else if header.name.eq_ignore_ascii_case("content-length") {
                has_length = true;
                for part in header.value.split(|&b| b == b',') {
                    let n = std::str::from_utf8(part)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok());
                    match (n, length) {
                        (Some(n), None) => length = Some(n),
                        (Some(n), Some(m)) if n == m => {}
                        _ => bad_length = true,
                    }
                }
            }
        }
        if has_length && has_encoding {
            self.flagged.store(self.index, Ordering::Release);
            return self.off();
        }
        self.next_head();
        self.state = if has_encoding {
            State::Chunked(Chunk::Size(0))
        } else if bad_length {
            State::Off
        } else {
            match length {
                Some(n) if n > 0 => State::Length(n),
                _ => State::Head,
            }
        };
    }
}

/// Whether a head line starts with `Content-Length:` or `Transfer-Encoding:` (any case).
fn names_framing(line: &[u8]) -> bool {
    const NAMES: [&[u8]; 2] = [b"content-length:", b"transfer-encoding:"];
    matches!(line.first(), Some(b'c' | b'C' | b't' | b'T'))
        && NAMES.iter().any(|name| {
            line.get(..name.len())
                .is_some_and(|l| l.eq_ignore_ascii_case(name))
        })
}

fn memchr_nl(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// One byte of chunked framing outside chunk data (hyper's `ChunkedState`).
fn step(chunk: Chunk, byte: u8) -> Step {
    let hex = |size: u64, digit: u8| {
        size.checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(digit)))
            .map_or(Step::Bad, |s| Step::More(Chunk::Size(s)))
    };
    match (chunk, byte) {
        (Chunk::Size(size), b @ b'0'..=b'9') => hex(size, b - b'0'),
        (Chunk::Size(size), b @ b'a'..=b'f') => hex(size, b - b'a' + 10),
        (Chunk::Size(size), b @ b'A'..=b'F') => hex(size, b - b'A' + 10),
        (Chunk::Size(size) | Chunk::SizeLws(size), b'\t' | b' ') => {
            Step::More(Chunk::SizeLws(size))
        }
        (Chunk::Size(size) | Chunk::SizeLws(size) | Chunk::Extension(size), b';') => {
            Step::More(Chunk::Extension(size))
        }
        (Chunk::Size(size) | Chunk::SizeLws(size) | Chunk::Extension(size), b'\r') => {
            Step::More(Chunk::SizeLf(size))
        }
        (Chunk::Extension(_), b'\n') => Step::Bad,
        (Chunk::Extension(size), _) => Step::More(Chunk::Extension(size)),
        (Chunk::SizeLf(0), b'\n') => Step::More(Chunk::EndCr),
        (Chunk::SizeLf(size), b'\n') => Step::More(Chunk::Body(size)),
        (Chunk::BodyCr, b'\r') => Step::More(Chunk::BodyLf),
        (Chunk::BodyLf, b'\n') => Step::More(Chunk::Size(0)),
        (Chunk::EndCr, b'\r') => Step::More(Chunk::EndLf),
        (Chunk::Trailer, b'\r') => Step::More(Chunk::TrailerLf),
        (Chunk::EndCr | Chunk::Trailer, _) => Step::More(Chunk::Trailer),
        (Chunk::TrailerLf, b'\n') => Step::More(Chunk::EndCr),
        (Chunk::EndLf, b'\n') => Step::Done,
        _ => Step::Bad,
    }
}

/// A connection's stream, scanned on the way in.
#[derive(Debug)]
pub(super) struct Sniffer<T> {
    inner: T,
    scanner: Scanner,
}

impl<T> Sniffer<T> {
    /// Wraps an accepted stream.
    pub(super) fn new(inner: T) -> Self {
        Self {
            inner,
            scanner: Scanner::new(),
        }
    }

    /// Where the connection's flagged request index is recorded.
    pub(super) fn flagged(&self) -> Flagged {
        Flagged(self.scanner.flagged.clone())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Sniffer<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if !matches!(this.scanner.state, State::Off) {
            this.scanner.feed(&buf.filled()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Sniffer<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flagged(s: &Scanner) -> Option<u64> {
        match s.flagged.load(Ordering::Acquire) {
            NONE => None,
            n => Some(n),
        }
    }

    /// The flagged index, the request index and whether sniffing stopped, after `bytes`
    /// (fed whole, or one byte at a time).
    fn run(bytes: &[u8], parse_always: bool, byte_at_a_time: bool) -> (Option<u64>, u64, bool) {
        let mut s = Scanner::new();
        s.parse_always = parse_always;
        if byte_at_a_time {
            for b in bytes {
                s.feed(std::slice::from_ref(b));
            }
        } else {
            s.feed(bytes);
        }
        (flagged(&s), s.index, matches!(s.state, State::Off))
    }

    /// Feeds `bytes` whole, then one byte at a time, and checks both agree; then checks the
    /// scanner against one that parses every head.
    fn scan(bytes: &[u8]) -> (Option<u64>, u64, bool) {
        let fast = run(bytes, false, false);
        assert_eq!(fast, run(bytes, false, true), "whole vs byte-at-a-time");
        let parsed = run(bytes, true, false);
        assert_eq!(
            parsed,
            run(bytes, true, true),
            "whole vs byte-at-a-time, parsed"
        );
        if fast != parsed {
            // Skipping the parse of a head without framing headers may only count a head
            // the parser refuses (hyper refuses it too, and closes the connection) as a
            // request: the parsing scanner stopped at it, this one went on past it.
            let (flag, index, off) = parsed;
            assert!(off && flag.is_none(), "{bytes:?}: {fast:?} vs {parsed:?}");
            assert!(fast.1 > index, "{bytes:?}: {fast:?} vs {parsed:?}");
            assert!(
                fast.0.is_none_or(|f| f > index),
                "{bytes:?}: {fast:?} vs {parsed:?}"
            );
        }
        fast
    }

    #[test]
    fn flags_both_framings_in_either_order() {
        let cl_first = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\
                         Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(scan(cl_first), (Some(0), 0, true));
        let te_first = b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\
                         CONTENT-LENGTH: 4\r\n\r\n";
        assert_eq!(scan(te_first), (Some(0), 0, true));
    }

    #[test]
    fn skips_chunked_bodies_across_split_reads() {
        let mut bytes = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
                          5;name=value\r\nhel\nl\r\n\r\nA \r\n0123456789\r\n0\r\n\
                          X-Trailer: 1\r\nY: 2\r\n\r\n"
            .to_vec();
        // The chunk data contains a fake head with both framings: it must not be parsed.
        bytes.extend_from_slice(b"GET /two HTTP/1.1\r\nHost: a\r\n\r\n");
        let fake = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: x\r\n\r\n";
        bytes.extend_from_slice(
            format!(
                "POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                fake.len()
            )
            .as_bytes(),
        );
        bytes.extend_from_slice(fake);
        bytes.extend_from_slice(b"\r\n0\r\n\r\n");
        bytes.extend_from_slice(
            b"POST /four HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(scan(&bytes), (Some(3), 3, true));
    }

    #[test]
    fn skips_content_length_bodies() {
        let body = b"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut bytes = format!(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(b"\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(scan(&bytes), (None, 2, false));
    }

    #[test]
    fn stops_on_http2_and_garbage() {
        assert_eq!(
            scan(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0"),
            (None, 0, true)
        );
        // Garbage naming a framing header is parsed, and stops sniffing; without one it
        // counts as a request (hyper refuses it and closes the connection).
        assert_eq!(
            scan(b"HELLO\x01 WORLD\r\nContent-Length: 1\r\n\r\n"),
            (None, 0, true)
        );
        assert_eq!(scan(b"HELLO\x01 WORLD\r\n\r\n"), (None, 1, false));
        let bad_chunk = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(scan(bad_chunk), (None, 1, true));
    }

    #[test]
    fn whole_and_split_reads_agree_on_odd_line_ends() {
        // `scan` feeds each whole and byte by byte; these are the cases where finding the
        // head's end is subtle.
        let bare_lf = b"GET / HTTP/1.1\nHost: a\n\nGET /2 HTTP/1.1\nHost: a\n\n";
        assert_eq!(scan(bare_lf), (None, 2, false));
        let leading_blank_lines = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(scan(leading_blank_lines), (None, 1, false));
        let mixed = b"GET / HTTP/1.1\r\nHost: a\r\n\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(scan(mixed), (None, 2, false));
        let both_bare_lf = b"GET / HTTP/1.1\nHost: a\n\nPOST / HTTP/1.1\nContent-Length: 2\n\
                             Transfer-Encoding: chunked\n\n";
        assert_eq!(scan(both_bare_lf), (Some(1), 1, true));
        let pipelined_with_bodies = b"POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
                                      GET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n";
        assert_eq!(scan(pipelined_with_bodies), (None, 3, false));
    }

    #[test]
    fn whole_and_split_reads_agree_on_random_streams() {
        use rand::{Rng, SeedableRng};
        const PIECES: [&[u8]; 18] = [
            b"GET / HTTP/1.1\r\n",
            b"POST /x HTTP/1.1\n",
            b"Host: a\r\n",
            b"Host: a\n",
            b"Content-Length: 3\r\n",
            b"content-length: 0\n",
            b"Transfer-Encoding: chunked\r\n",
            b"\r\n",
            b"\n",
            b"abc",
            b"3\r\nabc\r\n0\r\n\r\n",
            b"PRI * HTTP/2.0\r\n",
            b"X: \r\n\r\n",
            b"\x01",
            b"cOnTeNt-LeNgTh: 2\r\n",
            b"Content-Length : 3\r\n",
            b"Transfer-Encoding: gzip, chunked\n",
            b"HELLO WORLD\r\n",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            for _ in 0..rng.random_range(1..12) {
                bytes.extend_from_slice(PIECES[rng.random_range(0..PIECES.len())]);
            }
            scan(&bytes);
        }
    }

    #[test]
    fn stops_past_the_head_cap() {
        let mut s = Scanner::new();
        s.feed(b"GET / HTTP/1.1\r\nX: ");
        s.feed(&vec![b'a'; MAX_HEAD]);
        assert!(matches!(s.state, State::Off));
        assert!(s.head.is_empty());
    }
}
