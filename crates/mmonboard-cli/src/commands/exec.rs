//! `mmonboard exec`: decide one JSON command against a portfolio and record its events.

use std::io::Read;
use std::path::Path;

use mmonboard_app::CommandContext;
use mmonboard_app::json::accepted_json;
use mmonboard_domain::OnboardingCommand;
use mmonboard_domain::ids::PortfolioId;

use super::{Failure, invalid_input, open, print_json, service};
use crate::exit;
use crate::output::refusal_json;

fn read_command(file: Option<&Path>) -> Result<OnboardingCommand, String> {
    let (source, text) = match file {
        None => ("standard input".to_owned(), read_stdin()?),
        Some(path) if path.as_os_str() == "-" => ("standard input".to_owned(), read_stdin()?),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read command file {}: {error}", path.display()))?;
            (path.display().to_string(), text)
        }
    };
    if text.trim().is_empty() {
        return Err(format!(
            "no command in {source}: expected one JSON object with a \"type\" field"
        ));
    }
    serde_json::from_str(&text)
        .map_err(|error| format!("the command in {source} is not valid: {error}"))
}

fn read_stdin() -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|error| format!("cannot read standard input: {error}"))?;
    Ok(text)
}

pub(super) async fn exec(
    database: &str,
    portfolio_id: &PortfolioId,
    command_file: Option<&Path>,
    command_id: Option<uuid::Uuid>,
    actor: String,
    correlation_id: Option<uuid::Uuid>,
) -> Result<u8, Failure> {
    let command = match read_command(command_file) {
        Ok(command) => command,
        Err(message) => return invalid_input(&message),
    };
    if actor.trim().is_empty() || actor.len() > 200 {
        return invalid_input("--actor must be 1 to 200 characters");
    }
    let mut context = CommandContext::new(actor);
    if let Some(command_id) = command_id {
        context = context.with_command_id(command_id);
    }
    if let Some(correlation_id) = correlation_id {
        context.correlation_id = correlation_id;
    }
    let service = service(open(database).await?);
    let outcome = service.execute(portfolio_id, &command, &context).await?;
    let code = match outcome {
        Ok(outcome) => {
            print_json(&serde_json::to_value(accepted_json(
                &outcome,
                context.command_id,
            ))?)?;
            exit::OK
        }
        Err(refusal) => {
            // The refusal says "refused in state …" itself.
            eprintln!("{refusal}");
            print_json(&refusal_json(&refusal))?;
            exit::REFUSED
        }
    };
    service.into_store().close().await;
    Ok(code)
}
