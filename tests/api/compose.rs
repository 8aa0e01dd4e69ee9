//! docker-compose.yml, .env.example and the Dockerfile, checked without a
//! Docker engine (there is none here): services and profiles, mounted files,
//! variables, ports and addresses against integrations/ and the configuration
//! reference, and the image's health check and user. Each check lists problems;
//! the shipped files have none, and `every_check_catches_a_file_broken_its_way`
//! breaks the files one way at a time to show that each check can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use forward_auth::config::KNOWN_VARIABLES;
use ipnet::IpNet;
use serde_yaml_ng::Value;
use url::Url;

const COMPOSE: &str = "docker-compose.yml";
const ENV_EXAMPLE: &str = ".env.example";
const DOCKERFILE: &str = "Dockerfile";
const DOCKERIGNORE: &str = ".dockerignore";
const NGINX_CONF: &str = "integrations/nginx/forward-auth.conf";
const CADDYFILE: &str = "integrations/caddy/Caddyfile";
const TRAEFIK_STATIC: &str = "integrations/traefik/traefik.yml";
const TRAEFIK_DYNAMIC: &str = "integrations/traefik/dynamic.yml";

const SERVICE: &str = "forward-auth";
const APP: &str = "app";
const PROXIES: [&str; 3] = ["nginx", "traefik", "caddy"];

/// What the service cannot start without (DESIGN.md §4, Okta provider).
const REQUIRED: [&str; 7] = [
    "IDP_PROVIDER",
    "IDP_PROVIDER_URL",
    "IDP_CLIENT_ID",
    "IDP_CLIENT_SECRET",
    "AUTHENTICATE_SERVICE_URL",
    "COOKIE_SECRET",
    "IDP_SERVICE_ACCOUNT",
];
const DEFAULT_ADDRESS: &str = "0.0.0.0:4180";
const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.1/32,::1/128";
/// traefik/whoami's port without `--port`.
const WHOAMI_DEFAULT_PORT: u16 = 80;

type Problems = Vec<String>;
type Check = fn(&Project) -> Problems;

// ---------------------------------------------------------------------------
// The checks against the shipped files.

#[test]
fn compose_has_the_service_the_app_and_each_proxy_in_its_own_profile() {
    assert_no_problems(services(&Project::shipped()));
}

#[test]
fn every_mounted_file_exists_and_is_read_only_where_its_proxy_reads_it() {
    assert_no_problems(mounts(&Project::shipped()));
}

#[test]
fn every_variable_is_ours_and_env_example_provides_the_required_ones() {
    assert_no_problems(variables(&Project::shipped()));
}

#[test]
fn ports_and_addresses_agree_with_what_the_integration_files_listen_on_and_point_at() {
    assert_no_problems(ports(&Project::shipped()));
}

#[test]
fn compose_and_the_image_check_health_with_the_healthcheck_subcommand() {
    assert_no_problems(health_checks(&Project::shipped()));
}

#[test]
fn the_image_is_multi_stage_and_runs_only_the_binary_as_a_non_root_user() {
    assert_no_problems(image(&Project::shipped()));
}

