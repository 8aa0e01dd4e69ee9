//! `/oauth2/sign_out`: ends the server-side session (or, with `everywhere=true`
//! in a POST from our own origin, all of the user's sessions), clears the
//! cookies, and when Okta offers an `end_session_endpoint` sends the browser
//! there to end the Okta session too. A GET or cross-site `everywhere=true`
//! (a link or form on any site) ends only the current session.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::access::SignedOut;
use crate::error::AppError;
use crate::routes::auth::MAX_LOCATION;
use crate::routes::{session_cookie_header, AppState};

#[derive(Deserialize)]
pub struct SignOutQuery {
    rd: Option<String>,
    everywhere: Option<String>,
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SignOutQuery>,
) -> Result<HttpResponse, AppError> {
    let rd = state.return_address(query.rd.as_deref())?;
    let site = state.site_of_request(&req, Some(&rd));
    let asked_everywhere = matches!(query.everywhere.as_deref(), Some("true" | "1" | "yes"));
    let everywhere = asked_everywhere && is_same_origin_post(&req, state.service_url_of(site));
    if asked_everywhere && !everywhere {
        tracing::info!("sign-out everywhere needs a POST from this service's origin; ending the current session only");
    }
    let now = crate::clock::now();
    let cookies = state.cookie_names.session_values(&req, now);
    let signed_out = state.access.sign_out(cookies, everywhere).await?;
    let mut location = rd.clone();
    if let Some(SignedOut { session, .. }) = signed_out {
        let way = if everywhere {
            "sign_out_everywhere"
        } else {
            "sign_out"
        };
        audit(
            &req,
            state.service_url_of(site),
            session.identity().login(),
            way,
        );
        if let Some(id_token) = state.access.sign_out_hint(&session).await {
            let post_logout = absolute(state.service_url_of(site), &rd);
            // A long rd is cut to fit; if even that does not, sign out here only.
            let fitted =
                state
                    .oidc
                    .end_session_url_within(id_token.expose(), &post_logout, MAX_LOCATION);
            if let Some(url) = fitted {
                location = url;
            }
        }
    }
    let mut response = HttpResponse::Found();
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::SET_COOKIE,
            session_cookie_header(&state.cookie_of(site), None),
        ));
    for clear in state.cookie_names.clear_legacy(&state.cookie_of(site)) {
        response.append_header((header::SET_COOKIE, clear));
    }
    Ok(response
        .insert_header((header::LOCATION, location))
        .finish())
}

/// The audit line and the logout counter for a sign-out by the user.
fn audit(req: &HttpRequest, service_url: &str, login: &str, way: &'static str) {
    crate::metrics::observed::logout(way, "ended");
    crate::audit::Audit {
        event: way,
        user: login,
        host: &crate::audit::host_of(service_url),
        path: req.path(),
        decision: "session_ended",
        reason: "the user signed out",
    }
    .record();
}

/// A POST that the browser says comes from a page of our own origin:
/// `Sec-Fetch-Site: same-origin`, else an `Origin` equal to the service's.
/// Without either header (an old browser, a script) the answer is no.
fn is_same_origin_post(req: &HttpRequest, service_url: &str) -> bool {
    if req.method() != actix_web::http::Method::POST {
        return false;
    }
    let value = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin");
    }
    let ours = url::Url::parse(service_url).map(|u| u.origin().ascii_serialization());
    match (value("origin"), ours) {
        (Some(origin), Ok(ours)) => origin.eq_ignore_ascii_case(&ours),
        _ => false,
    }
}

/// Okta needs an absolute `post_logout_redirect_uri`; a relative `rd` is taken
/// relative to the service's own URL.
fn absolute(service_url: &str, rd: &str) -> String {
    if rd.starts_with('/') {
        let origin = url::Url::parse(service_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        format!("{origin}{rd}")
    } else {
        rd.to_owned()
    }
}
