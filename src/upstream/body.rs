//! The request body on its way upstream: streamed through, never collected.
//!
//! [`RequestBody`] is the client's body streamed as it arrives (perhaps after a first part
//! already read while deciding whether it fits the replay limit), or a small body kept in
//! memory so that one replay is possible. Every byte of the client's body passes one
//! [`Limit`], the one place that enforces `limits.max_body_bytes`. It forwards size hints, so
//! a known `Content-Length` survives the hop. [`UpstreamBody`] is the upstream's answer,
//! which holds its HTTP/2 stream's place in the pool until it is read or dropped. (What the
//! client receives is the proxy's `ResponseBody`.)

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// A request body on its way upstream.
///
/// `B` is the client's body: hyper's [`Incoming`] on the request path (other bodies in unit
/// tests).
#[derive(Debug)]
pub enum RequestBody<B = Incoming> {
    /// Kept in memory (at most `upstream.replay_body_limit`), so it can be sent twice.
    Buffered(Option<Bytes>),
    /// Streamed from the client: `head` first (bytes already read, see [`read_start`]), then
    /// the rest of `body` as it arrives, all counted by `limit`.
    Stream {
        /// Already read from `body` and counted by `limit`; sent before the rest.
        head: Option<Bytes>,
        /// The client's body (what is left of it).
        body: B,
        /// `limits.max_body_bytes` for this body.
        limit: Limit,
    },
}

/// `limits.max_body_bytes` applied to one streamed body: every data byte of the client's
/// body is counted here, whether read early by [`read_start`] or forwarded by
/// [`RequestBody::Stream`]; past the limit the body fails with [`BodyTooLarge`].
#[derive(Debug)]
pub struct Limit {
    max: Option<u64>,
    seen: u64,
    /// Raised when the body fails with [`BodyTooLarge`] (only allocated with a limit).
    overflow: Option<Arc<AtomicBool>>,
}

/// Tells, after the body has been handed to the upstream client, whether it failed with
/// [`BodyTooLarge`]: the HTTP/2 client reports a failed request body only as a reset
/// stream, without its cause.
#[derive(Clone, Debug)]
pub struct Overflow {
    max: u64,
    flag: Arc<AtomicBool>,
}

/// What [`read_start`] found.
#[derive(Debug)]
pub enum Start<B = Incoming> {
    /// The whole body: it ended within the bytes to keep.
    Whole(Bytes),
    /// A longer body: the stream, with the bytes already read put back in front.
    Longer(RequestBody<B>),
}

/// A streamed request body went past `limits.max_body_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds {0} bytes")]
pub struct BodyTooLarge(pub u64);

/// Errors of a request body on its way upstream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// === impl RequestBody ===

impl<B> RequestBody<B> {
    /// The client's body, streamed, limited to `max` bytes.
    pub fn stream(body: B, max: Option<u64>) -> Self {
        RequestBody::Stream {
            head: None,
            body,
            limit: Limit::new(max),
        }
    }

    /// A second copy of a body kept in memory (the bytes are shared); `None` for a stream.
    pub fn try_clone(&self) -> Option<Self> {
        match self {
            RequestBody::Buffered(data) => Some(RequestBody::Buffered(data.clone())),
            RequestBody::Stream { .. } => None,
        }
    }

