//! Log lines (`tracing`), JSON by default, with secrets and PII fields redacted on their way
//! out, whichever crate wrote them.
//!
//! - Every secret the runtime resolves is [`register_secret`]ed; its value is replaced by
//!   [`REDACTED`] wherever it appears in a line (a driver's error message, a debug dump).
//! - `SWITCHYARD_LOG_REDACT` names PII fields (comma-separated, case-insensitive; default
//!   `email,phone,password,token,authorization,api_key,secret`): the value after `"field":`
//!   (JSON) or `field=` (text) is replaced, in every line.
//!
//! The scan is one Aho-Corasick pass for all secrets plus, on the line lowercased into a buffer
//! each thread reuses, a substring search per PII field; only a line that holds something to
//! hide is copied. (An ASCII-case-insensitive Aho-Corasick matcher for the field names was
//! measured 4× slower on an access line: those names share their letters with every line.)
//! Registering a secret (rare: at instance start and rotation) rebuilds the matcher; writers
//! never wait for a lock.
//!
//! Lines up to `info` (the access log among them) are redacted and appended to a bounded
//! buffer, which a log thread writes to stderr every [`FLUSH_EVERY`] (sooner past
//! [`FLUSH_BYTES`]), and once more when the process exits: a request never waits for stderr,
//! and a thousand access lines cost one `write` instead of a thousand. When the buffer is full
//! a line is dropped rather than making a request wait, and counted ([`dropped_lines`], the
//! `switchyard_log_lines_dropped` counter). Warnings and errors are written at once, in the
//! calling thread: they are few and they are what an operator must see first (so one may come
//! out before `info` lines logged just before it; each line carries its own timestamp).
//!
//! Measured with `switchyard bench` (issue 18): tracing-appender's non-blocking writer wakes its
//! thread for every line that finds it idle, which at a few thousand requests per second is
//! every line, and cost more CPU per request than writing each line to stderr directly.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use aho_corasick::{AhoCorasick, MatchKind};
use arc_swap::ArcSwap;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// What a hidden value is replaced by.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not registered: redacting every `1` or `on` in the log would
/// garble it while protecting nothing worth a secret reference.
const MIN_SECRET_LEN: usize = 6;

const DEFAULT_PII_FIELDS: &str = "email,phone,password,token,authorization,api_key,secret";

/// How long a line waits at most for the log thread.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Buffered bytes that wake the log thread before [`FLUSH_EVERY`].
pub const FLUSH_BYTES: usize = 64 * 1024;

/// Buffered bytes past which lines are dropped: seconds of access log at full load.
const BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// The registered secrets and one matcher for all of them.
#[derive(Default)]
struct Secrets {
    values: Vec<String>,
    matcher: Option<AhoCorasick>,
}

static SECRETS: LazyLock<ArcSwap<Secrets>> = LazyLock::new(ArcSwap::default);
/// Serializes registrations, so that two at once cannot drop one another's secret.
static REGISTERING: Mutex<()> = Mutex::new(());

/// Lines up to `info`, redacted, waiting for the log thread.
static PENDING: Pending = Pending::new();

struct Pending {
    lines: Mutex<Vec<u8>>,
    /// Signalled when [`FLUSH_BYTES`] are waiting.
    ready: Condvar,
    dropped: AtomicU64,
}

impl Pending {
    const fn new() -> Self {
        Pending {
            lines: Mutex::new(Vec::new()),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
        }
    }

    fn push(&self, line: &[u8]) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() + line.len() > BUFFER_BYTES {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        lines.extend_from_slice(line);
        if lines.len() >= FLUSH_BYTES {
            self.ready.notify_one();
        }
    }

