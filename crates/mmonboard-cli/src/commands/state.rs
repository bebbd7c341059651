//! `mmonboard state`: a portfolio's onboarding state, now or as it was at a time.

use mmonboard_domain::ids::PortfolioId;
use serde_json::json;

use super::{Failure, open_read_only, print_json, service};
use crate::exit;
use crate::output::state_text;

pub(super) async fn state(
    database: &str,
    portfolio_id: &PortfolioId,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    as_json: bool,
) -> Result<u8, Failure> {
    let service = service(open_read_only(database).await?);
    let aggregate = match as_of {
        Some(as_of) => service.load_as_of(portfolio_id, as_of).await?,
        None => service.load(portfolio_id).await?,
    };
    if as_json {
        let mut value = serde_json::to_value(aggregate.view())?;
        if let (Some(as_of), serde_json::Value::Object(map)) = (as_of, &mut value) {
            map.insert("as_of".into(), json!(as_of));
        }
        print_json(&value)?;
    } else {
        if let Some(as_of) = as_of {
            out!(
                "as of {}",
                as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
        out_part!("{}", state_text(&aggregate));
    }
    service.into_store().close().await;
    Ok(exit::OK)
}
