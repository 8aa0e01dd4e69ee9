//! A fake Okta: a test double for forward-auth's tests, demo and benchmark, development only.
//!
//! It OWNS the org authorization server and the custom server `default` (discovery, JWKS,
//! authorize, token, userinfo, logout, revoke), the management API's groups endpoint and a
//! user's status at `/api/v1/users/{id}`, over plain HTTP on 127.0.0.1. Its shapes and rules
//! follow `OKTA.md`: exact issuers, PKCE, one-time codes, rotating refresh tokens, separate
//! `Link` headers, `X-Rate-Limit-*` headers and Okta error bodies. Callers steer it through
//! [`FakeOkta`]. It must NOT be deployed, know the service's internals, or talk to anything
//! but loopback: it signs only with the throwaway keys in `tests/keys/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test double: when the fake itself breaks, the test should stop loudly"
)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

const KEY_1_PEM: &str = include_str!("../../../tests/keys/test-key-1.pem");
const KEY_2_PEM: &str = include_str!("../../../tests/keys/test-key-2.pem");
const KEY_1_JWK: &str = include_str!("../../../tests/keys/test-key-1.jwk.json");
const KEY_2_JWK: &str = include_str!("../../../tests/keys/test-key-2.jwk.json");

/// The rate limit the groups API announces in `X-Rate-Limit-Limit`.
const DEFAULT_RATE_LIMIT: u64 = 600;
/// Okta's largest page for `/api/v1/users/{id}/groups`.
const MAX_GROUPS_PAGE: usize = 200;

/// A user of the fake org.
#[derive(Clone, Debug)]
pub struct FakeUser {
    /// Okta user id, `00u…`: the ID token's `sub`.
    pub id: String,
    pub login: String,
    pub email: String,
    pub name: String,
    /// `(group id "00g…", group name)`, in the order the groups API lists them.
    pub groups: Vec<(String, String)>,
    pub active: bool,
}

impl FakeUser {
    /// `FakeUser::new("dave", &["staff"])`: login `dave@example.com`, id `00udave…`,
    /// groups `Everyone` (like every Okta user) followed by the given ones.
    pub fn new(login_prefix: &str, groups: &[&str]) -> FakeUser {
        let mut name = login_prefix.to_string();
        if let Some(first) = name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let login = format!("{login_prefix}@example.com");
        FakeUser {
            id: okta_id("00u", login_prefix),
            email: login.clone(),
            login,
            name: format!("{name} Example"),
            groups: std::iter::once(everyone())
                .chain(groups.iter().map(|g| group(g)))
                .collect(),
            active: true,
        }
    }

    fn group_names(&self) -> Vec<&str> {
        self.groups.iter().map(|(_, name)| name.as_str()).collect()
    }

    /// Okta accepts the full login; tests may use the part before `@`.
    fn answers_to(&self, login_or_prefix: &str) -> bool {
        self.login == login_or_prefix
            || self
                .login
                .strip_prefix(login_or_prefix)
                .is_some_and(|rest| rest.starts_with('@'))
    }
}

/// The built-in group every Okta user belongs to.
pub fn everyone() -> (String, String) {
    group("Everyone")
}

/// A group with a stable id derived from its name.
pub fn group(name: &str) -> (String, String) {
    (okta_id("00g", name), name.to_string())
}

/// Okta-looking id: a 3-character type prefix and the slug padded with zeros, e.g.
/// `00ualice0000000000000`; long names fall back to a hash so ids stay distinct.
fn okta_id(prefix: &str, name: &str) -> String {
    let slug: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if slug.len() <= 18 {
        format!("{prefix}{slug:0<18}")
    } else {
        let digest = Sha256::digest(name.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{prefix}{}", &hex[..18])
    }
}

/// How the next ID tokens are spoiled, to prove the service rejects them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTweak {
    None,
    WrongAudience,
    WrongNonce,
    Expired,
    WrongIssuer,
    UnknownKid,
    BadSignature,
    NoneAlg,
    /// A valid token whose `email_verified` is false.
    EmailUnverified,
}

/// How the token endpoint answers `grant_type=refresh_token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshMode {
    Ok,
    InvalidGrant,
    ServerError,
}

/// The two authorization servers of an Okta org.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthServer {
    Org,
    Custom,
}

impl AuthServer {
    fn of(req: &HttpRequest) -> AuthServer {
        if req.path().starts_with("/oauth2/default/") {
            AuthServer::Custom
        } else {
            AuthServer::Org
        }
    }

    /// The issuer's path on the origin.
    fn prefix(self) -> &'static str {
        match self {
            AuthServer::Org => "",
            AuthServer::Custom => "/oauth2/default",
        }
    }

    /// Where the server's OAuth endpoints live.
    fn endpoints(self) -> &'static str {
        match self {
            AuthServer::Org => "/oauth2/v1",
            AuthServer::Custom => "/oauth2/default/v1",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SigningKey {
    One,
    Two,
}

impl SigningKey {
    fn kid(self) -> &'static str {
        match self {
            SigningKey::One => "test-key-1",
            SigningKey::Two => "test-key-2",
        }
    }

    fn public_jwk(self) -> Value {
        let text = match self {
            SigningKey::One => KEY_1_JWK,
            SigningKey::Two => KEY_2_JWK,
        };
        serde_json::from_str(text).expect("tests/keys hold valid JWK JSON")
    }
}

/// What a code or a refresh token stands for.
#[derive(Clone, Debug)]
struct Grant {
    server: AuthServer,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    user_id: String,
    scope: String,
    sid: String,
    auth_time: u64,
}

struct CodeEntry {
    grant: Grant,
    used: bool,
}

#[derive(Default)]
struct Calls {
    groups: usize,
    groups_by_user: HashMap<String, usize>,
    /// `GET /api/v1/users/{id}` requests, by user id.
    user_by_id: HashMap<String, usize>,
    /// When each groups API request arrived, by user id.
    groups_times_by_user: HashMap<String, Vec<std::time::Instant>>,
    token: usize,
    refresh: usize,
    discovery: usize,
    jwks: usize,
}

