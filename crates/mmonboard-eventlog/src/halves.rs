//! A long page of the whole log read as two halves at once, on both backends: each half on a connection
//! of its own, decoded on a thread of its own, so a replay is not bound to one core's decoding.

use std::future::Future;

use crate::error::StoreError;
use crate::model::RecordedEvent;

/// Pages shorter than this are read in one piece: two reads would cost more than they save.
pub(crate) const PARALLEL_READ_FROM: usize = 1024;

/// Up to `limit` events after position `after`, as `read(after, limit, capacity)` would return them (in
/// a vector with room for `capacity` events), read as two halves at once. Positions are gap-free, so the second half is guessed to start right after
/// `after + limit / 2`; it is used only if the first half really ends there. Each half is a prefix of the
/// log after its start in its own snapshot, so the two joined skip nothing.
pub(crate) async fn read_all<R, F>(
    after: i64,
    limit: usize,
    read: R,
) -> Result<Vec<RecordedEvent>, StoreError>
where
    R: Fn(i64, usize, usize) -> F,
    F: Future<Output = Result<Vec<RecordedEvent>, StoreError>>,
{
    if limit < PARALLEL_READ_FROM {
        return read(after, limit, limit).await;
    }
    let half = limit / 2;
    let guessed = after.saturating_add(half as i64);
    // The first half is read into a vector with room for the whole page, so the second joins it in place.
    let (mut events, second) = futures_util::future::try_join(
        read(after, half, limit),
        read(guessed, limit - half, limit - half),
    )
    .await?;
    let Some(last) = events.last().map(|event| event.global_position) else {
        return Ok(events);
    };
    if events.len() < half {
        return Ok(events); // the end of the log
    }
    if i64::try_from(last) == Ok(guessed) {
        events.extend(second);
    } else {
        // Positions with a gap (a log that verify will call broken): read on from where the first ended.
        let last = crate::sqlite::to_i64(last)?;
        events.extend(read(last, limit - half, limit - half).await?);
    }
    Ok(events)
}
