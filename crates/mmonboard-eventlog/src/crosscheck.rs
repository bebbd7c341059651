//! The cross-check of events against command records, both ways, shared by every backend's `verify`.
//!
//! The chain alone cannot see a command record that was deleted or altered (the `commands` table is not
//! hashed), nor a truncated tail that took its command records with it. Each applied command with events
//! wrote, in one transaction, consecutive events carrying its id in their metadata and one command row
//! naming its stream, first position, event count and time. So the events, grouped into runs of one command
//! id, and the command rows that have a first position, sorted by it, must be the same sequence. The walk
//! holds one run and reads the command rows as a stream sorted by first position, so memory stays flat.
//!
//! Concurrency: the backend reads the command rows in one snapshot and takes `bound` (the highest position
//! that snapshot's events or commands reach) from it; the event walk starts later and so sees every event
//! up to `bound`. Runs starting above `bound` were appended during the walk and are not cross-checked.

use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{ChainBreak, RecordedEvent, StreamId};

/// One `commands` row with events, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandRecord {
    pub command_id: Uuid,
    pub stream_id: String,
    pub first_position: u64,
    pub event_count: u64,
    pub recorded_at_micros: i64,
}

/// The consecutive events of one command.
#[derive(Debug)]
struct Run {
    command_id: Uuid,
    stream_id: StreamId,
    first_position: u64,
    event_count: u64,
    recorded_at_micros: i64,
    /// Whether every event of the run had the same stream and time (a command's events do).
    uniform: bool,
}

/// Where the command records are read from: one sorted pass, pulled as the event walk needs them.
pub(crate) trait CommandRecords: Send {
    /// The next record by first position, `None` after the last.
    fn next_record(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<CommandRecord>, StoreError>> + Send;
}

/// Groups the verified events into runs and matches each run with the next command record.
pub(crate) struct CommandCrossCheck<R> {
    records: R,
    bound: u64,
    run: Option<Run>,
    peeked: Option<CommandRecord>,
    first_break: Option<ChainBreak>,
}

impl<R: CommandRecords> CommandCrossCheck<R> {
    pub(crate) fn new(records: R, bound: u64) -> Self {
        Self {
            records,
            bound,
            run: None,
            peeked: None,
            first_break: None,
        }
    }

    /// The first mismatch found, if any.
    pub(crate) fn first_break(&self) -> Option<&ChainBreak> {
        self.first_break.as_ref()
    }

    /// Feeds the next event of the walk, already found sound by the chain verifier.
    pub(crate) async fn event(&mut self, event: &RecordedEvent) -> Result<(), StoreError> {
        if self.first_break.is_some() {
            return Ok(());
        }
        let micros = event.recorded_at.timestamp_micros();
        if let Some(run) = &mut self.run
            && run.command_id == event.metadata.command_id
        {
            run.event_count += 1;
            run.uniform &= run.stream_id == event.stream_id && run.recorded_at_micros == micros;
            return Ok(());
        }
        if let Some(run) = self.run.take() {
            self.close(run, false).await?;
        }
        self.run = Some(Run {
            command_id: event.metadata.command_id,
            stream_id: event.stream_id.clone(),
            first_position: event.global_position,
            event_count: 1,
            recorded_at_micros: micros,
            uniform: true,
        });
        Ok(())
    }

    /// Closes the last run and checks that no command record is left over up to `bound`.
    pub(crate) async fn finish(&mut self, last_position: u64) -> Result<(), StoreError> {
        if self.first_break.is_some() {
            return Ok(());
        }
        if let Some(run) = self.run.take() {
            self.close(run, true).await?;
        }
        if self.first_break.is_some() {
            return Ok(());
        }
        let record = self.next().await?;
        if let Some(record) = record
            && record.first_position <= self.bound
        {
            let reason = if record.first_position > last_position {
                format!(
                    "events missing at the end of the log: command {} records events from position \
                     {}, the log ends at {last_position}",
                    record.command_id, record.first_position
                )
            } else {
                format!(
                    "command {} records {} events from position {}, where no command's events start",
                    record.command_id, record.event_count, record.first_position
                )
            };
            self.first_break = Some(ChainBreak {
                global_position: record.first_position.min(last_position + 1),
                reason,
            });
        }
        Ok(())
    }

