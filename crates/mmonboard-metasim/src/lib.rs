//! `mmonboard-metasim`: a simulator of the part of Meta's Graph API that mmonboard speaks to, faithful enough
//! that an onboarding runs end to end over real HTTP without Meta.
//!
//! # What it serves
//! The same surface the real gateway (`mmonboard_meta::HttpGateway`) calls, answered with the very types of
//! `mmonboard_meta::wire`, so the gateway and the simulator cannot drift apart:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /{v}/{business_id}` | `wire::BusinessNode`; terms status `NOT_STARTED` → `REQUEST_SENT` → `TERM_OF_SERVICE_SIGNED` |
//! | `GET /{v}/{waba_id}` | `wire::WabaNode`; Meta's per-WABA verdict, the mirrored ad account, the OBO transfer |
//! | `GET /{v}/{waba_id}/message_templates` | `wire::Edge<wire::TemplateNode>`; the mirrored ad of each marketing template |
//! | `POST /{v}/{waba_id}/set_obo_mobility_intent` | `{"success":true}`; error 100 for a non-OBO WABA or a second request |
//! | `POST /{v}/{business_id}/onboard_partners_to_mm_lite` | `{"request_id":…}`; error 1752041 when already invited or signed |
//!
//! `{v}` is any `v<major>.<minor>`. Every request needs `Authorization: Bearer <SimConfig::access_token>`
//! (otherwise 401 with error 190); an unknown object id answers Meta's "Unsupported get request" (error 100).
//! Errors are always `wire::ErrorResponse` with `type`, `code` and `fbtrace_id`. The `fields` query parameter is
//! accepted and ignored: the whole node is answered.
//!
//! # How Meta behaves here
//! Time comes only from the [`mmonboard_app::Clock`] given to [`Simulator::new`]; nothing reads the system clock
//! for simulated behaviour. Everything Meta does by itself is scheduled at a simulated time and happens at
//! that time, whether noticed by the background task (every [`SimConfig::tick`]) or by the next request:
//! - the admin accepts the terms [`AdminSpec::accepts_terms_after`] after the first terms request (answered or
//!   1752041), or when told to (`POST /sim/businesses/{id}/accept_terms`); one `MM_LITE_TERMS_SIGNED`
//!   `account_update` webhook goes out per WABA of the portfolio;
//! - a WABA is `INELIGIBLE_ON_BEHALF_OF_WABA`, `INELIGIBLE_INACTIVE_OR_RESTRICTED`,
//!   `INELIGIBLE_COUNTRY_NOT_SUPPORTED` (per `CountryPolicy::default()`) or
//!   `INELIGIBLE_USING_WHATSAPP_BUSINESS_APP`, in that order, else `ELIGIBLE`. Once the terms are signed an
//!   eligible WABA is `PENDING_INTERNAL_SETUP` for [`Timing::waba_onboarding`], then `ONBOARDED`; it gets its
//!   read-only ad account (`"8"` + WABA id) after [`Timing::ad_account_creation`]. A WABA that becomes eligible
//!   only after the signature (its OBO transfer completed, it was reinstated) is enabled from that moment;
//! - `set_obo_mobility_intent` makes the transfer `PENDING`; [`Timing::obo_transfer`] later it is `COMPLETED` and
//!   the WABA `CLIENT_OWNED`;
//! - a `MARKETING` template of a WABA with an ad account gets its mirrored ad, ad set and campaign
//!   [`Timing::template_mirror`] after the later of the ad account's creation and the template's last change; a
//!   change restarts the window, and other categories never have a mirror;
//! - a scenario's [`EventSpec`]s happen their delay after the terms were signed.
//!
//! # Webhooks
//! Bodies are `mmonboard_meta::webhook::WebhookPayload`s (`account_update`, `template_category_update`) signed
//! with `mmonboard_meta::webhook::sign` in `X-Hub-Signature-256`. They are sent by [`Simulator::serve`]'s
//! background task to [`SimConfig::webhook_url`], in order per WABA (WABAs concurrently), and sent again with the
//! same bytes after a real-time backoff ([`Redelivery`]) until the receiver answers 2xx or the attempts run
//! out. Without a URL they are only recorded. [`Simulator::deliveries`] tells how each went.
//!
//! # Control routes (no authentication)
//! - `POST /sim/businesses/{id}/accept_terms` `{"user_id":"…"}`: the admin accepts now (409 when no request was
//!   sent or the terms are already signed).
//! - `POST /sim/wabas/{id}/account_status` `{"status":"RESTRICTED"|"DISABLED"|"ACTIVE", "event":"ACCOUNT_RESTRICTION"}`:
//!   the status changes now; with `event`, an `account_update` webhook goes out.
//! - `POST /sim/wabas/{id}/templates` `{"id","name","language","category"}`: create (201) or change (200) a
//!   template now; a category change sends `template_category_update`.
//! - `POST /sim/faults` ([`Fault`]): the next `count` matching Graph API requests fail with `status` and Graph
//!   error `code`; with `"drop": true` the request is applied first (a write whose outcome the caller cannot
//!   know). `GET /sim/faults` lists the faults still armed, `DELETE /sim/faults` disarms them.
//! - `GET /sim/requests`, `GET /sim/deliveries`, `GET /sim/scenarios`: what was received, what was sent, what
//!   is loaded.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use mmonboard_app::{Clock, ManualClock};
//! use mmonboard_metasim::{Scenario, SimConfig, Simulator};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let scenario = Scenario::from_file("scenarios/happy_path.json".as_ref())?;
//! let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
//! let simulator = Simulator::new(vec![scenario], clock, SimConfig::new("token", "app-secret"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! simulator.serve(listener, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Scenario files are described in `scenarios/README.md` at the repository root.

mod routes;
mod scenario;
mod sim;
mod world;

pub use scenario::{
    AccountStatus, AccountUpdateName, AdminSpec, BusinessSpec, EventSpec, Expect, OwnershipType,
    PhoneSpec, PlatformType, Scenario, ScenarioError, SimDuration, TemplateCategory, TemplateSpec,
    Timing, WabaSpec,
};
pub use sim::{
    DEFAULT_PAGE_SIZE, Delivery, Fault, RecordedRequest, Redelivery, SimConfig, Simulator,
};
