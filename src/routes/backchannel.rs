//! `POST /oauth2/backchannel_logout`: the IdP ends sessions server to server
//! (OpenID Connect Back-Channel Logout 1.0). The form's `logout_token` is
//! verified first; then, in one step, its `jti` is recorded and the matching
//! sessions end (a forged token never burns a real one's id, a store failure
//! never burns it either). 200 with an empty
//! body on success; a bad token or body is a JSON 400; a store or IdP key set
//! that cannot answer is a 503. Never logs the token, nor the raw `sid`.

use actix_web::error::UrlencodedError;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::oidc::logout_token::{self, Ends};
use crate::routes::AppState;
use crate::session::Ending;

/// Largest form accepted; logout tokens are around a kilobyte.
pub const MAX_BODY: usize = 16 * 1024;

#[derive(Deserialize)]
pub struct LogoutForm {
    logout_token: Option<String>,
}

pub async fn backchannel_logout(
    state: web::Data<AppState>,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, AppError> {
    let token = form
        .logout_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AppError::InvalidRequest("logout_token is missing".into()))?;
    let verified = logout_token::verify(&state.oidc, token).await?;
    let ending = match &verified.ends {
        Ends::Session { sid, sub } => Ending::IdpSession {
            sub: sub.as_deref(),
            sid,
        },
        Ends::User { sub } => Ending::User { sub },
    };
    // The jti is recorded and the sessions end in one step: a store failure
    // leaves both undone, so the IdP's retry still works.
    let Some(ended) = state.store.end_once(&verified.jti, ending).await? else {
        return Err(AppError::InvalidRequest(
            "logout_token refused: it was used before (jti)".into(),
        ));
    };
    match ending {
        Ending::IdpSession { sub, sid } => {
            tracing::info!(user = sub.unwrap_or("(any)"), sid = %fingerprint(sid), sessions = ended, "back-channel logout of an IdP session");
            crate::audit::ended_by_okta(
                "back_channel",
                sub.unwrap_or(""),
                ended,
                "Okta ended the IdP session",
            );
        }
        Ending::User { sub } => {
            tracing::info!(user = %sub, sessions = ended, "back-channel logout of every session of a user");
            crate::audit::ended_by_okta(
                "back_channel",
                sub,
                ended,
                "Okta ended every session of the user",
            );
        }
        // Not made from a logout token.
        Ending::UserBefore { .. } | Ending::Email { .. } => {}
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// A short stand-in for an IdP session id in logs: some IdPs' `sid` is also
/// the value of their session cookie, which must never be logged.
fn fingerprint(sid: &str) -> String {
    let digest = Sha256::digest(sid.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The form extractor's settings for this route: the size cap, and a JSON 400
/// for any body that is not a small urlencoded form. The messages are fixed:
/// the parser's own could quote the body.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default().limit(MAX_BODY).error_handler(
        |e: UrlencodedError, _: &HttpRequest| {
            let description = match e {
                UrlencodedError::Overflow { .. } => {
                    format!("the body is larger than {MAX_BODY} bytes")
                }
                UrlencodedError::ContentType => {
                    "the body must be application/x-www-form-urlencoded".to_owned()
                }
                _ => "the body is not a valid form".to_owned(),
            };
            AppError::InvalidRequest(description).into()
        },
    )
}