    /// Swaps what is waiting into `batch` (empty), after waiting up to `wait` for enough of it.
    fn take(&self, batch: &mut Vec<u8>, wait: Duration) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() < FLUSH_BYTES && !wait.is_zero() {
            lines = self
                .ready
                .wait_timeout(lines, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        std::mem::swap(&mut *lines, batch);
    }

    fn write_out(&self, batch: &mut Vec<u8>, wait: Duration) {
        self.take(batch, wait);
        if !batch.is_empty() {
            // Nowhere to report a failing stderr.
            let _ = std::io::stderr().write_all(batch);
            batch.clear();
        }
    }
}

/// The buffer's writer for one event (redacted by [`LineWriter`] first).
struct Buffered;

impl Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        PENDING.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes what is still buffered when the process exits (`main` returned or
/// `std::process::exit`): statics are never dropped, so nothing else would.
extern "C" fn write_out_at_exit() {
    PENDING.write_out(&mut Vec::new(), Duration::ZERO);
}

/// Hides `value` from every log line written from now on.
pub fn register_secret(value: &str) {
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let _one_at_a_time = REGISTERING.lock();
    let current = SECRETS.load();
    if current.values.iter().any(|s| s == value) {
        return;
    }
    let mut values = current.values.clone();
    values.push(value.to_owned());
    // Longest first where secrets overlap, so no tail of a longer one is left behind.
    let matcher = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&values)
        .ok();
    SECRETS.store(Arc::new(Secrets { values, matcher }));
}

/// Installs the process's subscriber: `SWITCHYARD_LOG` filters (default `info`),
/// `SWITCHYARD_LOG_FORMAT=text` gives human-readable lines instead of JSON, to stderr.
pub fn init() {
    let filter = EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| "info".into());
    let pii = Arc::new(pii_fields_from_env());
    let log_thread = std::thread::Builder::new()
        .name("switchyard-log".into())
        .spawn(|| {
            let mut batch = Vec::new();
            loop {
                PENDING.write_out(&mut batch, FLUSH_EVERY);
            }
        });
    let at_once = RedactingWriter {
        pii: pii.clone(),
        inner: std::io::stderr,
    };
    let buffered = RedactingWriter {
        pii,
        inner: || Buffered,
    };
    // Without a log thread (none could be started) every line is written at once.
    let writer = at_once
        .with_max_level(if log_thread.is_ok() {
            Level::WARN
        } else {
            Level::TRACE
        })
        .or_else(buffered);
    // SAFETY: registers a function without arguments that touches only `PENDING` and stderr,
    // both usable until the process ends.
    unsafe {
        libc::atexit(write_out_at_exit);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if std::env::var("SWITCHYARD_LOG_FORMAT").as_deref() == Ok("text") {
        builder.init();
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init();
    }
}

/// Lines dropped so far because the log thread could not keep up.
pub fn dropped_lines() -> u64 {
    PENDING.dropped.load(Ordering::Relaxed)
}

fn pii_fields_from_env() -> PiiFields {
    PiiFields::new(
        std::env::var("SWITCHYARD_LOG_REDACT")
            .unwrap_or_else(|_| DEFAULT_PII_FIELDS.to_owned())
            .split(',')
            .map(str::to_owned)
            .collect(),
    )
}

/// The PII field names, trimmed and lowercase.
pub struct PiiFields {
    names: Vec<String>,
}

impl PiiFields {
    pub fn new(names: Vec<String>) -> Self {
        let names = names
            .iter()
            .map(|f| f.trim().to_ascii_lowercase())
            .filter(|f| !f.is_empty())
            .collect();
        PiiFields { names }
    }
}

/// A [`MakeWriter`] that redacts each line before `inner` sees it.
#[derive(Clone)]
pub struct RedactingWriter<F> {
    pii: Arc<PiiFields>,
    inner: F,
}

impl<F> RedactingWriter<F> {
    pub fn new(pii: PiiFields, inner: F) -> Self {
        RedactingWriter {
            pii: Arc::new(pii),
            inner,
        }
    }
}

impl<'a, F, W> MakeWriter<'a> for RedactingWriter<F>
where
    F: Fn() -> W + 'static,
    W: Write,
{
    type Writer = LineWriter<W>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter::new(self.pii.clone(), (self.inner)())
    }
}

