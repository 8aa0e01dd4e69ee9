//! The management API's OAuth 2.0 service app (OKTA.md "API tokens"): client
//! credentials with a private_key_jwt assertion at the org token endpoint, scope
//! checks, DPoP (use_dpop_nonce, ath, key binding) and the resource server's
//! checks on the groups API. It OWNS those checks; it must NOT serve the
//! groups themselves (`management.rs` does).

use super::*;

// ---------------------------------------------------------------------------
// The management API's OAuth 2.0 service app (OKTA.md "API tokens"): client
// credentials with a private_key_jwt assertion at the org token endpoint,
// scope checks, DPoP (use_dpop_nonce, ath, key binding) and the resource
// server's checks on the groups API.

/// The service app's client id in the fake org.
pub const SERVICE_APP_ID: &str = "0oafakeserviceapp0000";
/// What a client assertion's `aud` may live for at most (Okta: one hour).
pub(crate) const MAX_ASSERTION_LIFETIME: u64 = 3600;

/// How the service app is registered.
#[derive(Clone)]
pub struct ServiceAppRegistration {
    /// The public half of the app's client-assertion key.
    pub public_key: jsonwebtoken::jwk::Jwk,
    pub algorithm: Algorithm,
    /// "Require DPoP header in token requests" (on by default for new apps).
    pub require_dpop: bool,
    /// The Okta API scopes granted to the app.
    pub granted_scopes: Vec<String>,
}

#[derive(Default)]
pub(crate) struct ServiceAppState {
    pub(crate) app: Option<ServiceAppRegistration>,
    /// The token endpoint's current DPoP nonce.
    pub(crate) nonce: String,
    /// The groups API asks for a nonce too (`use_dpop_nonce` on 401).
    pub(crate) api_nonce: Option<String>,
    pub(crate) tokens: HashMap<String, ServiceToken>,
    pub(crate) lifetime: u64,
    pub(crate) seen_jtis: std::collections::HashSet<String>,
    pub(crate) token_requests: usize,
    pub(crate) dpop_api_calls: usize,
}

pub(crate) struct ServiceToken {
    pub(crate) scopes: Vec<String>,
    /// The DPoP key's thumbprint the token is bound to.
    pub(crate) jkt: Option<String>,
    pub(crate) expires_at: u64,
}

/// Why the groups API refuses a caller.
pub(crate) enum ApiRefusal {
    Unauthorized(&'static str),
    NonceNeeded(String),
    InsufficientScope,
}

impl ApiRefusal {
    pub(crate) fn answer(&self, rate: &RateHeaders) -> HttpResponse {
        match self {
            ApiRefusal::Unauthorized(summary) => {
                rate.okta_error(StatusCode::UNAUTHORIZED, "E0000011", summary)
            }
            ApiRefusal::NonceNeeded(nonce) => {
                let mut response = HttpResponse::Unauthorized();
                rate.apply(&mut response);
                response
                    .insert_header((
                        header::WWW_AUTHENTICATE,
                        r#"DPoP algs="ES256 RS256", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
                    ))
                    .insert_header(("DPoP-Nonce", nonce.as_str()))
                    .json(json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided"}))
            }
            ApiRefusal::InsufficientScope => {
                let mut response = rate.okta_error(
                    StatusCode::FORBIDDEN,
                    "E0000006",
                    "You do not have permission to perform the requested action",
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        r#"Bearer authorization_uri="http://127.0.0.1/oauth2/v1/authorize", realm="http://127.0.0.1", scope="okta.users.read", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="/api/v1/users""#,
                    ),
                );
                response
            }
        }
    }
}

impl FakeOkta {
    /// Registers the API service app.
    pub fn register_service_app(&self, app: ServiceAppRegistration) {
        let mut service = self.state.service.lock().unwrap_or_else(|e| e.into_inner());
        service.app = Some(app);
        service.nonce = random_token();
        if service.lifetime == 0 {
            service.lifetime = 3600;
        }
    }

    /// The token endpoint starts asking for a new DPoP nonce.
    pub fn rotate_dpop_nonce(&self) {
        self.service().nonce = random_token();
    }

    /// The groups API asks DPoP callers for a nonce too.
    pub fn require_api_dpop_nonce(&self) {
        self.service().api_nonce = Some(random_token());
    }

