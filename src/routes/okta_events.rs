//! `GET,POST /oauth2/okta/events`: Okta Event Hooks. 404 unless
//! `OKTA_EVENT_HOOK_SECRET` is set. GET answers Okta's one-time verification
//! challenge; POST checks the shared secret, reads the delivery (capped at
//! [`MAX_BODY`]), queues it whole and answers 200 at once: the worker in
//! `okta_events` applies it. Every refusal is a 4xx that changes nothing
//! (Okta never retries a 4xx); only a full queue is a 503, retried once.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

use crate::metrics::OKTA_EVENT_DELIVERIES;
use crate::okta_events::MAX_BODY;
use crate::routes::AppState;

/// Okta's verification challenge is a short token; longer is not Okta.
const MAX_CHALLENGE: usize = 1024;

pub async fn verify(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if state.event_hooks.is_none() {
        return HttpResponse::NotFound().finish();
    }
    let challenge = req
        .headers()
        .get("x-okta-verification-challenge")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_CHALLENGE);
    match challenge {
        Some(challenge) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "verification": challenge })),
        None => refuse(
            HttpResponse::BadRequest(),
            "malformed",
            "X-Okta-Verification-Challenge is missing or too long",
        ),
    }
}

pub async fn deliver(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> HttpResponse {
    let Some(hooks) = &state.event_hooks else {
        return HttpResponse::NotFound().finish();
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if !hooks.authorized(authorization) {
        return refuse(
            HttpResponse::Unauthorized(),
            "unauthorized",
            "the Authorization header is not the event hook's secret",
        );
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return refuse(
                HttpResponse::BadRequest(),
                "malformed",
                "the body could not be read",
            );
        };
        if body.len() + chunk.len() > MAX_BODY {
            return too_large();
        }
        body.extend_from_slice(&chunk);
    }
    let events = match hooks.parse(&body) {
        Ok(events) => events,
        Err(problem) => return refuse(HttpResponse::BadRequest(), "malformed", &problem),
    };
    let count = events.len();
    if hooks.accept(events).is_err() {
        tracing::warn!(
            events = count,
            "Okta event delivery refused: the queue is full (Okta retries once)"
        );
        OKTA_EVENT_DELIVERIES.inc("okta", "busy");
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .finish();
    }
    OKTA_EVENT_DELIVERIES.inc("okta", "accepted");
    tracing::debug!(events = count, "Okta event delivery accepted");
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn too_large() -> HttpResponse {
    refuse(
        HttpResponse::PayloadTooLarge(),
        "too_large",
        &format!("the body is larger than {MAX_BODY} bytes"),
    )
}

/// A JSON refusal; `reason` never holds a value from the request.
fn refuse(
    mut builder: actix_web::HttpResponseBuilder,
    outcome: &str,
    reason: &str,
) -> HttpResponse {
    OKTA_EVENT_DELIVERIES.inc("okta", outcome);
    tracing::info!(outcome, reason, "Okta event hook request refused");
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": outcome, "error_description": reason }))
}