#[test]
fn every_check_catches_a_file_broken_its_way() {
    let shipped = Project::shipped();
    let port_80 = "127.0.0.1:80:80\"\n      - \"127.0.0.1:443:443\"";
    let cases: [(&str, Project, Check, &str); 25] = [
        (
            "a proxy service is missing",
            shipped.with(COMPOSE, "  caddy:\n", "  kaddy:\n"),
            services,
            "no service `caddy`",
        ),
        (
            "a proxy is in another proxy's profile",
            shipped.with(COMPOSE, "profiles: [traefik]", "profiles: [nginx]"),
            services,
            "`traefik` must be in exactly the profile `traefik`",
        ),
        (
            "the service only starts with a profile",
            shipped.with(
                COMPOSE,
                "    build: .\n",
                "    build: .\n    profiles: [nginx]\n",
            ),
            services,
            "`forward-auth` must start without a profile",
        ),
        (
            "a service in another's namespace publishes ports",
            shipped.with(
                COMPOSE,
                "    image: traefik/whoami:v1.10\n",
                "    image: traefik/whoami:v1.10\n    ports: [\"8080:8080\"]\n",
            ),
            services,
            "`app` runs in forward-auth's network namespace",
        ),
        (
            "a mounted file does not exist",
            shipped.with(COMPOSE, "caddy/Caddyfile:", "caddy/Caddyfile.local:"),
            mounts,
            "./integrations/caddy/Caddyfile.local, which does not exist",
        ),
        (
            "a mounted integration file is writable",
            shipped.with(
                COMPOSE,
                "/etc/traefik/dynamic.yml:ro",
                "/etc/traefik/dynamic.yml",
            ),
            mounts,
            "is not mounted read-only",
        ),
        (
            "Traefik reads its dynamic file elsewhere",
            shipped.with(
                TRAEFIK_STATIC,
                "filename: /etc/traefik/dynamic.yml",
                "filename: /etc/traefik/routes.yml",
            ),
            mounts,
            "to /etc/traefik/routes.yml",
        ),
        (
            "nginx's file is not its only server",
            shipped.with(
                COMPOSE,
                "conf.d/default.conf:ro",
                "conf.d/forward-auth.conf:ro",
            ),
            mounts,
            "/etc/nginx/conf.d/default.conf",
        ),
        (
            "compose sets a variable that is not ours",
            shipped.with(COMPOSE, "      ADDRESS: ", "      LISTEN_ADDRESS: "),
            variables,
            "LISTEN_ADDRESS",
        ),
        (
            "a required variable is only commented out",
            shipped.with(
                ENV_EXAMPLE,
                "\nIDP_CLIENT_SECRET=",
                "\n# IDP_CLIENT_SECRET=",
            ),
            variables,
            "IDP_CLIENT_SECRET is required",
        ),
        (
            ".env.example suggests a misspelt variable",
            shipped.with(ENV_EXAMPLE, "# ALLOWED_GROUPS=", "# ALLOWED_GROUP="),
            variables,
            "ALLOWED_GROUP ",
        ),
        (
            "compose interpolates a variable that is not ours",
            shipped.with(COMPOSE, "image: caddy:2.8", "image: caddy:${CADDY_VERSION}"),
            variables,
            "CADDY_VERSION",
        ),
        (
            "the service does not read .env",
            shipped.with(COMPOSE, "env_file: .env\n", "env_file: service.env\n"),
            variables,
            "env_file",
        ),
        (
            "the service listens on another port than the files point at",
            shipped.with(
                COMPOSE,
                "ADDRESS: \"0.0.0.0:4180\"",
                "ADDRESS: \"0.0.0.0:4181\"",
            ),
            ports,
            "127.0.0.1:4180",
        ),
        (
            "the app listens on another port than the files point at",
            shipped.with(COMPOSE, "[\"--port\", \"8080\"]", "[\"--port\", \"9090\"]"),
            ports,
            "127.0.0.1:8080",
        ),
        (
            "Caddy's HTTPS port is not published",
            shipped.with(COMPOSE, port_80, "127.0.0.1:80:80\""),
            ports,
            "caddy listens on 443",
        ),
        (
            "nginx listens on a port nobody publishes",
            shipped.with(NGINX_CONF, "listen 80;", "listen 8081;"),
            ports,
            "nginx listens on 8081",
        ),
        (
            "nginx has its own network namespace, so 127.0.0.1 is not the service",
            shipped.with(
                COMPOSE,
                "    image: nginx:1.27-alpine\n    network_mode: \"service:forward-auth\"\n",
                "    image: nginx:1.27-alpine\n",
            ),
            ports,
            "forward-auth.conf points at 127.0.0.1:4180",
        ),
        (
            "Traefik's checks come from an address the service does not trust",
            shipped.with(COMPOSE, ",10.201.80.10/32\"", "\""),
            ports,
            "TRUSTED_PROXIES does not list",
        ),
        (
            "Traefik's name for the app resolves to nothing",
            shipped.with(COMPOSE, "aliases:\n          - app\n", "aliases: []\n"),
            ports,
            "points at app:8080",
        ),
        (
            "compose probes health with curl, which the image does not have",
            shipped.with(
                COMPOSE,
                "[\"CMD\", \"/forward-auth\", \"healthcheck\"]",
                "[\"CMD-SHELL\", \"curl -f http://127.0.0.1:4180/healthz\"]",
            ),
            health_checks,
            "docker-compose.yml: forward-auth's healthcheck",
        ),
        (
            "the image's HEALTHCHECK does not run the subcommand",
            shipped.with(
                DOCKERFILE,
                "CMD [\"/forward-auth\", \"healthcheck\"]",
                "NONE",
            ),
            health_checks,
            "Dockerfile: HEALTHCHECK",
        ),
        (
            "the image runs as root",
            shipped.with(DOCKERFILE, "\nUSER 65532:65532", "\nUSER root"),
            image,
            "runs as root",
        ),
        (
            "the image has one stage",
            shipped.with(DOCKERFILE, "FROM rust:1-bookworm AS build", "ARG UNUSED"),
            image,
            "multi-stage",
        ),
        (
            "the build context would carry the secrets",
            shipped.with(DOCKERIGNORE, "\n.env", "\n"),
            image,
            ".dockerignore does not exclude .env",
        ),
    ];
    for (what, project, check, expected) in cases {
        let problems = check(&project);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{what}: expected a problem with {expected:?}, got {problems:#?}"
        );
    }
}

