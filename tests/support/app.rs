//! The service under test in-process: [`spawn_app`] starts a fake Okta and the
//! real `Application` on port 0, and [`TestApp`] drives it like a browser behind
//! a proxy would, with a reqwest client that does not follow redirects and keeps
//! cookies; plus the response helpers every feature file uses. It OWNS that
//! start-up and those helpers; it must NOT assert a feature's behaviour.

use std::net::TcpListener;
use std::sync::Arc;

use forward_auth::config::Config;
use forward_auth::startup::Application;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Response, StatusCode};
use url::Url;

use fake_okta::FakeOkta;

/// base64 of 32 bytes, for tests only.
pub const COOKIE_SECRET: &str = "dGVzdC1jb29raWUtc2VjcmV0LTMyLWJ5dGVzLWxvbmc=";
pub const COOKIE_NAME: &str = "_forward_auth";

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub metrics_port: Option<u16>,
    pub okta: FakeOkta,
    pub jar: Arc<Jar>,
    pub client: reqwest::Client,
}

/// A service with the default test configuration (Okta provider, org issuer).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A service with extra or overriding variables.
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    let okta = FakeOkta::start().await;
    spawn_app_for(okta, vars).await
}

/// The variables a test service starts with.
pub fn base_vars(okta: &FakeOkta, port: u16) -> Vec<(String, String)> {
    [
        ("IDP_PROVIDER", "okta".to_string()),
        ("IDP_PROVIDER_URL", okta.org_issuer()),
        ("IDP_CLIENT_ID", FakeOkta::CLIENT_ID.to_string()),
        ("IDP_CLIENT_SECRET", FakeOkta::CLIENT_SECRET.to_string()),
        ("IDP_SERVICE_ACCOUNT", FakeOkta::API_TOKEN.to_string()),
        (
            "AUTHENTICATE_SERVICE_URL",
            format!("http://127.0.0.1:{port}"),
        ),
        ("ADDRESS", format!("127.0.0.1:{port}")),
        ("COOKIE_SECRET", COOKIE_SECRET.to_string()),
        ("COOKIE_SECURE", "false".to_string()),
        ("LOG_LEVEL", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A service against the given fake Okta.
pub async fn spawn_app_for(okta: FakeOkta, vars: &[(&str, &str)]) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().unwrap().port();
    let mut env = base_vars(&okta, port);
    for (k, v) in vars {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v.to_string()));
    }
    let (config, _warnings) = Config::from_vars(env).unwrap_or_else(|e| panic!("{e}"));
    let app = Application::build_with_listener(config, listener)
        .await
        .expect("the application builds");
    let metrics_port = app.metrics_port();
    tokio::spawn(app.run_until_stopped());
    let jar = Arc::new(Jar::default());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        metrics_port,
        okta,
        client: browser(jar.clone()),
        jar,
    }
}

/// A client that keeps cookies and never follows redirects.
pub fn browser(jar: Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar)
        .build()
        .unwrap()
}