struct Inner {
    users: Vec<FakeUser>,
    signed_in: Option<String>,
    authorize_error: Option<String>,
    tweak: TokenTweak,
    token_lifetime: u64,
    refresh_mode: RefreshMode,
    key: SigningKey,
    groups_page_size: usize,
    groups_delay: Duration,
    rate_limited_until: Option<u64>,
    /// Okta-style per-minute budget of the groups API: (limit, window start, calls in it).
    rate_limit: u64,
    rate_window: (u64, u64),
    groups_failure: Option<u16>,
    /// Okta statuses set by tests (`set_status`); others are `ACTIVE`, or
    /// `DEPROVISIONED` for a user made inactive with `set_active(false)`.
    statuses: HashMap<String, String>,
    calls: Calls,
    logout_calls: Vec<Url>,
    /// The Okta session id (`sid`) of the last approved sign-in.
    last_sid: Option<String>,
    last_authorize_query: Option<Vec<(String, String)>>,
    codes: HashMap<String, CodeEntry>,
    refresh_tokens: HashMap<String, Grant>,
    access_tokens: HashMap<String, String>,
}

impl Inner {
    fn user_by_id(&self, user_id: &str) -> Option<&FakeUser> {
        self.users.iter().find(|u| u.id == user_id)
    }

    fn user_by_id_or_login(&self, key: &str) -> Option<&FakeUser> {
        // Okta takes the id, the login or the login's short name.
        self.users.iter().find(|u| u.id == key || u.answers_to(key))
    }

    fn user_by_id_mut(&mut self, user_id: &str) -> &mut FakeUser {
        self.users
            .iter_mut()
            .find(|u| u.id == user_id)
            .unwrap_or_else(|| panic!("fake Okta has no user {user_id}"))
    }
}

struct State {
    base_url: String,
    keys: [EncodingKey; 2],
    /// The API service app and its tokens (see the end of this file).
    service: Mutex<ServiceAppState>,
    inner: Mutex<Inner>,
    /// Where the org tells apps that access ended (see `AccessEnd`).
    access_end: Mutex<AccessEnd>,
}

/// Handle on a running fake Okta; clones share the same server.
#[derive(Clone)]
pub struct FakeOkta {
    state: Arc<State>,
}

impl FakeOkta {
    pub const CLIENT_ID: &'static str = "fake-client-id";
    pub const CLIENT_SECRET: &'static str = "fake-client-secret";
    pub const API_TOKEN: &'static str = "fake-ssws-token";

    /// Binds 127.0.0.1:0 and serves in the current Tokio runtime, with users alice
    /// (Everyone, admins), bob (Everyone, staff) and carol (Everyone).
    pub async fn start() -> FakeOkta {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind the fake Okta to a loopback port");
        Self::serve(listener)
    }