fn assert_no_problems(problems: Problems) {
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// Services and profiles.

fn services(project: &Project) -> Problems {
    let compose = match Compose::load(project) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    for name in [SERVICE, APP] {
        match compose.service(name) {
            None => problems.push(format!("{COMPOSE}: no service `{name}`")),
            Some(s) if s.get("profiles").is_some() => problems.push(format!(
                "{COMPOSE}: `{name}` must start without a profile (every proxy needs it)"
            )),
            Some(_) => {}
        }
    }
    for proxy in PROXIES {
        match compose.service(proxy) {
            None => problems.push(format!("{COMPOSE}: no service `{proxy}`")),
            Some(s) => {
                if strings(s.get("profiles")) != [proxy] {
                    problems.push(format!(
                        "{COMPOSE}: `{proxy}` must be in exactly the profile `{proxy}` (found {:?})",
                        strings(s.get("profiles"))
                    ));
                }
            }
        }
    }
    if let Some(s) = compose.service(SERVICE) {
        let build = s.get("build");
        let context = build
            .and_then(|b| b.get("context"))
            .or(build)
            .and_then(Value::as_str);
        if context != Some(".") {
            problems.push(format!(
                "{COMPOSE}: `{SERVICE}` must build the Dockerfile at the root (`build: .`)"
            ));
        }
    }
    // Docker refuses to publish ports or join networks from a container that
    // uses another's network namespace.
    for name in compose.service_names() {
        let Some(owner) = compose.network_owner(&name) else {
            continue;
        };
        let s = compose.service(&name).unwrap_or(&Value::Null);
        for key in ["ports", "networks"] {
            if s.get(key).is_some() {
                problems.push(format!(
                    "{COMPOSE}: `{name}` runs in {owner}'s network namespace and cannot have `{key}`"
                ));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// Mounted files.

fn mounts(project: &Project) -> Problems {
    let compose = match Compose::load(project) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    for name in compose.service_names() {
        for mount in compose.mounts(&name) {
            let Some(path) = mount.source.strip_prefix("./") else {
                continue; // a named volume
            };
            if !project.is_file(path) {
                problems.push(format!(
                    "{COMPOSE}: `{name}` mounts {}, which does not exist",
                    mount.source
                ));
            }
            if path.starts_with("integrations/") && !mount.read_only {
                problems.push(format!(
                    "{COMPOSE}: `{name}`: {} is not mounted read-only (`:ro`)",
                    mount.source
                ));
            }
        }
    }
    // Where each image reads its configuration.
    let dynamic_target = match traefik_dynamic_path(project) {
        Ok(path) => path,
        Err(e) => {
            problems.push(e);
            String::new()
        }
    };
    let expected = [
        (
            "nginx",
            NGINX_CONF,
            "/etc/nginx/conf.d/default.conf".to_string(),
        ),
        ("caddy", CADDYFILE, "/etc/caddy/Caddyfile".to_string()),
        (
            "traefik",
            TRAEFIK_STATIC,
            "/etc/traefik/traefik.yml".to_string(),
        ),
        ("traefik", TRAEFIK_DYNAMIC, dynamic_target),
    ];
    for (proxy, file, target) in expected {
        let source = format!("./{file}");
        let mounted = compose
            .mounts(proxy)
            .into_iter()
            .any(|m| m.source == source && m.target == target);
        if !mounted {
            problems.push(format!(
                "{COMPOSE}: `{proxy}` must mount {source} to {target}"
            ));
        }
    }
    problems
}

/// Where traefik.yml's file provider reads the dynamic configuration.
fn traefik_dynamic_path(project: &Project) -> Result<String, String> {
    let file = project
        .yaml(TRAEFIK_STATIC)?
        .get("providers")
        .and_then(|p| p.get("file"))
        .cloned();
    let file = file.ok_or_else(|| format!("{TRAEFIK_STATIC}: no providers.file"))?;
    if let Some(path) = file.get("filename").and_then(Value::as_str) {
        return Ok(path.to_string());
    }
    match file.get("directory").and_then(Value::as_str) {
        Some(dir) => Ok(format!("{}/dynamic.yml", dir.trim_end_matches('/'))),
        None => Err(format!(
            "{TRAEFIK_STATIC}: providers.file has no filename or directory"
        )),
    }
}

// ---------------------------------------------------------------------------
// Variables.

fn variables(project: &Project) -> Problems {
    let compose = match Compose::load(project) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let known = |name: &str| KNOWN_VARIABLES.contains(&name);
    for name in compose.environment(SERVICE).keys() {
        if !known(name) {
            problems.push(format!(
                "{COMPOSE}: `{SERVICE}` sets {name}, which is not a variable of the configuration"
            ));
        }
    }
    // Compose fills ${NAME} in the file's values from .env, the copy of .env.example.
    for name in interpolated(&compose.0) {
        if !known(&name) {
            problems.push(format!(
                "{COMPOSE}: ${{{name}}} is not a variable of the configuration (nor in .env.example)"
            ));
        }
    }
    if !strings(compose.service(SERVICE).and_then(|s| s.get("env_file")))
        .contains(&".env".to_string())
    {
        problems.push(format!(
            "{COMPOSE}: `{SERVICE}` must read env_file .env (the copy of {ENV_EXAMPLE})"
        ));
    }
    let example = match project.read(ENV_EXAMPLE) {
        Ok(text) => env_assignments(&text),
        Err(e) => return [problems, vec![e]].concat(),
    };
    for a in &example {
        if !known(&a.name) {
            problems.push(format!(
                "{ENV_EXAMPLE}: {} is not a variable of the configuration",
                a.name
            ));
        }
    }
    for name in REQUIRED {
        if !example.iter().any(|a| a.active && a.name == name) {
            problems.push(format!(
                "{ENV_EXAMPLE}: {name} is required, so it must be there uncommented"
            ));
        }
    }
    problems
}

/// One `NAME=value` line of an env file; commented-out ones (`# NAME=value`) too.
struct Assignment {
    name: String,
    value: String,
    active: bool,
}

fn env_assignments(text: &str) -> Vec<Assignment> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (line, active) = match line.strip_prefix('#') {
                Some(rest) => (rest.trim(), false),
                None => (line, true),
            };
            let (name, value) = line.split_once('=')?;
            let is_name = !name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            is_name.then(|| Assignment {
                name: name.to_string(),
                value: value.trim().to_string(),
                active,
            })
        })
        .collect()
}

/// Names in `$NAME` and `${NAME…}` in the values (not the comments) of a
/// YAML document, except `$$`, compose's escaped dollar.
fn interpolated(value: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    match value {
        Value::String(text) => {
            let mut rest = text.as_str();
            while let Some(at) = rest.find('$') {
                rest = &rest[at + 1..];
                if let Some(after) = rest.strip_prefix('$') {
                    rest = after;
                    continue;
                }
                let name: String = rest
                    .trim_start_matches('{')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| names.extend(interpolated(v))),
        Value::Mapping(map) => map.iter().for_each(|(k, v)| {
            names.extend(interpolated(k));
            names.extend(interpolated(v));
        }),
        _ => {}
    }
    names
}

// ---------------------------------------------------------------------------
// Ports and addresses.

/// Every proxy listens on ports its namespace publishes and reaches the
/// service and the app where they listen, from an address the service trusts.
fn ports(project: &Project) -> Problems {
    let compose = match Compose::load(project) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let service_port = match service_port(project, &compose) {
        Ok(port) => port,
        Err(e) => return vec![e],
    };
    let app_port = app_port(&compose);
    let service_ns = compose.namespace(SERVICE);
    let app_ns = compose.namespace(APP);
    if service_ns == app_ns && service_port == app_port {
        problems.push(format!(
            "{COMPOSE}: the service and the app both listen on {service_port} in one namespace"
        ));
    }
    let trusted = match trusted_proxies(project, &compose) {
        Ok(nets) => nets,
        Err(e) => return [problems, vec![e]].concat(),
    };
    for proxy in PROXIES {
        let ns = compose.namespace(proxy);
        let wiring = match proxy_wiring(project, proxy) {
            Ok(w) => w,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let published = compose.published(&ns);
        for (port, file) in &wiring.listens {
            if !published.contains(port) {
                problems.push(format!(
                    "{proxy} listens on {port} ({file}), but `{ns}`, whose network namespace it runs in, publishes no container port {port}"
                ));
            }
            if (ns == service_ns && *port == service_port) || (ns == app_ns && *port == app_port) {
                problems.push(format!(
                    "{proxy} listens on {port} ({file}), where the service or the app listens"
                ));
            }
        }
        let (mut reaches_service, mut reaches_app) = (false, false);
        // Each distinct target once (nginx names the service three times).
        let mut seen = BTreeSet::new();
        let targets = wiring
            .targets
            .iter()
            .filter(|t| seen.insert((t.file, t.host.clone(), t.port)));
        for target in targets {
            let shown = format!("{} points at {}:{}", target.file, target.host, target.port);
            let target_ns = if is_loopback(&target.host) {
                Some(ns.clone())
            } else {
                compose.resolve(&target.host)
            };
            let Some(target_ns) = target_ns else {
                problems.push(format!(
                    "{shown}, a name that no attached service or network alias of {COMPOSE} has"
                ));
                continue;
            };
            if target_ns == service_ns && target.port == service_port {
                reaches_service = true;
                // Where the service sees the check come from.
                let source = if is_loopback(&target.host) {
                    target
                        .host
                        .trim_matches(['[', ']'])
                        .parse()
                        .ok()
                        .or(Some(IpAddr::from([127, 0, 0, 1])))
                } else {
                    compose.fixed_address(&ns)
                };
                match source {
                    None => problems.push(format!(
                        "{shown}: {proxy} has no fixed address, so TRUSTED_PROXIES cannot name it"
                    )),
                    Some(ip) if !trusted.iter().any(|net| net.contains(&ip)) => problems.push(format!(
                        "{shown}: {proxy}'s checks come from {ip}, which TRUSTED_PROXIES does not list, so the service would ignore their X-Forwarded-* headers"
                    )),
                    Some(_) => {}
                }
            } else if target_ns == app_ns && target.port == app_port {
                reaches_app = true;
            } else {
                problems.push(format!(
                    "{shown}, where neither the service (port {service_port} in `{service_ns}`'s network namespace) nor the app (port {app_port} in `{app_ns}`'s) listens"
                ));
            }
        }
        if !reaches_service {
            problems.push(format!("{proxy}: its files never reach the service"));
        }
        if !reaches_app {
            problems.push(format!("{proxy}: its files never reach the app"));
        }
    }
    problems
}

/// The port of the service's ADDRESS: compose's environment, else the one
/// .env.example sets, else the default.
fn service_port(project: &Project, compose: &Compose) -> Result<u16, String> {
    let from_example = || {
        let text = project.read(ENV_EXAMPLE).ok()?;
        env_assignments(&text)
            .into_iter()
            .find(|a| a.active && a.name == "ADDRESS")
            .map(|a| a.value)
    };
    let address = compose
        .environment(SERVICE)
        .get("ADDRESS")
        .cloned()
        .or_else(from_example)
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
    address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| format!("ADDRESS `{address}` has no port"))
}

/// The echo app's port: whoami's `--port`, or its default.
fn app_port(compose: &Compose) -> u16 {
    let args: Vec<String> = strings(compose.service(APP).and_then(|s| s.get("command")))
        .iter()
        .flat_map(|a| a.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    for (i, arg) in args.iter().enumerate() {
        let value = match arg.as_str() {
            "--port" | "-port" => args.get(i + 1).map(String::as_str),
            other => other
                .strip_prefix("--port=")
                .or_else(|| other.strip_prefix("-port=")),
        };
        if let Some(port) = value.and_then(|v| v.parse().ok()) {
            return port;
        }
    }
    WHOAMI_DEFAULT_PORT
}

/// TRUSTED_PROXIES as the service gets it under compose.
fn trusted_proxies(project: &Project, compose: &Compose) -> Result<Vec<IpNet>, String> {
    let from_example = || {
        let text = project.read(ENV_EXAMPLE).ok()?;
        env_assignments(&text)
            .into_iter()
            .find(|a| a.active && a.name == "TRUSTED_PROXIES")
            .map(|a| a.value)
    };
    let value = compose
        .environment(SERVICE)
        .get("TRUSTED_PROXIES")
        .cloned()
        .or_else(from_example)
        .unwrap_or_else(|| DEFAULT_TRUSTED_PROXIES.to_string());
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("TRUSTED_PROXIES: `{s}` is not an address or CIDR"))
        })
        .collect()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What a proxy's shipped files listen on and send requests to.
struct Wiring {
    listens: Vec<(u16, &'static str)>,
    targets: Vec<Target>,
}

struct Target {
    file: &'static str,
    host: String,
    port: u16,
}

fn proxy_wiring(project: &Project, proxy: &str) -> Result<Wiring, String> {
    match proxy {
        "nginx" => Ok(nginx_wiring(&project.read(NGINX_CONF)?)),
        "caddy" => Ok(caddy_wiring(&project.read(CADDYFILE)?)),
        "traefik" => traefik_wiring(project),
        other => Err(format!("no files known for {other}")),
    }
}

fn nginx_wiring(text: &str) -> Wiring {
    let mut wiring = Wiring {
        listens: Vec::new(),
        targets: Vec::new(),
    };
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next().map(|w| w.trim_end_matches(';'))) {
            (Some("listen"), Some(spec)) => {
                let port = spec.rsplit(':').next().and_then(|p| p.parse().ok());
                wiring.listens.extend(port.map(|p| (p, NGINX_CONF)));
            }
            (Some("proxy_pass"), Some(url)) => wiring.targets.extend(url_target(NGINX_CONF, url)),
            _ => {}
        }
    }
    wiring
}

fn caddy_wiring(text: &str) -> Wiring {
    let mut wiring = Wiring {
        listens: Vec::new(),
        targets: Vec::new(),
    };
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // A site block: `address[, address] {` at the top level (not the
        // global options `{` nor a `(snippet) {`).
        let top_level = !raw.starts_with(char::is_whitespace);
        if top_level && line.ends_with('{') && line != "{" && !line.starts_with('(') {
            let addresses = line
                .trim_end_matches('{')
                .split([',', ' '])
                .filter(|a| !a.is_empty());
            for address in addresses {
                wiring.listens.extend(
                    caddy_site_ports(address)
                        .into_iter()
                        .map(|p| (p, CADDYFILE)),
                );
            }
        }
        let mut words = line.split_whitespace();
        if matches!(words.next(), Some("reverse_proxy" | "forward_auth")) {
            for word in words.take_while(|w| *w != "{") {
                let url = if word.contains("://") {
                    word.to_string()
                } else {
                    format!("http://{word}")
                };
                if word.contains(':') {
                    wiring.targets.extend(url_target(CADDYFILE, &url));
                }
            }
        }
    }
    wiring
}