    /// The next command record; an undecodable one is recorded as the break (and ends the check).
    async fn next(&mut self) -> Result<Option<CommandRecord>, StoreError> {
        if let Some(record) = self.peeked.take() {
            return Ok(Some(record));
        }
        match self.records.next_record().await {
            Err(StoreError::Corrupt {
                global_position,
                reason,
            }) => {
                self.first_break = Some(ChainBreak {
                    global_position,
                    reason,
                });
                Ok(None)
            }
            other => other,
        }
    }

    /// Matches a finished run with the next record; `at_end`: the run ends the log.
    async fn close(&mut self, run: Run, at_end: bool) -> Result<(), StoreError> {
        if run.first_position > self.bound {
            return Ok(());
        }
        let last = run.first_position + run.event_count - 1;
        let record = self.next().await?;
        if self.first_break.is_some() {
            return Ok(());
        }
        let reason = match record {
            None => Some(format!(
                "events {}..={last} of command {} have no command record",
                run.first_position, run.command_id
            )),
            Some(record) if record.first_position < run.first_position => {
                let position = record.first_position;
                self.first_break = Some(ChainBreak {
                    global_position: position,
                    reason: format!(
                        "command {} records {} events from position {position}, where no command's \
                         events start",
                        record.command_id, record.event_count
                    ),
                });
                return Ok(());
            }
            Some(record) if record.first_position > run.first_position => {
                self.peeked = Some(record);
                Some(format!(
                    "events {}..={last} of command {} have no command record",
                    run.first_position, run.command_id
                ))
            }
            Some(record)
                if at_end
                    && record.command_id == run.command_id
                    && record.event_count > run.event_count =>
            {
                self.first_break = Some(ChainBreak {
                    global_position: last + 1,
                    reason: format!(
                        "events missing at the end of the log: command {} records {} events from \
                         position {}, the log ends at {last}",
                        run.command_id, record.event_count, run.first_position
                    ),
                });
                return Ok(());
            }
            Some(record) => mismatch(&run, &record),
        };
        if let Some(reason) = reason {
            self.first_break = Some(ChainBreak {
                global_position: run.first_position,
                reason,
            });
        }
        Ok(())
    }
}

/// What differs between a run of events and the command record at its first position.
fn mismatch(run: &Run, record: &CommandRecord) -> Option<String> {
    let position = run.first_position;
    if record.command_id != run.command_id {
        return Some(format!(
            "the command record at position {position} is command {}, the events there are command {}",
            record.command_id, run.command_id
        ));
    }
    if record.event_count != run.event_count {
        return Some(format!(
            "command {} records {} events from position {position}, the log holds {}",
            run.command_id, record.event_count, run.event_count
        ));
    }
    if record.stream_id != run.stream_id.as_str() || !run.uniform {
        return Some(format!(
            "command {} is recorded for stream {:?}, its events are in stream {}",
            run.command_id, record.stream_id, run.stream_id
        ));
    }
    if record.recorded_at_micros != run.recorded_at_micros {
        return Some(format!(
            "command {} is recorded at {} µs, its events at {} µs",
            run.command_id, record.recorded_at_micros, run.recorded_at_micros
        ));
    }
    None
}

/// The canonical text of a UUID as the SQLite log stores it (hyphenated, lower case); any other
/// spelling of the same UUID would change the stored bytes without changing the hash.
pub(crate) fn is_canonical_uuid_text(text: &[u8], uuid: &Uuid) -> bool {
    let mut buffer = Uuid::encode_buffer();
    uuid.hyphenated().encode_lower(&mut buffer).as_bytes() == text
}
