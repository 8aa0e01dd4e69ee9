//! Traefik v3 cannot be installed here, so a small in-test proxy replays what
//! Traefik does with the shipped `integrations/traefik/dynamic.yml`: its routers,
//! its `forwardAuth` middlewares and its services are read from the file
//! (templated only for loopback ports), and the proxies checklist runs through it.
//! The replay follows Traefik v3's source: the entry point's forwarded-headers
//! handling (an untrusted client's `X-Forwarded-*` are replaced), `forwardAuth`
//! (`pkg/middlewares/auth/forward.go`) and the reverse proxy's hop-by-hop rules.
//! The docker labels and Kubernetes resources are checked against dynamic.yml.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::http::header::{HeaderName as ActixName, HeaderValue as ActixValue};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::cookie::Jar;
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::helpers::{browser, spawn_app_with};
use crate::proxies::{
    echoed, get_html, get_with, integration_file, run_checklist, sign_in_through, substitute, Echo,
    Flavor, Stack,
};

// ---------------------------------------------------------------------------
// The checklist and the Traefik-specific checks.

#[tokio::test]
async fn the_shipped_traefik_config_signs_in_and_protects_the_upstream() {
    let stack = start().await;
    run_checklist(&stack).await;
}

#[tokio::test]
async fn through_traefik_scripts_get_a_json_401_and_non_members_the_services_403() {
    let stack = start().await;
    let page = stack.url("/private/page");
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // fetch/XHR: a 401 with the sign-in URL in JSON, passed through unchanged.
    let xhr = [
        ("Accept", "text/html,application/xhtml+xml"),
        ("X-Requested-With", "XMLHttpRequest"),
    ];
    let fetch = [("Accept", "application/json")];
    for extra in [&xhr[..], &fetch[..]] {
        let answer = get_with(&anonymous, &page, extra).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{extra:?}");
        let challenge = answer.headers().get("www-authenticate").cloned();
        assert!(challenge.is_some(), "{extra:?}: WWW-Authenticate passes");
        let body: Value = answer.json().await.expect("a JSON 401");
        assert_eq!(body["error"], "unauthenticated", "{extra:?}");
        let sign_in = body["sign_in_url"].as_str().unwrap_or_default();
        assert!(
            sign_in.starts_with(&stack.url("/oauth2/start?rd=")),
            "{extra:?}: {sign_in}"
        );
    }
    assert_eq!(stack.echo.count(), 0, "no 401 reached the upstream");

    // A signed-in non-member gets the service's own 403 page, not a sign-in loop.
    let carol = browser(Arc::new(Jar::default()));
    sign_in_through(&stack, &carol, "carol").await;
    let before = stack.echo.count();
    let denied = get_html(&carol, &stack.url("/admin/settings"), &[]).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert!(denied.headers().get("location").is_none(), "no redirect");
    let body = denied.text().await.unwrap();
    assert!(body.contains("Access denied"), "the service's page: {body}");
    assert_eq!(stack.echo.count(), before, "a 403 stops at the proxy");
}

