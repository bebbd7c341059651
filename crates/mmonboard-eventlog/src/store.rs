//! The event-store contract every backend implements, and the backend-agnostic chain verifier
//! they share. Callers (the application layer) depend only on this trait, so the embedded SQLite
//! log and a future PostgreSQL log are interchangeable and run one conformance suite.

use std::collections::HashMap;
use std::future::Future;

use uuid::Uuid;

use crate::error::{AppendError, StoreError};
use crate::hash::{CanonicalEvent, GENESIS_HASH};
use crate::model::{
    AppendOutcome, AppendRequest, ChainBreak, EventView, RecordedEvent, StreamId, VerifyReport,
};

/// An append-only, hash-chained event log.
pub trait EventStore: Send + Sync + 'static {
    /// Appends one command's events atomically and durably, or recognises the command as already
    /// applied (checked before the expected version, so a retry after success is harmless).
    fn append(
        &self,
        request: AppendRequest,
    ) -> impl Future<Output = Result<AppendOutcome, AppendError>> + Send;

    /// The stream's events with a version greater than `from_version`, in version order.
    fn read_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Up to `limit` events with a global position greater than `after_position`, in global
    /// order; page by passing the last position read.
    fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Visits up to `limit` events with a global position greater than `after_position`, in global order:
    /// the events `read_all` pages would return, each lent to `visit` for the visit only, the next ones
    /// read while the visitor works. It stops at the end of the log as its reads find it, after `limit`
    /// events, or at the visitor's first error, which it returns; otherwise it answers how many events it
    /// visited. A replay or a catch-up that folds events and keeps few of their parts: it costs no copy of
    /// what the visitor does not keep, and no waiting between pages.
    fn replay<E, F>(
        &self,
        after_position: u64,
        limit: usize,
        mut visit: F,
    ) -> impl Future<Output = Result<u64, E>> + Send
    where
        E: From<StoreError> + Send,
        F: FnMut(EventView<'_>) -> Result<(), E> + Send,
    {
        async move { replay_in_pages(self, after_position, limit, REPLAY_PAGE, &mut visit).await }
    }

    /// The stream's last version, 0 if it has no events.
    fn stream_version(
        &self,
        stream_id: &StreamId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The events of an applied command (possibly none), or `None` if the command is unknown.
    fn find_command(
        &self,
        command_id: Uuid,
    ) -> impl Future<Output = Result<Option<Vec<RecordedEvent>>, StoreError>> + Send;

    /// The last global position, 0 for an empty log.
    fn head_position(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Walks the whole log in pages, recomputing the hash chain and checking positions and
    /// stream versions; memory grows with the number of streams, not events.
    fn verify(&self) -> impl Future<Output = Result<VerifyReport, StoreError>> + Send;
}

/// Checks events fed in global order; shared by every backend's `verify`.
/// A shared store is a store: several services (or a service and a subscriber) can use one log.
impl<S: EventStore> EventStore for std::sync::Arc<S> {
    fn append(
        &self,
        request: AppendRequest,
    ) -> impl Future<Output = Result<AppendOutcome, AppendError>> + Send {
        S::append(self, request)
    }

    fn read_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        S::read_stream(self, stream_id, from_version)
    }

    fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send {
        S::read_all(self, after_position, limit)
    }

    fn replay<E, F>(
        &self,
        after_position: u64,
        limit: usize,
        visit: F,
    ) -> impl Future<Output = Result<u64, E>> + Send
    where
        E: From<StoreError> + Send,
        F: FnMut(EventView<'_>) -> Result<(), E> + Send,
    {
        S::replay(self, after_position, limit, visit)
    }

    fn stream_version(
        &self,
        stream_id: &StreamId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        S::stream_version(self, stream_id)
    }

    fn find_command(
        &self,
        command_id: Uuid,
    ) -> impl Future<Output = Result<Option<Vec<RecordedEvent>>, StoreError>> + Send {
        S::find_command(self, command_id)
    }

    fn head_position(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        S::head_position(self)
    }

    fn verify(&self) -> impl Future<Output = Result<VerifyReport, StoreError>> + Send {
        S::verify(self)
    }
}

/// Events per page of a replay read through `read_all`.
pub(crate) const REPLAY_PAGE: usize = 16_384;

/// [`EventStore::replay`] through `read_all`, in pages of `page_size` events (at least 1; the stores use
/// [`REPLAY_PAGE`]): the next page is read while the visitor works through the last (two pages in memory
/// at once). Ends at the first page shorter than asked.
pub(crate) async fn replay_in_pages<S, E, F>(
    store: &S,
    after_position: u64,
    limit: usize,
    page_size: usize,
    visit: &mut F,
) -> Result<u64, E>
where
    S: EventStore + ?Sized,
    E: From<StoreError> + Send,
    F: FnMut(EventView<'_>) -> Result<(), E> + Send,
{
    use futures_util::future::{Either, select};
    let page_size = page_size.max(1);
    let mut visited = 0u64;
    let mut remaining = limit;
    let mut asked = remaining.min(page_size);
    if asked == 0 {
        return Ok(0);
    }
    let mut page = store.read_all(after_position, asked).await?;
    while let Some(last) = page.last().map(|event| event.global_position) {
        remaining = remaining.saturating_sub(page.len());
        let next_asked = if page.len() < asked {
            0 // the end of the log
        } else {
            remaining.min(page_size)
        };
        let read_next = std::pin::pin!(async {
            if next_asked == 0 {
                Ok(Vec::new())
            } else {
                store.read_all(last, next_asked).await
            }
        });
        let visit_page = std::pin::pin!(async {
            page.iter()
                .try_for_each(|event| visit(EventView::from(event)))
        });
        // The read is polled first: its first poll sends it off, so it goes on while the visitor works. A
        // visitor's error is returned at once, the read in flight dropped.
        let next = match select(read_next, visit_page).await {
            Either::Left((next, visit_page)) => {
                visit_page.await?;
                next
            }
            Either::Right((visited_page, read_next)) => {
                visited_page?;
                read_next.await
            }
        };
        visited += page.len() as u64;
        page = next?;
        asked = next_asked;
    }
    Ok(visited)
}

#[derive(Debug, Default)]
pub(crate) struct ChainVerifier {
    next_position: u64,
    previous_hash: Option<[u8; 32]>,
    last_versions: HashMap<StreamId, u64>,
    events_checked: u64,
    head: Option<(u64, [u8; 32])>,
    first_break: Option<ChainBreak>,
    /// A part of the log starting after `next_position - 1`: a stream's first event seen may have any
    /// version (its earlier events are outside the part).
    partial: bool,
}

impl ChainVerifier {
    /// Checks a part of the log that follows the event at `after` with hash `previous_hash` (an
    /// export from a position on); `after` 0 is the whole log.
    pub(crate) fn starting_after(after: u64, previous_hash: [u8; 32]) -> Self {
        Self {
            next_position: after + 1,
            previous_hash: Some(previous_hash),
            partial: after > 0,
            ..Self::default()
        }
    }

    pub(crate) fn new() -> Self {
        Self {
            next_position: 1,
            ..Self::default()
        }
    }

    /// Whether a break was found; feeding more events after that is pointless.
    pub(crate) fn is_broken(&self) -> bool {
        self.first_break.is_some()
    }

    /// Checks the next event; `metadata` is its metadata text exactly as stored.
    pub(crate) fn check(&mut self, event: &RecordedEvent, metadata: &str) {
        if self.is_broken() {
            return;
        }
        self.events_checked += 1;
        let position = event.global_position;
        if position != self.next_position {
            let reason = if position > self.next_position {
                format!(
                    "position gap: expected position {}, found {position}",
                    self.next_position
                )
            } else {
                format!(
                    "position out of order: expected position {}, found {position}",
                    self.next_position
                )
            };
            self.broken(self.next_position, reason);
            return;
        }
        let last_version = self.last_versions.get(&event.stream_id).copied();
        let first_of_part = self.partial && last_version.is_none() && event.stream_version >= 1;
        let last_version = last_version.unwrap_or(0);
        if event.stream_version != last_version + 1 && !first_of_part {
            let reason = format!(
                "stream version {} follows {last_version} in stream {}",
                event.stream_version, event.stream_id
            );
            self.broken(position, reason);
            return;
        }
        let prev = self.previous_hash.unwrap_or(GENESIS_HASH);
        let recomputed = CanonicalEvent {
            global_position: position,
            stream_id: event.stream_id.as_str(),
            stream_version: event.stream_version,
            event_id: &event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            recorded_at_micros: event.recorded_at.timestamp_micros(),
            metadata,
            payload: &event.payload,
        }
        .chain_hash(&prev);
        if recomputed != event.hash {
            let reason = format!(
                "hash mismatch: stored {}, recomputed {}",
                hex::encode(event.hash),
                hex::encode(recomputed)
            );
            self.broken(position, reason);
            return;
        }
        match self.last_versions.get_mut(&event.stream_id) {
            Some(version) => *version = event.stream_version,
            None => {
                self.last_versions
                    .insert(event.stream_id.clone(), event.stream_version);
            }
        }
        self.previous_hash = Some(event.hash);
        self.head = Some((position, event.hash));
        self.next_position = position + 1;
    }

    /// The first break found in the events fed so far.
    pub(crate) fn first_break(&self) -> Option<&ChainBreak> {
        self.first_break.as_ref()
    }

    /// Why the events fed so far are broken, if they are.
    pub(crate) fn break_reason(&self) -> Option<&str> {
        self.first_break.as_ref().map(|found| found.reason.as_str())
    }

    /// The position of the last event found sound, 0 before any.
    pub(crate) fn last_position(&self) -> u64 {
        self.next_position - 1
    }

    /// Records a row that could not even be decoded.
    pub(crate) fn undecodable(&mut self, global_position: u64, reason: String) {
        if !self.is_broken() {
            self.broken(global_position, reason);
        }
    }

    /// Cross-checks the end of the log against the highest position the command records claim,
    /// which catches events cut off the end (the chain alone cannot see a truncated tail).
    pub(crate) fn expect_last_position(&mut self, last_recorded_by_commands: u64) {
        let head = self.next_position - 1;
        if !self.is_broken() && last_recorded_by_commands > head {
            let reason = format!(
                "events missing at the end of the log: commands record events up to position \
                 {last_recorded_by_commands}, the log ends at {head}"
            );
            self.broken(head + 1, reason);
        }
    }

    /// Records a break found outside the chain (the cross-check with the command records); the
    /// earliest position wins.
    pub(crate) fn found(&mut self, found: &ChainBreak) {
        match &self.first_break {
            Some(earlier) if earlier.global_position <= found.global_position => {}
            _ => self.first_break = Some(found.clone()),
        }
    }

    pub(crate) fn finish(self) -> VerifyReport {
        VerifyReport {
            events_checked: self.events_checked,
            streams_checked: self.last_versions.len() as u64,
            head: self.head,
            first_break: self.first_break,
        }
    }

    fn broken(&mut self, global_position: u64, reason: String) {
        self.first_break = Some(ChainBreak {
            global_position,
            reason,
        });
    }
}

/// Where a command record says its events are: `count` of them at consecutive positions from `first`. The
/// one check, for both backends, that the events read back are exactly those.
pub(crate) struct CommandSpan {
    first: i64,
    count: usize,
}

impl CommandSpan {
    pub(crate) fn new(first_position: i64, event_count: i64) -> Result<Self, StoreError> {
        let count = usize::try_from(event_count).map_err(|_| {
            Self::corrupt(
                first_position,
                format!("a command records {event_count} events"),
            )
        })?;
        Ok(Self {
            first: first_position,
            count,
        })
    }

    /// The position the span's events are read after.
    pub(crate) fn after(&self) -> i64 {
        self.first - 1
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// `events` if they are the span's events, else [`StoreError::Corrupt`].
    pub(crate) fn checked(
        &self,
        events: Vec<RecordedEvent>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let contiguous = events
            .iter()
            .zip(self.first..)
            .all(|(event, position)| i64::try_from(event.global_position) == Ok(position));
        if events.len() != self.count || !contiguous {
            return Err(Self::corrupt(
                self.first,
                format!(
                    "a command's {} events are not all at positions from {} on",
                    self.count, self.first
                ),
            ));
        }
        Ok(events)
    }

    fn corrupt(first_position: i64, reason: String) -> StoreError {
        StoreError::Corrupt {
            global_position: u64::try_from(first_position).unwrap_or(0),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{append_ok, events, request, unique_stream};
    use crate::model::ExpectedVersion;
    use crate::sqlite::{SqliteEventStore, SqliteOptions};

    /// Pages of every size from 1 to 8 over 20 events give what one read gives, for limits on and off a
    /// page's end, and a visitor failing on a page's last event or its first stops there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replays_in_pages_of_any_size_visit_what_one_read_returns() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", directory.path().join("log.db").display());
        let store = SqliteEventStore::open(&url, SqliteOptions::default())
            .await
            .expect("opens");
        let stream = unique_stream("pages");
        let appended = append_ok(
            &store,
            request(&stream, ExpectedVersion::NoStream, events(20)),
        )
        .await;
        for page in 1..=8 {
            for (after, limit) in [
                (0, usize::MAX),
                (0, 20),
                (0, 16),
                (3, 8),
                (3, 9),
                (19, 5),
                (20, 5),
            ] {
                let mut visited = Vec::new();
                let count =
                    replay_in_pages(&store, after, limit, page, &mut |view: EventView<'_>| {
                        visited.push(view.to_recorded());
                        Ok::<(), StoreError>(())
                    })
                    .await
                    .expect("replays");
                let expected: Vec<RecordedEvent> = appended
                    .iter()
                    .filter(|event| event.global_position > after)
                    .take(limit)
                    .cloned()
                    .collect();
                assert_eq!(
                    visited, expected,
                    "pages of {page}, replay({after}, {limit})"
                );
                assert_eq!(count, expected.len() as u64);
            }
            for stop_at in [page as u64, page as u64 + 1] {
                let mut seen = Vec::new();
                let stopped =
                    replay_in_pages(&store, 0, usize::MAX, page, &mut |view: EventView<'_>| {
                        seen.push(view.global_position);
                        if view.global_position == stop_at {
                            Err(StoreError::Invalid("stop".to_owned()))
                        } else {
                            Ok(())
                        }
                    })
                    .await;
                assert!(
                    matches!(stopped, Err(StoreError::Invalid(_))),
                    "{stopped:?}"
                );
                assert_eq!(seen, (1..=stop_at).collect::<Vec<_>>(), "pages of {page}");
            }
        }
        store.close().await;
    }
}
