//! One run of one stream into one destination, in the background (a sync outlives the
//! runtime's 30 s call timeout).
//!
//! Each page: keep the raw records → map → write to the destination → and only once the
//! destination acknowledged, checkpoint (the run's page and counters, and for an incremental
//! run the stream's cursor, in one store transaction). A crash anywhere leaves the store at
//! the last acknowledged page: the resumed run writes at most that one page again, which the
//! destination's dedupe on the primary key absorbs, and never skips one.
//!
//! - full: every page from the start (a resumed run from its stored page token), then the
//!   tombstone pass: kept records of the stream that this run did not see are deleted at the
//!   destination. The stream's cursor moves to the largest value written once the run ends
//!   (a full read is not in cursor order, so a cursor stored mid-way could skip records).
//! - incremental: pages from the stored cursor (inclusive), the cursor advancing page by
//!   page, then the system's deleted-record feed since the cursor the run started from.
//! - remap: the kept raw records, mapped again, written again; no call to the system.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_spi::ProviderError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::destination::{Item, Writer};
use super::events::{self, Publisher};
use super::store::{Checkpoint, Kept, Phase, RunRow, Store, destination_key};
use crate::connector::{Connector, Deletes, ReadFrom, Stream};
use crate::contract::{Mode, RunError};
use crate::mapping::Mapping;

/// Kept records per remap page and keys per tombstone page.
const STORE_PAGE: i64 = 1000;

/// Everything one run needs.
pub(crate) struct Job<C> {
    pub(crate) connector: Arc<C>,
    pub(crate) store: Arc<Store>,
    pub(crate) mapping: Option<Arc<Mapping>>,
    pub(crate) writer: Writer,
    pub(crate) events: Publisher,
    /// The stream as discovered; `None` for a remap (which calls nothing) and for a resumed
    /// run (which discovers it first).
    pub(crate) stream: Option<Stream>,
    pub(crate) run: RunRow,
}

/// Where a run is: its counters as stored, moved on page by page.
struct Progress {
    phase: Phase,
    page: Option<String>,
    records: i64,
    deleted: i64,
    pages: i64,
    max_cursor: Option<Value>,
}

/// Runs `job` to its end and records how it ended.
pub(crate) async fn run<C: Connector>(job: Job<C>) {
    let run = &job.run;
    let destination = destination_key(&run.destination);
    if run.pages == 0 && run.phase == Phase::Read {
        job.events
            .publish(events::SYNC_STARTED, &run.stream, summary(run, None))
            .await;
    }
    let mut progress = Progress {
        phase: run.phase,
        page: run.page.clone(),
        records: run.records,
        deleted: run.deleted,
        pages: run.pages,
        max_cursor: run.max_cursor.clone(),
    };
    let outcome = drive(&job, &destination, &mut progress).await;
    // A full run's cursor is stored once the whole read is written.
    let full_cursor = match (&outcome, run.mode, &progress.max_cursor) {
        (Ok(()), Mode::Full, Some(max)) => Some(max.clone()),
        _ => None,
    };
    let error = outcome.err().map(|e| RunError {
        code: e.code.as_str().to_owned(),
        detail: e.detail,
    });
    let stored = job
        .store
        .finish_run(
            &run.run_id,
            error.as_ref(),
            full_cursor
                .as_ref()
                .map(|cursor| (run.stream.as_str(), destination.as_str(), cursor)),
            now_ms(),
        )
        .await;
    if let Err(e) = stored {
        // The run stays `running` in the store and is resumed at the next start or sync.
        tracing::warn!(run_id = %run.run_id, error = %e.detail, "a run's end was not recorded");
        return;
    }
    let kind = match &error {
        None => events::SYNC_COMPLETED,
        Some(_) => events::SYNC_FAILED,
    };
    let ended = RunRow {
        records: progress.records,
        deleted: progress.deleted,
        pages: progress.pages,
        ..run.clone()
    };
    job.events
        .publish(kind, &run.stream, summary(&ended, error.as_ref()))
        .await;
}

async fn drive<C: Connector>(
    job: &Job<C>,
    destination: &str,
    progress: &mut Progress,
) -> Result<(), ProviderError> {
    let run = &job.run;
    let discovered;
    let stream = match (run.mode, &job.stream) {
        (Mode::Remap, _) => None,
        (_, Some(stream)) => Some(stream),
        // A resumed run learns its stream here, not in the start that resumed it.
        (_, None) => {
            discovered = find(job.connector.discover().await?, &run.stream)?;
            Some(&discovered)
        }
    };
    match (run.mode, stream) {
        (Mode::Remap, _) => remap(job, progress).await,
        (Mode::Full, Some(stream)) => {
            if progress.phase == Phase::Read {
                if progress.pages == 0 {
                    job.writer.clear().await?;
                }
                read(job, stream, None, destination, progress).await?;
                enter_deletes(job, progress).await?;
            }
            tombstones(job, progress).await
        }
        (Mode::Incremental, Some(stream)) => {
            if progress.phase == Phase::Read {
                // A resumed run starts again from the cursor stored at its last checkpoint.
                let since = job.store.cursor(&run.stream, destination).await?;
                progress.page = None;
                read(job, stream, since, destination, progress).await?;
                enter_deletes(job, progress).await?;
            }
            if stream.deletes == Deletes::Feed && run.since.is_some() {
                deleted_feed(job, progress).await?;
            }
            Ok(())
        }
        (_, None) => Err(ProviderError::internal("a sync run without its stream")),
    }
}

