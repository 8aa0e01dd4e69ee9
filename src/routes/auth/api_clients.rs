//! The parts of a check that issue 13 added: public routes (`SKIP_AUTH_ROUTES`,
//! `SKIP_AUTH_PREFLIGHT`, trusted proxies only), API clients with an
//! `Authorization: Bearer` access token (`BEARER_AUDIENCE`), and the signed
//! identity `X-Auth-Request-Jwt` (`IDENTITY_JWT_KEY`). The decisions live in
//! `crate::skip_routes`, `crate::bearer` and `crate::identity_jwt`; this module
//! only reads the request and shapes the answer.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::{Allowed, Denied};
use crate::access::{Identified, SessionHot, TokenHot, Tokens, Who};
use crate::clock::now;
use crate::error::AppError;
use crate::forwarded::{OriginalRequest, Source};
use crate::identity_jwt::{Identity, IdentityTokens, Memo};
use crate::oidc::bearer::BearerError;
use crate::routes::AppState;
use crate::skip_routes::raw_path;
use url::{Position, Url};

/// The header that carries the signed identity.
pub const JWT_HEADER: &str = "x-auth-request-jwt";

/// Whether a check must read the original URL even for a signed-in user.
pub fn needs_original(state: &AppState) -> bool {
    let c = &state.config;
    c.skip_routes.is_some() || c.identity_keys.is_some() || c.sites.is_several()
}

/// Whether the original request is public. Only what a trusted proxy said
/// counts (`X-Original-URL` or `X-Forwarded-Uri`), and only when the raw path
/// it sent is the path we parsed: an untrusted peer never gets a skip.
pub fn is_public(req: &HttpRequest, state: &AppState, original: Option<&OriginalRequest>) -> bool {
    let (Some(routes), Some(original)) = (&state.config.skip_routes, original) else {
        return false;
    };
    let headers = req.headers();
    let value = |name: &str| crate::header_text::value(headers, name);
    let sent = match original.source {
        Source::OriginalUrl => value("x-original-url"),
        Source::ForwardedHeaders => Some(value("x-forwarded-uri").unwrap_or("/")),
        Source::HostHeader | Source::Unverifiable => return false,
    };
    let (Some(path), Some(url)) = (sent.map(str::trim).and_then(raw_path), &original.url) else {
        return false;
    };
    // The URL parser resolves dot segments and re-encodes: any difference
    // means an app could see another path than the rule did.
    if path != url.path() {
        return false;
    }
    let public = routes.skips(&original.method, path, value);
    if public {
        tracing::debug!(method = %original.method, path, "public route");
    }
    public
}

/// The access-token check and the request's bearer token (its bytes: they
/// are read as text only when the token is not one verified lately), when
/// API clients are accepted.
pub fn bearer_token<'r>(
    req: &'r HttpRequest,
    state: &'r AppState,
) -> Option<(Tokens<'r>, &'r [u8])> {
    let tokens = state.access.tokens()?;
    let value = req.headers().get(header::AUTHORIZATION)?;
    Some((tokens, crate::oidc::bearer::bearer_token(value.as_bytes())?))
}

/// Adds `X-Auth-Request-Jwt` when `IDENTITY_JWT_KEY` is set: `aud` is the
/// original URL's origin, so without a known original URL there is no 2xx.
/// The session's or token's kept identity is added without awaiting
/// anything; signing one is boxed, as a rare path: the handler's future
/// (allocated per request) stays small.
pub async fn with_signed_identity(
    allowed: Allowed,
    state: &AppState,
    original: Option<&OriginalRequest>,
    identified: &Identified,
) -> Result<Allowed, Denied> {
    let Some(tokens) = &state.identity_tokens else {
        return Ok(allowed);
    };
    let Some(url) = original.and_then(|o| o.url.as_deref()) else {
        return Err(Denied::Error(AppError::BadRequest(
            "The original URL is unknown, so no signed identity can be made for it: the proxy \
             must send X-Original-URL or X-Forwarded-Host/-Uri from a TRUSTED_PROXIES address."
                .into(),
        )));
    };
    let issuer = state.service_url_of(state.site_of_host(url.host_str()));
    // The URL up to its port fully determines its origin, the audience: a
    // session's or token's kept identity is reused for the same one.
    let origin = &url[..Position::AfterPort];
    if let Some(jwt) = memo_of(identified).get(issuer, origin, &identified.groups, now()) {
        return Ok(allowed.with_jwt(jwt));
    }
    Box::pin(signed(allowed, tokens, issuer, url, identified)).await
}

/// The last signed identity the session or token keeps.
fn memo_of(identified: &Identified) -> &Memo {
    match &identified.who {
        Who::Token(token) => TokenHot::signed_identity(token),
        Who::User(session) => SessionHot::signed_identity(session),
    }
}

/// A new signed identity for `url`'s origin, kept for the next checks.
async fn signed(
    allowed: Allowed,
    tokens: &IdentityTokens,
    issuer: &str,
    url: &Url,
    identified: &Identified,
) -> Result<Allowed, Denied> {
    let audience = url.origin().ascii_serialization();
    let names = identified.groups.names();
    let who = &identified.who;
    let identity = Identity {
        issuer,
        audience: &audience,
        subject: who.subject(),
        email: who.email(),
        preferred_username: who.login(),
        groups: &names,
    };
    match tokens.token(&identity).await {
        Some(signed) => {
            let origin = &url[..Position::AfterPort];
            memo_of(identified).keep(issuer, origin, &identified.groups, &signed);
            Ok(allowed.with_jwt(signed.jwt))
        }
        None => Err(Denied::Error(AppError::Internal(
            "the signed identity could not be made",
        ))),
    }
}

/// A refused bearer token and how to say so.
#[derive(Debug)]
pub struct BadToken {
    pub error: BearerError,
    /// `/oauth2/forward` answers API clients in JSON; nginx's body is empty.
    pub json: bool,
}

impl BadToken {
    pub fn status(&self) -> StatusCode {
        if self.error.is_insufficient_scope() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        }
    }

    fn code(&self) -> &'static str {
        if self.error.is_insufficient_scope() {
            "insufficient_scope"
        } else {
            "invalid_token"
        }
    }

    /// RFC 6750 §3: the error and a description that never holds the token.
    pub fn response(&self) -> HttpResponse {
        let challenge = format!(
            "Bearer error=\"{}\", error_description=\"{}\"",
            self.code(),
            self.error
        );
        let mut response = HttpResponse::build(self.status());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::WWW_AUTHENTICATE, challenge));
        if self.json {
            response.json(serde_json::json!({
                "error": self.code(),
                "error_description": self.error.to_string(),
            }))
        } else {
            response.finish()
        }
    }
}