/// The ports Caddy serves a site address on: automatic HTTPS for a bare host
/// name means 443 and 80 (for the redirect).
fn caddy_site_ports(address: &str) -> Vec<u16> {
    let (default, rest) = if let Some(rest) = address.strip_prefix("http://") {
        (vec![80], rest)
    } else if let Some(rest) = address.strip_prefix("https://") {
        (vec![443], rest)
    } else {
        (vec![80, 443], address)
    };
    let host_port = rest.split('/').next().unwrap_or_default();
    match host_port.rsplit_once(':').and_then(|(_, p)| p.parse().ok()) {
        Some(port) => vec![port],
        None => default,
    }
}

fn traefik_wiring(project: &Project) -> Result<Wiring, String> {
    let mut wiring = Wiring {
        listens: Vec::new(),
        targets: Vec::new(),
    };
    let static_config = project.yaml(TRAEFIK_STATIC)?;
    let entry_points = static_config.get("entryPoints").and_then(Value::as_mapping);
    for entry in entry_points.into_iter().flat_map(|m| m.values()) {
        let address = entry
            .get("address")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let port = address
            .split('/')
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok());
        wiring.listens.extend(port.map(|p| (p, TRAEFIK_STATIC)));
    }
    let dynamic = project.yaml(TRAEFIK_DYNAMIC)?;
    let http = dynamic.get("http").cloned().unwrap_or(Value::Null);
    let values = |key: &str| -> Vec<Value> {
        http.get(key)
            .and_then(Value::as_mapping)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    };
    for middleware in values("middlewares") {
        if let Some(address) = middleware
            .get("forwardAuth")
            .and_then(|f| f.get("address"))
            .and_then(Value::as_str)
        {
            wiring.targets.extend(url_target(TRAEFIK_DYNAMIC, address));
        }
    }
    for service in values("services") {
        let servers = service
            .get("loadBalancer")
            .and_then(|l| l.get("servers"))
            .and_then(Value::as_sequence);
        for server in servers.into_iter().flatten() {
            if let Some(url) = server.get("url").and_then(Value::as_str) {
                wiring.targets.extend(url_target(TRAEFIK_DYNAMIC, url));
            }
        }
    }
    Ok(wiring)
}

