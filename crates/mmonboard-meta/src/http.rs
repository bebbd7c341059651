//! The real gateway: Meta's Graph API over HTTPS (or plain HTTP to the simulator).
//!
//! - Base URL and Graph API version are configuration; the access token comes from the environment and is never
//!   logged or printed (`Debug` shows it redacted).
//! - Every request has a timeout. Reads are retried with exponential backoff and jitter (backon) on 429, 5xx,
//!   timeouts and connection failures, a bounded number of times.
//! - Writes are never retried blindly: when a write's outcome is unknown (no answer, or a 5xx), the gateway
//!   reads the object back and reports the write done only if Meta shows it; otherwise it says so
//!   ([`MetaError::WriteNotApplied`]) and the caller decides when to try again.

use std::fmt;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use mmonboard_domain::facts::{OwnershipType, TermsStatus};
use mmonboard_domain::ids::{PortfolioId, WabaId};
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{MetaError, MetaErrorKind};
use crate::gateway::{
    BusinessSnapshot, MetaGateway, OboIntentOutcome, TemplateSnapshot, TermsRequestOutcome,
    WabaSnapshot,
};
use crate::wire;

/// The environment variable the access token is read from.
pub const ACCESS_TOKEN_ENV: &str = "META_ACCESS_TOKEN";
/// Meta's production Graph API.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";

/// How reads are retried: backon's exponential backoff with jitter, bounded in attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one up to `max_backoff`. Each wait is
    /// lengthened by a random jitter of up to as much again, so that clients failed together do not come back
    /// together.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The waits between the attempts: `max_attempts - 1` of them.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_jitter()
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
    }
}

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Where and how the gateway talks to Meta.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub base_url: Url,
    pub api_version: String,
    pub access_token: AccessToken,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// Why a gateway could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the Meta base URL {0:?} is not an absolute http(s) URL")]
    BaseUrl(String),
    #[error("the Graph API version {0:?} is not of the form v<major>.<minor>")]
    Version(String),
    #[error("no Meta access token: set {ACCESS_TOKEN_ENV}")]
    MissingToken,
}

impl GatewayConfig {
    /// A configuration with the token from `META_ACCESS_TOKEN`.
    pub fn from_env(base_url: &str, api_version: &str) -> Result<Self, ConfigError> {
        let token = std::env::var(ACCESS_TOKEN_ENV)
            .ok()
            .filter(|token| !token.trim().is_empty())
            .ok_or(ConfigError::MissingToken)?;
        Self::new(base_url, api_version, AccessToken::new(token))
    }

    pub fn new(
        base_url: &str,
        api_version: &str,
        access_token: AccessToken,
    ) -> Result<Self, ConfigError> {
        let base_url = Url::parse(base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| ConfigError::BaseUrl(base_url.to_owned()))?;
        if !wire::is_graph_api_version(api_version) {
            return Err(ConfigError::Version(api_version.to_owned()));
        }
        Ok(Self {
            base_url,
            api_version: api_version.to_owned(),
            access_token,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        })
    }
}

/// [`MetaGateway`] over HTTP.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    client: reqwest::Client,
    config: GatewayConfig,
}

