//! Meta's failures, typed. Every Graph API error code DOMAIN.md names has its own kind, so callers decide on
//! meaning ("already invited", "not synced yet") and never on numbers or message text.

use mmonboard_domain::InvalidValue;

/// What a Graph API error code means to mmonboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaErrorKind {
    /// 131009, 134101: the template's mirror is not synced yet; retry after the sync window.
    NotSyncedYet,
    /// 134102 (answered with HTTP 500): the MM API is unavailable to this WABA or it is not onboarded.
    NotOnboarded,
    /// 131055, 134100: only marketing templates may be sent through the MM API.
    OnlyMarketingTemplates,
    /// 100: an invalid parameter; on `marketing_messages` it means a non-marketing template was sent.
    InvalidParameter,
    /// 1752041: an onboarding invitation was already sent (a repeated or competing terms request).
    AlreadyInvited,
    /// 4, 17, 32, 613, 80007, 130429 or HTTP 429: rate limited; retry with backoff.
    RateLimited,
    /// 190: the access token is invalid or expired.
    InvalidToken,
    /// 10, 200–299: the token lacks a permission for this object.
    PermissionDenied,
    /// 1, 2 or HTTP 5xx: Meta's own transient failure; retry with backoff.
    Transient,
    /// Anything else Meta answered.
    Other,
}

impl MetaErrorKind {
    /// The kind for a Graph API `code` answered with HTTP `status`.
    pub fn from_code(code: i64, status: u16) -> Self {
        match code {
            131009 | 134101 => Self::NotSyncedYet,
            134102 => Self::NotOnboarded,
            131055 | 134100 => Self::OnlyMarketingTemplates,
            100 => Self::InvalidParameter,
            1752041 => Self::AlreadyInvited,
            4 | 17 | 32 | 613 | 80007 | 130429 => Self::RateLimited,
            190 => Self::InvalidToken,
            10 | 200..=299 => Self::PermissionDenied,
            1 | 2 => Self::Transient,
            _ if status == 429 => Self::RateLimited,
            _ if status >= 500 => Self::Transient,
            _ => Self::Other,
        }
    }

    /// Whether asking again later may succeed without anything else changing.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Transient | Self::NotSyncedYet | Self::NotOnboarded
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::NotSyncedYet => "the template's mirror is not synced yet",
            Self::NotOnboarded => "the MM API is unavailable to this WABA or it is not onboarded",
            Self::OnlyMarketingTemplates => {
                "only marketing templates may be sent through the MM API"
            }
            Self::InvalidParameter => "invalid parameter",
            Self::AlreadyInvited => "an onboarding invitation was already sent",
            Self::RateLimited => "rate limited",
            Self::InvalidToken => "the access token is invalid or expired",
            Self::PermissionDenied => "the access token lacks a permission",
            Self::Transient => "Meta failed transiently",
            Self::Other => "Meta refused the request",
        }
    }
}

/// A failure to get an answer from Meta, or an answer that says no.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MetaError {
    #[error("{operation}: Meta answered HTTP {status} with error {code}: {} ({message})", kind.describe())]
    Graph {
        operation: String,
        status: u16,
        code: i64,
        subcode: Option<i64>,
        message: String,
        fbtrace_id: Option<String>,
        kind: MetaErrorKind,
    },
    #[error("{operation}: no answer from Meta within {timeout_ms} ms")]
    Timeout { operation: String, timeout_ms: u64 },
    #[error("{operation}: could not reach Meta: {message}")]
    Transport { operation: String, message: String },
    #[error(
        "{operation}: Meta answered HTTP {status} with a body that is not what the Graph API sends: {message}"
    )]
    UnexpectedAnswer {
        operation: String,
        status: u16,
        message: String,
    },
    #[error("{operation}: Meta reported a value mmonboard cannot accept: {source}")]
    InvalidValue {
        operation: String,
        #[source]
        source: InvalidValue,
    },
    #[error(
        "{operation}: the write's outcome was unknown ({cause}) and reading back shows it did not happen"
    )]
    WriteNotApplied { operation: String, cause: String },
}

impl MetaError {
    /// The kind of a Graph API error; `None` when Meta never answered with one.
    pub fn kind(&self) -> Option<MetaErrorKind> {
        match self {
            Self::Graph { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether the same request may succeed later on its own.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Graph { kind, .. } => kind.is_retryable(),
            Self::Timeout { .. } | Self::Transport { .. } | Self::WriteNotApplied { .. } => true,
            Self::UnexpectedAnswer { status, .. } => *status >= 500 || *status == 429,
            Self::InvalidValue { .. } => false,
        }
    }
}