fn url_target(file: &'static str, url: &str) -> Option<Target> {
    let url = Url::parse(url).ok()?;
    Some(Target {
        file,
        host: url.host_str()?.to_string(),
        port: url.port_or_known_default()?,
    })
}

// ---------------------------------------------------------------------------
// Health checks and the image.

fn health_checks(project: &Project) -> Problems {
    let mut problems = Vec::new();
    let binary = match Dockerfile::load(project).and_then(|d| d.entrypoint_binary()) {
        Ok(binary) => binary,
        Err(e) => return vec![e],
    };
    match Compose::load(project) {
        Err(e) => problems.push(e),
        Ok(compose) => {
            let check = compose.service(SERVICE).and_then(|s| s.get("healthcheck"));
            let test = strings(check.and_then(|c| c.get("test")));
            let disabled = check
                .and_then(|c| c.get("disable"))
                .and_then(Value::as_bool)
                == Some(true);
            let expected = ["CMD", binary.as_str(), "healthcheck"];
            if test != expected || disabled {
                problems.push(format!(
                    "{COMPOSE}: {SERVICE}'s healthcheck must be test: {expected:?} (the image has no shell or curl), not {test:?}"
                ));
            }
        }
    }
    let dockerfile = match Dockerfile::load(project) {
        Ok(d) => d,
        Err(e) => return [problems, vec![e]].concat(),
    };
    let expected = vec![binary.clone(), "healthcheck".to_string()];
    let healthcheck = dockerfile
        .final_stage()
        .iter()
        .rev()
        .find(|i| i.keyword == "HEALTHCHECK")
        .map(|i| i.args.clone());
    let command = healthcheck
        .as_deref()
        .and_then(|args| args.split_once("CMD "))
        .and_then(|(_, command)| serde_json::from_str::<Vec<String>>(command.trim()).ok());
    if command.as_ref() != Some(&expected) {
        problems.push(format!(
            "{DOCKERFILE}: HEALTHCHECK must be CMD {expected:?} in exec form, found {healthcheck:?}"
        ));
    }
    problems
}