/// The replay itself: what the auth server and the app receive, checked
/// against what Traefik v3 sends (a recording echo stands in for the service).
#[tokio::test]
async fn the_replay_sends_what_traefik_v3_forward_auth_sends() {
    let recorder = Echo::start();
    let app = Echo::start();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the replay");
    let port = listener.local_addr().unwrap().port();
    let _replay = Replay::start(shipped_config(recorder.port, app.port), listener);
    let proxy = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let forged = [
        ("Cookie", "a=1; b=2"),
        ("X-Forwarded-Uri", "/forged"),
        ("X-Forwarded-Host", "evil.example.com"),
        ("X-Auth-Request-User", "mallory"),
    ];
    let answer = get_html(&client, &format!("{proxy}/some/page?q=1"), &forged).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let asked = &recorder.seen()[0];
    assert_eq!(asked.path, "/oauth2/forward");
    assert_eq!(asked.header("host"), format!("127.0.0.1:{}", recorder.port));
    assert_eq!(asked.header("x-forwarded-method"), "GET");
    assert_eq!(asked.header("x-forwarded-proto"), "http");
    assert_eq!(
        asked.header("x-forwarded-host"),
        format!("127.0.0.1:{port}")
    );
    assert_eq!(asked.header("x-forwarded-uri"), "/some/page?q=1");
    assert_eq!(asked.header("x-forwarded-port"), port.to_string());
    assert_eq!(asked.header("x-forwarded-for"), "127.0.0.1");
    assert_eq!(
        asked.header("cookie"),
        "a=1; b=2",
        "cookies go to the check"
    );
    assert_eq!(asked.header("accept"), "text/html,application/xhtml+xml");
    // The recorder's 200 names no identity: the client's copy is still removed.
    let seen = echoed(answer).await;
    assert_eq!(seen.header("x-auth-request-user"), "");
    assert_eq!(seen.header("cookie"), "a=1; b=2", "and to the app");

    // A WebSocket handshake: Traefik's entry point says `ws`, and forwardAuth
    // drops Upgrade and Connection (hop-by-hop) from the check; the app gets them.
    let upgrade = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let ws = get_with(&client, &format!("{proxy}/socket"), &upgrade).await;
    let asked = &recorder.seen()[1];
    assert_eq!(asked.header("x-forwarded-proto"), "ws");
    assert_eq!(asked.header("upgrade"), "");
    assert_eq!(asked.header("connection"), "");
    assert_eq!(
        asked.header("sec-websocket-key"),
        "dGhlIHNhbXBsZSBub25jZQ=="
    );
    let seen = echoed(ws).await;
    assert_eq!(seen.header("upgrade"), "websocket");
    assert_eq!(seen.header("connection").to_ascii_lowercase(), "upgrade");

    // The admin router uses the admins middleware; /oauth2/ skips the check.
    get_html(&client, &format!("{proxy}/admin/x"), &[]).await;
    assert_eq!(
        recorder.seen()[2].path,
        "/oauth2/forward?allowed_groups=admins"
    );
    let before = app.count();
    get_html(&client, &format!("{proxy}/oauth2/start?rd=x"), &[]).await;
    assert_eq!(recorder.seen()[3].path, "/oauth2/start?rd=x");
    assert_eq!(recorder.count(), 4, "no check for /oauth2/");
    assert_eq!(app.count(), before);
}

#[test]
fn the_docker_labels_and_kubernetes_resources_say_what_dynamic_yml_says() {
    let dynamic = TraefikConfig::parse(&integration_file("traefik/dynamic.yml"));
    let auth = &dynamic.middlewares["forward-auth"];
    assert_eq!(auth.address, "http://forward-auth:4180/oauth2/forward");
    assert!(auth.trust_forward_header);
    assert_eq!(
        auth.auth_response_headers,
        [
            "X-Auth-Request-User",
            "X-Auth-Request-Email",
            "X-Auth-Request-Groups",
            "X-Auth-Request-Preferred-Username"
        ]
    );
    let admins = &dynamic.middlewares["forward-auth-admins"];
    assert_eq!(
        admins.address,
        "http://forward-auth:4180/oauth2/forward?allowed_groups=admins"
    );
    assert_eq!(admins.auth_response_headers, auth.auth_response_headers);

    let static_config = Yaml::parse(&integration_file("traefik/traefik.yml"));
    let static_config = &static_config[0];
    assert_eq!(
        static_config
            .get("entryPoints")
            .get("web")
            .get("address")
            .str(),
        ":80"
    );
    assert_eq!(
        static_config
            .get("providers")
            .get("file")
            .get("filename")
            .str(),
        "/etc/traefik/dynamic.yml"
    );

    let labels = from_docker_labels(&integration_file("traefik/docker-labels.yml"));
    assert_eq!(labels, dynamic, "docker-labels.yml");

    let kubernetes = from_kubernetes(&integration_file("traefik/kubernetes-middleware.yaml"));
    assert_eq!(kubernetes, dynamic, "kubernetes-middleware.yaml");
}

// ---------------------------------------------------------------------------
// The stack: service + fake Okta, echo upstream, and the replayed Traefik.

/// The service, the echo upstream and the replay of the shipped dynamic.yml.
pub(crate) async fn start() -> Stack {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the replay");
    let proxy = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app = spawn_app_with(&[("AUTHENTICATE_SERVICE_URL", proxy.as_str())]).await;
    let echo = Echo::start();
    let replay = Replay::start(shipped_config(app.port, echo.port), listener);
    Stack {
        flavor: Flavor::Traefik,
        proxy,
        app,
        echo,
        _process: Box::new(replay),
    }
}

/// dynamic.yml with the service and the app on loopback ports, and the test's
/// `127.0.0.1` as the host the routers match.
fn shipped_config(service: u16, app: u16) -> TraefikConfig {
    let text = integration_file("traefik/dynamic.yml");
    let text = substitute(
        &text,
        "http://forward-auth:4180",
        &format!("http://127.0.0.1:{service}"),
    );
    let text = substitute(&text, "http://app:8080", &format!("http://127.0.0.1:{app}"));
    let text = substitute(&text, "Host(`app.example.com`)", "Host(`127.0.0.1`)");
    TraefikConfig::parse(&text)
}