/// Reads `stream`'s pages, from `since` (incremental) and from the progress's page token (a
/// resumed full run), writing and checkpointing each.
async fn read<C: Connector>(
    job: &Job<C>,
    stream: &Stream,
    since: Option<Value>,
    destination: &str,
    progress: &mut Progress,
) -> Result<(), ProviderError> {
    let run = &job.run;
    loop {
        let page = job
            .connector
            .read(
                &stream.name,
                ReadFrom {
                    since: since.as_ref(),
                    page: progress.page.as_deref(),
                },
            )
            .await?;
        let kept = keep(stream, page.records)?;
        let items = map(job.mapping.as_deref(), &kept)?;
        let now = rfc3339(now_ms());
        job.writer.write(&items, &now).await?;
        for item in &items {
            if let Some(cursor) = &item.cursor {
                progress.max_cursor = Some(latest(progress.max_cursor.take(), cursor));
            }
        }
        progress.records += items.len() as i64;
        progress.pages += 1;
        progress.page = page.next_page;
        let cursor = match (run.mode, &progress.max_cursor) {
            (Mode::Incremental, Some(max)) => Some((run.stream.as_str(), destination, max)),
            _ => None,
        };
        checkpoint(job, progress, cursor, &kept).await?;
        record_events(job, events::RECORD_UPSERTED, &items).await;
        if progress.page.is_none() {
            return Ok(());
        }
    }
}

async fn enter_deletes<C>(job: &Job<C>, progress: &mut Progress) -> Result<(), ProviderError> {
    progress.phase = Phase::Deletes;
    progress.page = None;
    checkpoint(job, progress, None, &[]).await
}

/// A full refresh's last step: what the stream held that this run did not see was deleted.
async fn tombstones<C>(job: &Job<C>, progress: &mut Progress) -> Result<(), ProviderError> {
    let run = &job.run;
    loop {
        let after = progress.page.clone().unwrap_or_default();
        let keys = job
            .store
            .unseen(&run.stream, &run.run_id, &after, STORE_PAGE)
            .await?;
        let Some(last) = keys.last().cloned() else {
            return Ok(());
        };
        carry_deletes(job, &keys, progress).await?;
        progress.page = Some(last);
        checkpoint(job, progress, None, &[]).await?;
    }
}

/// An incremental run's last step: the system's deletions since the run's starting cursor.
async fn deleted_feed<C: Connector>(
    job: &Job<C>,
    progress: &mut Progress,
) -> Result<(), ProviderError> {
    let run = &job.run;
    loop {
        let page = job
            .connector
            .read_deleted(
                &run.stream,
                ReadFrom {
                    since: run.since.as_ref(),
                    page: progress.page.as_deref(),
                },
            )
            .await?;
        let keys = page.deleted;
        carry_deletes(job, &keys, progress).await?;
        progress.page = page.next_page;
        checkpoint(job, progress, None, &[]).await?;
        if progress.page.is_none() {
            return Ok(());
        }
    }
}

/// Writes the kept raw records again through the current mapping, page by page in key order.
async fn remap<C>(job: &Job<C>, progress: &mut Progress) -> Result<(), ProviderError> {
    let run = &job.run;
    loop {
        let after = progress.page.clone().unwrap_or_default();
        let rows = job.store.kept(&run.stream, &after, STORE_PAGE).await?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        let last = last.key.clone();
        let (deleted, live): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, gone)| *gone);
        let live: Vec<Kept> = live.into_iter().map(|(kept, _)| kept).collect();
        let items = map(job.mapping.as_deref(), &live)?;
        job.writer.write(&items, &rfc3339(now_ms())).await?;
        let keys: Vec<String> = deleted.into_iter().map(|(kept, _)| kept.key).collect();
        progress.deleted += job.writer.delete(&keys, &rfc3339(now_ms())).await? as i64;
        progress.records += items.len() as i64;
        progress.pages += 1;
        progress.page = Some(last);
        checkpoint(job, progress, None, &[]).await?;
    }
}