fn image(project: &Project) -> Problems {
    let dockerfile = match Dockerfile::load(project) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let stages = dockerfile.stages();
    if stages.len() < 2 {
        problems.push(format!(
            "{DOCKERFILE}: must be multi-stage (a build stage, then a small runtime image)"
        ));
    }
    let builds = stages[..stages.len().saturating_sub(1)]
        .iter()
        .flat_map(|stage| stage.iter())
        .any(|i| {
            i.keyword == "RUN"
                && i.args.contains("cargo build")
                && i.args.contains("--release")
                && i.args.contains("--locked")
        });
    if !builds {
        problems.push(format!(
            "{DOCKERFILE}: a build stage must run `cargo build --release --locked`"
        ));
    }
    let last = dockerfile.final_stage();
    let user = last
        .iter()
        .rev()
        .find(|i| i.keyword == "USER")
        .map(|i| i.args.clone());
    match user
        .as_deref()
        .map(|u| u.split(':').next().unwrap_or_default())
    {
        None => problems.push(format!("{DOCKERFILE}: the runtime stage names no USER")),
        Some("root" | "0") => {
            problems.push(format!("{DOCKERFILE}: the runtime stage runs as root"))
        }
        Some(_) => {}
    }
    let copies: Vec<&Instruction> = last
        .iter()
        .filter(|i| matches!(i.keyword.as_str(), "COPY" | "ADD"))
        .collect();
    let binary = dockerfile.entrypoint_binary().unwrap_or_default();
    let copies_the_binary = copies.len() == 1
        && copies[0].args.starts_with("--from=")
        && copies[0].args.split_whitespace().last() == Some(binary.as_str());
    if !copies_the_binary {
        problems.push(format!(
            "{DOCKERFILE}: the runtime stage must copy only the built binary, to {binary:?} (the ENTRYPOINT)"
        ));
    }
    if last.iter().any(|i| i.keyword == "RUN") {
        problems.push(format!(
            "{DOCKERFILE}: the runtime stage must not RUN anything (it has no shell)"
        ));
    }
    let exposed: Vec<&str> = last
        .iter()
        .filter(|i| i.keyword == "EXPOSE")
        .flat_map(|i| i.args.split_whitespace())
        .collect();
    let port = Compose::load(project)
        .ok()
        .and_then(|c| service_port(project, &c).ok())
        .unwrap_or(4180);
    if !exposed
        .iter()
        .any(|e| e.trim_end_matches("/tcp") == port.to_string())
    {
        problems.push(format!(
            "{DOCKERFILE}: must EXPOSE {port}, the port of ADDRESS"
        ));
    }
    let ignored: Vec<String> = project
        .read(DOCKERIGNORE)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_matches('/').to_string())
        .collect();
    for entry in ["target", ".git", ".env"] {
        if !ignored.iter().any(|i| i == entry) {
            problems.push(format!("{DOCKERIGNORE} does not exclude {entry}"));
        }
    }
    problems
}