/// The replayed Traefik, listening on loopback; stopped on drop.
pub(crate) struct Replay {
    handle: actix_web::dev::ServerHandle,
}

impl Replay {
    fn start(config: TraefikConfig, listener: TcpListener) -> Replay {
        let server = HttpServer::new(move || {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            App::new()
                .app_data(web::Data::new(ReplayState {
                    config: config.clone(),
                    client,
                }))
                .default_service(web::to(traefik))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("serve the replay")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Replay { handle }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        // The stop command is sent now; nobody needs to wait for it.
        drop(self.handle.stop(false));
    }
}

struct ReplayState {
    config: TraefikConfig,
    client: reqwest::Client,
}

// ---------------------------------------------------------------------------
// What Traefik v3 does with one request.

/// Header names in lowercase, in arrival order, repeats kept; no `Host` (Go
/// keeps it apart from the other headers, and so does this replay).
type Headers = Vec<(String, Vec<u8>)>;

/// `forwardAuth` drops these from the check (Traefik v3 `hopHeaders`).
const AUTH_HOP_HEADERS: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// The reverse proxy drops these on the way to the service (Go's httputil).
const PROXY_HOP_HEADERS: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn traefik(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ReplayState>,
) -> HttpResponse {
    let client_ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let mut headers: Headers = req
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "host")
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect();

    entry_point(&mut headers, &host, &client_ip);
    let Some(router) = state.config.route(&host, req.path()) else {
        return HttpResponse::NotFound().body("404 page not found\n");
    };
    let incoming = Incoming {
        method: req.method().as_str(),
        host: &host,
        uri: &uri,
        client_ip: &client_ip,
    };
    for name in &router.middlewares {
        let auth = &state.config.middlewares[name];
        if let Err(answer) = forward_auth(&state.client, auth, &mut headers, &incoming).await {
            return answer;
        }
    }
    // Only a request that says it has a body has one (an upgrade's payload
    // runs until the connection closes).
    let body = if first(&headers, "content-length").is_some_and(|l| l != "0")
        || first(&headers, "transfer-encoding").is_some()
    {
        payload.to_bytes().await.unwrap_or_default()
    } else {
        web::Bytes::new()
    };
    let service = &state.config.services[&router.service];
    reverse_proxy(&state.client, service, headers, &incoming, body).await
}

/// The client's request as Traefik sees it.
struct Incoming<'a> {
    method: &'a str,
    host: &'a str,
    /// Path and query (Go's `RequestURI`).
    uri: &'a str,
    client_ip: &'a str,
}

/// The entry point, before any router (`pkg/middlewares/forwardedheaders`) with
/// the default `forwardedHeaders` (the client is not trusted): the client's
/// `X-Forwarded-*`, `X-Real-Ip` and the like are removed and Traefik's own set.
fn entry_point(headers: &mut Headers, host: &str, client_ip: &str) {
    headers.retain(|(name, _)| !is_managed_x_header(name));
    let websocket = first(headers, "connection").is_some_and(|c| has_token(&c, "upgrade"))
        && first(headers, "upgrade").is_some_and(|u| has_token(&u, "websocket"));
    set(headers, "x-real-ip", client_ip);
    set(
        headers,
        "x-forwarded-proto",
        if websocket { "ws" } else { "http" },
    );
    let port = host
        .rsplit_once(':')
        .map(|(_, port)| port)
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or("80");
    set(headers, "x-forwarded-port", port);
    if !host.is_empty() {
        set(headers, "x-forwarded-host", host);
    }
    set(headers, "x-forwarded-server", "traefik-replay");
    remove_connection_headers(headers, true);
}