/// Headers from name/value pairs.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Signs in as the fake Okta user `login` (e.g. "alice") through
    /// `/oauth2/start` → Okta → `/oauth2/callback`; returns the callback's answer.
    pub async fn login_as(&self, login: &str) -> Response {
        self.login_with_rd(login, "/after-login").await
    }

    pub async fn login_with_rd(&self, login: &str, rd: &str) -> Response {
        let user = self.okta.user(login);
        self.okta.sign_in_as(&user.id);
        let authorize = self.start(rd).await;
        assert_eq!(
            authorize.status(),
            StatusCode::FOUND,
            "start redirects to Okta"
        );
        let callback = self.follow(&authorize).await;
        assert_eq!(callback.status(), StatusCode::FOUND, "Okta redirects back");
        self.follow(&callback).await
    }

    /// `login_as` with another browser: start → Okta → callback, all with `client`.
    pub async fn login_in(&self, client: &reqwest::Client, login: &str) {
        let user = self.okta.user(login);
        self.okta.sign_in_as(&user.id);
        let mut start = Url::parse(&self.url("/oauth2/start")).unwrap();
        start.query_pairs_mut().append_pair("rd", "/after-login");
        let to_okta = client.get(start).send().await.unwrap();
        assert_eq!(to_okta.status(), StatusCode::FOUND);
        let back = client.get(location(&to_okta)).send().await.unwrap();
        assert_eq!(back.status(), StatusCode::FOUND);
        let done = client.get(location(&back)).send().await.unwrap();
        assert_eq!(done.status(), StatusCode::FOUND, "{login} signed in");
    }

    /// `GET /oauth2/start?rd=…`.
    pub async fn start(&self, rd: &str) -> Response {
        let mut url = Url::parse(&self.url("/oauth2/start")).unwrap();
        url.query_pairs_mut().append_pair("rd", rd);
        self.client.get(url).send().await.unwrap()
    }

    /// Follows a redirect once, with this app's browser.
    pub async fn follow(&self, response: &Response) -> Response {
        self.client.get(location(response)).send().await.unwrap()
    }

    /// The proxy's subrequest to `/oauth2/auth` for `original` (nginx style).
    pub async fn auth(&self, original: &str) -> Response {
        self.auth_at("/oauth2/auth", original).await
    }

    /// Like [`auth`](Self::auth) on any path, e.g. `/oauth2/auth?allowed_groups=x`.
    pub async fn auth_at(&self, path: &str, original: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("X-Original-URL", original)
            .header("X-Original-Method", "GET")
            .send()
            .await
            .unwrap()
    }

    /// The proxy's subrequest to `/oauth2/forward` (Traefik/Caddy style) with extra headers.
    pub async fn forward(
        &self,
        method: &str,
        host: &str,
        uri: &str,
        extra: &[(&str, &str)],
    ) -> Response {
        self.client
            .get(self.url("/oauth2/forward"))
            .header("X-Forwarded-Method", method)
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", host)
            .header("X-Forwarded-Uri", uri)
            .headers(headers(extra))
            .send()
            .await
            .unwrap()
    }

    /// The session cookie's value as the browser holds it.
    pub fn session_cookie(&self) -> Option<String> {
        session_cookie_in(&self.jar, &self.address)
    }

    /// A second browser against the same service and Okta.
    pub fn new_browser(&self) -> (Arc<Jar>, reqwest::Client) {
        let jar = Arc::new(Jar::default());
        (jar.clone(), browser(jar))
    }

    /// A request with only the given cookie header (no jar).
    pub async fn auth_with_cookie(&self, cookie: &str, original: &str) -> Response {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(self.url("/oauth2/auth"))
            .header("X-Original-URL", original)
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap()
    }
}

/// The session cookie's value that `jar` would send to `origin`.
pub fn session_cookie_in(jar: &Jar, origin: &str) -> Option<String> {
    let header = jar.cookies(&Url::parse(origin).unwrap())?;
    header
        .to_str()
        .ok()?
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
}

/// The `Location` header of a response.
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {} answer", response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// Signs `user` in through the service at `base` as a browser would (start,
/// the fake Okta's authorize, callback) and returns the session cookie's
/// value from `jar`, the client's cookie store.
pub async fn sign_in_at(
    client: &reqwest::Client,
    jar: &Jar,
    okta: &FakeOkta,
    base: &str,
    user: &str,
) -> String {
    okta.sign_in_as(&okta.user(user).id);
    let to_okta = client
        .get(format!("{base}/oauth2/start?rd=/x"))
        .send()
        .await
        .unwrap();
    let back = client.get(location(&to_okta)).send().await.unwrap();
    let done = client.get(location(&back)).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::FOUND);
    session_cookie_in(jar, base).expect("signed in")
}

/// Asserts a redirect (302/303) whose `Location` starts with `prefix`.
pub fn assert_redirect_to(response: &Response, prefix: &str) {
    assert!(
        matches!(response.status(), StatusCode::FOUND | StatusCode::SEE_OTHER),
        "expected a redirect, got {}",
        response.status()
    );
    let location = location(response);
    assert!(
        location.starts_with(prefix),
        "Location {location} does not start with {prefix}"
    );
}

/// A header's value as text, or "" when absent.
pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default()
}
