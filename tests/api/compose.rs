//! docker-compose.yml, .env.example and the Dockerfile, checked without a
//! Docker engine (there is none here): services and profiles, mounted files,
//! variables, ports and addresses against integrations/ and the configuration
//! reference, the `replicas` profile (two replicas sharing one Redis behind
//! nginx), and the image's health check and user. Each check lists problems;
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

/// The profile that runs several replicas on one Redis, and its services.
const REPLICAS_PROFILE: &str = "replicas";
const REPLICAS: [&str; 2] = ["forward-auth-1", "forward-auth-2"];
const REDIS: &str = "redis";
const REPLICAS_PROXY: &str = "nginx-replicas";
/// What nginx-replicas serves: the shipped file after its command's `sed`.
const NGINX_CONF_FOR_REPLICAS: &str =
    "integrations/nginx/forward-auth.conf (as nginx-replicas edits it)";
/// Where the nginx image reads its server on port 80; the file that replaces
/// it is the only one there.
const NGINX_SERVER_FILE: &str = "/etc/nginx/conf.d/default.conf";
/// GETDEL (pending sign-ins) needs Redis 6.2.
const REDIS_MIN_VERSION: (u32, u32) = (6, 2);
const REDIS_DEFAULT_PORT: u16 = 6379;

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
fn the_replicas_profile_shares_one_redis_and_one_env_file_between_its_replicas() {
    assert_no_problems(replicas(&Project::shipped()));
}

