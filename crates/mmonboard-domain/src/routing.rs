//! DOMAIN.md's routing rule: should a message go through the Marketing Messages API or Cloud API, right now?
//! Non-marketing messages always use Cloud API. A marketing template uses the MM API only when the portfolio
//! is live (enabled, config sync done), the WABA is onboarded and not suspended, the template's latest
//! category is MARKETING and its mirror is synced (reported synced, not in a sync window, not dormant).
//! Otherwise Cloud API, Meta's `CLOUD_API_FALLBACK`, or, under `STRICT`, a refusal with the reason. A template
//! the log knows under a non-marketing category is a non-marketing message: Cloud API, `STRICT` or not.
//! Pure: time is an argument, so the same question at another moment may get another answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Phase};
use crate::config::DomainConfig;
use crate::facts::{SuspensionReason, TemplateCategory, WabaExitReason};
use crate::ids::{TemplateId, WabaId};
use crate::machine::WabaRouting;

/// What kind of message is about to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageKind {
    MarketingTemplate { template_id: TemplateId },
    Utility,
    Authentication,
    Service,
    FreeForm,
}

/// The caller's policy when the MM API cannot take the message (Meta's `product_policy`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductPolicy {
    CloudApiFallback,
    Strict,
}

/// Which API a message goes through.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    MarketingMessagesApi,
    CloudApi,
}

/// Why the route is what it is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RouteReason {
    #[error(
        "the MM API can take it: portfolio live, WABA onboarded, template marketing and synced"
    )]
    MarketingReady,
    #[error("only marketing templates go through the MM API")]
    NotMarketing,
    #[error("the portfolio is not enabled for the MM API (state {phase})")]
    PortfolioNotEnabled { phase: Phase },
    #[error("the configuration sync is still running until {}", rfc3339(until))]
    ConfigSyncInProgress { until: DateTime<Utc> },
    #[error("WABA {waba_id} is not part of the portfolio")]
    UnknownWaba { waba_id: WabaId },
    #[error("WABA {waba_id} is not onboarded to the MM API")]
    WabaNotOnboarded { waba_id: WabaId },
    #[error("WABA {waba_id} is suspended ({reason})")]
    WabaSuspended {
        waba_id: WabaId,
        reason: SuspensionReason,
    },
    #[error("WABA {waba_id} was offboarded ({reason})")]
    WabaOffboarded {
        waba_id: WabaId,
        reason: WabaExitReason,
    },
    #[error("template {template_id} is not known for WABA {waba_id}")]
    UnknownTemplate {
        waba_id: WabaId,
        template_id: TemplateId,
    },
    #[error("template {template_id}'s latest category is {category}, not MARKETING")]
    TemplateNotMarketing {
        template_id: TemplateId,
        category: TemplateCategory,
    },
    #[error("template {template_id}'s mirror is syncing until {}", rfc3339(until))]
    TemplateSyncing {
        template_id: TemplateId,
        until: DateTime<Utc>,
    },
    #[error("template {template_id}'s mirror has not reported synced yet")]
    TemplateMirrorNotSynced { template_id: TemplateId },
    #[error(
        "template {template_id} is dormant (unused since {}); its next send reactivates it",
        rfc3339(since)
    )]
    TemplateDormant {
        template_id: TemplateId,
        since: DateTime<Utc>,
    },
}

fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl RouteReason {
    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MarketingReady => "marketing_ready",
            Self::NotMarketing => "not_marketing",
            Self::PortfolioNotEnabled { .. } => "portfolio_not_enabled",
            Self::ConfigSyncInProgress { .. } => "config_sync_in_progress",
            Self::UnknownWaba { .. } => "unknown_waba",
            Self::WabaNotOnboarded { .. } => "waba_not_onboarded",
            Self::WabaSuspended { .. } => "waba_suspended",
            Self::WabaOffboarded { .. } => "waba_offboarded",
            Self::UnknownTemplate { .. } => "unknown_template",
            Self::TemplateNotMarketing { .. } => "template_not_marketing",
            Self::TemplateSyncing { .. } => "template_syncing",
            Self::TemplateMirrorNotSynced { .. } => "template_mirror_not_synced",
            Self::TemplateDormant { .. } => "template_dormant",
        }
    }
}

