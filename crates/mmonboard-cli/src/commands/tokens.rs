//! `mmonboard tokens`: create, list and revoke the API tokens `serve` accepts, directly in the database next
//! to the log (whoever can open the database is trusted as an administrator, as for `exec`). A token's
//! secret is printed once, at creation, on standard output alone so a script can capture it; only its hash
//! is stored.

use chrono::{DateTime, Utc};
use mmonboard_access::{Role, TokenName, TokenRecord, TokenStore, parse_lifetime};
use serde_json::json;

use crate::commands::{Failure, invalid_input, open, print_json};
use crate::exit;

/// What `tokens create` asks for, checked before the database is opened.
pub(crate) struct CreateRequest {
    name: TokenName,
    role: Role,
    lifetime: Option<chrono::TimeDelta>,
}

impl CreateRequest {
    pub fn parse(name: &str, role: &str, expires_in: Option<&str>) -> Result<Self, String> {
        Ok(Self {
            name: TokenName::parse(name).map_err(|error| error.to_string())?,
            role: role
                .parse()
                .map_err(|error: mmonboard_access::AccessError| error.to_string())?,
            lifetime: expires_in
                .map(parse_lifetime)
                .transpose()
                .map_err(|error| error.to_string())?,
        })
    }
}

/// Opens the token store, creating the database and its log first if this is its first use.
async fn store(database: &str) -> Result<TokenStore, Failure> {
    open(database).await?.close().await;
    Ok(TokenStore::open(database).await?)
}

pub(crate) async fn create(
    database: &str,
    name: &str,
    role: &str,
    expires_in: Option<&str>,
) -> Result<u8, Failure> {
    let request = match CreateRequest::parse(name, role, expires_in) {
        Ok(request) => request,
        Err(message) => return invalid_input(&message),
    };
    let store = store(database).await?;
    let now = Utc::now();
    let created = store
        .create(
            &request.name,
            request.role,
            now,
            request.lifetime.map(|lifetime| now + lifetime),
        )
        .await;
    store.close().await;
    let issued = match created {
        Ok(issued) => issued,
        Err(error @ mmonboard_access::AccessError::NameTaken(_)) => {
            return invalid_input(&error.to_string());
        }
        Err(error) => return Err(error.into()),
    };
    let expires = issued
        .record
        .expires_at
        .map_or("never expires".to_owned(), |at| {
            format!("expires {}", time(at))
        });
    eprintln!(
        "created the token {} with the role {} ({expires}); it is shown this once, store it now:",
        issued.record.name, issued.record.role
    );
    out!("{}", issued.secret.expose());
    Ok(exit::OK)
}

pub(crate) async fn list(database: &str, as_json: bool) -> Result<u8, Failure> {
    let store = store(database).await?;
    let listed = store.list().await;
    store.close().await;
    let records = listed?;
    if as_json {
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|record| {
                json!({
                    "name": record.name.as_str(),
                    "role": record.role.as_str(),
                    "created_at": record.created_at,
                    "expires_at": record.expires_at,
                    "revoked_at": record.revoked_at,
                    "last_used_at": record.last_used_at,
                })
            })
            .collect();
        print_json(&json!(rows))?;
        return Ok(exit::OK);
    }
    if records.is_empty() {
        eprintln!("no tokens: create one with `mmonboard tokens create --name NAME --role ROLE`");
        return Ok(exit::OK);
    }
    out!("{}", table(&records, Utc::now()));
    Ok(exit::OK)
}

pub(crate) async fn revoke(database: &str, name: &str) -> Result<u8, Failure> {
    let name = match TokenName::parse(name) {
        Ok(name) => name,
        Err(error) => return invalid_input(&error.to_string()),
    };
    let store = store(database).await?;
    let revoked = store.revoke(&name, Utc::now()).await;
    store.close().await;
    match revoked {
        Ok(()) => {
            eprintln!(
                "revoked the token {name}: every server refuses it within {} seconds",
                mmonboard_server::DEFAULT_REFRESH.num_seconds()
            );
            Ok(exit::OK)
        }
        Err(
            error @ (mmonboard_access::AccessError::UnknownToken(_)
            | mmonboard_access::AccessError::AlreadyRevoked(_)),
        ) => invalid_input(&error.to_string()),
        Err(error) => Err(error.into()),
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The tokens as an aligned table: never the secret, which is not stored.
fn table(records: &[TokenRecord], now: DateTime<Utc>) -> String {
    let mut rows = vec![[
        "NAME".to_owned(),
        "ROLE".to_owned(),
        "CREATED".to_owned(),
        "EXPIRES".to_owned(),
        "LAST USED".to_owned(),
        "STATUS".to_owned(),
    ]];
    for record in records {
        let status = if record.revoked_at.is_some() {
            "revoked"
        } else if record.is_usable_at(now) {
            "active"
        } else {
            "expired"
        };
        rows.push([
            record.name.to_string(),
            record.role.to_string(),
            time(record.created_at),
            record.expires_at.map_or("never".to_owned(), time),
            record.last_used_at.map_or("never".to_owned(), time),
            status.to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            row.iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