    /// Every service-app access token stops working (revoked at Okta).
    pub fn revoke_service_tokens(&self) {
        self.service().tokens.clear();
    }

    /// Lifetime of the service app's access tokens (Okta: fixed at one hour).
    pub fn set_service_token_lifetime(&self, secs: u64) {
        self.service().lifetime = secs;
    }

    /// Token requests by the service app, successful or not.
    pub fn service_token_requests(&self) -> usize {
        self.service().token_requests
    }

    /// Service tokens issued and still valid.
    pub fn service_tokens_issued(&self) -> usize {
        self.service().tokens.len()
    }

    /// Groups calls made with a DPoP-bound token and a valid proof.
    pub fn dpop_api_calls(&self) -> usize {
        self.service().dpop_api_calls
    }

    pub(crate) fn service(&self) -> MutexGuard<'_, ServiceAppState> {
        self.state.service.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who may call the management API: the SSWS token, or a service-app
    /// access token with `okta.users.read` (DPoP-bound ones with a valid proof).
    pub(crate) fn api_caller(&self, req: &HttpRequest) -> Result<(), ApiRefusal> {
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if authorization == format!("SSWS {}", Self::API_TOKEN) {
            return Ok(());
        }
        let (scheme, token) = authorization.split_once(' ').unwrap_or_default();
        let htu = format!("{}{}", self.base_url(), req.path());
        let mut service = self.service();
        let now = now_secs();
        let Some(issued) = service.tokens.get(token).filter(|t| t.expires_at > now) else {
            return Err(ApiRefusal::Unauthorized("Invalid token provided"));
        };
        let (scopes, jkt) = (issued.scopes.clone(), issued.jkt.clone());
        match (scheme, jkt) {
            ("Bearer", None) => {}
            ("DPoP", Some(jkt)) => {
                let proof = req
                    .headers()
                    .get("DPoP")
                    .and_then(|v| v.to_str().ok())
                    .ok_or(ApiRefusal::Unauthorized(
                        "The DPoP proof JWT header is missing.",
                    ))?;
                let checked = check_dpop_proof(&mut service, proof, "GET", &htu, Some(token))
                    .map_err(ApiRefusal::Unauthorized)?;
                if checked.jkt != jkt {
                    return Err(ApiRefusal::Unauthorized(
                        "The DPoP proof is not signed by the key the token is bound to.",
                    ));
                }
                if let Some(nonce) = service.api_nonce.clone() {
                    if checked.nonce.as_deref() != Some(nonce.as_str()) {
                        return Err(ApiRefusal::NonceNeeded(nonce));
                    }
                }
                service.dpop_api_calls += 1;
            }
            // A DPoP-bound token presented as Bearer, or the other way round.
            _ => return Err(ApiRefusal::Unauthorized("Invalid token provided")),
        }
        if !scopes.iter().any(|s| s == "okta.users.read") {
            return Err(ApiRefusal::InsufficientScope);
        }
        Ok(())
    }
}

/// What a valid DPoP proof said.
pub(crate) struct CheckedProof {
    pub(crate) jkt: String,
    pub(crate) nonce: Option<String>,
}

/// Checks a DPoP proof (RFC 9449 §4.3): typ, an asymmetric alg, the public key
/// in the header and the signature with it, htm, htu, a recent iat, a jti not
/// seen before, and `ath` when it goes with an access token.
pub(crate) fn check_dpop_proof(
    service: &mut ServiceAppState,
    proof: &str,
    method: &str,
    htu: &str,
    access_token: Option<&str>,
) -> Result<CheckedProof, &'static str> {
    let invalid = "The DPoP proof JWT is invalid.";
    let header = jsonwebtoken::decode_header(proof).map_err(|_| invalid)?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err("The DPoP proof JWT header has the wrong typ.");
    }
    if !matches!(
        header.alg,
        Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
    ) {
        return Err("The DPoP proof JWT uses an unsupported alg.");
    }
    let jwk = header.jwk.ok_or("The DPoP proof JWT header has no jwk.")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| invalid)?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map_err(|_| "The DPoP proof JWT signature is invalid.")?
        .claims;
    if claims["htm"] != method {
        return Err("The DPoP proof htm does not match the request method.");
    }
    if claims["htu"] != htu {
        return Err("The DPoP proof htu does not match the request URL.");
    }
    let iat = claims["iat"].as_u64().ok_or(invalid)?;
    if iat.abs_diff(now_secs()) > 60 {
        return Err("The DPoP proof iat is not recent.");
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or(invalid)?;
    if !service.seen_jtis.insert(jti.to_string()) {
        return Err("The DPoP proof jti was used before.");
    }
    if let Some(token) = access_token {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if claims["ath"] != ath.as_str() {
            return Err("The DPoP proof ath does not match the access token.");
        }
    }
    Ok(CheckedProof {
        jkt: jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256),
        nonce: claims["nonce"].as_str().map(str::to_owned),
    })
}