    /// Like [`start`](Self::start) on a chosen port of 127.0.0.1 (0: any free one),
    /// for the development demo (`examples/demo.rs`), whose URLs must stay put.
    pub async fn start_on_port(port: u16) -> std::io::Result<FakeOkta> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        Ok(Self::serve(listener))
    }

    /// Serves on a bound loopback listener in the current Tokio runtime.
    fn serve(listener: TcpListener) -> FakeOkta {
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let keys = [
            EncodingKey::from_rsa_pem(KEY_1_PEM.as_bytes()).expect("tests/keys/test-key-1.pem"),
            EncodingKey::from_rsa_pem(KEY_2_PEM.as_bytes()).expect("tests/keys/test-key-2.pem"),
        ];
        let inner = Inner {
            users: vec![
                FakeUser::new("alice", &["admins"]),
                FakeUser::new("bob", &["staff"]),
                FakeUser::new("carol", &[]),
            ],
            signed_in: None,
            authorize_error: None,
            tweak: TokenTweak::None,
            token_lifetime: 3600,
            refresh_mode: RefreshMode::Ok,
            key: SigningKey::One,
            groups_page_size: MAX_GROUPS_PAGE,
            groups_delay: Duration::ZERO,
            rate_limited_until: None,
            rate_limit: DEFAULT_RATE_LIMIT,
            rate_window: (0, 0),
            groups_failure: None,
            statuses: HashMap::new(),
            calls: Calls::default(),
            logout_calls: Vec::new(),
            last_sid: None,
            last_authorize_query: None,
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
        };
        let fake = FakeOkta {
            state: Arc::new(State {
                base_url: format!("http://127.0.0.1:{port}"),
                keys,
                inner: Mutex::new(inner),
                access_end: Mutex::new(AccessEnd::default()),
                service: Mutex::new(ServiceAppState::default()),
            }),
        };
        let data = web::Data::new(fake.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("serve the fake Okta on its listener")
            .run();
        tokio::spawn(server);
        fake
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: the org origin and org issuer.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    pub fn org_issuer(&self) -> String {
        self.base_url()
    }

    pub fn custom_issuer(&self) -> String {
        format!("{}/oauth2/default", self.base_url())
    }

    fn issuer(&self, server: AuthServer) -> String {
        format!("{}{}", self.base_url(), server.prefix())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock must not hide other failures.
        self.state.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user whose login is `login_prefix` or starts with `login_prefix@`.
    pub fn user(&self, login_prefix: &str) -> FakeUser {
        self.lock()
            .users
            .iter()
            .find(|u| u.answers_to(login_prefix))
            .cloned()
            .unwrap_or_else(|| panic!("fake Okta has no user {login_prefix}"))
    }

    /// Adds the user as given (use `FakeUser::new` to get `Everyone`); replaces one with the same id.
    pub fn add_user(&self, user: FakeUser) {
        let mut inner = self.lock();
        inner.users.retain(|u| u.id != user.id);
        inner.users.push(user);
    }

    pub fn set_groups(&self, user_id: &str, groups: Vec<(String, String)>) {
        self.lock().user_by_id_mut(user_id).groups = groups;
    }

    /// A deactivated user keeps answering on the groups API (like Okta), but can neither
    /// sign in nor refresh.
    pub fn set_active(&self, user_id: &str, active: bool) {
        let mut inner = self.lock();
        inner.user_by_id_mut(user_id).active = active;
        inner.statuses.remove(user_id);
    }

    /// Sets the user's Okta status (`SUSPENDED`, `DEPROVISIONED`, `LOCKED_OUT`,
    /// `ACTIVE`, ...), as `GET /api/v1/users/{id}` reports it. Like Okta, the
    /// groups API keeps answering whatever the status; only an `ACTIVE` user can
    /// sign in or refresh here.
    pub fn set_status(&self, user_id: &str, status: &str) {
        let mut inner = self.lock();
        inner.user_by_id_mut(user_id).active = status == "ACTIVE";
        inner
            .statuses
            .insert(user_id.to_string(), status.to_string());
    }

    /// When each groups API request for this user arrived, oldest first.
    pub fn groups_call_times_for(&self, user_id: &str) -> Vec<std::time::Instant> {
        self.lock()
            .calls
            .groups_times_by_user
            .get(user_id)
            .cloned()
            .unwrap_or_default()
    }

    /// `GET /api/v1/users/{id}` requests for this user (asked for by id or login).
    pub fn user_calls_for(&self, user_id: &str) -> usize {
        self.lock()
            .calls
            .user_by_id
            .get(user_id)
            .copied()
            .unwrap_or(0)
    }

    /// Afterwards the groups API answers 404 `E0000007` and refresh fails.
    pub fn delete_user(&self, user_id: &str) {
        let mut inner = self.lock();
        inner.user_by_id_mut(user_id);
        inner.users.retain(|u| u.id != user_id);
    }

    /// Until changed, `/authorize` approves this user at once (an Okta session in the browser).
    pub fn sign_in_as(&self, user_id: &str) {
        self.lock().signed_in = Some(user_id.to_string());
    }

    /// `/authorize` shows the sign-in form again.
    pub fn sign_out_browser(&self) {
        self.lock().signed_in = None;
    }

    /// `Some("access_denied")`: `/authorize` redirects back with that error.
    pub fn set_authorize_error(&self, error: Option<&str>) {
        self.lock().authorize_error = error.map(str::to_string);
    }

    pub fn set_token_tweak(&self, tweak: TokenTweak) {
        self.lock().tweak = tweak;
    }

    /// Lifetime of ID and access tokens issued from now on (`expires_in`); default 3600.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.lock().token_lifetime = secs;
    }

    pub fn set_refresh_mode(&self, mode: RefreshMode) {
        self.lock().refresh_mode = mode;
    }

    /// An abrupt rotation: sign with the other key and list only that one in the JWKS.
    /// The first call moves from test-key-1 to test-key-2; a second call moves back.
    pub fn rotate_keys(&self) {
        let mut inner = self.lock();
        inner.key = match inner.key {
            SigningKey::One => SigningKey::Two,
            SigningKey::Two => SigningKey::One,
        };
    }

    /// The kid new tokens are signed with.
    pub fn current_kid(&self) -> String {
        self.lock().key.kid().to_string()
    }

    /// Largest page of the groups API (default 200); the page is `min(limit, this)`.
    pub fn set_groups_page_size(&self, n: usize) {
        self.lock().groups_page_size = n.clamp(1, MAX_GROUPS_PAGE);
    }

    pub fn set_groups_delay(&self, d: Duration) {
        self.lock().groups_delay = d;
    }

    /// The groups API's budget per minute (default 600, like many Okta orgs);
    /// `X-Rate-Limit-Remaining` counts down within each minute and resets.
    pub fn set_rate_limit(&self, per_minute: u64) {
        self.lock().rate_limit = per_minute;
    }

    /// While now < `until_epoch_secs`, the groups API answers 429 with `X-Rate-Limit-Reset: until`.
    pub fn set_rate_limited(&self, until_epoch_secs: Option<u64>) {
        self.lock().rate_limited_until = until_epoch_secs;
    }

    /// `Some(503)`: the groups API fails with that status.
    pub fn set_groups_failure(&self, status: Option<u16>) {
        self.lock().groups_failure = status;
    }

    /// Groups API requests: every page, every user, failures and 429s included.
    pub fn groups_calls(&self) -> usize {
        self.lock().calls.groups
    }

    /// Groups API requests for this user (asked for by id or by login).
    pub fn groups_calls_for(&self, user_id: &str) -> usize {
        self.lock()
            .calls
            .groups_by_user
            .get(user_id)
            .copied()
            .unwrap_or(0)
    }

    /// Requests to either token endpoint, any grant type, rejected ones included.
    pub fn token_calls(&self) -> usize {
        self.lock().calls.token
    }

    /// Token endpoint requests with `grant_type=refresh_token`.
    pub fn refresh_calls(&self) -> usize {
        self.lock().calls.refresh
    }

    pub fn discovery_calls(&self) -> usize {
        self.lock().calls.discovery
    }

    pub fn jwks_calls(&self) -> usize {
        self.lock().calls.jwks
    }

    /// End-session requests received, as full URLs with their query.
    pub fn logout_calls(&self) -> Vec<Url> {
        self.lock().logout_calls.clone()
    }

    /// The Okta session id (`sid` in the ID token) of the last sign-in; each
    /// sign-in gets its own, like a browser's Okta session.
    pub fn last_sid(&self) -> Option<String> {
        self.lock().last_sid.clone()
    }

    /// The refresh tokens that are valid now (to prove they never leak).
    pub fn live_refresh_tokens(&self) -> Vec<String> {
        self.lock().refresh_tokens.keys().cloned().collect()
    }

    /// Query parameters of the last `/authorize` request, valid or not.
    pub fn last_authorize_query(&self) -> Option<Vec<(String, String)>> {
        self.lock().last_authorize_query.clone()
    }

    /// A JWT with these claims signed by the current key (`typ: logout+jwt`), for
    /// back-channel logout tests.
    pub fn sign_logout_token(&self, claims: Value) -> String {
        let key = self.lock().key;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("logout+jwt".to_string());
        header.kid = Some(key.kid().to_string());
        jsonwebtoken::encode(&header, &claims, self.encoding_key(key))
            .expect("sign with a test key")
    }

    /// The audience of the custom authorization server `default`'s access tokens.
    pub const API_AUDIENCE: &'static str = "api://default";

    /// An access token of the custom authorization server `default`, shaped
    /// like Okta's (header `kid` + `alg` RS256; `ver`, `jti`, `iss`, `aud`,
    /// `iat`, `exp`, `cid`, `scp`, and for a user `uid` and `sub` = login),
    /// signed with the current key. `user`: `None` for a client-credentials
    /// (machine) token, whose `sub` is the client id.
    pub fn mint_access_token(&self, user: Option<&FakeUser>, cid: &str, scp: &[&str]) -> String {
        let now = now_secs();
        let mut claims = json!({
            "ver": 1,
            "jti": format!("AT.{}", random_token()),
            "iss": self.custom_issuer(),
            "aud": Self::API_AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "cid": cid,
            "scp": scp,
            "sub": cid,
        });
        if let Some(user) = user {
            claims["uid"] = json!(user.id);
            claims["sub"] = json!(user.login);
            claims["auth_time"] = json!(now);
        }
        self.sign_access_token(&claims)
    }

    /// Any claims signed like an access token (RS256, current `kid`), for
    /// tests that spoil one claim.
    pub fn sign_access_token(&self, claims: &Value) -> String {
        let key = self.lock().key;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = None;
        header.kid = Some(key.kid().to_string());
        jsonwebtoken::encode(&header, claims, self.encoding_key(key)).expect("sign with a test key")
    }

    fn encoding_key(&self, key: SigningKey) -> &EncodingKey {
        match key {
            SigningKey::One => &self.state.keys[0],
            SigningKey::Two => &self.state.keys[1],
        }
    }

    /// Signs ID-token claims the way the current tweak asks.
    fn sign_id_token(&self, claims: &Value, key: SigningKey, tweak: TokenTweak) -> String {
        if tweak == TokenTweak::NoneAlg {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            return format!("{header}.{payload}.");
        }
        // Okta's ID token headers carry only `kid` and `alg`.
        let mut header = Header::new(Algorithm::RS256);
        header.typ = None;
        header.kid = Some(match tweak {
            TokenTweak::UnknownKid => "no-such-key".to_string(),
            _ => key.kid().to_string(),
        });
        let token = jsonwebtoken::encode(&header, claims, self.encoding_key(key))
            .expect("sign with a test key");
        if tweak != TokenTweak::BadSignature {
            return token;
        }
        let (signed, signature) = token.rsplit_once('.').expect("a JWS has three parts");
        let mut signature = URL_SAFE_NO_PAD
            .decode(signature)
            .expect("jsonwebtoken writes base64url");
        signature[0] ^= 0x01;
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Issues access, ID and (with `offline_access`) refresh tokens for a grant.
    fn token_response(&self, grant: &Grant, user: &FakeUser) -> HttpResponse {
        let now = now_secs();
        let access_token = random_token();
        let (tweak, lifetime, key, refresh_token) = {
            let mut inner = self.lock();
            inner
                .access_tokens
                .insert(access_token.clone(), user.id.clone());
            let refresh_token = has_scope(&grant.scope, "offline_access").then(|| {
                let token = random_token();
                let mut kept = grant.clone();
                kept.nonce = None;
                inner.refresh_tokens.insert(token.clone(), kept);
                token
            });
            (inner.tweak, inner.token_lifetime, inner.key, refresh_token)
        };
        let issuer = self.issuer(grant.server);
        let (iat, exp) = match tweak {
            TokenTweak::Expired => (now - lifetime - 600, now - 600),
            _ => (now, now + lifetime),
        };
        let mut claims = json!({
            "ver": 1,
            "iss": match tweak {
                TokenTweak::WrongIssuer => format!("{}/oauth2/someone-else", self.base_url()),
                _ => issuer,
            },
            "sub": user.id,
            "aud": match tweak {
                TokenTweak::WrongAudience => "someone-else",
                _ => Self::CLIENT_ID,
            },
            "iat": iat,
            "exp": exp,
            "jti": format!("ID.{}", random_token()),
            "amr": ["pwd"],
            "idp": "00ofakeokta000000000",
            "auth_time": grant.auth_time,
            "sid": grant.sid,
            "email": user.email,
            "email_verified": tweak != TokenTweak::EmailUnverified,
            "name": user.name,
            "preferred_username": user.login,
            "groups": user.group_names(),
        });
        if user.groups.is_empty() {
            // Okta leaves the claim out when the app's groups filter matches
            // none of the user's groups.
            claims.as_object_mut().map(|c| c.remove("groups"));
        }
        if let Some(nonce) = &grant.nonce {
            claims["nonce"] = match tweak {
                TokenTweak::WrongNonce => json!("not-the-nonce-you-sent"),
                _ => json!(nonce),
            };
        }
        let mut body = json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "access_token": access_token,
            "scope": grant.scope,
            "id_token": self.sign_id_token(&claims, key, tweak),
        });
        if let Some(refresh_token) = refresh_token {
            body["refresh_token"] = json!(refresh_token);
        }
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(body)
    }

    /// Records a code for the user and builds the redirect back to the client;
    /// `None` when the user cannot sign in (unknown or deactivated).
    fn approve(
        &self,
        server: AuthServer,
        request: &AuthorizeRequest,
        user_id: &str,
    ) -> Option<Url> {
        let mut inner = self.lock();
        if !inner.user_by_id(user_id).is_some_and(|u| u.active) {
            return None;
        }
        let code = random_token();
        let grant = Grant {
            server,
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: Some(request.nonce.clone()),
            user_id: user_id.to_string(),
            scope: request.scope.clone(),
            sid: format!("102{}", random_token()),
            auth_time: now_secs(),
        };
        inner.last_sid = Some(grant.sid.clone());
        inner
            .codes
            .insert(code.clone(), CodeEntry { grant, used: false });
        Some(request.redirect_with(&[("code", &code), ("state", &request.state)]))
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
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

async fn discovery(req: HttpRequest, fake: web::Data<FakeOkta>) -> HttpResponse {
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

async fn keys(fake: web::Data<FakeOkta>) -> HttpResponse {
    let key = {
        let mut inner = fake.lock();
        inner.calls.jwks += 1;
        inner.key
    };
    HttpResponse::Ok().json(json!({ "keys": [key.public_jwk()] }))
}

/// The parameters `/authorize` insists on; the service must always send PKCE and a nonce.
struct AuthorizeRequest {
    redirect_uri: String,
    scope: String,
    state: String,
    nonce: String,
    code_challenge: String,
}

impl AuthorizeRequest {
    fn parse(query: &[(String, String)]) -> Result<AuthorizeRequest, String> {
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

    fn redirect_with(&self, params: &[(&str, &str)]) -> Url {
        let mut url = Url::parse(&self.redirect_uri).expect("checked by is_registered_redirect");
        url.query_pairs_mut().extend_pairs(params);
        url
    }
}

/// Every loopback URL counts as registered on the fake app (https too: the
/// HTTPS tests through the proxies), and so do the reserved `.test` names that
/// tests resolve to loopback (several domains).
fn is_registered_redirect(uri: &str) -> bool {
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

async fn authorize(req: HttpRequest, fake: web::Data<FakeOkta>) -> HttpResponse {
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

async fn authorize_login(
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

fn sign_in_form(
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

fn error_page(problem: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html>\n<title>Fake Okta — 400 Bad Request</title>\n<p>{}</p>\n",
            escape(problem)
        ))
}

async fn token(req: HttpRequest, body: web::Bytes, fake: web::Data<FakeOkta>) -> HttpResponse {
    let server = AuthServer::of(&req);
    let form: HashMap<String, String> = parse_pairs(&body).into_iter().collect();
    let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
    {
        let mut inner = fake.lock();
        inner.calls.token += 1;
        if grant_type == "refresh_token" {
            inner.calls.refresh += 1;
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

fn exchange_code(
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

fn refresh(server: AuthServer, form: &HashMap<String, String>, fake: &FakeOkta) -> HttpResponse {
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

async fn userinfo(req: HttpRequest, fake: web::Data<FakeOkta>) -> HttpResponse {
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

async fn logout(req: HttpRequest, fake: web::Data<FakeOkta>) -> HttpResponse {
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

async fn revoke(req: HttpRequest, body: web::Bytes, fake: web::Data<FakeOkta>) -> HttpResponse {
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
fn client_authenticated(req: &HttpRequest, form: &HashMap<String, String>) -> bool {
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

fn invalid_client() -> HttpResponse {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed.",
    )
}

async fn user_groups(
    req: HttpRequest,
    path: web::Path<String>,
    fake: web::Data<FakeOkta>,
) -> HttpResponse {
    let asked = path.into_inner();
    let delay = {
        let mut inner = fake.lock();
        let counted_as = inner
            .user_by_id_or_login(&asked)
            .map_or_else(|| asked.clone(), |u| u.id.clone());
        inner.calls.groups += 1;
        inner
            .calls
            .groups_times_by_user
            .entry(counted_as.clone())
            .or_default()
            .push(std::time::Instant::now());
        *inner.calls.groups_by_user.entry(counted_as).or_default() += 1;
        inner.groups_delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let now = now_secs();
    let mut inner = fake.lock();
    let window = now - now % 60;
    if inner.rate_window.0 != window {
        inner.rate_window = (window, 0);
    }
    inner.rate_window.1 += 1;
    let over_budget = inner.rate_window.1 > inner.rate_limit;
    let limited_until = inner
        .rate_limited_until
        .filter(|&until| now < until)
        .or(over_budget.then_some(window + 60));
    let rate = RateHeaders {
        limit: inner.rate_limit,
        remaining: match limited_until {
            Some(_) => 0,
            None => inner.rate_limit.saturating_sub(inner.rate_window.1),
        },
        reset: limited_until.unwrap_or(window + 60),
    };
    if let Err(refusal) = fake.api_caller(&req) {
        return refusal.answer(&rate);
    }
    if let Some(status) = inner.groups_failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return rate.okta_error(status, "E0000009", "Internal Server Error");
    }
    if limited_until.is_some() {
        return rate.okta_error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        );
    }
    let Some(user) = inner.user_by_id_or_login(&asked) else {
        let summary = format!("Not found: Resource not found: {asked} (User)");
        return rate.okta_error(StatusCode::NOT_FOUND, "E0000007", &summary);
    };

    let query = parse_pairs(req.query_string().as_bytes());
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .unwrap_or(MAX_GROUPS_PAGE)
        .min(MAX_GROUPS_PAGE);
    let page_size = limit.min(inner.groups_page_size);
    let start = match get("after") {
        None => 0,
        // A cursor that matches nothing gives an empty page rather than a loop.
        Some(after) => user
            .groups
            .iter()
            .position(|(id, _)| id == after)
            .map_or(user.groups.len(), |i| i + 1),
    };
    let page: Vec<&(String, String)> = user.groups.iter().skip(start).take(page_size).collect();
    let body: Vec<Value> = page
        .iter()
        .map(|(id, name)| group_json(&fake.base_url(), id, name))
        .collect();

    let groups_url = format!("{}/api/v1/users/{}/groups", fake.base_url(), user.id);
    let self_link = match get("after") {
        Some(after) => format!(r#"<{groups_url}?after={after}&limit={limit}>; rel="self""#),
        None => format!(r#"<{groups_url}?limit={limit}>; rel="self""#),
    };
    let mut response = HttpResponse::Ok();
    rate.apply(&mut response);
    // Okta sends `self` and `next` as two separate Link headers.
    response.append_header((header::LINK, self_link));
    if start + page.len() < user.groups.len() {
        if let Some((last_id, _)) = page.last() {
            response.append_header((
                header::LINK,
                format!(r#"<{groups_url}?after={last_id}&limit={limit}>; rel="next""#),
            ));
        }
    }
    response.json(body)
}

/// `GET /api/v1/users/{id}` (Okta's Get User): the user object with its
/// `status`, 404 `E0000007` for an unknown user, 429 while rate-limited. Its
/// own per-minute bucket in Okta, so it does not count against the groups budget.
async fn get_user(
    req: HttpRequest,
    path: web::Path<String>,
    fake: web::Data<FakeOkta>,
) -> HttpResponse {
    let asked = path.into_inner();
    let now = now_secs();
    let mut inner = fake.lock();
    let counted_as = inner
        .user_by_id_or_login(&asked)
        .map_or_else(|| asked.clone(), |u| u.id.clone());
    *inner.calls.user_by_id.entry(counted_as).or_default() += 1;
    let limited_until = inner.rate_limited_until.filter(|&until| now < until);
    let rate = RateHeaders {
        limit: DEFAULT_RATE_LIMIT,
        remaining: if limited_until.is_some() {
            0
        } else {
            DEFAULT_RATE_LIMIT - 1
        },
        reset: limited_until.unwrap_or(now - now % 60 + 60),
    };
    if let Err(refusal) = fake.api_caller(&req) {
        return refusal.answer(&rate);
    }
    if limited_until.is_some() {
        return rate.okta_error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        );
    }
    let Some(user) = inner.user_by_id_or_login(&asked) else {
        let summary = format!("Not found: Resource not found: {asked} (User)");
        return rate.okta_error(StatusCode::NOT_FOUND, "E0000007", &summary);
    };
    let status = inner.statuses.get(&user.id).cloned().unwrap_or_else(|| {
        if user.active {
            "ACTIVE"
        } else {
            "DEPROVISIONED"
        }
        .to_string()
    });
    let base = fake.base_url();
    let (first, last) = user.name.split_once(' ').unwrap_or((&user.name, ""));
    let body = json!({
        "id": user.id,
        "status": status,
        "created": "2024-01-15T09:30:00.000Z",
        "activated": "2024-01-15T09:31:00.000Z",
        "statusChanged": "2024-06-01T12:00:00.000Z",
        "lastLogin": "2024-06-02T08:00:00.000Z",
        "lastUpdated": "2024-06-01T12:00:00.000Z",
        "passwordChanged": "2024-01-15T09:31:00.000Z",
        "type": { "id": "oty1fakeoktatype0000" },
        "profile": {
            "firstName": first,
            "lastName": last,
            "mobilePhone": null,
            "secondEmail": null,
            "login": user.login,
            "email": user.email,
        },
        "credentials": {
            "password": {},
            "provider": { "type": "OKTA", "name": "OKTA" },
        },
        "_links": {
            "self": { "href": format!("{base}/api/v1/users/{}", user.id) },
        },
    });
    let mut response = HttpResponse::Ok();
    rate.apply(&mut response);
    response.json(body)
}

fn group_json(base_url: &str, id: &str, name: &str) -> Value {
    let (kind, description) = if name == "Everyone" {
        ("BUILT_IN", "All users in your organization")
    } else {
        ("OKTA_GROUP", "")
    };
    json!({
        "id": id,
        "created": "2024-01-15T09:30:00.000Z",
        "lastUpdated": "2024-01-15T09:30:00.000Z",
        "lastMembershipUpdated": "2024-06-01T12:00:00.000Z",
        "objectClass": ["okta:user_group"],
        "type": kind,
        "profile": { "name": name, "description": description },
        "_links": {
            "logo": [
                {
                    "name": "medium",
                    "href": "https://ok12static.oktacdn.com/assets/img/logos/groups/okta-medium.png",
                    "type": "image/png"
                }
            ],
            "users": { "href": format!("{base_url}/api/v1/groups/{id}/users") },
            "apps": { "href": format!("{base_url}/api/v1/groups/{id}/apps") }
        }
    })
}

/// The `X-Rate-Limit-*` headers every management API response carries.
struct RateHeaders {
    limit: u64,
    remaining: u64,
    reset: u64,
}

impl RateHeaders {
    fn apply(&self, response: &mut actix_web::HttpResponseBuilder) {
        response
            .insert_header(("X-Rate-Limit-Limit", self.limit.to_string()))
            .insert_header(("X-Rate-Limit-Remaining", self.remaining.to_string()))
            .insert_header(("X-Rate-Limit-Reset", self.reset.to_string()));
    }

    fn okta_error(&self, status: StatusCode, code: &str, summary: &str) -> HttpResponse {
        let mut response = HttpResponse::build(status);
        self.apply(&mut response);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "SSWS"));
        }
        response.json(json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": format!("oae{}", &random_token()[..19]),
            "errorCauses": [],
        }))
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": error, "error_description": description }))
}

fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split_whitespace().any(|s| s == wanted)
}

/// RFC 7636 S256: base64url-nopad(sha256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn parse_pairs(input: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(input).into_owned().collect()
}

fn form_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn take(pairs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let index = pairs.iter().position(|(k, _)| k == name)?;
    Some(pairs.remove(index).1)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// 32 random bytes, base64url: codes, tokens, ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

// ---------------------------------------------------------------------------
// Telling apps that access ended (OKTA.md): event hooks, Universal Logout and
// front-channel Single Logout, plus the demo's admin page that uses them.

/// The event hook and front-channel logout URI an admin registered.
#[derive(Default)]
struct AccessEnd {
    /// (URL, the `Authorization` value Okta sends).
    event_hook: Option<(String, String)>,
    frontchannel_logout_uri: Option<String>,
}

/// A client for Okta's own outgoing calls (hooks, Universal Logout, iframes).
fn outgoing() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a reqwest client")
}

/// `2024-05-01T12:00:00.000Z` for epoch seconds, as Okta writes `published`.
pub fn okta_time(epoch_secs: u64) -> String {
    let formatted = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs(epoch_secs));
    formatted.to_string()
}

impl FakeOkta {
    /// Registers an event hook as the admin console does: Okta first verifies
    /// the URL with a GET carrying `X-Okta-Verification-Challenge` and keeps
    /// the hook only if the answer echoes it. Returns the verification answer's status.
    pub async fn register_event_hook(&self, url: &str, secret: &str) -> Result<(), String> {
        let challenge = random_token();
        let answer = outgoing()
            .get(url)
            .header("Authorization", secret)
            .header("X-Okta-Verification-Challenge", &challenge)
            .send()
            .await
            .map_err(|e| format!("verification request failed: {e}"))?;
        let status = answer.status();
        let body: Value = answer
            .json()
            .await
            .map_err(|_| format!("verification answer {status} is not JSON"))?;
        if !status.is_success() || body["verification"] != json!(challenge) {
            return Err(format!("verification failed: {status} {body}"));
        }
        self.state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event_hook = Some((url.to_string(), secret.to_string()));
        Ok(())
    }

    /// A System Log event as an event hook carries it: a fresh `uuid`,
    /// `published` now, the user as the `User` target plus `extra_targets`.
    pub fn event(&self, event_type: &str, user_id: &str, extra_targets: Vec<Value>) -> Value {
        self.event_at(event_type, user_id, extra_targets, now_secs())
    }

    /// [`event`](Self::event) published at `published` (epoch seconds).
    pub fn event_at(
        &self,
        event_type: &str,
        user_id: &str,
        extra_targets: Vec<Value>,
        published: u64,
    ) -> Value {
        let login = self
            .lock()
            .user_by_id(user_id)
            .map(|u| u.login.clone())
            .unwrap_or_default();
        let mut targets = vec![json!({
            "id": user_id, "type": "User", "alternateId": login, "displayName": login,
        })];
        targets.extend(extra_targets);
        json!({
            "uuid": uuid(),
            "published": okta_time(published),
            "eventType": event_type,
            "version": "0",
            "severity": "INFO",
            "displayMessage": event_type,
            "actor": { "id": "00uadmin000000000000", "type": "User", "alternateId": "admin@example.com" },
            "outcome": { "result": "SUCCESS" },
            "target": targets,
        })
    }

    /// The `UserGroup` target of a membership event.
    pub fn group_target(name: &str) -> Value {
        let (id, name) = group(name);
        json!({ "id": id, "type": "UserGroup", "alternateId": "unknown", "displayName": name })
    }

    /// The `AppInstance` target of an app-membership event.
    pub fn app_target(client_id: &str) -> Value {
        json!({ "id": client_id, "type": "AppInstance", "alternateId": "forward-auth", "displayName": "forward-auth" })
    }

    /// One delivery of these events (in this order) to the registered hook,
    /// with the registered `Authorization`; the service's status.
    pub async fn deliver_events(&self, events: Vec<Value>) -> reqwest::StatusCode {
        let (url, secret) = self
            .state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event_hook
            .clone()
            .expect("register_event_hook first");
        self.deliver_events_to(&url, &secret, events).await
    }

    /// One delivery to any URL with any `Authorization` value.
    pub async fn deliver_events_to(
        &self,
        url: &str,
        authorization: &str,
        events: Vec<Value>,
    ) -> reqwest::StatusCode {
        let body = json!({
            "eventType": "com.okta.event_hook",
            "eventTypeVersion": "1.0",
            "cloudEventsVersion": "0.1",
            "source": format!("{}/api/v1/eventHooks/whofake0000000000000", self.base_url()),
            "eventId": uuid(),
            "eventTime": okta_time(now_secs()),
            "contentType": "application/json",
            "data": { "events": events },
        });
        outgoing()
            .post(url)
            .header("Authorization", authorization)
            .json(&body)
            .send()
            .await
            .expect("the event hook answers")
            .status()
    }

    /// Removes the user from a group, as an admin would, and (with a hook
    /// registered) delivers `group.user_membership.remove`.
    pub async fn remove_from_group(
        &self,
        user_id: &str,
        name: &str,
    ) -> Option<reqwest::StatusCode> {
        self.lock()
            .user_by_id_mut(user_id)
            .groups
            .retain(|(_, n)| n != name);
        self.notify(self.event(
            "group.user_membership.remove",
            user_id,
            vec![Self::group_target(name)],
        ))
        .await
    }

    /// Adds the user to a group and delivers `group.user_membership.add`.
    pub async fn add_to_group(&self, user_id: &str, name: &str) -> Option<reqwest::StatusCode> {
        {
            let mut inner = self.lock();
            let user = inner.user_by_id_mut(user_id);
            if !user.groups.iter().any(|(_, n)| n == name) {
                user.groups.push(group(name));
            }
        }
        self.notify(self.event(
            "group.user_membership.add",
            user_id,
            vec![Self::group_target(name)],
        ))
        .await
    }

    /// Deactivates the user and delivers `user.lifecycle.deactivate`.
    pub async fn deactivate(&self, user_id: &str) -> Option<reqwest::StatusCode> {
        self.set_active(user_id, false);
        self.notify(self.event("user.lifecycle.deactivate", user_id, vec![]))
            .await
    }

    /// Delivers one event to the registered hook, if any.
    async fn notify(&self, event: Value) -> Option<reqwest::StatusCode> {
        let registered = self
            .state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event_hook
            .is_some();
        if registered {
            Some(self.deliver_events(vec![event]).await)
        } else {
            None
        }
    }

    /// A Universal Logout token as Okta signs it: header `typ`
    /// `global-token-revocation+jwt` and the current ID-token key; `iss` the
    /// org, `sub` the client id, `aud` the endpoint, `exp` +5 min, `nbf` −5 min.
    /// `changes` replace claims (`null` removes one).
    pub fn sign_universal_logout_token(&self, aud: &str, changes: Value) -> String {
        let now = now_secs();
        let mut claims = json!({
            "iss": self.org_issuer(),
            "sub": Self::CLIENT_ID,
            "aud": aud,
            "iat": now,
            "nbf": now - 300,
            "exp": now + 300,
            "jti": format!("gtr.{}", random_token()),
        });
        for (name, value) in changes.as_object().expect("changes is an object") {
            if value.is_null() {
                claims.as_object_mut().expect("an object").remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        let key = self.lock().key;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("global-token-revocation+jwt".to_string());
        header.kid = Some(key.kid().to_string());
        jsonwebtoken::encode(&header, &claims, self.encoding_key(key))
            .expect("sign with a test key")
    }

    /// Universal Logout of a user, as Okta calls it: POST `endpoint` with a
    /// fresh token and `{"sub_id":{"format":"iss_sub",…}}`.
    pub async fn universal_logout(&self, endpoint: &str, user_id: &str) -> reqwest::StatusCode {
        let token = self.sign_universal_logout_token(endpoint, json!({}));
        let body =
            json!({ "sub_id": { "format": "iss_sub", "iss": self.org_issuer(), "sub": user_id } });
        outgoing()
            .post(endpoint)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("the revocation endpoint answers")
            .status()
    }

    /// The app's front-channel logout URI ("Single Logout", "session required").
    pub fn set_frontchannel_logout_uri(&self, uri: Option<&str>) {
        self.state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frontchannel_logout_uri = uri.map(str::to_string);
    }

    /// Single Logout of the Okta session `sid`: loads the app's front-channel
    /// logout URI with `iss` and `sid`, as the hidden iframe would. `None`
    /// without a registered URI.
    pub async fn single_logout(&self, sid: &str) -> Option<reqwest::Response> {
        let uri = self
            .state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frontchannel_logout_uri
            .clone()?;
        let mut url = Url::parse(&uri).expect("a registered URI is a URL");
        url.query_pairs_mut()
            .append_pair("iss", &self.org_issuer())
            .append_pair("sid", sid);
        Some(
            outgoing()
                .get(url)
                .header("Sec-Fetch-Dest", "iframe")
                .send()
                .await
                .expect("the front-channel logout URI answers"),
        )
    }
}

/// An Okta-looking event `uuid` (a random v4 UUID).
fn uuid() -> String {
    let bytes = Sha256::digest(random_token().as_bytes());
    let hex: String = bytes[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The demo's stand-in for the Okta admin console: a page listing the users,
/// with buttons that remove a user from a group or deactivate them; each
/// change is delivered to the registered event hook at once.
fn demo_admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo/admin", web::get().to(demo_admin_page))
        .route("/demo/admin/remove", web::post().to(demo_admin_remove))
        .route(
            "/demo/admin/deactivate",
            web::post().to(demo_admin_deactivate),
        );
}

async fn demo_admin_page(fake: web::Data<FakeOkta>) -> HttpResponse {
    let users = fake.lock().users.clone();
    let mut rows = String::new();
    for user in &users {
        let mut groups = String::new();
        for (_, name) in user.groups.iter().filter(|(_, n)| n != "Everyone") {
            groups.push_str(&format!(
                "<form method=\"post\" action=\"/demo/admin/remove\" style=\"display:inline\">\
                 <input type=\"hidden\" name=\"user\" value=\"{id}\">\
                 <input type=\"hidden\" name=\"group\" value=\"{group}\">\
                 <button>remove from {group}</button></form> ",
                id = escape(&user.id),
                group = escape(name),
            ));
        }
        let status = if user.active {
            "ACTIVE"
        } else {
            "DEPROVISIONED"
        };
        rows.push_str(&format!(
            "<tr><td>{login}</td><td>{status}</td><td>{groups}</td><td>\
             <form method=\"post\" action=\"/demo/admin/deactivate\">\
             <input type=\"hidden\" name=\"user\" value=\"{id}\"><button>deactivate</button></form></td></tr>",
            login = escape(&user.login),
            id = escape(&user.id),
        ));
    }
    let hook = fake
        .state
        .access_end
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .event_hook
        .as_ref()
        .map(|(url, _)| escape(url))
        .unwrap_or_else(|| "none registered".into());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Fake Okta admin</title></head><body>\
             <h1>Fake Okta admin (development only)</h1><p>Event hook: {hook}</p>\
             <table><tr><th>user</th><th>status</th><th>groups</th><th></th></tr>{rows}</table></body></html>"
        ))
}

async fn demo_admin_remove(body: web::Bytes, fake: web::Data<FakeOkta>) -> HttpResponse {
    let form: HashMap<String, String> = parse_pairs(&body).into_iter().collect();
    let (Some(user), Some(group)) = (form.get("user"), form.get("group")) else {
        return error_page("user and group are required");
    };
    if fake.lock().user_by_id(user).is_none() {
        return error_page("no such user");
    }
    let _ = fake.remove_from_group(user, group).await;
    found("/demo/admin")
}

async fn demo_admin_deactivate(body: web::Bytes, fake: web::Data<FakeOkta>) -> HttpResponse {
    let form: HashMap<String, String> = parse_pairs(&body).into_iter().collect();
    let Some(user) = form.get("user") else {
        return error_page("user is required");
    };
    if fake.lock().user_by_id(user).is_none() {
        return error_page("no such user");
    }
    let _ = fake.deactivate(user).await;
    found("/demo/admin")
}

// ---------------------------------------------------------------------------
// The management API's OAuth 2.0 service app (OKTA.md "API tokens"): client
// credentials with a private_key_jwt assertion at the org token endpoint,
// scope checks, DPoP (use_dpop_nonce, ath, key binding) and the resource
// server's checks on the groups API.

/// The service app's client id in the fake org.
pub const SERVICE_APP_ID: &str = "0oafakeserviceapp0000";
/// What a client assertion's `aud` may live for at most (Okta: one hour).
const MAX_ASSERTION_LIFETIME: u64 = 3600;

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
struct ServiceAppState {
    app: Option<ServiceAppRegistration>,
    /// The token endpoint's current DPoP nonce.
    nonce: String,
    /// The groups API asks for a nonce too (`use_dpop_nonce` on 401).
    api_nonce: Option<String>,
    tokens: HashMap<String, ServiceToken>,
    lifetime: u64,
    seen_jtis: std::collections::HashSet<String>,
    token_requests: usize,
    dpop_api_calls: usize,
}

struct ServiceToken {
    scopes: Vec<String>,
    /// The DPoP key's thumbprint the token is bound to.
    jkt: Option<String>,
    expires_at: u64,
}

/// Why the groups API refuses a caller.
enum ApiRefusal {
    Unauthorized(&'static str),
    NonceNeeded(String),
    InsufficientScope,
}

impl ApiRefusal {
    fn answer(&self, rate: &RateHeaders) -> HttpResponse {
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

    fn service(&self) -> MutexGuard<'_, ServiceAppState> {
        self.state.service.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who may call the management API: the SSWS token, or a service-app
    /// access token with `okta.users.read` (DPoP-bound ones with a valid proof).
    fn api_caller(&self, req: &HttpRequest) -> Result<(), ApiRefusal> {
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
struct CheckedProof {
    jkt: String,
    nonce: Option<String>,
}

/// Checks a DPoP proof (RFC 9449 §4.3): typ, an asymmetric alg, the public key
/// in the header and the signature with it, htm, htu, a recent iat, a jti not
/// seen before, and `ath` when it goes with an access token.
fn check_dpop_proof(
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
fn service_app_token(
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
