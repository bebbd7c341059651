//! The HTTP surface: the Graph API under `/{version}/…` (answered with `mmonboard_meta::wire` types) and the
//! control routes under `/sim/…`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use mmonboard_domain::ids::UserId;
use mmonboard_meta::wire;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::scenario::{AccountStatus, AccountUpdateName, TemplateSpec};
use crate::sim::{Fault, RecordedRequest, Simulator};
use crate::world::{ControlError, Refused, World, rfc3339};

impl Simulator {
    /// The whole HTTP surface: the Graph API (`GET /{version}/{id}`, `GET /{version}/{waba_id}/message_templates`,
    /// `POST /{version}/{waba_id}/set_obo_mobility_intent`, `POST /{version}/{business_id}/onboard_partners_to_mm_lite`)
    /// and the control routes under `/sim/`. Scheduled things that are due fire before any request is
    /// answered; webhooks are sent only by [`Simulator::serve`]'s background task.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/sim/requests", get(sim_requests))
            .route("/sim/deliveries", get(sim_deliveries))
            .route("/sim/scenarios", get(sim_scenarios))
            .route(
                "/sim/faults",
                post(add_fault).get(list_faults).delete(clear_faults),
            )
            .route("/sim/businesses/{id}/accept_terms", post(accept_terms))
            .route("/sim/wabas/{id}/account_status", post(set_account_status))
            .route("/sim/wabas/{id}/templates", post(upsert_template))
            .fallback(graph)
            .with_state(self.clone())
    }
}

/// `v<major>.<minor>`.
fn valid_version(version: &str) -> bool {
    mmonboard_meta::wire::is_graph_api_version(version)
}

type Answer = (StatusCode, Value);

fn graph_error(
    world: &mut World,
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    error_type: &str,
    message: String,
) -> Answer {
    let body = wire::ErrorResponse {
        error: wire::GraphErrorBody {
            message,
            error_type: error_type.to_owned(),
            code,
            error_subcode: subcode,
            fbtrace_id: Some(world.next_trace_id()),
        },
    };
    (status, to_value(&body))
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("wire types serialise")
}

fn unsupported(world: &mut World, method: &Method, id: &str) -> Answer {
    graph_error(
        world,
        StatusCode::BAD_REQUEST,
        100,
        Some(33),
        "GraphMethodException",
        format!(
            "Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            method.as_str().to_ascii_lowercase()
        ),
    )
}

/// Error 100, Meta's answer to a request it cannot take as asked; `message` follows the `(#100) `.
fn error_100(world: &mut World, message: std::fmt::Arguments<'_>) -> Answer {
    graph_error(
        world,
        StatusCode::BAD_REQUEST,
        100,
        None,
        "OAuthException",
        format!("(#100) {message}"),
    )
}

/// Error 100, "Invalid parameter", naming what was wrong.
fn invalid_parameter(world: &mut World, message: &str) -> Answer {
    error_100(world, format_args!("Invalid parameter: {message}"))
}

fn refused(world: &mut World, method: &Method, id: &str, refusal: Refused) -> Answer {
    match refusal {
        Refused::NoSuchObject => unsupported(world, method, id),
        Refused::InvalidParameter(message) => invalid_parameter(world, &message),
        Refused::AlreadyInvited => graph_error(
            world,
            StatusCode::BAD_REQUEST,
            1752041,
            None,
            "OAuthException",
            format!(
                "(#1752041) Business {id} was already invited to onboard to Marketing Messages Lite API: an invitation is pending or its terms are signed."
            ),
        ),
    }
}