/// Receives one formatted event per `write` (tracing-subscriber writes each event in one
/// call).
pub struct LineWriter<W> {
    pii: Arc<PiiFields>,
    inner: W,
}

impl<W> LineWriter<W> {
    fn new(pii: Arc<PiiFields>, inner: W) -> Self {
        LineWriter { pii, inner }
    }
}

impl<W: Write> Write for LineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        match redact(&text, &self.pii) {
            Some(clean) => self.inner.write_all(clean.as_bytes())?,
            None => self.inner.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

thread_local! {
    /// The line being scanned, in ASCII lowercase (same byte offsets).
    static LOWERCASED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The line with secrets and PII values replaced, or `None` when there is nothing to hide.
pub fn redact(line: &str, pii: &PiiFields) -> Option<String> {
    let mut out: Option<String> = None;
    let secrets = SECRETS.load();
    if let Some(matcher) = &secrets.matcher
        && matcher.is_match(line)
    {
        let mut clean = String::with_capacity(line.len());
        matcher.replace_all_with(line, &mut clean, |_, _, dst| {
            dst.push_str(REDACTED);
            true
        });
        out = Some(clean);
    }
    let names_a_field = LOWERCASED.with_borrow_mut(|lower| {
        lower.clear();
        lower.push_str(out.as_deref().unwrap_or(line));
        lower.make_ascii_lowercase();
        pii.names.iter().any(|field| lower.contains(field.as_str()))
    });
    if !names_a_field {
        return out;
    }
    // The line names a field: lowercased into its own copy; again after a field was redacted.
    let mut lower = out.as_deref().unwrap_or(line).to_ascii_lowercase();
    for field in &pii.names {
        if !lower.contains(field.as_str()) {
            continue;
        }
        let current = out.as_deref().unwrap_or(line);
        if let Some(clean) = redact_field(current, &lower, field) {
            lower = clean.to_ascii_lowercase();
            out = Some(clean);
        }
    }
    out
}

/// Replaces the values of `field` written as `"field":value` (JSON) or `field=value` (text),
/// matching the name case-insensitively.
/// `lower` is `line` in ASCII lowercase (same byte offsets).
fn redact_field(line: &str, lower: &str, field: &str) -> Option<String> {
    let json_key = format!("\"{field}\":");
    // The same key inside a JSON document logged as a string value: `\"field\":`.
    let nested_key = format!("\\\"{field}\\\":");
    let text_key = format!("{field}=");
    // Byte-wise: the byte before a match may sit inside a multi-byte character.
    let bytes = lower.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    let mut at = 0;
    let mut changed = false;
    while let Some(found) = lower[at..].find(field) {
        let start = at + found;
        let (key_start, key_len) =
            if start > 0 && bytes[start - 1..].starts_with(json_key.as_bytes()) {
                (start - 1, json_key.len())
            } else if start > 1 && bytes[start - 2..].starts_with(nested_key.as_bytes()) {
                (start - 2, nested_key.len())
            } else if lower[start..].starts_with(&text_key)
                && (start == 0 || !is_word_byte(bytes[start - 1]))
            {
                (start, text_key.len())
            } else {
                at = start + field.len();
                continue;
            };
        let value_start = key_start + key_len;
        let value_end = value_end(line, value_start);
        if value_end > value_start {
            let replacement = if line[value_start..].starts_with("\\\"") {
                "\\\"[redacted]\\\""
            } else if line[value_start..].starts_with('"') {
                "\"[redacted]\""
            } else {
                REDACTED
            };
            out.push_str(&line[copied..value_start]);
            out.push_str(replacement);
            copied = value_end;
            changed = true;
        }
        at = value_end.max(start + field.len());
    }
    changed.then(|| {
        out.push_str(&line[copied..]);
        out
    })
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Where the value starting at `start` ends: after its closing quote (escapes honoured) for a
/// quoted value, else at the next delimiter.
fn value_end(line: &str, start: usize) -> usize {
    let bytes = line.as_bytes();
    if line[start..].starts_with("\\\"") {
        return line[start + 2..]
            .find("\\\"")
            .map_or(bytes.len(), |end| start + 2 + end + 2);
    }
    if bytes.get(start) == Some(&b'"') {
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        return bytes.len();
    }
    let mut i = start;
    while i < bytes.len() && !matches!(bytes[i], b',' | b'}' | b' ' | b'\n' | b'\t') {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pii() -> PiiFields {
        PiiFields::new(vec!["email".into(), " Phone".into()])
    }

    #[test]
    fn registered_secrets_are_hidden_anywhere_in_a_line() {
        register_secret("s3cr3t-value-42");
        let line = r#"{"message":"connect failed: postgres://app:s3cr3t-value-42@db/x"}"#;
        let clean = redact(line, &pii()).unwrap();
        assert!(!clean.contains("s3cr3t-value-42"));
        assert!(clean.contains("postgres://app:[redacted]@db/x"));
        register_secret("short");
        assert!(redact("a short line", &pii()).is_none());
        register_secret("s3cr3t-value-42-and-more");
        let both = redact(
            r#"{"email":"a@b.c","m":"s3cr3t-value-42-and-more then s3cr3t-value-42"}"#,
            &pii(),
        )
        .unwrap();
        assert_eq!(
            both,
            r#"{"email":"[redacted]","m":"[redacted] then [redacted]"}"#
        );
    }

    #[test]
    fn pii_fields_are_hidden_in_json_and_text_lines() {
        let json = r#"{"level":"DEBUG","params":"{\"Email\":\"alice@example.com\",\"n\":1}","email":"bob@example.com","phone":5551234}"#;
        let clean = redact(json, &pii()).unwrap();
        assert!(!clean.contains("bob@example.com"), "{clean}");
        assert!(!clean.contains("alice@example.com"), "{clean}");
        assert!(clean.contains(r#"\"Email\":\"[redacted]\""#), "{clean}");
        assert!(!clean.contains("5551234"), "{clean}");
        assert!(clean.contains(r#""email":"[redacted]""#), "{clean}");
        let text = "DEBUG invoke email=carol@example.com action=get";
        let clean = redact(text, &pii()).unwrap();
        assert_eq!(clean, "DEBUG invoke email=[redacted] action=get");
        assert!(redact("nothing to hide, emails=3", &pii()).is_none());
    }

    #[test]
    fn buffered_lines_are_taken_in_order_and_past_the_bound_dropped_and_counted() {
        let pending = Pending::new();
        pending.push(b"one\n");
        pending.push(b"two\n");
        let mut batch = Vec::new();
        pending.take(&mut batch, Duration::ZERO);
        assert_eq!(batch, b"one\ntwo\n");
        batch.clear();
        let big = vec![b'x'; BUFFER_BYTES / 2];
        for _ in 0..3 {
            pending.push(&big);
        }
        assert_eq!(pending.dropped.load(Ordering::Relaxed), 1);
        pending.take(&mut batch, Duration::from_secs(5));
        assert_eq!(batch.len(), BUFFER_BYTES, "a full buffer does not wait");
    }

    #[test]
    fn the_writer_passes_clean_lines_unchanged() {
        let sink = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let target = sink.clone();
        struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let writer = RedactingWriter::new(pii(), move || Shared(target.clone()));
        writer.make_writer().write_all(b"plain line\n").unwrap();
        writer
            .make_writer()
            .write_all(b"{\"email\":\"x@y.z\"}\n")
            .unwrap();
        let written = String::from_utf8(sink.lock().unwrap().clone()).unwrap();
        assert_eq!(written, "plain line\n{\"email\":\"[redacted]\"}\n");
    }
}