/// A Dockerfile as instructions (continuation lines joined, comments dropped).
struct Dockerfile(Vec<Instruction>);

struct Instruction {
    keyword: String,
    args: String,
}

impl Dockerfile {
    fn load(project: &Project) -> Result<Dockerfile, String> {
        let text = project.read(DOCKERFILE)?;
        let mut instructions = Vec::new();
        let mut logical = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || (logical.is_empty() && line.is_empty()) {
                continue;
            }
            if let Some(head) = line.strip_suffix('\\') {
                logical.push_str(head);
                logical.push(' ');
                continue;
            }
            logical.push_str(line);
            let (keyword, args) = logical
                .split_once(char::is_whitespace)
                .unwrap_or((&logical, ""));
            instructions.push(Instruction {
                keyword: keyword.to_ascii_uppercase(),
                args: args.trim().to_string(),
            });
            logical.clear();
        }
        Ok(Dockerfile(instructions))
    }

    fn stages(&self) -> Vec<&[Instruction]> {
        let starts: Vec<usize> = (0..self.0.len())
            .filter(|&i| self.0[i].keyword == "FROM")
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(n, &start)| &self.0[start..starts.get(n + 1).copied().unwrap_or(self.0.len())])
            .collect()
    }

    fn final_stage(&self) -> &[Instruction] {
        self.stages().last().copied().unwrap_or(&[])
    }

    /// The program the image runs: ENTRYPOINT's first word (exec form).
    fn entrypoint_binary(&self) -> Result<String, String> {
        let entrypoint = self
            .final_stage()
            .iter()
            .rev()
            .find(|i| i.keyword == "ENTRYPOINT");
        entrypoint
            .and_then(|i| serde_json::from_str::<Vec<String>>(&i.args).ok())
            .and_then(|words| words.into_iter().next())
            .ok_or_else(|| {
                format!("{DOCKERFILE}: the runtime stage needs an ENTRYPOINT in exec form")
            })
    }
}

// ---------------------------------------------------------------------------
// Reading the files.

/// The repository's files, some replaced in memory by a test.
#[derive(Clone)]
struct Project {
    root: PathBuf,
    replaced: BTreeMap<String, String>,
}

impl Project {
    fn shipped() -> Project {
        Project {
            root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            replaced: BTreeMap::new(),
        }
    }