/// Traefik's `forwardAuth`: a GET to the address with the client's headers;
/// on 2xx the `authResponseHeaders` replace the client's copies, otherwise the
/// check's answer goes back to the client.
async fn forward_auth(
    client: &reqwest::Client,
    auth: &ForwardAuth,
    headers: &mut Headers,
    incoming: &Incoming<'_>,
) -> Result<(), HttpResponse> {
    let mut sent = headers.clone();
    remove_connection_headers(&mut sent, false);
    sent.retain(|(name, _)| !AUTH_HOP_HEADERS.contains(&name.as_str()));
    let trusted =
        |name: &str| first(headers, name).filter(|v| auth.trust_forward_header && !v.is_empty());
    let client_ip = incoming.client_ip;
    let forwarded_for = match values(headers, "x-forwarded-for") {
        prior if auth.trust_forward_header && !prior.is_empty() => {
            format!("{}, {client_ip}", prior.join(", "))
        }
        _ => client_ip.to_string(),
    };
    set(&mut sent, "x-forwarded-for", &forwarded_for);
    let method = trusted("x-forwarded-method").unwrap_or_else(|| incoming.method.to_string());
    set(&mut sent, "x-forwarded-method", &method);
    let proto = trusted("x-forwarded-proto").unwrap_or_else(|| "http".to_string());
    set(&mut sent, "x-forwarded-proto", &proto);
    if let Some(port) = trusted("x-forwarded-port") {
        set(&mut sent, "x-forwarded-port", &port);
    }
    match trusted("x-forwarded-host") {
        Some(forwarded) => set(&mut sent, "x-forwarded-host", &forwarded),
        None if !incoming.host.is_empty() => set(&mut sent, "x-forwarded-host", incoming.host),
        None => remove(&mut sent, "x-forwarded-host"),
    }
    let forwarded_uri = trusted("x-forwarded-uri").unwrap_or_else(|| incoming.uri.to_string());
    set(&mut sent, "x-forwarded-uri", &forwarded_uri);

    let answer = client
        .get(&auth.address)
        .headers(to_reqwest(&sent))
        .send()
        .await;
    let Ok(answer) = answer else {
        return Err(HttpResponse::InternalServerError().finish());
    };
    let status = answer.status();
    let answer_headers = answer.headers().clone();
    let Ok(body) = answer.bytes().await else {
        return Err(HttpResponse::InternalServerError().finish());
    };

    if !status.is_success() {
        let mut response = HttpResponse::build(to_actix_status(status));
        for (name, value) in &answer_headers {
            if !AUTH_HOP_HEADERS.contains(&name.as_str()) && name != "content-length" {
                response.append_header(to_actix_header(name.as_str(), value.as_bytes()));
            }
        }
        // Go's Response.Location(): relative to the check's URL.
        if let Some(target) = answer_headers.get("location").and_then(|l| l.to_str().ok()) {
            let base = Url::parse(&auth.address).expect("the address is a URL");
            let Ok(resolved) = base.join(target) else {
                return Err(HttpResponse::InternalServerError().finish());
            };
            response.insert_header(to_actix_header("location", resolved.as_str().as_bytes()));
        }
        return Err(response.body(body));
    }

    for name in &auth.auth_response_headers {
        let name = name.to_ascii_lowercase();
        remove(headers, &name);
        for value in answer_headers.get_all(name.as_str()) {
            headers.push((name.clone(), value.as_bytes().to_vec()));
        }
    }
    Ok(())
}

/// The load balancer's reverse proxy (`passHostHeader` on, the default).
async fn reverse_proxy(
    client: &reqwest::Client,
    service: &str,
    mut headers: Headers,
    incoming: &Incoming<'_>,
    body: web::Bytes,
) -> HttpResponse {
    let upgrade = first(&headers, "connection")
        .filter(|c| has_token(c, "upgrade"))
        .and_then(|_| first(&headers, "upgrade"));
    remove_connection_headers(&mut headers, false);
    headers.retain(|(name, _)| !PROXY_HOP_HEADERS.contains(&name.as_str()));
    if let Some(upgrade) = upgrade {
        set(&mut headers, "connection", "Upgrade");
        set(&mut headers, "upgrade", &upgrade);
    }
    let prior = values(&headers, "x-forwarded-for");
    let forwarded_for = if prior.is_empty() {
        incoming.client_ip.to_string()
    } else {
        format!("{}, {}", prior.join(", "), incoming.client_ip)
    };
    set(&mut headers, "x-forwarded-for", &forwarded_for);
    set(&mut headers, "host", incoming.host);

    let method = reqwest::Method::from_bytes(incoming.method.as_bytes()).expect("a method");
    let mut request = client
        .request(method, format!("{service}{}", incoming.uri))
        .headers(to_reqwest(&headers));
    if !body.is_empty() {
        request = request.body(body);
    }
    let answer = request.send().await;
    let Ok(answer) = answer else {
        return HttpResponse::BadGateway().finish();
    };
    let mut response = HttpResponse::build(to_actix_status(answer.status()));
    for (name, value) in answer.headers() {
        if !PROXY_HOP_HEADERS.contains(&name.as_str()) && name != "content-length" {
            response.append_header(to_actix_header(name.as_str(), value.as_bytes()));
        }
    }
    match answer.bytes().await {
        Ok(body) => response.body(body),
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}

/// Removes the headers the `Connection` header names. The entry point keeps
/// Traefik's own X-headers; both keep a requested upgrade (`Connection: Upgrade`
/// and `Upgrade`), which the hop-by-hop lists then may drop.
fn remove_connection_headers(headers: &mut Headers, keep_managed: bool) {
    let upgrade = first(headers, "connection")
        .filter(|c| has_token(c, "upgrade"))
        .and_then(|_| first(headers, "upgrade"));
    let listed: Vec<String> = values(headers, "connection")
        .iter()
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|t| !t.is_empty())
        .filter(|t| !(keep_managed && is_managed_x_header(t)))
        .collect();
    headers.retain(|(name, _)| !listed.contains(name));
    match upgrade {
        Some(upgrade) => {
            set(headers, "connection", "Upgrade");
            set(headers, "upgrade", &upgrade);
        }
        None => remove(headers, "connection"),
    }
}

