//! The fake's OAuth 2.0 / OpenID Connect endpoints for both authorization
//! servers: the route table, discovery, JWKS, authorize (with the sign-in form),
//! token (code and refresh grants), userinfo, logout and revoke. It OWNS how
//! those requests are checked and answered; it must NOT keep state of its own
//! (everything lives in the crate root's `Inner`).

use super::*;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    for server in [AuthServer::Org, AuthServer::Custom] {
        let (issuer_path, v1) = (server.prefix(), server.endpoints());
        cfg.route(
            &format!("{issuer_path}/.well-known/openid-configuration"),
            web::get().to(discovery),
        )
        .route(&format!("{v1}/keys"), web::get().to(keys))
        .route(&format!("{v1}/authorize"), web::get().to(authorize))
        .route(
            &format!("{v1}/authorize/login"),
            web::post().to(authorize_login),
        )
        .route(&format!("{v1}/token"), web::post().to(token))
        .route(&format!("{v1}/userinfo"), web::get().to(userinfo))
        .route(&format!("{v1}/logout"), web::get().to(logout))
        .route(&format!("{v1}/revoke"), web::post().to(revoke));
    }
    cfg.route("/api/v1/users/{id}/groups", web::get().to(user_groups));
    cfg.route("/api/v1/users/{id}", web::get().to(get_user));
    demo_admin_routes(cfg);
}

pub(crate) async fn discovery(req: HttpRequest, fake: web::Data<FakeOkta>) -> HttpResponse {
    fake.lock().calls.discovery += 1;
    let server = AuthServer::of(&req);
    let issuer = fake.issuer(server);
    let v1 = format!("{}{}", fake.base_url(), server.endpoints());
    let auth_methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none"
    ]);
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{v1}/authorize"),
        "token_endpoint": format!("{v1}/token"),
        "userinfo_endpoint": format!("{v1}/userinfo"),
        "registration_endpoint": format!("{}/oauth2/v1/clients", fake.base_url()),
        "jwks_uri": format!("{v1}/keys"),
        "response_types_supported": [
            "code", "id_token", "code id_token", "code token", "id_token token",
            "code id_token token"
        ],
        "response_modes_supported": ["query", "fragment", "form_post", "okta_post_message"],
        "grant_types_supported": [
            "authorization_code", "implicit", "refresh_token", "password",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": [
            "openid", "email", "profile", "address", "phone", "offline_access", "groups"
        ],
        "token_endpoint_auth_methods_supported": auth_methods,
        "claims_supported": [
            "iss", "ver", "sub", "aud", "iat", "exp", "jti", "auth_time", "amr", "idp", "nonce",
            "name", "nickname", "preferred_username", "given_name", "middle_name",
            "family_name", "email", "email_verified", "profile", "zoneinfo", "locale",
            "address", "phone_number", "picture", "website", "gender", "birthdate",
            "updated_at", "at_hash", "c_hash", "sid", "groups"
        ],
        "code_challenge_methods_supported": ["S256"],
        "introspection_endpoint": format!("{v1}/introspect"),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint": format!("{v1}/revoke"),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "end_session_endpoint": format!("{v1}/logout"),
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": [
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"
        ],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    }))
}

pub(crate) async fn keys(fake: web::Data<FakeOkta>) -> HttpResponse {
    let key = {
        let mut inner = fake.lock();
        inner.calls.jwks += 1;
        inner.key
    };
    HttpResponse::Ok().json(json!({ "keys": [key.public_jwk()] }))
}

/// The parameters `/authorize` insists on; the service must always send PKCE and a nonce.
pub(crate) struct AuthorizeRequest {
    pub(crate) redirect_uri: String,
    pub(crate) scope: String,
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) code_challenge: String,
}

impl AuthorizeRequest {
    pub(crate) fn parse(query: &[(String, String)]) -> Result<AuthorizeRequest, String> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let require = |name: &str| get(name).ok_or_else(|| format!("missing parameter {name}"));
        if require("client_id")? != FakeOkta::CLIENT_ID {
            return Err("unknown client_id".to_string());
        }
        if require("response_type")? != "code" {
            return Err("response_type must be code".to_string());
        }
        let redirect_uri = require("redirect_uri")?;
        if !is_registered_redirect(&redirect_uri) {
            return Err("redirect_uri is not registered for this client".to_string());
        }
        let scope = require("scope")?;
        if !has_scope(&scope, "openid") {
            return Err("scope must contain openid".to_string());
        }
        let code_challenge = require("code_challenge")?;
        if get("code_challenge_method").as_deref() != Some("S256") {
            return Err("code_challenge_method must be S256".to_string());
        }
        Ok(AuthorizeRequest {
            redirect_uri,
            scope,
            state: require("state")?,
            nonce: require("nonce")?,
            code_challenge,
        })
    }

    pub(crate) fn redirect_with(&self, params: &[(&str, &str)]) -> Url {
        let mut url = Url::parse(&self.redirect_uri).expect("checked by is_registered_redirect");
        url.query_pairs_mut().extend_pairs(params);
        url
    }
}