/// Every Graph API request: recorded, authorised, version checked, faults applied, then answered.
async fn graph(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let full_path = uri.path().to_owned();
    let segments: Vec<String> = full_path
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    let versioned = segments.first().is_some_and(|first| valid_version(first));
    let version = if versioned {
        segments[0].clone()
    } else {
        String::new()
    };
    let rest: Vec<String> = if versioned {
        segments[1..].to_vec()
    } else {
        segments
    };
    let path = if versioned {
        format!("/{}", rest.join("/"))
    } else {
        full_path.clone()
    };
    let expected = format!("Bearer {}", sim.inner.config.access_token);
    let authorised = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim() == expected);
    let pages = Pages {
        size: sim.inner.config.page_size.max(1),
        query: uri.query().unwrap_or_default().to_owned(),
        // Where `paging.next` points: this simulator, as the client reached it, at the version it asked for.
        base: format!(
            "http://{}/{}",
            headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("localhost"),
            version
        ),
    };
    let (status, body) = sim.with_world(|world, now| {
        world.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            at: now,
            status: 0,
        });
        let index = world.requests.len() - 1;
        let answer = answer_graph(
            world, now, &method, versioned, &rest, &path, authorised, &pages,
        );
        world.requests[index].status = answer.0.as_u16();
        answer
    });
    (status, Json(body)).into_response()
}

#[allow(clippy::too_many_arguments)]
fn answer_graph(
    world: &mut World,
    now: DateTime<Utc>,
    method: &Method,
    versioned: bool,
    rest: &[String],
    path: &str,
    authorised: bool,
    pages: &Pages,
) -> Answer {
    if !authorised {
        return graph_error(
            world,
            StatusCode::UNAUTHORIZED,
            190,
            None,
            "OAuthException",
            "Invalid OAuth access token - Cannot parse access token".into(),
        );
    }
    if !versioned {
        return graph_error(
            world,
            StatusCode::BAD_REQUEST,
            2500,
            None,
            "OAuthException",
            format!("Unknown path components: {path} (expected /v<major>.<minor>/<object id>)"),
        );
    }
    let fault = world
        .faults
        .iter_mut()
        .find(|fault| {
            fault.count > 0
                && fault.method.eq_ignore_ascii_case(method.as_str())
                && path.contains(&fault.path_contains)
        })
        .map(|fault| {
            fault.count -= 1;
            fault.clone()
        });
    if let Some(fault) = &fault
        && !fault.drop
    {
        return fault_answer(world, fault);
    }
    let answer = dispatch(world, now, method, rest, pages);
    match &fault {
        Some(fault) => fault_answer(world, fault),
        None => answer,
    }
}

fn fault_answer(world: &mut World, fault: &Fault) -> Answer {
    let message = fault.message.clone().unwrap_or_else(|| {
        "An unexpected error has occurred. Please retry your request later.".into()
    });
    graph_error(
        world,
        StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        fault.code,
        None,
        "OAuthException",
        message,
    )
}

