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

mod access_end;
mod management;
mod oauth;
mod service_app;
mod util;

pub use access_end::*;
use management::*;
use oauth::*;
pub use service_app::*;
use util::*;
pub use util::{pkce_challenge, random_token};

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
    /// Token requests still to be answered by closing the connection.
    token_connection_drops: usize,
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
            token_connection_drops: 0,
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

    /// The next `n` token requests (any grant) are answered by closing the
    /// connection before a complete answer, acting on nothing: what a
    /// client sees when it sends on a kept-alive connection the server had
    /// just closed. They count in [`token_calls`](Self::token_calls).
    pub fn drop_token_connections(&self, n: usize) {
        self.lock().token_connection_drops = n;
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
