//! The response body on its way to the client: streamed through, never collected.
//!
//! [`ResponseBody`] is the upstream's body streamed, optionally after a prefix already read
//! to look for a token rejection, or a synthetic answer of the proxy. It forwards size hints,
//! so a known `Content-Length` survives the hop, counts the bytes it forwards and runs the
//! request's completion (log line and metrics) when the body ends or is dropped. (The request
//! side is [`crate::upstream::body`].)

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::Completion;
use crate::upstream::body::{UpstreamBody, prefixed_hint};

/// A response body on its way to the client.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Inner,
    bytes: u64,
    completion: Option<Completion>,
}

#[derive(Debug)]
enum Inner {
    /// A whole body (synthetic answers, or an upstream body read completely).
    Full(Option<Bytes>),
    /// The upstream's body after a prefix that was already read.
    Prefixed {
        head: Option<Bytes>,
        rest: UpstreamBody,
    },
}

// === impl ResponseBody ===

impl ResponseBody {
    /// A whole body.
    pub fn full(data: Bytes) -> Self {
        Self {
            inner: Inner::Full((!data.is_empty()).then_some(data)),
            bytes: 0,
            completion: None,
        }
    }

    /// The upstream's body, streamed.
    pub fn stream(body: UpstreamBody) -> Self {
        Self::prefixed(Bytes::new(), body)
    }

    /// `head`, already read from the upstream, then the rest of its body.
    pub fn prefixed(head: Bytes, rest: UpstreamBody) -> Self {
        Self {
            inner: Inner::Prefixed {
                head: (!head.is_empty()).then_some(head),
                rest,
            },
            bytes: 0,
            completion: None,
        }
    }

    /// Runs `completion` with the byte count when the body ends or is dropped.
    pub(crate) fn on_complete(mut self, completion: Completion) -> Self {
        self.completion = Some(completion);
        self
    }

    fn complete(&mut self) {
        if let Some(completion) = self.completion.take() {
            completion.finish(self.bytes);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::Prefixed { head, rest } => match head.take() {
                Some(h) => Poll::Ready(Some(Ok(Frame::data(h)))),
                None => Pin::new(rest).poll_frame(cx),
            },
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => this.complete(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(data) => data.is_none(),
            Inner::Prefixed { head, rest } => head.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::Prefixed { head, rest } => prefixed_hint(
                head.as_ref().map_or(0, |h| h.len() as u64),
                &rest.size_hint(),
            ),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.complete();
    }
}