fn dispatch(
    world: &mut World,
    now: DateTime<Utc>,
    method: &Method,
    rest: &[String],
    pages: &Pages,
) -> Answer {
    let Some(id) = rest.first().filter(|id| !id.is_empty()) else {
        return graph_error(
            world,
            StatusCode::BAD_REQUEST,
            2500,
            None,
            "OAuthException",
            "An object id is required".into(),
        );
    };
    let edge = rest.get(1).map(String::as_str);
    let known = world.businesses.contains_key(id) || world.wabas.contains_key(id);
    // An edge read on its own is paged as the client asks (`?after=`, `?limit=`).
    let paged = |world: &mut World, edge: &str, data: Vec<Value>| match pages.request() {
        Ok((start, limit)) => (
            StatusCode::OK,
            to_value(&pages.page(id, edge, data, start, limit)),
        ),
        Err(message) => invalid_parameter(world, &message),
    };
    match (method.as_str(), edge, rest.len()) {
        ("GET", None, 1) => {
            // Expanded as fields, edges show their first page, as Meta's do.
            if let Some(mut node) = world.business_node(id) {
                let wabas = std::mem::take(&mut node.owned_whatsapp_business_accounts.data);
                node.owned_whatsapp_business_accounts =
                    pages.page(id, wire::BUSINESS_WABAS_EDGE, wabas, 0, pages.size);
                (StatusCode::OK, to_value(&node))
            } else if let Some(mut node) = world.waba_node(id, now) {
                let phones = std::mem::take(&mut node.phone_numbers.data);
                node.phone_numbers = pages.page(id, "phone_numbers", phones, 0, pages.size);
                (StatusCode::OK, to_value(&node))
            } else {
                unsupported(world, method, id)
            }
        }
        ("GET", Some("message_templates"), 2) => match world.template_nodes(id, now) {
            Some(data) => paged(world, "message_templates", values(data)),
            None if known => nonexisting_field(world, "message_templates"),
            None => unsupported(world, method, id),
        },
        ("GET", Some(wire::BUSINESS_WABAS_EDGE), 2) if world.businesses.contains_key(id) => {
            let wabas = world
                .business_node(id)
                .map(|node| node.owned_whatsapp_business_accounts.data)
                .unwrap_or_default();
            paged(world, wire::BUSINESS_WABAS_EDGE, values(wabas))
        }
        ("GET", Some("phone_numbers"), 2) if world.wabas.contains_key(id) => {
            let phones = world
                .waba_node(id, now)
                .map(|node| node.phone_numbers.data)
                .unwrap_or_default();
            paged(world, "phone_numbers", values(phones))
        }
        ("POST", Some("set_obo_mobility_intent"), 2) => match world.set_obo_intent(id, now) {
            Ok(()) => (
                StatusCode::OK,
                to_value(&wire::SuccessResponse { success: true }),
            ),
            Err(refusal) => refused(world, method, id, refusal),
        },
        ("POST", Some("onboard_partners_to_mm_lite"), 2) => match world.request_terms(id, now) {
            Ok(request_id) => (
                StatusCode::OK,
                to_value(&wire::TermsRequestResponse { request_id }),
            ),
            Err(refusal) => refused(world, method, id, refusal),
        },
        ("GET", Some(edge), 2) if known => nonexisting_field(world, edge),
        _ => unsupported(world, method, id),
    }
}

fn values<T: serde::Serialize>(entries: Vec<T>) -> Vec<Value> {
    entries.iter().map(to_value).collect()
}

/// How edges are paged: `size` entries at most per page; cursors are the offset of the entry after the page
/// (opaque to clients, as Meta's are).
struct Pages {
    size: usize,
    /// The request's query string, for `after` and `limit`.
    query: String,
    /// `http://host/v23.0`: what `paging.next` URLs start with.
    base: String,
}

impl Pages {
    /// Where the requested page starts and how many entries it holds at most.
    fn request(&self) -> Result<(usize, usize), String> {
        let mut start = 0;
        let mut limit = self.size;
        for (name, value) in url::form_urlencoded::parse(self.query.as_bytes()) {
            match name.as_ref() {
                "after" => {
                    start = value
                        .parse()
                        .map_err(|_| format!("after = {value:?} is not a cursor of this edge"))?;
                }
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|limit| *limit > 0)
                        .ok_or_else(|| format!("limit = {value:?} is not a positive number"))?;
                }
                _ => {}
            }
        }
        Ok((start, limit.min(self.size)))
    }

    /// The page of `entries` from `start`, with `paging.next` while more follow.
    fn page<T>(
        &self,
        id: &str,
        edge: &str,
        mut entries: Vec<T>,
        start: usize,
        limit: usize,
    ) -> wire::Edge<T> {
        let total = entries.len();
        let start = start.min(total);
        let end = start.saturating_add(limit).min(total);
        entries.truncate(end);
        let data: Vec<T> = entries.drain(start..).collect();
        if data.is_empty() {
            return wire::Edge::whole(data);
        }
        let next = (end < total).then(|| {
            format!(
                "{}/{id}/{edge}?limit={limit}&after={end}",
                self.base.trim_end_matches('/')
            )
        });
        wire::Edge {
            data,
            paging: Some(wire::Paging {
                cursors: Some(wire::Cursors {
                    before: Some(start.to_string()),
                    after: Some(end.to_string()),
                }),
                next,
            }),
        }
    }
}

fn nonexisting_field(world: &mut World, field: &str) -> Answer {
    error_100(
        world,
        format_args!("Tried accessing nonexisting field ({field}) on this node type"),
    )
}