/// Traefik's managed X-headers, also spelled with underscores.
fn is_managed_x_header(name: &str) -> bool {
    const MANAGED: [&str; 13] = [
        "x-forwarded-proto",
        "x-forwarded-scheme",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-uri",
        "x-forwarded-method",
        "x-forwarded-prefix",
        "x-forwarded-tls-client-cert",
        "x-forwarded-tls-client-cert-info",
        "x-scheme",
        "x-real-ip",
    ];
    MANAGED.contains(&name.to_ascii_lowercase().replace('_', "-").as_str())
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn values(headers: &Headers, name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn first(headers: &Headers, name: &str) -> Option<String> {
    values(headers, name).into_iter().next()
}

fn set(headers: &mut Headers, name: &str, value: &str) {
    remove(headers, name);
    headers.push((name.to_string(), value.as_bytes().to_vec()));
}

fn remove(headers: &mut Headers, name: &str) {
    headers.retain(|(n, _)| n != name);
}

fn to_reqwest(headers: &Headers) -> reqwest::header::HeaderMap {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            reqwest::header::HeaderValue::from_bytes(value).expect("a header value"),
        );
    }
    map
}

fn to_actix_header(name: &str, value: &[u8]) -> (ActixName, ActixValue) {
    (
        ActixName::from_bytes(name.as_bytes()).expect("a header name"),
        ActixValue::from_bytes(value).expect("a header value"),
    )
}

fn to_actix_status(status: StatusCode) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status.as_u16()).expect("a status")
}

// ---------------------------------------------------------------------------
// The Traefik configuration: what the replay understands of dynamic.yml. Any
// other router option or middleware kind fails the test: the replay would not
// do what Traefik does with it.

#[derive(Clone, Debug, PartialEq)]
struct TraefikConfig {
    /// Highest priority first, like Traefik.
    routers: Vec<Router>,
    middlewares: BTreeMap<String, ForwardAuth>,
    /// Name -> base URL.
    services: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
struct Router {
    rule: String,
    priority: i64,
    middlewares: Vec<String>,
    service: String,
}

#[derive(Clone, Debug, PartialEq)]
struct ForwardAuth {
    address: String,
    trust_forward_header: bool,
    auth_response_headers: Vec<String>,
}

impl TraefikConfig {
    fn parse(text: &str) -> TraefikConfig {
        let documents = Yaml::parse(text);
        assert_eq!(documents.len(), 1, "dynamic.yml is one document");
        let http = documents[0].get("http");
        let mut routers = Vec::new();
        for (name, router) in http.get("routers").entries() {
            for (key, _) in router.entries() {
                assert!(
                    ["rule", "entryPoints", "priority", "middlewares", "service"]
                        .contains(&key.as_str()),
                    "router {name}: the replay does not implement `{key}`"
                );
            }
            assert_eq!(
                router.get("entryPoints").list_of_str(),
                ["web"],
                "router {name}"
            );
            let rule = router.get("rule").str().to_string();
            routers.push(Router {
                priority: router.opt("priority").map_or(rule.len() as i64, |p| {
                    p.str().parse().expect("a numeric priority")
                }),
                rule,
                middlewares: router
                    .opt("middlewares")
                    .map(Yaml::list_of_str)
                    .unwrap_or_default(),
                service: router.get("service").str().to_string(),
            });
        }
        routers.sort_by_key(|r| -r.priority);
        let mut middlewares = BTreeMap::new();
        for (name, middleware) in http.get("middlewares").entries() {
            let kinds: Vec<&str> = middleware
                .entries()
                .iter()
                .map(|(k, _)| k.as_str())
                .collect();
            assert_eq!(
                kinds,
                ["forwardAuth"],
                "middleware {name}: the replay implements only forwardAuth"
            );
            middlewares.insert(
                name.clone(),
                ForwardAuth::parse(name, middleware.get("forwardAuth")),
            );
        }
        let mut services = BTreeMap::new();
        for (name, service) in http.get("services").entries() {
            let servers = service.get("loadBalancer").get("servers").list();
            assert_eq!(servers.len(), 1, "service {name}: one server");
            services.insert(name.clone(), servers[0].get("url").str().to_string());
        }
        let config = TraefikConfig {
            routers,
            middlewares,
            services,
        };
        for router in &config.routers {
            router.path_prefix();
            assert!(config.services.contains_key(&router.service));
            for m in &router.middlewares {
                assert!(config.middlewares.contains_key(m), "no middleware {m}");
            }
        }
        config
    }