/// The answer: a route, or none when `STRICT` refuses a marketing message the MM API cannot take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutingDecision {
    pub route: Option<Route>,
    pub reason: RouteReason,
    pub policy: ProductPolicy,
}

/// Where a message to `waba_id` of this portfolio goes at `now`.
pub fn route(
    aggregate: &Aggregate,
    waba_id: &WabaId,
    kind: &MessageKind,
    policy: ProductPolicy,
    now: DateTime<Utc>,
    config: &DomainConfig,
) -> RoutingDecision {
    let MessageKind::MarketingTemplate { template_id } = kind else {
        return RoutingDecision {
            route: Some(Route::CloudApi),
            reason: RouteReason::NotMarketing,
            policy,
        };
    };
    // A template the log knows under another category is a non-marketing message, and those always use
    // Cloud API: asking by its id must route it as asking by its kind does, `STRICT` or not, whatever the
    // portfolio's progress or the WABA's standing.
    if let Some(template) = aggregate
        .data()
        .templates
        .get(template_id)
        .filter(|template| template.waba_id == *waba_id)
        .filter(|template| template.category != TemplateCategory::Marketing)
    {
        return RoutingDecision {
            route: Some(Route::CloudApi),
            reason: RouteReason::TemplateNotMarketing {
                template_id: template_id.clone(),
                category: template.category.clone(),
            },
            policy,
        };
    }
    let reason = match marketing_blocker(aggregate, waba_id, template_id, now, config) {
        None => {
            return RoutingDecision {
                route: Some(Route::MarketingMessagesApi),
                reason: RouteReason::MarketingReady,
                policy,
            };
        }
        Some(reason) => reason,
    };
    let route = match policy {
        ProductPolicy::CloudApiFallback => Some(Route::CloudApi),
        ProductPolicy::Strict => None,
    };
    RoutingDecision {
        route,
        reason,
        policy,
    }
}

/// The first thing that keeps a marketing template off the MM API, if any.
fn marketing_blocker(
    aggregate: &Aggregate,
    waba_id: &WabaId,
    template_id: &TemplateId,
    now: DateTime<Utc>,
    config: &DomainConfig,
) -> Option<RouteReason> {
    let data = aggregate.data();
    match aggregate.phase() {
        Phase::Live => {}
        Phase::SyncingConfig => {
            let until = data
                .config_sync
                .as_ref()
                .map_or(now, |sync| sync.window_ends_at);
            return Some(RouteReason::ConfigSyncInProgress { until });
        }
        phase => return Some(RouteReason::PortfolioNotEnabled { phase }),
    }
    let Some(waba) = data.wabas.get(waba_id) else {
        return Some(RouteReason::UnknownWaba {
            waba_id: waba_id.clone(),
        });
    };
    match &waba.routing {
        WabaRouting::Onboarded { .. } => {}
        WabaRouting::NotOnboarded => {
            return Some(RouteReason::WabaNotOnboarded {
                waba_id: waba_id.clone(),
            });
        }
        WabaRouting::Suspended { reason, .. } => {
            return Some(RouteReason::WabaSuspended {
                waba_id: waba_id.clone(),
                reason: reason.clone(),
            });
        }
        WabaRouting::Offboarded { reason, .. } => {
            return Some(RouteReason::WabaOffboarded {
                waba_id: waba_id.clone(),
                reason: reason.clone(),
            });
        }
    }
    let template = match data.templates.get(template_id) {
        Some(template) if template.waba_id == *waba_id => template,
        _ => {
            return Some(RouteReason::UnknownTemplate {
                waba_id: waba_id.clone(),
                template_id: template_id.clone(),
            });
        }
    };
    if now - template.last_activity_at > config.dormancy_after {
        return Some(RouteReason::TemplateDormant {
            template_id: template_id.clone(),
            since: template.last_activity_at,
        });
    }
    if now < template.sync_window_ends_at {
        return Some(RouteReason::TemplateSyncing {
            template_id: template_id.clone(),
            until: template.sync_window_ends_at,
        });
    }
    if template.mirror_synced_at.is_none() {
        return Some(RouteReason::TemplateMirrorNotSynced {
            template_id: template_id.clone(),
        });
    }
    None
}
