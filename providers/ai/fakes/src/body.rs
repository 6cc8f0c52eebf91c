//! The fake's response body: a whole JSON answer, or server-sent events that may wait before
//! their first frame (`…-slow`) and may end by dropping the connection (`…-cut`). One type
//! for both, polled in place, so a streamed answer costs no task and no channel.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Sleep, sleep};

/// How long a cut stream waits after its last frame before failing: long enough for hyper to
/// flush the frames (a body error drops what is still buffered) and for the client to read
/// them before the connection goes.
const CUT_PAUSE: Duration = Duration::from_millis(20);

pub(crate) enum Answer {
    Whole(Option<Bytes>),
    Events(Events),
}

pub(crate) struct Events {
    wait: Option<Pin<Box<Sleep>>>,
    frames: std::vec::IntoIter<Bytes>,
    cut: bool,
}

impl Answer {
    pub(crate) fn whole(body: Vec<u8>) -> Answer {
        Answer::Whole(Some(Bytes::from(body)))
    }

    /// `frames` in order, the first after `first_after` (if any); then the end, or with
    /// `cut` a dropped connection.
    pub(crate) fn events(frames: Vec<Bytes>, first_after: Option<Duration>, cut: bool) -> Answer {
        Answer::Events(Events {
            wait: first_after.map(|delay| Box::pin(sleep(delay))),
            frames: frames.into_iter(),
            cut,
        })
    }
}

impl Body for Answer {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Answer::Whole(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            Answer::Events(events) => {
                if let Some(wait) = &mut events.wait {
                    if wait.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    events.wait = None;
                }
                if let Some(frame) = events.frames.next() {
                    if events.cut && events.frames.len() == 0 {
                        events.wait = Some(Box::pin(sleep(CUT_PAUSE)));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if events.cut {
                    // hyper drops the connection without the last chunk: the client sees the
                    // stream break, as when an upstream dies mid-answer.
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "the fake cuts the stream (model …-cut)",
                    ))));
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Answer::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            // Exact, so hyper sends `content-length` instead of chunks.
            Answer::Whole(body) => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
            Answer::Events(_) => SizeHint::default(),
        }
    }
}
