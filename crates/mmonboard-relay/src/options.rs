//! How the relay is told where to publish: the NATS server, the stream and the subjects, and how hard to
//! push. Names are checked here, before anything is opened, so a bad flag is a clear error at start.

use std::time::Duration;

use mmonboard_process::LeaseOptions;

/// The stream the relay publishes to unless told otherwise.
pub const DEFAULT_STREAM: &str = "MMONBOARD_EVENTS";
/// The first tokens of every subject: `mmonboard.onboarding.<portfolio_id>.<event_type>`.
pub const DEFAULT_SUBJECT_PREFIX: &str = "mmonboard.onboarding";

/// Where and how the relay publishes.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// `nats://host:port` (or several, comma-separated).
    pub nats_url: String,
    /// The JetStream stream, created with file storage when absent.
    pub stream: String,
    /// Subjects are `<prefix>.<portfolio_id>.<event_type>`; the stream takes `<prefix>.>`.
    pub subject_prefix: String,
    /// Where to start when the stream holds nothing (a new or purged stream): republish from this position
    /// on. Without it, an empty stream continues after the relay's checkpoint. A stream that holds messages
    /// always continues after its last one.
    pub from_position: Option<u64>,
    /// Publishes awaiting JetStream's acknowledgement at once (the pipeline's depth).
    pub max_in_flight: usize,
    /// Events read from the log at a time.
    pub page_size: usize,
    /// How long one acknowledgement (or a request to the JetStream API) may take.
    pub ack_timeout: Duration,
    /// How often a caught-up relay looks for appends made by other processes.
    pub poll_interval: Duration,
    /// How often the acknowledged position is saved as the checkpoint.
    pub checkpoint_every: Duration,
    /// How often the relay looks for new signed checkpoints to publish.
    pub signed_poll_interval: Duration,
    /// The lease that lets one relay at a time publish.
    pub lease: LeaseOptions,
}

impl RelayOptions {
    pub fn new(nats_url: impl Into<String>) -> Self {
        Self {
            nats_url: nats_url.into(),
            stream: DEFAULT_STREAM.to_owned(),
            subject_prefix: DEFAULT_SUBJECT_PREFIX.to_owned(),
            from_position: None,
            max_in_flight: 4096,
            page_size: 2048,
            ack_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(250),
            checkpoint_every: Duration::from_millis(200),
            signed_poll_interval: Duration::from_secs(1),
            lease: LeaseOptions::default(),
        }
    }

    /// Every setting NATS or the relay would refuse later, refused now with what was wrong.
    pub fn validate(&self) -> Result<(), String> {
        validate_nats_url(&self.nats_url)?;
        validate_stream_name(&self.stream)?;
        validate_subject_prefix(&self.subject_prefix)?;
        if self.from_position == Some(0) {
            return Err(
                "the first position to republish counts from 1 (the log's first event)".to_owned(),
            );
        }
        if self.max_in_flight == 0 || self.page_size == 0 {
            return Err(
                "the relay needs at least one publish in flight and one event per read".to_owned(),
            );
        }
        self.lease.validate()
    }
}

fn validate_nats_url(url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("the NATS URL is empty: give nats://host:port".to_owned());
    }
    for server in url.split(',') {
        let server = server.trim();
        let rest = server
            .split_once("://")
            .map_or(Some(server), |(scheme, rest)| {
                matches!(scheme, "nats" | "tls" | "ws" | "wss").then_some(rest)
            })
            .ok_or_else(|| {
                format!(
                    "the NATS URL {server:?}: the scheme must be nats://, tls://, ws:// or wss://"
                )
            })?;
        let host_port = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        if host_port.is_empty() || host_port.contains(char::is_whitespace) {
            return Err(format!("the NATS URL {server:?} names no server"));
        }
    }
    Ok(())
}

/// JetStream's rule for stream names: not empty, no whitespace, `.`, `*`, `>`, path separators.
pub fn validate_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 255
        || name.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\')
        })
    {
        return Err(format!(
            "the stream name {name:?} is not a JetStream stream name: use letters, digits, '-' and '_' (no '.', '*', '>', '/', spaces)"
        ));
    }
    Ok(())
}

/// A subject prefix is one or more literal tokens: no wildcards, no empty token, no whitespace.
pub fn validate_subject_prefix(prefix: &str) -> Result<(), String> {
    let bad_token = |token: &str| {
        token.is_empty()
            || token
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '*' | '>'))
    };
    if prefix.split('.').any(bad_token) {
        return Err(format!(
            "the subject prefix {prefix:?} is not one: dot-separated literal tokens, no wildcards ('*', '>'), empty tokens or spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_stream_name("MMONBOARD_EVENTS").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", "a/b"] {
            let error = validate_stream_name(bad).expect_err(bad);
            assert!(error.contains("stream name"), "{error}");
        }
        assert!(validate_subject_prefix("mmonboard.onboarding").is_ok());
        assert!(validate_subject_prefix("x").is_ok());
        for bad in ["", "a..b", ".a", "a.", "a.*", "a.>", "a b"] {
            let error = validate_subject_prefix(bad).expect_err(bad);
            assert!(error.contains("subject prefix"), "{error}");
        }
    }

    #[test]
    fn urls_and_positions_are_checked() {
        let mut options = RelayOptions::new("nats://127.0.0.1:4222");
        assert_eq!(options.validate(), Ok(()));
        for bad in ["", "http://127.0.0.1:4222", "nats://", "nats:// x"] {
            options.nats_url = bad.to_owned();
            let error = options.validate().expect_err(bad);
            assert!(error.contains("NATS URL"), "{error}");
        }
        options.nats_url = "127.0.0.1:4222,nats://user:pw@10.0.0.2:4222".to_owned();
        assert_eq!(options.validate(), Ok(()));
        options.from_position = Some(0);
        assert!(options.validate().expect_err("0").contains("counts from 1"));
    }
}
