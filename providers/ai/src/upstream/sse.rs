//! Server-sent events (the WHATWG HTML standard's `text/event-stream`), as both API families
//! stream their answers: OpenAI with `data:` lines only, Anthropic with an `event:` line
//! before each. Only what those streams use is kept: `event` and `data`; `id`, `retry` and
//! comments (`: ping`) are read past.

use std::collections::VecDeque;

/// One dispatched event.
#[derive(Debug, PartialEq)]
pub(crate) struct SseEvent {
    /// `message` when the server named none.
    pub(crate) event: String,
    /// The event's `data` lines, joined by `\n`.
    pub(crate) data: String,
}

/// One event may be this long at most: an answer's piece is a few bytes, so a longer one is
/// a server that never ends its line, which must not fill the memory.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// The event that passed [`MAX_EVENT_BYTES`].
#[derive(Debug)]
pub(crate) struct TooLong;

/// Reads events out of a body that arrives in arbitrary pieces: a line (or a UTF-8
/// character) may be split across two.
#[derive(Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    /// The last byte ended a line with `\r`: a `\n` right after it ends nothing more.
    after_cr: bool,
}

impl SseDecoder {
    /// Reads `bytes`, appending every event they complete to `out`.
    pub(crate) fn push(
        &mut self,
        bytes: &[u8],
        out: &mut VecDeque<SseEvent>,
    ) -> Result<(), TooLong> {
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => self.end_line(out),
                _ => self.line.push(byte),
            }
            if self.line.len() + self.data.len() > MAX_EVENT_BYTES {
                return Err(TooLong);
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut VecDeque<SseEvent>) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if line.is_empty() {
            // A blank line dispatches the event; one without data is none.
            let event = std::mem::take(&mut self.event);
            let mut data = std::mem::take(&mut self.data);
            if std::mem::take(&mut self.has_data) {
                data.pop(); // the `\n` after the last data line
                out.push_back(SseEvent {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data,
                });
            }
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            // A comment (empty field name), `id`, `retry` or a field the standard ignores.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = VecDeque::new();
        for piece in pieces {
            decoder.push(piece, &mut out).unwrap();
        }
        out.into()
    }

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_split_anywhere_read_the_same() {
        let body = "event: message_start\ndata: {\"a\":1}\n\n: ping\ndata:[DONE]\n\n".as_bytes();
        let whole = decode(&[body]);
        assert_eq!(
            whole,
            [
                event("message_start", "{\"a\":1}"),
                event("message", "[DONE]")
            ]
        );
        for at in 0..body.len() {
            assert_eq!(decode(&[&body[..at], &body[at..]]), whole, "split at {at}");
        }
        let bytewise: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode(&bytewise), whole);
    }

    #[test]
    fn every_line_ending_ends_a_line_and_data_lines_join() {
        assert_eq!(
            decode(&[
                b"data: a\r\ndata: b\r\n\r\ndata: c\rdata:  d\r\r",
                b"data: e\n"
            ]),
            [event("message", "a\nb"), event("message", "c\n d")]
        );
        // A `\r\n` split between two pieces is one line ending, not two.
        assert_eq!(
            decode(&[b"data: x\r", b"\n", b"\r", b"\n"]),
            [event("message", "x")]
        );
        // An event cut off before its blank line is never dispatched; one without data is none.
        assert_eq!(decode(&[b"event: ping\n\ndata: cut"]), []);
        // A multi-byte character split across pieces.
        let text = "data: é\n\n".as_bytes();
        assert_eq!(decode(&[&text[..7], &text[7..]]), [event("message", "é")]);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut decoder = SseDecoder::default();
        let mut out = VecDeque::new();
        let piece = vec![b'x'; 64 * 1024];
        let refused = (0..=16).any(|_| decoder.push(&piece, &mut out).is_err());
        assert!(refused);
    }
}