/// A refused control request: `{"error": "..."}`.
fn control_error((status, message): ControlError) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(json!({ "error": message }))).into_response()
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ControlError> {
    serde_json::from_slice(body)
        .map_err(|error| (400, format!("the request body is not valid: {error}")))
}

async fn sim_requests(State(sim): State<Simulator>) -> Response {
    Json(sim.requests()).into_response()
}

async fn sim_deliveries(State(sim): State<Simulator>) -> Response {
    Json(sim.deliveries()).into_response()
}

async fn sim_scenarios(State(sim): State<Simulator>) -> Response {
    Json(sim.with_world(|world, _| world.scenarios())).into_response()
}

async fn list_faults(State(sim): State<Simulator>) -> Response {
    let faults: Vec<Fault> = sim.with_world(|world, _| {
        world
            .faults
            .iter()
            .filter(|fault| fault.count > 0)
            .cloned()
            .collect()
    });
    Json(faults).into_response()
}

async fn clear_faults(State(sim): State<Simulator>) -> Response {
    sim.with_world(|world, _| world.faults.clear());
    StatusCode::NO_CONTENT.into_response()
}

async fn add_fault(State(sim): State<Simulator>, body: Bytes) -> Response {
    let mut fault: Fault = match parse_body(&body) {
        Ok(fault) => fault,
        Err(error) => return control_error(error),
    };
    fault.method = fault.method.to_ascii_uppercase();
    if !matches!(fault.method.as_str(), "GET" | "POST") {
        return control_error((
            400,
            format!("method {:?} must be GET or POST", fault.method),
        ));
    }
    if !(400..=599).contains(&fault.status) {
        return control_error((
            400,
            format!("status {} must be an HTTP error (400-599)", fault.status),
        ));
    }
    if fault.count == 0 {
        return control_error((400, "count must be at least 1".into()));
    }
    sim.with_world(|world, _| world.faults.push(fault.clone()));
    (StatusCode::CREATED, Json(fault)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptTerms {
    user_id: UserId,
}

async fn accept_terms(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body: AcceptTerms = match parse_body(&body) {
        Ok(body) => body,
        Err(error) => return control_error(error),
    };
    match sim.with_world(|world, now| world.accept_terms(&id, body.user_id.as_str(), now)) {
        Ok(status) => Json(json!({
            "business_id": id,
            "accepted_by": body.user_id,
            "status": status.status,
            "time": status.time,
        }))
        .into_response(),
        Err(error) => control_error(error),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountStatusChange {
    status: AccountStatus,
    #[serde(default)]
    event: Option<AccountUpdateName>,
}

async fn set_account_status(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let change: AccountStatusChange = match parse_body(&body) {
        Ok(change) => change,
        Err(error) => return control_error(error),
    };
    let answer = sim.with_world(|world, now| {
        if !world.wabas.contains_key(&id) {
            return Err((404, format!("no WABA {id} is simulated")));
        }
        world.set_account_status(&id, change.status, now);
        if let Some(event) = &change.event {
            world.emit_account_update(&id, event.as_str(), now);
        }
        Ok(world.waba_node(&id, now).expect("known WABA"))
    });
    match answer {
        Ok(node) => Json(node).into_response(),
        Err(error) => control_error(error),
    }
}

async fn upsert_template(
    State(sim): State<Simulator>,
    Path(waba_id): Path<String>,
    body: Bytes,
) -> Response {
    let spec: TemplateSpec = match parse_body(&body) {
        Ok(spec) => spec,
        Err(error) => return control_error(error),
    };
    let answer = sim.with_world(|world, now| {
        let created = world.upsert_template(&waba_id, &spec, now)?;
        let node = world
            .template_nodes(&waba_id, now)
            .into_iter()
            .flatten()
            .find(|node| node.id == spec.id.as_str())
            .expect("just stored");
        Ok::<_, ControlError>((created, node, rfc3339(now)))
    });
    match answer {
        Ok((created, node, at)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(json!({ "template": node, "at": at }))).into_response()
        }
        Err(error) => control_error(error),
    }
}