impl HttpGateway {
    pub fn new(config: GatewayConfig) -> Result<Self, MetaError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("mmonboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| MetaError::Transport {
                operation: "building the HTTP client".into(),
                message: error.to_string(),
            })?;
        Ok(Self { client, config })
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.config.base_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/{}/{path}", self.config.api_version));
        url
    }

    async fn get<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        fields: &str,
    ) -> Result<T, MetaError> {
        self.get_page(operation, path, fields, None).await
    }

    /// A read; `after`: the cursor of the page to read, for an edge Meta pages.
    async fn get_page<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        fields: &str,
        after: Option<&str>,
    ) -> Result<T, MetaError> {
        let (gateway, url) = (self, self.url(path));
        let read = move || {
            let mut request = gateway
                .client
                .get(url.clone())
                .query(&[("fields", fields)])
                .bearer_auth(gateway.config.access_token.expose());
            if let Some(after) = after {
                request = request.query(&[("after", after)]);
            }
            gateway.send(operation, request)
        };
        read.retry(self.config.retry.backoff())
            .sleep(tokio::time::sleep)
            .when(MetaError::is_retryable)
            .notify(|error: &MetaError, wait: Duration| {
                tracing::warn!(%error, wait_ms = wait.as_millis() as u64, "Meta read failed; retrying");
            })
            .await
    }

    async fn post<T: DeserializeOwned>(&self, operation: &str, path: &str) -> Result<T, MetaError> {
        let request = self
            .client
            .post(self.url(path))
            .bearer_auth(self.config.access_token.expose());
        self.send(operation, request).await
    }

    /// One call to the Graph API (a retried read is one call per attempt), traced as `meta_call`.
    #[tracing::instrument(name = "meta_call", skip_all, fields(operation = operation))]
    async fn send<T: DeserializeOwned>(
        &self,
        operation: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, MetaError> {
        let response = request
            .send()
            .await
            .map_err(|error| self.transport(operation, error))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|error| self.transport(operation, error))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|error| MetaError::UnexpectedAnswer {
                operation: operation.to_owned(),
                status,
                message: error.to_string(),
            });
        }
        match serde_json::from_slice::<wire::ErrorResponse>(&body) {
            Ok(wire::ErrorResponse { error }) => Err(MetaError::Graph {
                operation: operation.to_owned(),
                status,
                code: error.code,
                subcode: error.error_subcode,
                kind: MetaErrorKind::from_code(error.code, status),
                message: error.message,
                fbtrace_id: error.fbtrace_id,
            }),
            Err(_) => Err(MetaError::UnexpectedAnswer {
                operation: operation.to_owned(),
                status,
                message: String::from_utf8_lossy(&body).chars().take(200).collect(),
            }),
        }
    }

    /// Every entry of an edge, from its first page on: Meta gives `paging.next` while more pages follow, and we
    /// ask for each next one ourselves at `path` with its cursor, on the configured base URL (never following
    /// the URL Meta put in `next`). A page that repeats its cursor, or too many pages, is an unexpected answer
    /// rather than an endless loop.
    async fn rest_of_edge<T: DeserializeOwned>(
        &self,
        operation: &str,
        path: &str,
        fields: &str,
        first: wire::Edge<T>,
    ) -> Result<Vec<T>, MetaError> {
        let unexpected = |message: String| MetaError::UnexpectedAnswer {
            operation: operation.to_owned(),
            status: 200,
            message,
        };
        let mut entries = Vec::new();
        let mut page = first;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let next = page
                .next_cursor()
                .map_err(|message| unexpected(message.into()))?;
            let next = match next {
                None => {
                    entries.append(&mut page.data);
                    return Ok(entries);
                }
                Some(next) if seen.contains(next) => {
                    return Err(unexpected(format!(
                        "paging.cursors.after {next:?} leads back to a page already read"
                    )));
                }
                Some(next) => next.to_owned(),
            };
            entries.append(&mut page.data);
            page = self.get_page(operation, path, fields, Some(&next)).await?;
            seen.insert(next);
        }
        Err(unexpected(format!("more than {MAX_PAGES} pages")))
    }

    fn transport(&self, operation: &str, error: reqwest::Error) -> MetaError {
        if error.is_timeout() {
            MetaError::Timeout {
                operation: operation.to_owned(),
                timeout_ms: self.config.timeout.as_millis() as u64,
            }
        } else {
            // Never the URL with its query: it is harmless today, but a token must never ride along in logs.
            MetaError::Transport {
                operation: operation.to_owned(),
                message: error.without_url().to_string(),
            }
        }
    }
}

/// The most pages of an edge read at once (Meta's default page is 25 entries).
const MAX_PAGES: usize = 1000;

/// Each entry once, in the order first seen: pages read while the edge changes may overlap.
fn unique_by_id<T>(entries: Vec<T>, id: impl Fn(&T) -> &String) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    entries
        .into_iter()
        .filter(|entry| seen.insert(id(entry).clone()))
        .collect()
}

/// A write whose answer did not say for sure whether Meta applied it.
fn outcome_unknown(error: &MetaError) -> bool {
    match error {
        MetaError::Timeout { .. } | MetaError::Transport { .. } => true,
        MetaError::Graph { status, .. } | MetaError::UnexpectedAnswer { status, .. } => {
            *status >= 500
        }
        _ => false,
    }
}

