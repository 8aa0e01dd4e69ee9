//! The relying party against a tiny IdP on loopback: discovery (and what it
//! refuses), the authorize URL, the three refetch budgets and the end-session
//! URL. No network beyond 127.0.0.1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use super::keys::Budget;
use super::logout_token::{self, LogoutTokenError, BACKCHANNEL_LOGOUT_EVENT};
use super::test_keys::{KEY_1_JWK, KEY_2_JWK, KEY_2_PEM};
use super::*;
use crate::clock::now;

const CLIENT_ID: &str = "0oa1client";

/// What the loopback IdP serves, and how often its key set was fetched.
struct Idp {
    base: String,
    /// The `issuer` the discovery document names (ours unless a test lies).
    claimed_issuer: Mutex<Option<String>>,
    /// Whether discovery offers `end_session_endpoint`.
    end_session: Mutex<bool>,
    keys: Mutex<Vec<Value>>,
    key_fetches: AtomicUsize,
}

impl Idp {
    async fn start() -> Arc<Idp> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let idp = Arc::new(Idp {
            base,
            claimed_issuer: Mutex::new(None),
            end_session: Mutex::new(true),
            keys: Mutex::new(vec![serde_json::from_str(KEY_1_JWK).unwrap()]),
            key_fetches: AtomicUsize::new(0),
        });
        let serving = Arc::clone(&idp);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let idp = Arc::clone(&serving);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (status, body) = idp.answer(&path);
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        idp
    }

    fn answer(&self, path: &str) -> (&'static str, String) {
        let base = &self.base;
        match path {
            "/.well-known/openid-configuration" => {
                let issuer = self
                    .claimed_issuer
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_else(|| base.clone());
                let mut doc = json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                    "jwks_uri": format!("{base}/keys"),
                    "revocation_endpoint": format!("{base}/revoke"),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                });
                if *self.end_session.lock().unwrap() {
                    doc["end_session_endpoint"] = json!(format!("{base}/logout"));
                }
                ("200 OK", doc.to_string())
            }
            "/keys" => {
                self.key_fetches.fetch_add(1, Ordering::SeqCst);
                let keys = self.keys.lock().unwrap().clone();
                ("200 OK", json!({ "keys": keys }).to_string())
            }
            _ => ("404 Not Found", "{}".to_owned()),
        }
    }

    fn key_fetches(&self) -> usize {
        self.key_fetches.load(Ordering::SeqCst)
    }

    /// The relying party configured for this IdP (not discovered yet).
    fn oidc(&self) -> Oidc {
        let vars = [
            ("IDP_PROVIDER", "okta"),
            ("IDP_PROVIDER_URL", self.base.as_str()),
            ("IDP_CLIENT_ID", CLIENT_ID),
            ("IDP_CLIENT_SECRET", "client-secret-value-7f3a"),
            ("IDP_SERVICE_ACCOUNT", "00ssws-token-value-9c1d"),
            ("IDP_SCOPES", "openid email groups"),
            ("AUTHENTICATE_SERVICE_URL", "https://auth.example.com"),
            (
                "COOKIE_SECRET",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let (config, _) = Config::from_vars(vars).unwrap();
        Oidc::new(&config, reqwest::Client::new())
    }

    async fn discovered(&self) -> Oidc {
        let oidc = self.oidc();
        oidc.discover().await.unwrap();
        oidc
    }
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn discovery_loads_the_endpoints_and_the_keys() {
    let idp = Idp::start().await;
    let oidc = idp.oidc();
    assert!(!oidc.is_ready());
    assert!(oidc.signing_keys().is_none());
    oidc.discover().await.unwrap();
    assert!(oidc.is_ready());
    let keys = oidc.signing_keys().unwrap();
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.keys[0].common.key_id.as_deref(), Some("test-key-1"));
    assert_eq!(idp.key_fetches(), 1);
}

#[tokio::test]
async fn discovery_refuses_a_document_that_names_another_issuer() {
    let idp = Idp::start().await;
    *idp.claimed_issuer.lock().unwrap() = Some("https://evil.example.com".into());
    let oidc = idp.oidc();
    assert!(matches!(
        oidc.discover().await,
        Err(OidcError::Discovery(_))
    ));
    assert!(!oidc.is_ready());
    assert!(matches!(oidc.authorize(), Err(OidcError::NotReady)));
}

#[tokio::test]
async fn discovery_of_an_issuer_that_does_not_answer_fails_and_leaves_nothing_loaded() {
    let idp = Idp::start().await;
    let oidc = idp.oidc();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = Oidc {
        issuer: format!("http://{}", closed.local_addr().unwrap()),
        ..oidc
    };
    drop(closed);
    assert!(matches!(
        gone.discover().await,
        Err(OidcError::Discovery(_))
    ));
    assert!(!gone.is_ready());
}

#[tokio::test]
async fn the_authorize_url_carries_state_nonce_and_an_s256_pkce_challenge() {
    let idp = Idp::start().await;
    let oidc = idp.discovered().await;
    let first = oidc.authorize().unwrap();
    assert!(first
        .url
        .as_str()
        .starts_with(&format!("{}/authorize?", idp.base)));
    let q = query(&first.url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(
        q["redirect_uri"],
        "https://auth.example.com/oauth2/callback"
    );
    assert_eq!(q["state"], first.state);
    assert_eq!(q["nonce"], first.nonce);
    assert_eq!(q["code_challenge_method"], "S256");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(first.pkce_verifier.expose()));
    assert_eq!(q["code_challenge"], challenge);
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert_eq!(scopes, ["openid", "email", "groups"]);
    assert!(!first.url.as_str().contains(first.pkce_verifier.expose()));

    let second = oidc.authorize().unwrap();
    assert_ne!(first.state, second.state);
    assert_ne!(first.nonce, second.nonce);
    assert_ne!(first.pkce_verifier.expose(), second.pkce_verifier.expose());
}

#[tokio::test]
async fn authorize_for_names_the_other_redirect_uri() {
    let idp = Idp::start().await;
    let oidc = idp.discovered().await;
    let other = "https://auth.example.org/oauth2/callback";
    let authorize = oidc.authorize_for(Some(other)).unwrap();
    assert_eq!(query(&authorize.url)["redirect_uri"], other);
    assert!(matches!(
        oidc.authorize_for(Some("not a url")),
        Err(OidcError::Discovery(_))
    ));
}

#[tokio::test]
async fn each_budget_refetches_at_most_once_per_interval_and_spends_no_other() {
    let idp = Idp::start().await;
    let oidc = idp.discovered().await;
    assert_eq!(idp.key_fetches(), 1, "discovery");
    assert!(oidc.reload_signing_keys().await, "pushed tokens: first");
    assert!(!oidc.reload_signing_keys().await, "pushed tokens: spent");
    assert_eq!(idp.key_fetches(), 2);
    assert!(
        oidc.reload_signing_keys_for_bearer().await,
        "bearer: own budget"
    );
    assert!(
        !oidc.reload_signing_keys_for_bearer().await,
        "bearer: spent"
    );
    assert_eq!(idp.key_fetches(), 3);
    assert!(
        oidc.refetch(Budget::IdTokens).await,
        "ID tokens: own budget"
    );
    assert!(!oidc.refetch(Budget::IdTokens).await, "ID tokens: spent");
    assert_eq!(idp.key_fetches(), 4);
}

#[tokio::test]
async fn no_refetch_before_discovery() {
    let idp = Idp::start().await;
    let oidc = idp.oidc();
    assert!(!oidc.reload_signing_keys().await);
    assert_eq!(idp.key_fetches(), 0);
}

/// A logout token from `issuer`, signed by test-key-2 under `kid`.
fn signed_logout_token(issuer: &str, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let claims = json!({
        "iss": issuer, "aud": CLIENT_ID, "iat": now(), "jti": format!("jti-{kid}"),
        "sub": "00ualice", "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    let key = EncodingKey::from_rsa_pem(KEY_2_PEM).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn a_rotated_key_is_found_by_one_refetch_and_a_made_up_kid_costs_nothing_more() {
    let idp = Idp::start().await;
    let oidc = idp.discovered().await;
    idp.keys
        .lock()
        .unwrap()
        .push(serde_json::from_str(KEY_2_JWK).unwrap());
    let rotated = signed_logout_token(&idp.base, "test-key-2");
    assert!(logout_token::verify(&oidc, &rotated).await.is_ok());
    assert_eq!(idp.key_fetches(), 2, "one refetch found the new key");
    let made_up = signed_logout_token(&idp.base, "made-up");
    assert_eq!(
        logout_token::verify(&oidc, &made_up).await,
        Err(LogoutTokenError::UnknownKey)
    );
    assert_eq!(idp.key_fetches(), 2, "the budget was spent");
}

#[tokio::test]
async fn the_end_session_url_names_the_hint_and_the_return_address() {
    let idp = Idp::start().await;
    let oidc = idp.oidc();
    assert!(oidc
        .end_session_url("id.token", "https://app.example.com/")
        .is_none());
    oidc.discover().await.unwrap();
    let url = oidc
        .end_session_url("id.token", "https://app.example.com/bye?x=1")
        .unwrap();
    assert!(url.as_str().starts_with(&format!("{}/logout?", idp.base)));
    let q = query(&url);
    assert_eq!(q["id_token_hint"], "id.token");
    assert_eq!(
        q["post_logout_redirect_uri"],
        "https://app.example.com/bye?x=1"
    );
}

#[tokio::test]
async fn a_long_return_address_is_cut_until_the_end_session_url_fits() {
    let idp = Idp::start().await;
    let oidc = idp.discovered().await;
    let hint = "h".repeat(1000);
    let fits = |target: &str, max: usize| oidc.end_session_url_within(&hint, target, max);
    let full_len = |target: &str| oidc.end_session_url(&hint, target).unwrap().as_str().len();
    let return_of =
        |url: String| query(&Url::parse(&url).unwrap())["post_logout_redirect_uri"].clone();

    let short = "https://app.example.com/page?tab=1";
    assert_eq!(return_of(fits(short, 4000).unwrap()), short, "fits whole");

    let long_query = format!("https://app.example.com/page?q={}", "/".repeat(2000));
    assert!(full_len(&long_query) > 4000);
    let cut = fits(&long_query, 4000).unwrap();
    assert!(cut.len() <= 4000);
    assert_eq!(return_of(cut), "https://app.example.com/page", "query cut");

    let long_path = format!("https://app.example.com/{}", "a/".repeat(1500));
    assert_eq!(
        return_of(fits(&long_path, 4000).unwrap()),
        "https://app.example.com/",
        "path cut to the origin"
    );

    let tiny = full_len("https://app.example.com/") - 1;
    assert_eq!(fits(&long_path, tiny), None, "not even the origin fits");
}

#[tokio::test]
async fn no_end_session_url_when_discovery_offers_no_endpoint() {
    let idp = Idp::start().await;
    *idp.end_session.lock().unwrap() = false;
    let oidc = idp.discovered().await;
    assert!(oidc
        .end_session_url("id.token", "https://app.example.com/")
        .is_none());
    assert!(oidc
        .end_session_url_within("id.token", "https://app.example.com/", 4000)
        .is_none());
}
