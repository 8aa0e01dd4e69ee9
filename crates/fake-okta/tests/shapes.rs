//! Proves over real HTTP that the fake Okta speaks the shapes in `OKTA.md` (discovery, JWKS,
//! code flow with PKCE, refresh rotation, groups API pagination, errors and rate limits),
//! so the service's tests can trust what it answers. These tests use the fake only, never the
//! service, and talk to nothing but 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure should stop loudly"
)]

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openidconnect::core::CoreProviderMetadata;
use reqwest::header::{HeaderMap, LINK, LOCATION};
use reqwest::{redirect, Client, Response, StatusCode};
use serde_json::Value;
use url::Url;

use fake_okta::{pkce_challenge, random_token, FakeOkta, FakeUser, RefreshMode, TokenTweak};

const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth2/callback";
const SCOPE: &str = "openid profile email";
const SCOPE_OFFLINE: &str = "openid profile email offline_access";

fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("build a reqwest client")
}

/// What the service keeps between the redirect to Okta and the callback.
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
}

impl Flow {
    fn new() -> Flow {
        Flow {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
        }
    }

    fn authorize_url(&self, issuer: &str, scope: &str) -> Url {
        let mut url = Url::parse(&format!("{}/v1/authorize", endpoints(issuer))).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", FakeOkta::CLIENT_ID)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", scope)
            .append_pair("state", &self.state)
            .append_pair("nonce", &self.nonce)
            .append_pair("code_challenge", &pkce_challenge(&self.verifier))
            .append_pair("code_challenge_method", "S256");
        url
    }
}

/// The org server's endpoints sit under `/oauth2/v1`, a custom server's under `ISSUER/v1`.
fn endpoints(issuer: &str) -> String {
    if issuer.ends_with("/oauth2/default") {
        issuer.to_string()
    } else {
        format!("{issuer}/oauth2")
    }
}