    fn read(&self, path: &str) -> Result<String, String> {
        if let Some(text) = self.replaced.get(path) {
            return Ok(text.clone());
        }
        std::fs::read_to_string(self.root.join(path))
            .map_err(|e| format!("cannot read {path}: {e}"))
    }

    fn is_file(&self, path: &str) -> bool {
        self.replaced.contains_key(path) || self.root.join(path).is_file()
    }

    fn yaml(&self, path: &str) -> Result<Value, String> {
        serde_yaml_ng::from_str(&self.read(path)?)
            .map_err(|e| format!("{path} is not valid YAML: {e}"))
    }

    /// A copy in which the first `from` in `path` reads `to`.
    fn with(&self, path: &str, from: &str, to: &str) -> Project {
        let text = self.read(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.contains(from),
            "{path} no longer contains {from:?}: update the broken-file cases"
        );
        let mut copy = self.clone();
        copy.replaced
            .insert(path.to_string(), text.replacen(from, to, 1));
        copy
    }
}

/// docker-compose.yml, parsed.
struct Compose(Value);

struct Mount {
    source: String,
    target: String,
    read_only: bool,
}

impl Compose {
    fn load(project: &Project) -> Result<Compose, String> {
        project.yaml(COMPOSE).map(Compose)
    }

    fn service(&self, name: &str) -> Option<&Value> {
        self.0.get("services")?.get(name)
    }

    fn service_names(&self) -> Vec<String> {
        let services = self.0.get("services").and_then(Value::as_mapping);
        services
            .into_iter()
            .flat_map(|m| m.keys())
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect()
    }

    /// The service whose network namespace `name` joins, if it joins one.
    fn network_owner(&self, name: &str) -> Option<String> {
        let mode = self.service(name)?.get("network_mode")?.as_str()?;
        mode.strip_prefix("service:").map(str::to_string)
    }

    /// The service that owns the network namespace `name` runs in.
    fn namespace(&self, name: &str) -> String {
        self.network_owner(name).unwrap_or_else(|| name.to_string())
    }

    /// The namespace a host name reaches on the compose network: a service's
    /// name or network alias. A service inside another's namespace has no
    /// network endpoint, so no name of its own.
    fn resolve(&self, host: &str) -> Option<String> {
        self.service_names().into_iter().find_map(|name| {
            if self.network_owner(&name).is_some() {
                return None;
            }
            let networks = self.service(&name)?.get("networks");
            let aliases = networks
                .and_then(Value::as_mapping)
                .into_iter()
                .flat_map(|m| m.values())
                .flat_map(|n| strings(n.get("aliases")));
            (name == host || aliases.into_iter().any(|a| a == host)).then(|| name.clone())
        })
    }

    /// The fixed IPv4 address a service has on a network, if any.
    fn fixed_address(&self, name: &str) -> Option<IpAddr> {
        let networks = self.service(name)?.get("networks")?.as_mapping()?;
        networks
            .values()
            .find_map(|n| n.get("ipv4_address")?.as_str()?.parse().ok())
    }

    fn environment(&self, name: &str) -> BTreeMap<String, String> {
        let environment = self.service(name).and_then(|s| s.get("environment"));
        match environment {
            Some(Value::Mapping(map)) => map
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), scalar(v))))
                .collect(),
            Some(list) => strings(Some(list))
                .into_iter()
                .map(|item| match item.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (item, String::new()),
                })
                .collect(),
            None => BTreeMap::new(),
        }
    }

    /// The container ports a service publishes.
    fn published(&self, name: &str) -> BTreeSet<u16> {
        let ports = self
            .service(name)
            .and_then(|s| s.get("ports"))
            .and_then(Value::as_sequence);
        ports
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let container = match p {
                    Value::Mapping(_) => scalar(p.get("target")?),
                    other => scalar(other).rsplit(':').next()?.to_string(),
                };
                container.split('/').next()?.parse().ok()
            })
            .collect()
    }

    fn mounts(&self, name: &str) -> Vec<Mount> {
        let volumes = self
            .service(name)
            .and_then(|s| s.get("volumes"))
            .and_then(Value::as_sequence);
        volumes
            .into_iter()
            .flatten()
            .filter_map(|v| match v {
                Value::String(short) => {
                    let mut parts = short.split(':');
                    let source = parts.next()?.to_string();
                    let target = parts.next()?.to_string();
                    let read_only = parts
                        .next()
                        .is_some_and(|mode| mode.split(',').any(|m| m == "ro"));
                    Some(Mount {
                        source,
                        target,
                        read_only,
                    })
                }
                long => Some(Mount {
                    source: scalar(long.get("source")?),
                    target: scalar(long.get("target")?),
                    read_only: long.get("read_only").and_then(Value::as_bool) == Some(true),
                }),
            })
            .collect()
    }
}

/// A list of strings, or one string, as compose allows for most keys.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items.iter().map(scalar).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![scalar(other)],
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}