async fn carry_deletes<C>(
    job: &Job<C>,
    keys: &[String],
    progress: &mut Progress,
) -> Result<(), ProviderError> {
    let carried = job.writer.delete(keys, &rfc3339(now_ms())).await?;
    job.store.mark_deleted(&job.run.stream, keys).await?;
    progress.deleted += carried as i64;
    if job.events.records() {
        let data = keys
            .iter()
            .map(|key| json!({"stream": job.run.stream, "id": key}))
            .collect();
        job.events
            .publish_all(events::RECORD_DELETED, Some(&job.run.stream), data)
            .await;
    }
    Ok(())
}

async fn checkpoint<C>(
    job: &Job<C>,
    progress: &Progress,
    cursor: Option<(&str, &str, &Value)>,
    kept: &[Kept],
) -> Result<(), ProviderError> {
    job.store
        .checkpoint(Checkpoint {
            stream: &job.run.stream,
            kept,
            run_id: &job.run.run_id,
            phase: progress.phase,
            page: progress.page.as_deref(),
            records: progress.records,
            deleted: progress.deleted,
            pages: progress.pages,
            max_cursor: progress.max_cursor.as_ref(),
            cursor,
        })
        .await
}

async fn record_events<C>(job: &Job<C>, kind: &str, items: &[Item]) {
    if job.events.records() && !items.is_empty() {
        let data = items
            .iter()
            .map(|item| json!({"stream": job.run.stream, "id": item.id, "record": item.record}))
            .collect();
        job.events
            .publish_all(kind, Some(&job.run.stream), data)
            .await;
    }
}

/// A page's raw records as kept: each with its primary key and cursor value.
pub(crate) fn keep(stream: &Stream, records: Vec<Value>) -> Result<Vec<Kept>, ProviderError> {
    records
        .into_iter()
        .map(|raw| {
            let key = match raw.get(&stream.primary_key) {
                Some(Value::String(key)) => key.clone(),
                Some(Value::Number(key)) => key.to_string(),
                _ => {
                    return Err(ProviderError::new(
                        switchyard_spi::ErrorCode::ProviderFailed,
                        format!(
                            "a record of stream {:?} has no primary key {:?} (a string or an integer)",
                            stream.name, stream.primary_key
                        ),
                    ));
                }
            };
            let cursor = stream
                .cursor_field
                .as_ref()
                .and_then(|field| raw.get(field))
                .filter(|v| !v.is_null())
                .cloned();
            Ok(Kept { key, raw, cursor })
        })
        .collect()
}

/// The destination's items of `kept`: mapped (or raw without a mapping), one per id (the
/// last, as the page's latest state of that record).
pub(crate) fn map(mapping: Option<&Mapping>, kept: &[Kept]) -> Result<Vec<Item>, ProviderError> {
    let mut items: Vec<Item> = Vec::with_capacity(kept.len());
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(kept.len());
    for record in kept {
        let mapped = match mapping {
            Some(mapping) => mapping.apply(&record.raw)?,
            None => record.raw.clone(),
        };
        let item = Item {
            id: record.key.clone(),
            record: mapped,
            cursor: record.cursor.clone(),
        };
        match at.get(record.key.as_str()) {
            Some(&i) => items[i] = item,
            None => {
                at.insert(&record.key, items.len());
                items.push(item);
            }
        }
    }
    Ok(items)
}

/// The later of two cursor values: instants when both are RFC 3339 timestamps (whatever
/// their offsets), numbers by value, anything else by its text.
pub(crate) fn latest(current: Option<Value>, candidate: &Value) -> Value {
    match current {
        Some(current) if compare(&current, candidate) != Ordering::Less => current,
        _ => candidate.clone(),
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => {
            match (
                OffsetDateTime::parse(x, &Rfc3339),
                OffsetDateTime::parse(y, &Rfc3339),
            ) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => x.cmp(y),
            }
        }
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// A run's event payload.
fn summary(run: &RunRow, error: Option<&RunError>) -> Value {
    let mut data = json!({
        "run_id": run.run_id,
        "stream": run.stream,
        "mode": run.mode,
        "destination": run.destination,
        "records": run.records,
        "deleted": run.deleted,
        "pages": run.pages,
    });
    if let Some(error) = error {
        data["error"] = json!(error);
    }
    data
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

pub(crate) fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The stream called `name` among `streams`; 422 naming the ones there are.
pub(crate) fn find(streams: Vec<Stream>, name: &str) -> Result<Stream, ProviderError> {
    let known: Vec<String> = streams.iter().map(|s| s.name.clone()).collect();
    streams.into_iter().find(|s| s.name == name).ok_or_else(|| {
        ProviderError::field(
            switchyard_spi::ErrorCode::ParamsUnprocessable,
            "/stream",
            format!("no stream {name:?}; the connection has {known:?}"),
        )
    })
}