/// Every loopback URL counts as registered on the fake app (https too: the
/// HTTPS tests through the proxies), and so do the reserved `.test` names that
/// tests resolve to loopback (several domains).
pub(crate) fn is_registered_redirect(uri: &str) -> bool {
    let loopback = [
        "http://127.0.0.1",
        "http://localhost",
        "https://127.0.0.1",
        "https://localhost",
    ]
    .iter()
    .any(|origin| uri.starts_with(origin));
    let test_name = Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.ends_with(".test")))
        .unwrap_or(false);
    (loopback || test_name) && Url::parse(uri).is_ok()
}

pub(crate) async fn authorize(req: HttpRequest, fake: web::Data<FakeOkta>) -> HttpResponse {
    let server = AuthServer::of(&req);
    let query = parse_pairs(req.query_string().as_bytes());
    let (error, signed_in) = {
        let mut inner = fake.lock();
        inner.last_authorize_query = Some(query.clone());
        (inner.authorize_error.clone(), inner.signed_in.clone())
    };
    let request = match AuthorizeRequest::parse(&query) {
        Ok(request) => request,
        Err(problem) => return error_page(&problem),
    };
    if let Some(error) = error {
        let description = format!("The fake Okta was told to answer {error}.");
        let url = request.redirect_with(&[
            ("error", &error),
            ("error_description", &description),
            ("state", &request.state),
        ]);
        return found(url.as_str());
    }
    if let Some(url) = signed_in.and_then(|user_id| fake.approve(server, &request, &user_id)) {
        return found(url.as_str());
    }
    sign_in_form(server, &query, None)
}

pub(crate) async fn authorize_login(
    req: HttpRequest,
    body: web::Bytes,
    fake: web::Data<FakeOkta>,
) -> HttpResponse {
    let server = AuthServer::of(&req);
    let mut form = parse_pairs(&body);
    let username = take(&mut form, "username").unwrap_or_default();
    let request = match AuthorizeRequest::parse(&form) {
        Ok(request) => request,
        Err(problem) => return error_page(&problem),
    };
    let user_id = fake
        .lock()
        .users
        .iter()
        .find(|u| u.answers_to(username.trim()))
        .map(|u| u.id.clone());
    match user_id.and_then(|id| fake.approve(server, &request, &id)) {
        Some(url) => found(url.as_str()),
        None => sign_in_form(server, &form, Some("Unable to sign in")),
    }
}

pub(crate) fn sign_in_form(
    server: AuthServer,
    query: &[(String, String)],
    error: Option<&str>,
) -> HttpResponse {
    let hidden: String = query
        .iter()
        .map(|(k, v)| {
            format!(
                r#"    <input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v)
            ) + "\n"
        })
        .collect();
    let error = error
        .map(|e| format!(r#"  <p class="error" role="alert">{}</p>"#, escape(e)) + "\n")
        .unwrap_or_default();
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Fake Okta — development only</title></head>
<body>
  <h1>Fake Okta — development only</h1>
{error}  <form method="post" action="{action}/authorize/login">
{hidden}    <label for="okta-signin-username">Username</label>
    <input type="text" name="username" id="okta-signin-username" autocomplete="username">
    <button type="submit" id="okta-signin-submit">Sign in</button>
  </form>
</body>
</html>
"#,
        action = server.endpoints(),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page)
}

pub(crate) fn error_page(problem: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html>\n<title>Fake Okta — 400 Bad Request</title>\n<p>{}</p>\n",
            escape(problem)
        ))
}

pub(crate) async fn token(
    req: HttpRequest,
    body: web::Bytes,
    fake: web::Data<FakeOkta>,
) -> HttpResponse {
    let server = AuthServer::of(&req);
    let form: HashMap<String, String> = parse_pairs(&body).into_iter().collect();
    let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
    {
        let mut inner = fake.lock();
        inner.calls.token += 1;
        if grant_type == "refresh_token" {
            inner.calls.refresh += 1;
        }
        if inner.token_connection_drops > 0 {
            inner.token_connection_drops -= 1;
            return HttpResponse::Ok().body(BrokenBody);
        }
    }
    if !is_form(&req) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request must be application/x-www-form-urlencoded.",
        );
    }
    if grant_type == "client_credentials" {
        return service_app_token(&req, server, &form, &fake);
    }
    if !client_authenticated(&req, &form) {
        return invalid_client();
    }
    match grant_type {
        "authorization_code" => exchange_code(server, &form, &fake),
        "refresh_token" => refresh(server, &form, &fake),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        ),
    }
}