fn location(response: &Response) -> Url {
    let location = response
        .headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap();
    Url::parse(location).expect("an absolute Location")
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Signs `user` in and walks `/authorize`, returning the flow and the code.
async fn code_for(fake: &FakeOkta, issuer: &str, user: &str, scope: &str) -> (Flow, String) {
    fake.sign_in_as(&fake.user(user).id);
    let flow = Flow::new();
    let response = client()
        .get(flow.authorize_url(issuer, scope))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let back = location(&response);
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    let params = query(&back);
    assert_eq!(params["state"], flow.state);
    let code = params["code"].clone();
    (flow, code)
}

async fn exchange(issuer: &str, code: &str, verifier: &str) -> Response {
    client()
        .post(format!("{}/v1/token", endpoints(issuer)))
        .basic_auth(FakeOkta::CLIENT_ID, Some(FakeOkta::CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

/// Refresh with `client_secret_post`, the other auth method the fake accepts.
async fn refresh(issuer: &str, refresh_token: &str) -> Response {
    client()
        .post(format!("{}/v1/token", endpoints(issuer)))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", FakeOkta::CLIENT_ID),
            ("client_secret", FakeOkta::CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
}

async fn tokens_for(fake: &FakeOkta, issuer: &str, user: &str, scope: &str) -> (Flow, Value) {
    let (flow, code) = code_for(fake, issuer, user, scope).await;
    let response = exchange(issuer, &code, &flow.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    (flow, response.json().await.unwrap())
}

async fn jwks(issuer: &str) -> Value {
    let discovery: Value = client()
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    client()
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Verifies an ID token the way the service must: key from the JWKS by kid, RS256, iss, aud, exp.
async fn verify(issuer: &str, id_token: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(id_token).map_err(|e| e.to_string())?;
    let jwks = jwks(issuer).await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| Some(k["kid"].as_str().unwrap()) == header.kid.as_deref())
        .ok_or("unknown kid")?;
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[FakeOkta::CLIENT_ID]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| format!("{:?}", e.kind()))
}

async fn groups(fake: &FakeOkta, user_id: &str) -> Response {
    client()
        .get(format!(
            "{}/api/v1/users/{user_id}/groups?limit=200",
            fake.base_url()
        ))
        .header("Authorization", format!("SSWS {}", FakeOkta::API_TOKEN))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
}

fn header_u64(headers: &HeaderMap, name: &str) -> u64 {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn discovery_parses_as_provider_metadata_for_both_issuers() {
    let fake = FakeOkta::start().await;
    for issuer in [fake.org_issuer(), fake.custom_issuer()] {
        let text = client()
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let metadata: CoreProviderMetadata = serde_json::from_str(&text).unwrap();
        assert_eq!(metadata.issuer().as_str(), issuer);
        let raw: Value = serde_json::from_str(&text).unwrap();
        let v1 = format!("{}/v1", endpoints(&issuer));
        assert_eq!(raw["authorization_endpoint"], format!("{v1}/authorize"));
        assert_eq!(raw["token_endpoint"], format!("{v1}/token"));
        assert_eq!(raw["jwks_uri"], format!("{v1}/keys"));
        assert_eq!(raw["end_session_endpoint"], format!("{v1}/logout"));
        assert_eq!(raw["revocation_endpoint"], format!("{v1}/revoke"));
        assert_eq!(raw["code_challenge_methods_supported"][0], "S256");
        assert_eq!(raw["backchannel_logout_supported"], true);
    }
    assert_eq!(fake.discovery_calls(), 2);
}

#[tokio::test]
async fn jwks_lists_only_the_current_key_and_changes_after_rotation() {
    let fake = FakeOkta::start().await;
    assert_eq!(kids(&jwks(&fake.org_issuer()).await), ["test-key-1"]);
    fake.rotate_keys();
    assert_eq!(kids(&jwks(&fake.org_issuer()).await), ["test-key-2"]);
    assert_eq!(kids(&jwks(&fake.custom_issuer()).await), ["test-key-2"]);
    assert_eq!(fake.jwks_calls(), 3);

    let (_, tokens) = tokens_for(&fake, &fake.org_issuer(), "alice", SCOPE).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("test-key-2"));
    verify(&fake.org_issuer(), id_token).await.unwrap();
}

#[tokio::test]
async fn code_flow_gives_an_id_token_that_verifies_against_the_jwks() {
    let fake = FakeOkta::start().await;
    let alice = fake.user("alice");
    for issuer in [fake.org_issuer(), fake.custom_issuer()] {
        let (flow, tokens) = tokens_for(&fake, &issuer, "alice", SCOPE).await;
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 3600);
        assert!(tokens["access_token"].is_string());
        assert!(tokens.get("refresh_token").is_none(), "no offline_access");

        let claims = verify(&issuer, tokens["id_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(claims["iss"], issuer);
        assert_eq!(claims["aud"], FakeOkta::CLIENT_ID);
        assert_eq!(claims["sub"], alice.id);
        assert_eq!(claims["nonce"], flow.nonce);
        assert_eq!(claims["preferred_username"], "alice@example.com");
        assert_eq!(claims["email"], alice.email);
        assert_eq!(claims["groups"], serde_json::json!(["Everyone", "admins"]));
        assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
        assert!(claims["sid"].is_string() && claims["jti"].is_string());
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert_eq!(exp - iat, 3600);
    }
    assert!(alice.id.starts_with("00u"));
    let query = fake.last_authorize_query().unwrap();
    assert!(query.contains(&("code_challenge_method".into(), "S256".into())));
}

#[tokio::test]
async fn a_code_works_only_once() {
    let fake = FakeOkta::start().await;
    let issuer = fake.org_issuer();
    let (flow, code) = code_for(&fake, &issuer, "bob", SCOPE).await;
    assert_eq!(
        exchange(&issuer, &code, &flow.verifier).await.status(),
        StatusCode::OK
    );
    let again = exchange(&issuer, &code, &flow.verifier).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(fake.token_calls(), 2);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_rejected() {
    let fake = FakeOkta::start().await;
    let issuer = fake.custom_issuer();
    let (_, code) = code_for(&fake, &issuer, "bob", SCOPE).await;
    let response = exchange(&issuer, &code, &random_token()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "PKCE verification failed");
}

#[tokio::test]
async fn a_wrong_client_secret_is_rejected() {
    let fake = FakeOkta::start().await;
    let issuer = fake.org_issuer();
    let (flow, code) = code_for(&fake, &issuer, "carol", SCOPE).await;
    let response = client()
        .post(format!("{}/v1/token", endpoints(&issuer)))
        .basic_auth(FakeOkta::CLIENT_ID, Some("not-the-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", flow.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_the_old_one_stops_working() {
    let fake = FakeOkta::start().await;
    let issuer = fake.org_issuer();
    let (_, tokens) = tokens_for(&fake, &issuer, "alice", SCOPE_OFFLINE).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();

    let response = refresh(&issuer, &first).await;
    assert_eq!(response.status(), StatusCode::OK);
    let renewed: Value = response.json().await.unwrap();
    let second = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(second, first);
    let claims = verify(&issuer, renewed["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["sub"], fake.user("alice").id);
    assert!(claims.get("nonce").is_none());

    let replay = refresh(&issuer, &first).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(refresh(&issuer, second).await.status(), StatusCode::OK);
    assert_eq!(fake.refresh_calls(), 3);
}

#[tokio::test]
async fn refresh_fails_as_told_and_for_deactivated_users() {
    let fake = FakeOkta::start().await;
    let issuer = fake.custom_issuer();
    let (_, tokens) = tokens_for(&fake, &issuer, "bob", SCOPE_OFFLINE).await;
    let token = tokens["refresh_token"].as_str().unwrap();

    fake.set_refresh_mode(RefreshMode::InvalidGrant);
    let response = refresh(&issuer, token).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");

    fake.set_refresh_mode(RefreshMode::ServerError);
    assert_eq!(
        refresh(&issuer, token).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // The token survived the forced failures; a deactivated user's does not.
    fake.set_refresh_mode(RefreshMode::Ok);
    fake.set_active(&fake.user("bob").id, false);
    assert_eq!(
        refresh(&issuer, token).await.status(),
        StatusCode::BAD_REQUEST
    );
    // Okta still lists a deactivated user's groups.
    assert_eq!(
        groups(&fake, &fake.user("bob").id).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn each_token_tweak_spoils_the_id_token_as_named() {
    let fake = FakeOkta::start().await;
    let issuer = fake.org_issuer();
    let cases = [
        (TokenTweak::WrongAudience, "InvalidAudience"),
        (TokenTweak::Expired, "ExpiredSignature"),
        (TokenTweak::WrongIssuer, "InvalidIssuer"),
        (TokenTweak::UnknownKid, "unknown kid"),
        (TokenTweak::BadSignature, "InvalidSignature"),
    ];
    for (tweak, expected) in cases {
        fake.set_token_tweak(tweak);
        let (_, tokens) = tokens_for(&fake, &issuer, "alice", SCOPE).await;
        let error = verify(&issuer, tokens["id_token"].as_str().unwrap())
            .await
            .unwrap_err();
        assert_eq!(error, expected, "{tweak:?}");
    }

    fake.set_token_tweak(TokenTweak::WrongNonce);
    let (flow, tokens) = tokens_for(&fake, &issuer, "alice", SCOPE).await;
    let claims = verify(&issuer, tokens["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_ne!(claims["nonce"], flow.nonce);

    fake.set_token_tweak(TokenTweak::NoneAlg);
    let (_, tokens) = tokens_for(&fake, &issuer, "alice", SCOPE).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2], "");
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[0])
        .unwrap();
    assert_eq!(header, br#"{"alg":"none"}"#);
    assert!(verify(&issuer, id_token).await.is_err());

    fake.set_token_tweak(TokenTweak::None);
    fake.set_token_lifetime(60);
    let (_, tokens) = tokens_for(&fake, &issuer, "alice", SCOPE).await;
    assert_eq!(tokens["expires_in"], 60);
    verify(&issuer, tokens["id_token"].as_str().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn groups_pagination_follows_separate_link_headers() {
    let fake = FakeOkta::start().await;
    fake.add_user(FakeUser::new("dave", &["g1", "g2", "g3", "g4"]));
    let dave = fake.user("dave");
    fake.set_groups_page_size(2);

    let mut next = Some(format!(
        "{}/api/v1/users/{}/groups?limit=200",
        fake.base_url(),
        dave.id
    ));
    let mut names = Vec::new();
    while let Some(url) = next.take() {
        assert!(url.starts_with(&fake.base_url()), "{url}");
        let response = client()
            .get(&url)
            .header("Authorization", format!("SSWS {}", FakeOkta::API_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        header_u64(response.headers(), "X-Rate-Limit-Remaining");
        let links: Vec<&str> = response
            .headers()
            .get_all(LINK)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            links.iter().all(|l| l.matches("rel=").count() == 1),
            "{links:?}"
        );
        assert!(links.iter().any(|l| l.ends_with(r#"rel="self""#)));
        next = links
            .iter()
            .find(|l| l.ends_with(r#"rel="next""#))
            .map(|l| l[1..l.find('>').unwrap()].to_string());
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 2);
        for group in page {
            assert!(group["id"].as_str().unwrap().starts_with("00g"));
            assert_eq!(group["objectClass"][0], "okta:user_group");
            names.push(group["profile"]["name"].as_str().unwrap().to_string());
            let expected_type = if names.len() == 1 {
                "BUILT_IN"
            } else {
                "OKTA_GROUP"
            };
            assert_eq!(group["type"], expected_type);
        }
    }
    assert_eq!(names, ["Everyone", "g1", "g2", "g3", "g4"]);
    assert_eq!(fake.groups_calls(), 3);
    assert_eq!(fake.groups_calls_for(&dave.id), 3);
}

#[tokio::test]
async fn groups_without_the_ssws_token_is_401() {
    let fake = FakeOkta::start().await;
    let url = format!(
        "{}/api/v1/users/{}/groups",
        fake.base_url(),
        fake.user("alice").id
    );
    let response = client()
        .get(&url)
        .header("Authorization", "SSWS wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    header_u64(response.headers(), "X-Rate-Limit-Reset");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorCode"], "E0000011");
    assert_eq!(body["errorSummary"], "Invalid token provided");
    let bare = client().get(&url).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn groups_of_an_unknown_or_deleted_user_is_404() {
    let fake = FakeOkta::start().await;
    let response = groups(&fake, "00unosuchuser000000000").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorCode"], "E0000007");

    let carol = fake.user("carol");
    assert_eq!(groups(&fake, &carol.login).await.status(), StatusCode::OK);
    fake.delete_user(&carol.id);
    assert_eq!(
        groups(&fake, &carol.id).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(fake.groups_calls_for(&carol.id), 2);
}

#[tokio::test]
async fn groups_while_rate_limited_is_429_with_the_reset() {
    let fake = FakeOkta::start().await;
    let alice = fake.user("alice");
    let until = now_secs() + 30;
    fake.set_rate_limited(Some(until));
    let response = groups(&fake, &alice.id).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header_u64(response.headers(), "X-Rate-Limit-Limit"), 600);
    assert_eq!(header_u64(response.headers(), "X-Rate-Limit-Remaining"), 0);
    assert_eq!(header_u64(response.headers(), "X-Rate-Limit-Reset"), until);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorCode"], "E0000047");

    fake.set_rate_limited(None);
    fake.set_groups_failure(Some(503));
    assert_eq!(
        groups(&fake, &alice.id).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    fake.set_groups_failure(None);
    fake.set_groups_delay(Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert_eq!(groups(&fake, &alice.id).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(fake.groups_calls(), 3);
}

#[tokio::test]
async fn authorize_without_pkce_is_400() {
    let fake = FakeOkta::start().await;
    fake.sign_in_as(&fake.user("alice").id);
    let mut url = Flow::new().authorize_url(&fake.org_issuer(), SCOPE);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(&kept);
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn authorize_redirects_back_with_the_error_it_is_told() {
    let fake = FakeOkta::start().await;
    fake.set_authorize_error(Some("access_denied"));
    let flow = Flow::new();
    let response = client()
        .get(flow.authorize_url(&fake.custom_issuer(), SCOPE))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = query(&location(&response));
    assert_eq!(params["error"], "access_denied");
    assert!(params.contains_key("error_description"));
    assert_eq!(params["state"], flow.state);
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn the_sign_in_form_posts_the_login_and_redirects_with_a_code() {
    let fake = FakeOkta::start().await;
    fake.sign_out_browser();
    let issuer = fake.org_issuer();
    let flow = Flow::new();
    let response = client()
        .get(flow.authorize_url(&issuer, SCOPE))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("<title>Fake Okta — development only</title>"));
    assert!(html.contains(r#"id="okta-signin-username""#));
    assert!(html.contains(r#"id="okta-signin-submit""#));

    // Submit the form as a browser would: its hidden fields plus the username.
    let fields: Vec<(String, String)> = html
        .lines()
        .filter(|l| l.contains(r#"type="hidden""#))
        .map(|l| (attribute(l, "name"), attribute(l, "value")))
        .collect();
    let action = attribute(
        html.lines().find(|l| l.contains("<form")).unwrap(),
        "action",
    );
    let submit = |username: &str| {
        let mut form = fields.clone();
        form.push(("username".into(), username.into()));
        client()
            .post(format!("{}{action}", fake.base_url()))
            .form(&form)
            .send()
    };
    let unknown = submit("mallory").await.unwrap();
    assert_eq!(unknown.status(), StatusCode::OK);
    assert!(unknown.text().await.unwrap().contains("Unable to sign in"));

    let response = submit("bob").await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = query(&location(&response));
    assert_eq!(params["state"], flow.state);
    let tokens: Value = exchange(&issuer, &params["code"], &flow.verifier)
        .await
        .json()
        .await
        .unwrap();
    let claims = verify(&issuer, tokens["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["sub"], fake.user("bob").id);
}

/// The value of `name="…"` in one line of the fake's own HTML (values are simple there).
fn attribute(line: &str, name: &str) -> String {
    let start = line.find(&format!(r#"{name}=""#)).unwrap() + name.len() + 2;
    let end = start + line[start..].find('"').unwrap();
    line[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn logout_is_recorded_and_redirects_to_the_post_logout_uri() {
    let fake = FakeOkta::start().await;
    let (_, tokens) = tokens_for(&fake, &fake.org_issuer(), "alice", SCOPE).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let mut url = Url::parse(&format!("{}/oauth2/v1/logout", fake.base_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:9/signed-out")
        .append_pair("state", "xyz");
    let response = client().get(url.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response).as_str(),
        "http://127.0.0.1:9/signed-out?state=xyz"
    );
    assert_eq!(fake.logout_calls(), [url]);

    let bare = format!("{}/oauth2/default/v1/logout", fake.base_url());
    let response = client().get(bare).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(fake.logout_calls().len(), 2);
}

#[tokio::test]
async fn a_logout_token_verifies_with_the_current_key() {
    let fake = FakeOkta::start().await;
    fake.rotate_keys();
    let token = fake.sign_logout_token(serde_json::json!({
        "iss": fake.org_issuer(),
        "aud": FakeOkta::CLIENT_ID,
        "iat": now_secs(),
        "exp": now_secs() + 120,
        "jti": random_token(),
        "sid": "some-session",
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    }));
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let claims = verify(&fake.org_issuer(), &token).await.unwrap();
    assert_eq!(claims["sid"], "some-session");
}