#[test]
fn every_check_catches_a_file_broken_its_way() {
    let shipped = Project::shipped();
    let port_80 = "127.0.0.1:80:80\"\n      - \"127.0.0.1:443:443\"";
    let cases: Vec<(&str, Project, Check, &str)> = vec![
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
            shipped.with(
                COMPOSE,
                "image: caddy:2.11",
                "image: caddy:${CADDY_VERSION}",
            ),
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
        // --- The `replicas` profile.
        (
            "Redis starts without the replicas profile",
            shipped.with_in_service(REDIS, "    profiles: [replicas]\n", ""),
            services,
            "`redis` must be in exactly the profile `replicas`",
        ),
        (
            "the replicas' nginx also starts with the nginx profile",
            shipped.with_in_service(
                REPLICAS_PROXY,
                "profiles: [replicas]",
                "profiles: [replicas, nginx]",
            ),
            services,
            "`nginx-replicas` must be in exactly the profile `replicas`",
        ),
        (
            "the service needs Redis, which only the profile starts",
            shipped.with_in_service(
                SERVICE,
                "    read_only: true\n",
                "    depends_on: [redis]\n    read_only: true\n",
            ),
            services,
            "`forward-auth` depends on `redis`, which only starts with the profile",
        ),
        (
            "a replica's image would be pulled, not built",
            shipped.with_in_service("forward-auth-2", "    build: .\n", ""),
            services,
            "`forward-auth-2` must build the Dockerfile at the root",
        ),
        (
            "a replica runs somebody else's image",
            shipped.with_in_service(
                "forward-auth-1",
                "    image: forward-auth\n",
                "    image: ghcr.io/somebody/forward-auth\n",
            ),
            services,
            "`forward-auth-1` must run the image `forward-auth` builds",
        ),
        (
            "a replica sets a variable that is not ours",
            shipped.with_in_service(
                "forward-auth-2",
                "      SESSION_STORE: ",
                "      SESSION_STORAGE: ",
            ),
            variables,
            "`forward-auth-2` sets SESSION_STORAGE",
        ),
        (
            "a replica does not read .env",
            shipped.with_in_service(
                "forward-auth-1",
                "env_file: .env\n",
                "env_file: replica.env\n",
            ),
            variables,
            "`forward-auth-1` must read env_file .env",
        ),
        (
            "Redis keeps its data inside the container",
            shipped.with_in_service(REDIS, "      - redis-data:/data\n", ""),
            replicas,
            "`redis` must keep /data on a named volume",
        ),
        (
            "a named volume is not declared",
            shipped.with(COMPOSE, "  redis-data:\n", ""),
            mounts,
            "`redis-data`, which the top-level `volumes:` does not declare",
        ),
        (
            "Redis runs without its append-only file",
            shipped.with_in_service(
                REDIS,
                "\"--appendonly\", \"yes\"",
                "\"--appendonly\", \"no\"",
            ),
            replicas,
            "--appendonly yes",
        ),
        (
            "Redis is too old for GETDEL",
            shipped.with_in_service(REDIS, "redis:7.4-alpine", "redis:6.0-alpine"),
            replicas,
            "at least 6.2",
        ),
        (
            "Redis's health check does not ask Redis",
            shipped.with_in_service(
                REDIS,
                "[\"CMD\", \"redis-cli\", \"ping\"]",
                "[\"CMD\", \"true\"]",
            ),
            health_checks,
            "`redis`'s healthcheck",
        ),
        (
            "a replica probes health with curl",
            shipped.with_in_service(
                "forward-auth-2",
                "[\"CMD\", \"/forward-auth\", \"healthcheck\"]",
                "[\"CMD-SHELL\", \"curl -f http://127.0.0.1:4180/healthz\"]",
            ),
            health_checks,
            "forward-auth-2's healthcheck",
        ),
        (
            "the replicas use different Redis databases",
            shipped.with_in_service(
                "forward-auth-2",
                "redis://redis:6379/0",
                "redis://redis:6379/1",
            ),
            replicas,
            "the replicas must use the same SESSION_STORE",
        ),
        (
            "a replica's Redis is not the redis service",
            shipped.with_in_service(
                "forward-auth-1",
                "redis://redis:6379/0",
                "redis://localhost:6379/0",
            ),
            replicas,
            "points at localhost, not the `redis` service",
        ),
        (
            "a replica's Redis port is not Redis's",
            shipped.with_in_service(
                "forward-auth-1",
                "redis://redis:6379/0",
                "redis://redis:6380/0",
            ),
            replicas,
            "port 6380 is not the one `redis` listens on",
        ),
        (
            "a replica keeps its sessions in memory",
            shipped.with_in_service(
                "forward-auth-2",
                "      SESSION_STORE: \"redis://redis:6379/0\"\n",
                "",
            ),
            replicas,
            "`forward-auth-2` has no SESSION_STORE",
        ),
        (
            "a replica reads one more env file",
            shipped.with_in_service(
                "forward-auth-2",
                "env_file: .env\n",
                "env_file: [.env, replica-2.env]\n",
            ),
            replicas,
            "the replicas must read the same env_file",
        ),
        (
            "a replica has a COOKIE_SECRET of its own",
            shipped.with_in_service(
                "forward-auth-2",
                "      ADDRESS: ",
                "      COOKIE_SECRET: \"c2VjcmV0\"\n      ADDRESS: ",
            ),
            replicas,
            "`forward-auth-2` sets COOKIE_SECRET itself",
        ),
        (
            "a replica starts before Redis answers",
            shipped.with_in_service(
                "forward-auth-1",
                "      redis:\n        condition: service_healthy\n",
                "      redis:\n        condition: service_started\n",
            ),
            replicas,
            "`forward-auth-1` must wait for `redis` to be healthy",
        ),
        (
            "the replicas' nginx starts before it can resolve a replica",
            shipped.with_in_service(
                REPLICAS_PROXY,
                "      forward-auth-2:\n        condition: service_healthy\n",
                "      forward-auth-2:\n        condition: service_started\n",
            ),
            replicas,
            "`nginx-replicas` must wait for `forward-auth-2` to be healthy",
        ),
        (
            "the replicas' upstream lists one replica",
            shipped.with(
                COMPOSE,
                "server forward-auth-1:4180; server forward-auth-2:4180;",
                "server forward-auth-1:4180;",
            ),
            ports,
            "nginx-replicas: its files never reach `forward-auth-2`",
        ),
        (
            "the replicas' upstream has a port no replica listens on",
            shipped.with(
                COMPOSE,
                "server forward-auth-2:4180;/",
                "server forward-auth-2:4181;/",
            ),
            ports,
            "points at forward-auth-2:4181, where neither",
        ),
        (
            "a replica listens on another port than the upstream names",
            shipped.with_in_service(
                "forward-auth-1",
                "ADDRESS: \"0.0.0.0:4180\"",
                "ADDRESS: \"0.0.0.0:4181\"",
            ),
            ports,
            "points at forward-auth-1:4180, where neither",
        ),
        (
            "the replicas' upstream sends checks to the in-memory service",
            shipped.with(
                COMPOSE,
                "server forward-auth-1:4180; server",
                "server 127.0.0.1:4180; server",
            ),
            ports,
            "which is `forward-auth`: nginx-replicas must reach",
        ),
        (
            "a replica does not trust the address nginx connects from",
            shipped.with_in_service(
                "forward-auth-2",
                "TRUSTED_PROXIES: \"10.201.80.10/32\"",
                "TRUSTED_PROXIES: \"127.0.0.1/32\"",
            ),
            ports,
            "which `forward-auth-2`'s TRUSTED_PROXIES does not list",
        ),
        (
            "a replica trusts the whole network",
            shipped.with_in_service(
                "forward-auth-1",
                "TRUSTED_PROXIES: \"10.201.80.10/32\"",
                "TRUSTED_PROXIES: \"10.201.80.0/24\"",
            ),
            ports,
            "`forward-auth-1` trusts 10.201.80.0/24",
        ),
        (
            "the replicas' nginx has a namespace of its own",
            shipped.with_in_service(
                REPLICAS_PROXY,
                "    network_mode: \"service:forward-auth\"\n",
                "",
            ),
            ports,
            "nginx-replicas listens on 80",
        ),
        (
            "the replicas' nginx edits a line the shipped file no longer has",
            shipped.with(
                NGINX_CONF,
                "    server 127.0.0.1:4180;\n",
                "    server 127.0.0.1:4180 max_fails=3;\n",
            ),
            ports,
            "which integrations/nginx/forward-auth.conf has 0 times",
        ),
        (
            "the replicas' nginx edits a file nobody mounts",
            shipped.with(
                COMPOSE,
                "/etc/nginx/forward-auth.conf > ",
                "/etc/nginx/replicas.conf > ",
            ),
            mounts,
            "sed reads /etc/nginx/replicas.conf",
        ),
        (
            "the replicas' nginx leaves the image's own server on port 80",
            shipped.with(
                COMPOSE,
                "> /etc/nginx/conf.d/default.conf",
                "> /etc/nginx/conf.d/replicas.conf",
            ),
            mounts,
            "it must replace /etc/nginx/conf.d/default.conf",
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
    let in_profiles = PROXIES.iter().map(|proxy| (*proxy, *proxy)).chain(
        [REDIS, REPLICAS_PROXY]
            .into_iter()
            .chain(REPLICAS)
            .map(|name| (name, REPLICAS_PROFILE)),
    );
    for (name, profile) in in_profiles {
        if compose.service(name).is_none() {
            problems.push(format!("{COMPOSE}: no service `{name}`"));
        } else if compose.profiles(name) != [profile] {
            problems.push(format!(
                "{COMPOSE}: `{name}` must be in exactly the profile `{profile}` (found {:?})",
                compose.profiles(name)
            ));
        }
    }
    // Built here, never pulled: a registry's `forward-auth` is somebody else's.
    let ours = compose
        .service(SERVICE)
        .and_then(|s| s.get("image"))
        .map(scalar);
    for name in compose.service_names() {
        let s = compose.service(&name).unwrap_or(&Value::Null);
        let image = s.get("image").map(scalar);
        let replica = REPLICAS.contains(&name.as_str());
        if replica && image != ours {
            problems.push(format!(
                "{COMPOSE}: `{name}` must run the image `{SERVICE}` builds ({ours:?}), not {image:?}"
            ));
        }
        if name != SERVICE && !replica && (ours.is_none() || image != ours) {
            continue;
        }
        let build = s.get("build");
        let context = build
            .and_then(|b| b.get("context"))
            .or(build)
            .and_then(Value::as_str);
        if context != Some(".") {
            problems.push(format!(
                "{COMPOSE}: `{name}` must build the Dockerfile at the root (`build: .`)"
            ));
        }
    }
    // Compose refuses to start a service whose dependency is not started with it.
    for name in compose.service_names() {
        let profiles = compose.profiles(&name);
        for (dependency, _) in compose.depends_on(&name) {
            if compose.service(&dependency).is_none() {
                problems.push(format!(
                    "{COMPOSE}: `{name}` depends on `{dependency}`, which is no service"
                ));
                continue;
            }
            let theirs = compose.profiles(&dependency);
            let started_together = theirs.is_empty()
                || (!profiles.is_empty() && profiles.iter().all(|p| theirs.contains(p)));
            if !started_together {
                problems.push(format!(
                    "{COMPOSE}: `{name}` depends on `{dependency}`, which only starts with the profile {theirs:?}"
                ));
            }
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
    // A named volume must be declared at the top level.
    let declared: BTreeSet<String> = compose
        .0
        .get("volumes")
        .and_then(Value::as_mapping)
        .into_iter()
        .flat_map(|m| m.keys())
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    for name in compose.service_names() {
        for mount in compose.mounts(&name) {
            let named = !mount.source.is_empty() && !mount.source.starts_with(['.', '/', '~', '$']);
            if named && !declared.contains(&mount.source) {
                problems.push(format!(
                    "{COMPOSE}: `{name}` mounts the volume `{}`, which the top-level `volumes:` does not declare",
                    mount.source
                ));
            }
        }
    }
    // nginx-replicas edits a mounted copy of the shipped file.
    if let Err(e) = replicas_nginx_config(project, &compose) {
        problems.push(e);
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
    for service in instance_names(&compose) {
        for name in compose.environment(service).keys() {
            if !known(name) {
                problems.push(format!(
                    "{COMPOSE}: `{service}` sets {name}, which is not a variable of the configuration"
                ));
            }
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
    for service in instance_names(&compose) {
        if !strings(compose.service(service).and_then(|s| s.get("env_file")))
            .contains(&".env".to_string())
        {
            problems.push(format!(
                "{COMPOSE}: `{service}` must read env_file .env (the copy of {ENV_EXAMPLE})"
            ));
        }
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

/// A forward-auth container as compose runs it.
struct Instance {
    name: &'static str,
    namespace: String,
    port: u16,
    trusted: Vec<IpNet>,
}

/// The forward-auth containers: the service and the replicas.
fn instance_names(compose: &Compose) -> Vec<&'static str> {
    std::iter::once(SERVICE)
        .chain(REPLICAS)
        .filter(|name| compose.service(name).is_some())
        .collect()
}

/// Every proxy listens on ports its namespace publishes and reaches its
/// forward-auth containers (the service, or in the `replicas` profile every
/// replica) and the app where they listen, from an address those containers
/// trust; and they trust nothing more than their proxies' addresses and
/// loopback.
fn ports(project: &Project) -> Problems {
    let compose = match Compose::load(project) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let mut instances: Vec<Instance> = Vec::new();
    for name in instance_names(&compose) {
        let found = service_port(project, &compose, name)
            .and_then(|port| Ok((port, trusted_proxies(project, &compose, name)?)));
        match found {
            Ok((port, trusted)) => instances.push(Instance {
                name,
                namespace: compose.namespace(name),
                port,
                trusted,
            }),
            Err(e) => problems.push(e),
        }
    }
    let app_port = app_port(&compose);
    let app_ns = compose.namespace(APP);
    for instance in &instances {
        if instance.namespace == app_ns && instance.port == app_port {
            problems.push(format!(
                "{COMPOSE}: `{}` and the app both listen on {app_port} in one namespace",
                instance.name
            ));
        }
    }
    let listening: Vec<String> = instances
        .iter()
        .map(|i| {
            if i.namespace == i.name {
                format!("`{}` on {}", i.name, i.port)
            } else {
                format!(
                    "`{}` on {} in `{}`'s namespace",
                    i.name, i.port, i.namespace
                )
            }
        })
        .collect();
    // Where each container's checks come from.
    let mut sources: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
    let proxies = PROXIES
        .iter()
        .map(|proxy| (*proxy, vec![SERVICE]))
        .chain([(REPLICAS_PROXY, REPLICAS.to_vec())]);
    for (proxy, backends) in proxies {
        let ns = compose.namespace(proxy);
        let wiring = match proxy_wiring(project, &compose, proxy) {
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
            let taken = instances
                .iter()
                .any(|i| i.namespace == ns && i.port == *port);
            if taken || (ns == app_ns && *port == app_port) {
                problems.push(format!(
                    "{proxy} listens on {port} ({file}), where the service or the app listens"
                ));
            }
        }
        let mut reached = BTreeSet::new();
        let mut reaches_app = false;
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
            let instance = instances
                .iter()
                .find(|i| i.namespace == target_ns && i.port == target.port);
            if let Some(instance) = instance {
                if !backends.contains(&instance.name) {
                    problems.push(format!(
                        "{shown}, which is `{}`: {proxy} must reach {backends:?} only",
                        instance.name
                    ));
                    continue;
                }
                reached.insert(instance.name);
                // Where the container sees the check come from.
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
                    Some(ip) => {
                        sources.entry(instance.name).or_default().insert(ip);
                        if !instance.trusted.iter().any(|net| net.contains(&ip)) {
                            problems.push(format!(
                                "{shown}: {proxy}'s checks come from {ip}, which `{}`'s TRUSTED_PROXIES does not list, so it would ignore their X-Forwarded-* headers",
                                instance.name
                            ));
                        }
                    }
                }
            } else if target_ns == app_ns && target.port == app_port {
                reaches_app = true;
            } else {
                problems.push(format!(
                    "{shown}, where neither forward-auth ({}) nor the app (on {app_port} in `{app_ns}`'s namespace) listens",
                    listening.join(", ")
                ));
            }
        }
        for backend in backends {
            if !reached.contains(backend) {
                if backend == SERVICE {
                    problems.push(format!("{proxy}: its files never reach the service"));
                } else {
                    problems.push(format!("{proxy}: its files never reach `{backend}`"));
                }
            }
        }
        if !reaches_app {
            problems.push(format!("{proxy}: its files never reach the app"));
        }
    }
    // Whatever else a trusted range holds could forge X-Forwarded-* headers.
    for instance in &instances {
        // One that no proxy reaches has its problem said above.
        let Some(from) = sources.get(instance.name) else {
            continue;
        };
        for net in &instance.trusted {
            let loopback = net.network().is_loopback() && net.broadcast().is_loopback();
            let a_source = net.prefix_len() == net.max_prefix_len() && from.contains(&net.addr());
            if !loopback && !a_source {
                problems.push(format!(
                    "{COMPOSE}: `{}` trusts {net}, more than loopback and the addresses its proxies connect from ({from:?})",
                    instance.name
                ));
            }
        }
    }
    problems
}

/// The port of a forward-auth container's ADDRESS: compose's environment,
/// else the one .env.example sets, else the default.
fn service_port(project: &Project, compose: &Compose, name: &str) -> Result<u16, String> {
    let from_example = || {
        let text = project.read(ENV_EXAMPLE).ok()?;
        env_assignments(&text)
            .into_iter()
            .find(|a| a.active && a.name == "ADDRESS")
            .map(|a| a.value)
    };
    let address = compose
        .environment(name)
        .get("ADDRESS")
        .cloned()
        .or_else(from_example)
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
    address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| format!("`{name}`: ADDRESS `{address}` has no port"))
}

/// The echo app's port: whoami's `--port`, or its default.
fn app_port(compose: &Compose) -> u16 {
    let args = words(compose.service(APP).and_then(|s| s.get("command")));
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

/// TRUSTED_PROXIES as a forward-auth container gets it under compose.
fn trusted_proxies(project: &Project, compose: &Compose, name: &str) -> Result<Vec<IpNet>, String> {
    let from_example = || {
        let text = project.read(ENV_EXAMPLE).ok()?;
        env_assignments(&text)
            .into_iter()
            .find(|a| a.active && a.name == "TRUSTED_PROXIES")
            .map(|a| a.value)
    };
    let value = compose
        .environment(name)
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
                .map_err(|_| format!("`{name}`: TRUSTED_PROXIES: `{s}` is not an address or CIDR"))
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

fn proxy_wiring(project: &Project, compose: &Compose, proxy: &str) -> Result<Wiring, String> {
    match proxy {
        "nginx" => Ok(nginx_wiring(&project.read(NGINX_CONF)?, NGINX_CONF)),
        REPLICAS_PROXY => Ok(nginx_wiring(
            &replicas_nginx_config(project, compose)?,
            NGINX_CONF_FOR_REPLICAS,
        )),
        "caddy" => Ok(caddy_wiring(&project.read(CADDYFILE)?)),
        "traefik" => traefik_wiring(project),
        other => Err(format!("no files known for {other}")),
    }
}

/// `proxy_pass` to an `upstream` name reaches each of its `server`s.
fn nginx_wiring(text: &str, file: &'static str) -> Wiring {
    let mut wiring = Wiring {
        listens: Vec::new(),
        targets: Vec::new(),
    };
    let parsed = nginx_directives(text);
    let mut upstreams: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let directives: Vec<(&[String], Vec<&str>)> = parsed
        .iter()
        .map(|(blocks, words)| {
            (
                blocks.as_slice(),
                words.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    for (blocks, words) in &directives {
        let upstream = match blocks {
            [block] => block.strip_prefix("upstream "),
            _ => None,
        };
        if let (Some(name), ["server", address, ..]) = (upstream, words.as_slice()) {
            upstreams.entry(name.trim()).or_default().push(address);
        }
    }
    for (_, words) in &directives {
        match words.as_slice() {
            ["listen", spec, ..] => {
                let port = spec.rsplit(':').next().and_then(|p| p.parse().ok());
                wiring.listens.extend(port.map(|p| (p, file)));
            }
            ["proxy_pass", url, ..] => {
                let host = Url::parse(url)
                    .ok()
                    .and_then(|u| Some(u.host_str()?.to_string()));
                match host.as_deref().and_then(|h| upstreams.get(h)) {
                    Some(servers) => {
                        for server in servers {
                            wiring
                                .targets
                                .extend(url_target(file, &format!("http://{server}")));
                        }
                    }
                    None => wiring.targets.extend(url_target(file, url)),
                }
            }
            _ => {}
        }
    }
    wiring
}

/// nginx's simple directives (`words…;`), each with the blocks around it
/// (e.g. `["upstream forward_auth"]`). Quotes and comments are honoured: the
/// cookie maps' regexes hold `;`, and one line may hold several directives.
fn nginx_directives(text: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let mut directives = Vec::new();
    let mut blocks: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else {
                word.push(c);
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '#' if word.is_empty() => {
                chars.by_ref().find(|&c| c == '\n');
            }
            ';' | '{' | '}' => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                let statement = std::mem::take(&mut words);
                match c {
                    ';' => directives.push((blocks.clone(), statement)),
                    '{' => blocks.push(statement.join(" ")),
                    _ => {
                        blocks.pop();
                    }
                }
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    directives
}

/// What nginx-replicas serves: the shipped nginx file after the edit its
/// command makes when the container starts,
/// `sed 's/FROM/TO/' INPUT > OUTPUT && exec nginx …`, where INPUT must be a
/// mount of the shipped file and OUTPUT the image's server file.
fn replicas_nginx_config(project: &Project, compose: &Compose) -> Result<String, String> {
    let command = strings(
        compose
            .service(REPLICAS_PROXY)
            .and_then(|s| s.get("command")),
    );
    let command = command.join(" ");
    let bad = |what: &str| {
        format!(
            "{COMPOSE}: `{REPLICAS_PROXY}`'s command must be `sed 's/FROM/TO/' INPUT > {NGINX_SERVER_FILE} && exec nginx -g 'daemon off;'`: {what}"
        )
    };
    let (_, rest) = command
        .split_once("sed 's/")
        .ok_or_else(|| bad("no `sed 's/`"))?;
    let (expression, rest) = rest
        .split_once('\'')
        .ok_or_else(|| bad("no closing quote"))?;
    let [from, to, ""] = expression.split('/').collect::<Vec<_>>()[..] else {
        return Err(bad("one s/FROM/TO/, without flags"));
    };
    // This test replaces text; sed would read these as regex and `&` as the match.
    if to.contains(['&', '\\']) || from.contains(['*', '[', '^', '$', '\\']) {
        return Err(bad("FROM and TO must be plain text"));
    }
    let mut words = rest.split_whitespace();
    let (Some(input), Some(">"), Some(output)) = (words.next(), words.next(), words.next()) else {
        return Err(bad("no `INPUT > OUTPUT`"));
    };
    if !rest.contains("&& exec nginx") {
        return Err(bad("no `&& exec nginx` after the edit"));
    }
    if output != NGINX_SERVER_FILE {
        return Err(format!(
            "{COMPOSE}: `{REPLICAS_PROXY}` writes {output}, but it must replace {NGINX_SERVER_FILE}, the image's own server on port 80"
        ));
    }
    let source = compose
        .mounts(REPLICAS_PROXY)
        .into_iter()
        .find(|m| m.target == input)
        .map(|m| m.source);
    if source != Some(format!("./{NGINX_CONF}")) {
        return Err(format!(
            "{COMPOSE}: `{REPLICAS_PROXY}`'s sed reads {input}, which must be a mount of ./{NGINX_CONF} (found {source:?})"
        ));
    }
    let shipped = project.read(NGINX_CONF)?;
    match shipped.matches(from).count() {
        1 => Ok(shipped.replacen(from, to, 1)),
        n => Err(format!(
            "{COMPOSE}: `{REPLICAS_PROXY}` replaces `{from}`, which {NGINX_CONF} has {n} times (it must have it once)"
        )),
    }
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
// The `replicas` profile: one Redis, one env file, the same settings.

fn replicas(project: &Project) -> Problems {
    let compose = match Compose::load(project) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let example = project
        .read(ENV_EXAMPLE)
        .map(|text| env_assignments(&text))
        .unwrap_or_default();
    let redis_port = redis_port(&compose);
    let present: Vec<&str> = REPLICAS
        .into_iter()
        .filter(|name| compose.service(name).is_some())
        .collect();
    let mut stores = BTreeSet::new();
    for &name in &present {
        let environment = compose.environment(name);
        let store = environment.get("SESSION_STORE").cloned().or_else(|| {
            example
                .iter()
                .find(|a| a.active && a.name == "SESSION_STORE")
                .map(|a| a.value.clone())
        });
        match store.as_deref().map(Url::parse) {
            None => problems.push(format!(
                "{COMPOSE}: `{name}` has no SESSION_STORE, so it would keep its own sessions in memory"
            )),
            Some(Err(_)) => problems.push(format!(
                "{COMPOSE}: `{name}`: SESSION_STORE is not a URL"
            )),
            Some(Ok(url)) => {
                if !matches!(url.scheme(), "redis" | "rediss") {
                    problems.push(format!(
                        "{COMPOSE}: `{name}`: SESSION_STORE must be a redis:// or rediss:// URL"
                    ));
                }
                let host = url.host_str().unwrap_or_default();
                if compose.resolve(host).as_deref() != Some(REDIS) {
                    problems.push(format!(
                        "{COMPOSE}: `{name}`: SESSION_STORE points at {host}, not the `{REDIS}` service"
                    ));
                }
                let port = url.port().unwrap_or(REDIS_DEFAULT_PORT);
                if port != redis_port {
                    problems.push(format!(
                        "{COMPOSE}: `{name}`: SESSION_STORE's port {port} is not the one `{REDIS}` listens on ({redis_port})"
                    ));
                }
            }
        }
        stores.insert(store.unwrap_or_default());
        if ["COOKIE_SECRET", "COOKIE_SECRET_FILE"]
            .iter()
            .any(|v| environment.contains_key(*v))
        {
            problems.push(format!(
                "{COMPOSE}: `{name}` sets COOKIE_SECRET itself: it belongs in .env, which every replica reads, so that all of them sign and verify cookies alike"
            ));
        }
        if !compose.waits_for_health(name, REDIS) {
            problems.push(format!(
                "{COMPOSE}: `{name}` must wait for `{REDIS}` to be healthy (depends_on with condition: service_healthy)"
            ));
        }
        if compose.service(REPLICAS_PROXY).is_some()
            && !compose.waits_for_health(REPLICAS_PROXY, name)
        {
            problems.push(format!(
                "{COMPOSE}: `{REPLICAS_PROXY}` must wait for `{name}` to be healthy: nginx resolves the replicas' names when it starts"
            ));
        }
    }
    if stores.len() > 1 {
        problems.push(format!(
            "{COMPOSE}: the replicas must use the same SESSION_STORE, found {stores:?}"
        ));
    }
    let env_files: BTreeSet<Vec<String>> = present
        .iter()
        .map(|name| strings(compose.service(name).and_then(|s| s.get("env_file"))))
        .collect();
    if env_files.len() > 1 {
        problems.push(format!(
            "{COMPOSE}: the replicas must read the same env_file (one COOKIE_SECRET, one Okta client), found {env_files:?}"
        ));
    }
    let environments: BTreeSet<BTreeMap<String, String>> = present
        .iter()
        .map(|name| compose.environment(name))
        .collect();
    if environments.len() > 1 {
        problems.push(format!(
            "{COMPOSE}: the replicas' environment must be the same (they differ in name and address only)"
        ));
    }
    if compose.service(REDIS).is_some() {
        problems.extend(redis_problems(&compose));
    }
    problems
}

/// Redis itself: a version with GETDEL, an append-only file on a volume.
fn redis_problems(compose: &Compose) -> Problems {
    let mut problems = Vec::new();
    let s = compose.service(REDIS).unwrap_or(&Value::Null);
    let image = s.get("image").map(scalar).unwrap_or_default();
    let version: Vec<u32> = image
        .rsplit_once(':')
        .map(|(_, tag)| tag)
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .map_while(|n| n.parse().ok())
        .collect();
    let (min_major, min_minor) = REDIS_MIN_VERSION;
    match version[..] {
        [major, minor] if (major, minor) >= (min_major, min_minor) => {}
        _ => problems.push(format!(
            "{COMPOSE}: `{REDIS}` must run Redis at least {min_major}.{min_minor} (GETDEL), pinned as e.g. redis:7.4-alpine, not `{image}`"
        )),
    }
    let command = words(s.get("command"));
    let append_only = command
        .windows(2)
        .any(|w| w[0] == "--appendonly" && w[1] == "yes");
    if !append_only {
        problems.push(format!(
            "{COMPOSE}: `{REDIS}` must run with --appendonly yes, so that sessions survive its restart"
        ));
    }
    let on_volume = compose
        .mounts(REDIS)
        .iter()
        .any(|m| m.target == "/data" && !m.source.is_empty() && !m.source.starts_with(['.', '/']));
    if !on_volume {
        problems.push(format!(
            "{COMPOSE}: `{REDIS}` must keep /data on a named volume (its append-only file)"
        ));
    }
    problems
}

/// The port Redis listens on: `--port` in its command, else the default.
fn redis_port(compose: &Compose) -> u16 {
    let command = words(compose.service(REDIS).and_then(|s| s.get("command")));
    command
        .windows(2)
        .find(|w| w[0] == "--port")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(REDIS_DEFAULT_PORT)
}

/// A command's words, whether written as a list or as one string.
fn words(value: Option<&Value>) -> Vec<String> {
    strings(value)
        .iter()
        .flat_map(|w| w.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
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
            for name in instance_names(&compose) {
                let (test, disabled) = compose.healthcheck(name);
                let expected = ["CMD", binary.as_str(), "healthcheck"];
                if test != expected || disabled {
                    problems.push(format!(
                        "{COMPOSE}: {name}'s healthcheck must be test: {expected:?} (the image has no shell or curl), not {test:?}"
                    ));
                }
            }
            if compose.service(REDIS).is_some() {
                let (test, disabled) = compose.healthcheck(REDIS);
                let words: Vec<&str> = test
                    .iter()
                    .skip(1)
                    .flat_map(|w| w.split_whitespace())
                    .collect();
                if words != ["redis-cli", "ping"] || disabled {
                    problems.push(format!(
                        "{COMPOSE}: `{REDIS}`'s healthcheck must be test: [\"CMD\", \"redis-cli\", \"ping\"], not {test:?}"
                    ));
                }
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
        .and_then(|c| service_port(project, &c, SERVICE).ok())
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

    /// A copy in which the first `from` inside the block of `service` in
    /// docker-compose.yml reads `to`.
    fn with_in_service(&self, service: &str, from: &str, to: &str) -> Project {
        let text = self.read(COMPOSE).unwrap_or_else(|e| panic!("{e}"));
        let key = format!("\n  {service}:\n");
        let start = text.find(&key).map(|at| at + key.len()).unwrap_or_else(|| {
            panic!("{COMPOSE} no longer has `{service}`: update the broken-file cases")
        });
        // The block ends at the next line indented by two spaces or less.
        let mut end = text.len();
        let mut at = start;
        for line in text[start..].split_inclusive('\n') {
            let indent = line.len() - line.trim_start_matches(' ').len();
            if !line.trim().is_empty() && indent <= 2 {
                end = at;
                break;
            }
            at += line.len();
        }
        let found = text[start..end].find(from).unwrap_or_else(|| {
            panic!(
                "{COMPOSE}: `{service}` no longer contains {from:?}: update the broken-file cases"
            )
        });
        let at = start + found;
        let mut copy = self.clone();
        copy.replaced.insert(
            COMPOSE.to_string(),
            format!("{}{to}{}", &text[..at], &text[at + from.len()..]),
        );
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

    /// The profiles a service starts with; none means always.
    fn profiles(&self, name: &str) -> Vec<String> {
        strings(self.service(name).and_then(|s| s.get("profiles")))
    }

    /// The services `name` depends on, each with its condition if given.
    fn depends_on(&self, name: &str) -> Vec<(String, Option<String>)> {
        match self.service(name).and_then(|s| s.get("depends_on")) {
            Some(Value::Mapping(map)) => map
                .iter()
                .filter_map(|(k, v)| {
                    let condition = v.get("condition").map(scalar);
                    Some((k.as_str()?.to_string(), condition))
                })
                .collect(),
            other => strings(other).into_iter().map(|d| (d, None)).collect(),
        }
    }

    /// Whether `name` starts only once `dependency` is healthy.
    fn waits_for_health(&self, name: &str, dependency: &str) -> bool {
        self.depends_on(name).iter().any(|(d, condition)| {
            d == dependency && condition.as_deref() == Some("service_healthy")
        })
    }

    /// A service's healthcheck test, and whether it is disabled.
    fn healthcheck(&self, name: &str) -> (Vec<String>, bool) {
        let check = self.service(name).and_then(|s| s.get("healthcheck"));
        let test = strings(check.and_then(|c| c.get("test")));
        let disabled = check
            .and_then(|c| c.get("disable"))
            .and_then(Value::as_bool)
            == Some(true);
        (test, disabled)
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