pub(crate) fn exchange_code(
    server: AuthServer,
    form: &HashMap<String, String>,
    fake: &FakeOkta,
) -> HttpResponse {
    let invalid =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let code = form.get("code").map(String::as_str).unwrap_or("");
    let (grant, user) = {
        let mut inner = fake.lock();
        let Some(entry) = inner.codes.get_mut(code) else {
            return invalid("The authorization code is invalid or has expired.");
        };
        if entry.used {
            return invalid("The authorization code is invalid or has expired.");
        }
        // One attempt per code, successful or not.
        entry.used = true;
        let grant = entry.grant.clone();
        let user = inner.user_by_id(&grant.user_id).cloned();
        (grant, user)
    };
    if grant.server != server {
        return invalid("The authorization code is invalid or has expired.");
    }
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return invalid("The 'redirect_uri' does not match the redirection URI used in the authorization request.");
    }
    let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
    if pkce_challenge(verifier) != grant.code_challenge {
        return invalid("PKCE verification failed");
    }
    match user.filter(|u| u.active) {
        Some(user) => fake.token_response(&grant, &user),
        None => invalid("The authorization code is invalid or has expired."),
    }
}

pub(crate) fn refresh(
    server: AuthServer,
    form: &HashMap<String, String>,
    fake: &FakeOkta,
) -> HttpResponse {
    let invalid = || {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The refresh token is invalid or expired.",
        )
    };
    let token = form.get("refresh_token").map(String::as_str).unwrap_or("");
    let (grant, user) = {
        let mut inner = fake.lock();
        match inner.refresh_mode {
            RefreshMode::Ok => {}
            RefreshMode::InvalidGrant => return invalid(),
            RefreshMode::ServerError => {
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "The fake Okta was told to fail.",
                )
            }
        }
        match inner.refresh_tokens.get(token) {
            Some(grant) if grant.server == server => {}
            _ => return invalid(),
        }
        // Rotation: the old refresh token dies with this use.
        let grant = inner
            .refresh_tokens
            .remove(token)
            .expect("checked just above");
        let user = inner.user_by_id(&grant.user_id).cloned();
        (grant, user)
    };
    match user.filter(|u| u.active) {
        Some(user) => fake.token_response(&grant, &user),
        None => invalid(),
    }
}

pub(crate) async fn userinfo(req: HttpRequest, fake: web::Data<FakeOkta>) -> HttpResponse {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let inner = fake.lock();
    let user = bearer
        .and_then(|token| inner.access_tokens.get(token))
        .and_then(|user_id| inner.user_by_id(user_id));
    match user {
        Some(user) => HttpResponse::Ok().json(json!({
            "sub": user.id,
            "name": user.name,
            "email": user.email,
            "email_verified": true,
            "preferred_username": user.login,
            "groups": user.group_names(),
        })),
        None => HttpResponse::Unauthorized()
            .insert_header((
                header::WWW_AUTHENTICATE,
                r#"Bearer error="invalid_token", error_description="The access token is invalid.""#,
            ))
            .finish(),
    }
}

pub(crate) async fn logout(req: HttpRequest, fake: web::Data<FakeOkta>) -> HttpResponse {
    let url = Url::parse(&format!("{}{}", fake.base_url(), req.uri()))
        .expect("a request URI on the fake's origin");
    fake.lock().logout_calls.push(url);
    let query = parse_pairs(req.query_string().as_bytes());
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("id_token_hint").is_none_or(str::is_empty) {
        return error_page("missing parameter id_token_hint");
    }
    match get("post_logout_redirect_uri") {
        None => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("signed out"),
        Some(uri) if !is_registered_redirect(uri) => {
            error_page("post_logout_redirect_uri is not a registered sign-out redirect URI")
        }
        Some(uri) => {
            let mut target = Url::parse(uri).expect("checked by is_registered_redirect");
            if let Some(state) = get("state") {
                target.query_pairs_mut().append_pair("state", state);
            }
            found(target.as_str())
        }
    }
}

pub(crate) async fn revoke(
    req: HttpRequest,
    body: web::Bytes,
    fake: web::Data<FakeOkta>,
) -> HttpResponse {
    let form: HashMap<String, String> = parse_pairs(&body).into_iter().collect();
    if !client_authenticated(&req, &form) {
        return invalid_client();
    }
    if let Some(token) = form.get("token") {
        let mut inner = fake.lock();
        inner.refresh_tokens.remove(token);
        inner.access_tokens.remove(token);
    }
    HttpResponse::Ok().finish()
}

/// `client_secret_basic` (RFC 6749 §2.3.1: both parts form-encoded) or `client_secret_post`.
pub(crate) fn client_authenticated(req: &HttpRequest, form: &HashMap<String, String>) -> bool {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let (id, secret) = match &basic {
        Some(pair) => match pair.split_once(':') {
            Some((id, secret)) => (form_decode(id), form_decode(secret)),
            None => (String::new(), String::new()),
        },
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    id == FakeOkta::CLIENT_ID && secret == FakeOkta::CLIENT_SECRET
}

pub(crate) fn invalid_client() -> HttpResponse {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed.",
    )
}

/// A body that fails at once: actix closes the connection before an answer is
/// complete.
struct BrokenBody;

impl actix_web::body::MessageBody for BrokenBody {
    type Error = std::io::Error;

    fn size(&self) -> actix_web::body::BodySize {
        actix_web::body::BodySize::Stream
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<web::Bytes, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::other(
            "the fake drops this connection on purpose",
        ))))
    }
}