    /// The first router, by priority, whose rule matches.
    fn route(&self, host: &str, path: &str) -> Option<&Router> {
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        self.routers.iter().find(|r| {
            r.host().eq_ignore_ascii_case(host)
                && r.path_prefix()
                    .is_none_or(|prefix| path.starts_with(prefix))
        })
    }
}

impl Router {
    /// `Host(`h`)`, optionally `&& PathPrefix(`/p`)`: all the replay understands.
    fn parts(&self) -> (&str, Option<&str>) {
        let parsed = self
            .rule
            .strip_prefix("Host(`")
            .and_then(|r| r.split_once("`)"))
            .and_then(|(host, rest)| match rest {
                "" => Some((host, None)),
                _ => rest
                    .strip_prefix(" && PathPrefix(`")
                    .and_then(|r| r.strip_suffix("`)"))
                    .map(|prefix| (host, Some(prefix))),
            });
        parsed.unwrap_or_else(|| panic!("the replay does not understand the rule {}", self.rule))
    }

    fn host(&self) -> &str {
        self.parts().0
    }

    fn path_prefix(&self) -> Option<&str> {
        self.parts().1
    }
}

impl ForwardAuth {
    fn parse(name: &str, node: &Yaml) -> ForwardAuth {
        for (key, _) in node.entries() {
            assert!(
                ["address", "trustForwardHeader", "authResponseHeaders"].contains(&key.as_str()),
                "middleware {name}: the replay does not implement forwardAuth.{key}"
            );
        }
        ForwardAuth {
            address: node.get("address").str().to_string(),
            trust_forward_header: node
                .opt("trustForwardHeader")
                .is_some_and(|t| t.str() == "true"),
            auth_response_headers: node
                .opt("authResponseHeaders")
                .map(Yaml::list_of_str)
                .unwrap_or_default(),
        }
    }
}

/// The same configuration from docker-labels.yml: labels of the compose
/// services, the servers named `http://<compose service>:<port>`.
fn from_docker_labels(text: &str) -> TraefikConfig {
    let compose = &Yaml::parse(text)[0];
    let mut routers: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut middlewares: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut services = BTreeMap::new();
    for (container, service) in compose.get("services").entries() {
        let Some(labels) = service.opt("labels") else {
            continue;
        };
        for label in labels.list_of_str() {
            let (key, value) = label.split_once('=').expect("a key=value label");
            let parts: Vec<&str> = key.split('.').collect();
            match parts.as_slice() {
                ["traefik", "enable"] => assert_eq!(value, "true"),
                ["traefik", "http", "routers", name, field] => {
                    let value = if *field == "middlewares" {
                        value.replace("@docker", "")
                    } else {
                        value.to_string()
                    };
                    routers
                        .entry(name.to_string())
                        .or_default()
                        .insert(field.to_string(), value);
                }
                ["traefik", "http", "middlewares", name, "forwardauth", field] => {
                    middlewares
                        .entry(name.to_string())
                        .or_default()
                        .insert(field.to_string(), value.to_string());
                }
                ["traefik", "http", "services", name, "loadbalancer", "server", "port"] => {
                    services.insert(name.to_string(), format!("http://{container}:{value}"));
                }
                _ => panic!("docker-labels.yml: a label the test does not know: {label}"),
            }
        }
    }
    let list = |v: &str| v.split(',').map(str::to_string).collect::<Vec<_>>();
    let mut routers: Vec<Router> = routers
        .into_iter()
        .map(|(name, mut f)| {
            let middlewares = f
                .remove("middlewares")
                .map(|m| list(&m))
                .unwrap_or_default();
            let mut take = |k: &str| {
                f.remove(k)
                    .unwrap_or_else(|| panic!("router {name}: no {k} label"))
            };
            assert_eq!(take("entrypoints"), "web");
            let router = Router {
                rule: take("rule"),
                priority: take("priority").parse().expect("a numeric priority"),
                middlewares,
                service: take("service"),
            };
            assert!(f.is_empty(), "router {name}: labels the test does not know");
            router
        })
        .collect();
    routers.sort_by_key(|r| -r.priority);
    let middlewares = middlewares
        .into_iter()
        .map(|(name, f)| {
            let auth = ForwardAuth {
                address: f["address"].clone(),
                trust_forward_header: f["trustForwardHeader"] == "true",
                auth_response_headers: list(&f["authResponseHeaders"]),
            };
            assert_eq!(
                f.len(),
                3,
                "middleware {name}: labels the test does not know"
            );
            (name, auth)
        })
        .collect();

    // forward-auth trusts exactly Traefik's fixed address.
    let traefik_ip = compose
        .get("services")
        .get("traefik")
        .get("networks")
        .get("proxy")
        .get("ipv4_address")
        .str();
    let trusted = compose
        .get("services")
        .get("forward-auth")
        .get("environment")
        .get("TRUSTED_PROXIES")
        .str();
    assert_eq!(trusted, format!("{traefik_ip}/32"));

    TraefikConfig {
        routers,
        middlewares,
        services,
    }
}

/// The same configuration from the Kubernetes resources: Middlewares and one
/// IngressRoute, the in-cluster service names shortened to dynamic.yml's.
fn from_kubernetes(text: &str) -> TraefikConfig {
    const IN_CLUSTER: &str = "forward-auth.app.svc.cluster.local";
    let mut middlewares = BTreeMap::new();
    let mut routers = Vec::new();
    let mut services = BTreeMap::new();
    for document in Yaml::parse(text) {
        assert_eq!(document.get("apiVersion").str(), "traefik.io/v1alpha1");
        assert_eq!(document.get("metadata").get("namespace").str(), "app");
        let name = document.get("metadata").get("name").str();
        match document.get("kind").str() {
            "Middleware" => {
                let mut auth = ForwardAuth::parse(name, document.get("spec").get("forwardAuth"));
                assert!(auth.address.contains(IN_CLUSTER), "{}", auth.address);
                auth.address = auth.address.replace(IN_CLUSTER, "forward-auth");
                middlewares.insert(name.to_string(), auth);
            }
            "IngressRoute" => {
                let spec = document.get("spec");
                assert_eq!(spec.get("entryPoints").list_of_str(), ["web"]);
                for route in spec.get("routes").list() {
                    assert_eq!(route.get("kind").str(), "Rule");
                    let targets = route.get("services").list();
                    assert_eq!(targets.len(), 1, "one service per route");
                    let service = targets[0].get("name").str().to_string();
                    let port = targets[0].get("port").str();
                    services.insert(service.clone(), format!("http://{service}:{port}"));
                    routers.push(Router {
                        rule: route.get("match").str().to_string(),
                        priority: route.get("priority").str().parse().expect("a priority"),
                        middlewares: route
                            .opt("middlewares")
                            .map(|m| m.list().iter().map(|m| m.get("name").str().to_string()))
                            .into_iter()
                            .flatten()
                            .collect(),
                        service,
                    });
                }
            }
            other => panic!("kubernetes-middleware.yaml: unexpected kind {other}"),
        }
    }
    routers.sort_by_key(|r| -r.priority);
    TraefikConfig {
        routers,
        middlewares,
        services,
    }
}

// ---------------------------------------------------------------------------
// A YAML subset, enough for these files: block maps and lists, `- key: value`
// items, plain and quoted scalars, `[a, b]`, comments and `---`. Anything else
// panics, so a file that changes shape fails the test instead of being misread.

#[derive(Clone, Debug)]
enum Yaml {
    Map(Vec<(String, Yaml)>),
    List(Vec<Yaml>),
    Scalar(String),
}

struct Line {
    number: usize,
    indent: usize,
    text: String,
}

impl Yaml {
    /// The documents of a file.
    fn parse(text: &str) -> Vec<Yaml> {
        let mut documents = vec![Vec::new()];
        for (index, raw) in text.lines().enumerate() {
            if raw.trim_end() == "---" {
                documents.push(Vec::new());
                continue;
            }
            let content = strip_comment(raw).trim_end();
            if content.trim().is_empty() {
                continue;
            }
            assert!(!content.contains('\t'), "line {}: a tab", index + 1);
            let text = content.trim_start();
            documents.last_mut().unwrap().push(Line {
                number: index + 1,
                indent: content.len() - text.len(),
                text: text.to_string(),
            });
        }
        documents
            .into_iter()
            .filter(|lines| !lines.is_empty())
            .map(|mut lines| {
                let mut at = 0;
                let indent = lines[0].indent;
                let node = parse_block(&mut lines, &mut at, indent);
                if let Some(line) = lines.get(at) {
                    panic!("line {}: unexpected `{}`", line.number, line.text);
                }
                node
            })
            .collect()
    }