    /// A handle that tells whether this body went past its limit; `None` when it cannot
    /// (kept in memory, or no limit).
    pub fn overflow(&self) -> Option<Overflow> {
        match self {
            RequestBody::Buffered(_) => None,
            RequestBody::Stream { limit, .. } => {
                let (max, flag) = limit.max.zip(limit.overflow.clone())?;
                Some(Overflow { max, flag })
            }
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Buffered(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            RequestBody::Stream { head, body, limit } => {
                if let Some(head) = head.take() {
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
                limit.poll_frame(Pin::new(body), cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Buffered(data) => data.is_none(),
            RequestBody::Stream { head, body, .. } => head.is_none() && body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Buffered(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            RequestBody::Stream { head, body, .. } => prefixed_hint(
                head.as_ref().map_or(0, |h| h.len() as u64),
                &body.size_hint(),
            ),
        }
    }
}

/// The upstream's response body. Over HTTP/2 it holds its stream's place on the connection
/// (see `upstream::h2`) until it is read or dropped.
#[derive(Debug)]
pub struct UpstreamBody {
    body: Incoming,
    _stream: Option<super::h2::StreamSlot>,
}

impl UpstreamBody {
    /// An HTTP/1 body.
    pub fn new(body: Incoming) -> Self {
        Self {
            body,
            _stream: None,
        }
    }

    /// An HTTP/2 body, on the stream `slot` counts.
    pub(super) fn on_stream(body: Incoming, slot: super::h2::StreamSlot) -> Self {
        Self {
            body,
            _stream: Some(slot),
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Reads `body` until it ends or more than `keep` bytes have come, counting them against
/// `max` (`limits.max_body_bytes`) as the stream does: a body that ends within `keep` is
/// [`Start::Whole`]; a longer one is [`Start::Longer`], the stream with what was read in
/// front, never read further here. At most `keep` bytes plus one frame are held.
///
/// Trailers of a whole body are dropped (a body kept in memory is sent without them).
///
/// # Errors
/// [`BodyTooLarge`] past `max`, or the body's own error.
pub async fn read_start<B>(mut body: B, max: Option<u64>, keep: u64) -> Result<Start<B>, BoxError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut limit = Limit::new(max);
    let mut head = BytesMut::new();
    loop {
        match std::future::poll_fn(|cx| limit.poll_frame(Pin::new(&mut body), cx)).await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    head.extend_from_slice(&data);
                    if head.len() as u64 > keep {
                        return Ok(Start::Longer(RequestBody::Stream {
                            head: Some(head.freeze()),
                            body,
                            limit,
                        }));
                    }
                }
            }
            Some(Err(error)) => return Err(error),
            None => return Ok(Start::Whole(head.freeze())),
        }
    }
}

// === impl Limit ===

impl Limit {
    fn new(max: Option<u64>) -> Self {
        Self {
            max,
            seen: 0,
            overflow: max.map(|_| Arc::new(AtomicBool::new(false))),
        }
    }

    /// One frame of `body`, its data counted: [`BodyTooLarge`] once past `max`.
    fn poll_frame<B>(
        &mut self,
        body: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        match body.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen = self.seen.saturating_add(data.len() as u64);
                    if let Some(max) = self.max
                        && self.seen > max
                    {
                        if let Some(overflow) = &self.overflow {
                            overflow.store(true, Ordering::Release);
                        }
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge(max)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

// === impl Overflow ===

impl Overflow {
    /// The limit, when the body failed with [`BodyTooLarge`] for going past it.
    pub fn exceeded(&self) -> Option<u64> {
        self.flag.load(Ordering::Acquire).then_some(self.max)
    }
}

/// The size hint of `extra` bytes followed by a body hinting `rest`: exact only when the
/// rest's size is exact, so a stream of unknown length never claims one.
pub(crate) fn prefixed_hint(extra: u64, rest: &SizeHint) -> SizeHint {
    let mut out = SizeHint::new();
    out.set_lower(rest.lower().saturating_add(extra));
    if let Some(upper) = rest.upper() {
        out.set_upper(upper.saturating_add(extra));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::{BodyExt, Full, StreamBody};

    use super::*;

    type Frames = StreamBody<futures_util::stream::Iter<std::vec::IntoIter<FrameResult>>>;
    type FrameResult = Result<Frame<Bytes>, Infallible>;

    /// A body of unknown length sent as these chunks.
    fn chunked(chunks: &[&'static [u8]]) -> Frames {
        let frames: Vec<FrameResult> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    /// Every frame's data, in order, or the first error.
    async fn drain<B>(mut body: RequestBody<B>) -> (Vec<Bytes>, Option<BoxError>)
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => out.extend(frame.into_data().ok()),
                Err(error) => return (out, Some(error)),
            }
        }
        (out, None)
    }

    fn longer<B>(start: Start<B>) -> RequestBody<B> {
        match start {
            Start::Longer(body) => body,
            Start::Whole(bytes) => panic!("expected a longer body, got {} bytes", bytes.len()),
        }
    }

    #[tokio::test]
    async fn a_body_that_ends_within_the_limit_is_whole() {
        for keep in [4, 5, 1000] {
            let start = read_start(chunked(&[b"ab", b"cd"]), None, keep)
                .await
                .unwrap();
            match start {
                Start::Whole(bytes) => assert_eq!(&bytes[..], b"abcd", "keep {keep}"),
                Start::Longer(_) => panic!("4 bytes fit in {keep}"),
            }
        }
        let start = read_start(chunked(&[]), None, 0).await.unwrap();
        assert!(matches!(start, Start::Whole(b) if b.is_empty()));
    }

    #[tokio::test]
    async fn the_bytes_read_go_first_then_the_rest_in_order() {
        let body = longer(
            read_start(chunked(&[b"ab", b"cd", b"ef", b"gh", b"ij"]), None, 3)
                .await
                .unwrap(),
        );
        // Read until past 3 bytes, and no further.
        assert!(matches!(&body, RequestBody::Stream { head: Some(h), .. } if &h[..] == b"abcd"));
        let (frames, error) = drain(body).await;
        assert!(error.is_none());
        assert_eq!(frames, [&b"abcd"[..], b"ef", b"gh", b"ij"]);
    }

    #[tokio::test]
    async fn an_unknown_length_with_a_prefix_claims_no_exact_size() {
        let body = longer(
            read_start(chunked(&[b"abc", b"def"]), None, 2)
                .await
                .unwrap(),
        );
        let hint = body.size_hint();
        assert_eq!(hint.exact(), None);
        assert_eq!(hint.lower(), 3);
        assert!(!body.is_end_stream());

        // A rest of known size keeps the sum exact.
        let body = longer(
            read_start(Full::new(Bytes::from_static(b"hello")), None, 2)
                .await
                .unwrap(),
        );
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        let (frames, _) = drain(body).await;
        assert_eq!(frames, [&b"hello"[..]]);
    }

    #[tokio::test]
    async fn the_limit_counts_the_bytes_read_first() {
        // 8 bytes read first (within the limit of 10), then 4 more: past it.
        let body = longer(
            read_start(chunked(&[b"abcd", b"efgh", b"ijkl"]), Some(10), 5)
                .await
                .unwrap(),
        );
        let overflow = body.overflow().unwrap();
        assert_eq!(overflow.exceeded(), None);
        let (frames, error) = drain(body).await;
        assert_eq!(frames, [&b"abcdefgh"[..]]);
        let error = error.unwrap();
        assert_eq!(error.downcast_ref::<BodyTooLarge>().unwrap().0, 10);
        assert_eq!(overflow.exceeded(), Some(10));
    }

    #[tokio::test]
    async fn past_the_limit_while_reading_first_is_too_large() {
        let error = read_start(chunked(&[b"abcd", b"efgh"]), Some(5), 100)
            .await
            .unwrap_err();
        assert_eq!(error.downcast_ref::<BodyTooLarge>().unwrap().0, 5);
    }

    #[tokio::test]
    async fn exactly_the_limit_passes() {
        let body = longer(
            read_start(chunked(&[b"abcd", b"efgh"]), Some(8), 3)
                .await
                .unwrap(),
        );
        let (frames, error) = drain(body).await;
        assert!(error.is_none());
        assert_eq!(frames, [&b"abcd"[..], b"efgh"]);

        let (frames, error) =
            drain(RequestBody::stream(chunked(&[b"abcd", b"efgh"]), Some(7))).await;
        assert_eq!(frames, [&b"abcd"[..]]);
        assert!(error.unwrap().is::<BodyTooLarge>());
    }

    #[tokio::test]
    async fn bodies_without_a_limit_report_no_overflow() {
        assert!(
            RequestBody::stream(chunked(&[b"a"]), None)
                .overflow()
                .is_none()
        );
        assert!(RequestBody::<Frames>::Buffered(None).overflow().is_none());
        let (frames, error) = drain(RequestBody::stream(chunked(&[b"ab", b"cd"]), None)).await;
        assert!(error.is_none());
        assert_eq!(frames, [&b"ab"[..], b"cd"]);
    }
}
