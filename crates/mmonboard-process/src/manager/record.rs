//! Recording a step's commands: each with an id derived from the portfolio, the step and the stream version
//! it was decided on (so a step repeated is applied once), caused by the event the plan was read from.

use mmonboard_app::{AppError, Clock, CommandContext, derived_command_id};
use mmonboard_domain::{Aggregate, OnboardingCommand};
use mmonboard_eventlog::{EventStore, HeadWatch};
use mmonboard_meta::MetaGateway;

use super::{ACTOR, ProcessManager};
use crate::ProcessError;

impl<S, C, G> ProcessManager<S, C, G>
where
    S: EventStore + HeadWatch + Clone,
    C: Clock + Clone,
    G: MetaGateway,
{
    /// Record a step's commands; true if at least one was accepted (or had been, by an earlier attempt).
    pub(super) async fn record(
        &self,
        aggregate: &Aggregate,
        key: &str,
        commands: &[OnboardingCommand],
    ) -> Result<bool, ProcessError> {
        let portfolio_id = aggregate.portfolio_id();
        let version = aggregate.version().to_string();
        let causation = self.last_event_id(aggregate).await?;
        let mut recorded = false;
        for (index, command) in commands.iter().enumerate() {
            let index = index.to_string();
            let command_id = derived_command_id(
                "process-manager",
                &[portfolio_id.as_str(), key, &version, &index],
            );
            let context = CommandContext::new(ACTOR)
                .with_command_id(command_id)
                .with_causation(causation);
            match self.service.execute(portfolio_id, command, &context).await {
                Ok(Ok(outcome)) => {
                    recorded = true;
                    for logged in &outcome.events {
                        tracing::info!(%portfolio_id, %command_id, step = key, event = logged.event.type_name(), phase = %outcome.phase, "recorded");
                    }
                }
                Ok(Err(refusal)) => {
                    tracing::warn!(%portfolio_id, %command_id, step = key, command = command.type_name(), %refusal, "the log refused the step's command");
                }
                Err(AppError::ConflictRetriesExhausted { .. }) => {
                    // Others keep writing to this portfolio: its next event brings it back here.
                    tracing::warn!(%portfolio_id, step = key, "the step's command kept conflicting");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(recorded)
    }

    /// The causation of a step's commands: the event the aggregate was folded up to, the one that made the
    /// plan call for the step (a timer's step is caused by the last event before it fired).
    async fn last_event_id(
        &self,
        aggregate: &Aggregate,
    ) -> Result<Option<uuid::Uuid>, ProcessError> {
        let Some(after_version) = aggregate.version().checked_sub(1) else {
            return Ok(None);
        };
        let stream_id = mmonboard_app::codec::stream_id(aggregate.portfolio_id());
        // `read_stream` returns the versions after its bound: after v - 1 comes v first.
        let tail = self.store.read_stream(&stream_id, after_version).await?;
        let event = tail
            .first()
            .filter(|event| event.stream_version == aggregate.version())
            .ok_or_else(|| {
                ProcessError::Corrupt(format!(
                    "{stream_id} has no event at version {}, which the manager folded",
                    aggregate.version()
                ))
            })?;
        Ok(Some(event.event_id))
    }
}
