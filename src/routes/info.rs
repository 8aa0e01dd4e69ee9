//! `/oauth2/userinfo`, `/healthz`, `/readyz` and, on the metrics listener only,
//! `/metrics`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::error::AppError;
use crate::routes::AppState;

pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    // Several root domains: a session answers on its own domain only.
    let host = req.headers().get("host").and_then(|h| h.to_str().ok());
    let host = host.map(crate::routes::site::strip_port);
    let now = crate::clock::now();
    let cookies = state.cookie_names.session_values(&req, now);
    let Some(identified) = state.access.identify(cookies, host, now).await? else {
        return Ok(HttpResponse::Unauthorized()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({"error": "unauthenticated", "message": "Sign in first."})));
    };
    let who = &identified.who;
    let names = identified.groups.names();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "user": who.login(),
            "email": who.email(),
            "groups": names,
            "preferred_username": who.login(),
        })))
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let oidc = state.oidc.is_ready();
    let store = state.store.ping().await.is_ok();
    let body = json!({"oidc": oidc, "session_store": store});
    if oidc && store {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render())
}