/// `grant_type=client_credentials` at the token endpoint.
pub(crate) fn service_app_token(
    req: &HttpRequest,
    server: AuthServer,
    form: &HashMap<String, String>,
    fake: &FakeOkta,
) -> HttpResponse {
    let token_url = format!("{}{}/token", fake.base_url(), server.endpoints());
    let mut service = fake.service();
    service.token_requests += 1;
    let Some(app) = service.app.clone() else {
        return invalid_client();
    };
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return invalid_client();
    }
    // The client assertion: signed with the registered key, iss = sub = the
    // client id, aud = this token URL, a bounded exp, a jti used once.
    let assertion = form
        .get("client_assertion")
        .map(String::as_str)
        .unwrap_or("");
    let refused = |why: &str| oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return refused("The client_assertion is not a JWT.");
    };
    if header.alg != app.algorithm {
        return refused("The client_assertion was signed with an unexpected algorithm.");
    }
    let Ok(key) = jsonwebtoken::DecodingKey::from_jwk(&app.public_key) else {
        return refused("The registered key is unusable.");
    };
    let mut validation = jsonwebtoken::Validation::new(app.algorithm);
    validation.set_audience(&[token_url.as_str()]);
    validation.set_issuer(&[SERVICE_APP_ID]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = 0;
    let claims = match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return refused("The client_assertion signature or claims are invalid."),
    };
    if claims["sub"] != SERVICE_APP_ID {
        return refused("The client_assertion sub must be the client id.");
    }
    let exp = claims["exp"].as_u64().unwrap_or(0);
    if exp > now_secs() + MAX_ASSERTION_LIFETIME {
        return refused("The client_assertion expires too far in the future.");
    }
    match claims["jti"].as_str() {
        Some(jti) if !jti.is_empty() => {
            if !service.seen_jtis.insert(format!("assertion:{jti}")) {
                return refused("The client_assertion token has already been used.");
            }
        }
        _ => return refused("The client_assertion has no jti."),
    }
    // Okta API scopes are the org server's only.
    let requested: Vec<String> = form
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let not_allowed: Vec<&String> = requested
        .iter()
        .filter(|s| server == AuthServer::Custom || !app.granted_scopes.contains(s))
        .collect();
    if requested.is_empty() || !not_allowed.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The following scopes are not allowed: okta.users.read",
        );
    }
    // DPoP: required by the app, or offered by the client.
    let proof = req.headers().get("DPoP").and_then(|v| v.to_str().ok());
    let jkt = match proof {
        None if app.require_dpop => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "The DPoP proof JWT header is missing.",
            )
        }
        None => None,
        Some(proof) => {
            let checked = match check_dpop_proof(&mut service, proof, "POST", &token_url, None) {
                Ok(checked) => checked,
                Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", why),
            };
            if checked.jkt
                == app
                    .public_key
                    .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_dpop_proof",
                    "The DPoP proof must not be signed with the client authentication key.",
                );
            }
            if checked.nonce.as_deref() != Some(service.nonce.as_str()) {
                return HttpResponse::BadRequest()
                    .insert_header(("DPoP-Nonce", service.nonce.clone()))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .json(json!({
                        "error": "use_dpop_nonce",
                        "error_description": "Authorization server requires nonce in DPoP proof."
                    }));
            }
            Some(checked.jkt)
        }
    };
    let token = random_token();
    let lifetime = service.lifetime.max(1);
    let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
    service.tokens.insert(
        token.clone(),
        ServiceToken {
            scopes: requested.clone(),
            jkt,
            expires_at: now_secs() + lifetime,
        },
    );
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "token_type": token_type,
            "expires_in": lifetime,
            "access_token": token,
            "scope": requested.join(" "),
        }))
}
