//! Which backend a database URL names. Every subcommand takes `--database URL`; the scheme alone picks the
//! backend, and anything else is refused with the forms that are supported.

use std::fmt;

use crate::error::StoreError;

/// The two storage backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The embedded default: one file, zero set-up.
    Sqlite,
    /// For several instances sharing one store.
    Postgres,
}

/// The URL forms accepted, for error messages and help texts.
pub const SUPPORTED_URLS: &str =
    "sqlite://PATH (or sqlite:PATH), postgres://USER@HOST[:PORT]/DATABASE (or postgresql://…)";

impl Backend {
    /// The backend a URL's scheme names.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme);
        match scheme.map(str::to_ascii_lowercase).as_deref() {
            Some("sqlite") => Ok(Self::Sqlite),
            Some("postgres" | "postgresql") => Ok(Self::Postgres),
            Some(other) if !other.is_empty() && !other.contains(['/', '\\', '.']) => {
                Err(StoreError::Invalid(format!(
                    "unsupported database URL scheme {other:?}: use {SUPPORTED_URLS}"
                )))
            }
            _ => Err(StoreError::Invalid(format!(
                "the database URL {:?} has no scheme: use {SUPPORTED_URLS}",
                redact(url)
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A database URL with any password replaced, fit for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

pub(crate) fn redact_url(url: &str, error: &dyn fmt::Display) -> String {
    format!("{:?}: {error}", redact(url))
}