    fn opt(&self, key: &str) -> Option<&Yaml> {
        self.entries()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn get(&self, key: &str) -> &Yaml {
        self.opt(key)
            .unwrap_or_else(|| panic!("no `{key}` in {self:?}"))
    }

    fn entries(&self) -> &[(String, Yaml)] {
        match self {
            Yaml::Map(entries) => entries,
            other => panic!("expected a map, found {other:?}"),
        }
    }

    fn list(&self) -> &[Yaml] {
        match self {
            Yaml::List(items) => items,
            other => panic!("expected a list, found {other:?}"),
        }
    }

    fn str(&self) -> &str {
        match self {
            Yaml::Scalar(s) => s,
            other => panic!("expected a scalar, found {other:?}"),
        }
    }

    fn list_of_str(&self) -> Vec<String> {
        self.list().iter().map(|i| i.str().to_string()).collect()
    }
}

/// Drops a `#` comment that starts a line or follows a space, outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous == ' ' => return &line[..at],
            _ => {}
        }
        previous = c;
    }
    line
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: value` or `key:`, for a plain key.
fn key_value(text: &str) -> Option<(&str, &str)> {
    let (key, value) = match text.split_once(": ") {
        Some((key, value)) => (key, value.trim()),
        None => (text.strip_suffix(':')?, ""),
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || "_.-/".contains(c);
    (!key.is_empty() && key.chars().all(plain)).then_some((key, value))
}

fn scalar(text: &str, line: &Line) -> Yaml {
    let bad = || panic!("line {}: unsupported value `{text}`", line.number);
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or_else(bad);
        return Yaml::List(
            inner
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(|i| scalar(i, line))
                .collect(),
        );
    }
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote) {
            let inner = inner.strip_suffix(quote).unwrap_or_else(bad);
            if inner.contains(quote) || inner.contains('\\') {
                bad();
            }
            return Yaml::Scalar(inner.to_string());
        }
    }
    if text.starts_with(['{', '&', '*', '!', '|', '>']) {
        bad();
    }
    Yaml::Scalar(text.to_string())
}

fn parse_block(lines: &mut [Line], at: &mut usize, indent: usize) -> Yaml {
    if is_item(&lines[*at].text) {
        parse_list(lines, at, indent)
    } else {
        parse_map(lines, at, indent)
    }
}

fn parse_list(lines: &mut [Line], at: &mut usize, indent: usize) -> Yaml {
    let mut items = Vec::new();
    while *at < lines.len() && lines[*at].indent == indent && is_item(&lines[*at].text) {
        let rest = lines[*at].text[1..].trim_start().to_string();
        if rest.is_empty() {
            *at += 1;
            let child = lines
                .get(*at)
                .filter(|l| l.indent > indent)
                .map(|l| l.indent);
            let child =
                child.unwrap_or_else(|| panic!("line {}: empty item", lines[*at - 1].number));
            items.push(parse_block(lines, at, child));
        } else if key_value(&rest).is_some() {
            // `- key: value`: a map whose first key sits after the dash.
            let line = &mut lines[*at];
            line.indent += line.text.len() - rest.len();
            line.text = rest;
            let child = line.indent;
            items.push(parse_map(lines, at, child));
        } else {
            items.push(scalar(&rest, &lines[*at]));
            *at += 1;
        }
    }
    if let Some(line) = lines.get(*at).filter(|l| l.indent > indent) {
        panic!("line {}: unexpected indentation", line.number);
    }
    Yaml::List(items)
}

fn parse_map(lines: &mut [Line], at: &mut usize, indent: usize) -> Yaml {
    let mut entries = Vec::new();
    while *at < lines.len() && lines[*at].indent == indent && !is_item(&lines[*at].text) {
        let line = &lines[*at];
        let (key, value) = key_value(&line.text).unwrap_or_else(|| {
            panic!("line {}: expected `key: value`: {}", line.number, line.text)
        });
        let (key, value) = (key.to_string(), value.to_string());
        let node = if value.is_empty() {
            *at += 1;
            // A block below, or a list at the same indentation.
            match lines.get(*at) {
                Some(next)
                    if next.indent > indent || (next.indent == indent && is_item(&next.text)) =>
                {
                    let child = next.indent;
                    parse_block(lines, at, child)
                }
                _ => Yaml::Scalar(String::new()),
            }
        } else {
            let node = scalar(&value, line);
            *at += 1;
            node
        };
        assert!(
            entries.iter().all(|(k, _)| *k != key),
            "duplicate key {key}"
        );
        entries.push((key, node));
    }
    if let Some(line) = lines.get(*at).filter(|l| l.indent > indent) {
        panic!("line {}: unexpected indentation", line.number);
    }
    Yaml::Map(entries)
}