impl MetaGateway for HttpGateway {
    async fn business(&self, business_id: &PortfolioId) -> Result<BusinessSnapshot, MetaError> {
        let operation = format!("reading business portfolio {business_id}");
        let mut node: wire::BusinessNode = self
            .get(&operation, business_id.as_str(), wire::BUSINESS_FIELDS)
            .await?;
        let first = std::mem::replace(
            &mut node.owned_whatsapp_business_accounts,
            wire::Edge::whole(Vec::new()),
        );
        node.owned_whatsapp_business_accounts = wire::Edge::whole(unique_by_id(
            self.rest_of_edge(
                &operation,
                &format!("{business_id}/{}", wire::BUSINESS_WABAS_EDGE),
                "id",
                first,
            )
            .await?,
            |waba| &waba.id,
        ));
        BusinessSnapshot::from_wire(&operation, node)
    }

    async fn waba(&self, waba_id: &WabaId) -> Result<WabaSnapshot, MetaError> {
        let operation = format!("reading WABA {waba_id}");
        let mut node: wire::WabaNode = self
            .get(&operation, waba_id.as_str(), wire::WABA_FIELDS)
            .await?;
        let first = std::mem::replace(&mut node.phone_numbers, wire::Edge::whole(Vec::new()));
        node.phone_numbers = wire::Edge::whole(unique_by_id(
            self.rest_of_edge(
                &operation,
                &format!("{waba_id}/phone_numbers"),
                wire::PHONE_NUMBER_FIELDS,
                first,
            )
            .await?,
            |phone| &phone.id,
        ));
        WabaSnapshot::from_wire(&operation, node)
    }

    async fn templates(&self, waba_id: &WabaId) -> Result<Vec<TemplateSnapshot>, MetaError> {
        let operation = format!("reading the message templates of WABA {waba_id}");
        let path = format!("{waba_id}/message_templates");
        let first = self
            .get_page(&operation, &path, wire::TEMPLATE_FIELDS, None)
            .await?;
        self.rest_of_edge(&operation, &path, wire::TEMPLATE_FIELDS, first)
            .await?
            .into_iter()
            .map(|node| TemplateSnapshot::from_wire(&operation, node))
            .collect()
    }

    async fn set_obo_mobility_intent(
        &self,
        waba_id: &WabaId,
    ) -> Result<OboIntentOutcome, MetaError> {
        let operation = format!("starting the OBO transfer of WABA {waba_id}");
        match self
            .post::<wire::SuccessResponse>(
                &operation,
                &format!("{waba_id}/set_obo_mobility_intent"),
            )
            .await
        {
            Ok(_) => Ok(OboIntentOutcome::Requested),
            Err(error) if outcome_unknown(&error) => {
                let waba = self.waba(waba_id).await?;
                if waba.obo_intent.is_some()
                    || waba.facts.ownership_type == OwnershipType::ClientOwned
                {
                    Ok(OboIntentOutcome::AlreadyRequested)
                } else {
                    Err(MetaError::WriteNotApplied {
                        operation,
                        cause: error.to_string(),
                    })
                }
            }
            Err(error) => Err(error),
        }
    }

    async fn request_terms(
        &self,
        business_id: &PortfolioId,
    ) -> Result<TermsRequestOutcome, MetaError> {
        let operation = format!("requesting the MM API terms for business portfolio {business_id}");
        match self
            .post::<wire::TermsRequestResponse>(
                &operation,
                &format!("{business_id}/onboard_partners_to_mm_lite"),
            )
            .await
        {
            Ok(answer) => Ok(TermsRequestOutcome::Sent {
                request_id: answer.request_id,
            }),
            Err(error) if error.kind() == Some(MetaErrorKind::AlreadyInvited) => {
                Ok(TermsRequestOutcome::AlreadyInvited)
            }
            Err(error) if outcome_unknown(&error) => {
                let business = self.business(business_id).await?;
                if matches!(
                    business.terms_status,
                    TermsStatus::RequestSent | TermsStatus::TermOfServiceSigned
                ) {
                    Ok(TermsRequestOutcome::SentAnswerLost)
                } else {
                    Err(MetaError::WriteNotApplied {
                        operation,
                        cause: error.to_string(),
                    })
                }
            }
            Err(error) => Err(error),
        }
    }
}
