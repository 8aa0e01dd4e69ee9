//! The Kubernetes files, checked without a cluster (there is none here):
//! `integrations/kubernetes/forward-auth.yaml` against the service's
//! configuration contract (known variables, the required ones, secrets only
//! from a Secret, probes, ports, two replicas on one Redis, a disruption
//! budget), and the ingress-nginx example against the tested
//! `integrations/nginx/forward-auth.conf` (check endpoint, sign-in URL,
//! identity headers, the cookie-stripping patterns), whose snippet also runs
//! in real nginx.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use forward_auth::config::KNOWN_VARIABLES;
use serde_yaml_ng::Value;

use crate::support::process::{free_port, Running, TempDir};
use crate::support::proxies::{installed, integration_file, Build};
use crate::support::upstream::{echoed, Echo};

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

fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("a YAML document"))
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

#[test]
fn the_kubernetes_manifests_run_two_probed_replicas_on_one_redis_with_secrets_from_a_secret() {
    let docs = documents(&integration_file("kubernetes/forward-auth.yaml"));
    let deployment = find(&docs, "Deployment", "forward-auth");
    let namespace = text(&deployment["metadata"]["namespace"]);
    assert_eq!(
        deployment["spec"]["replicas"].as_i64(),
        Some(2),
        "two replicas"
    );
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];

    // Every variable: ours, from the ConfigMap or the container's env; the
    // secrets only through secretKeyRef.
    let mut variables = BTreeMap::<String, String>::new();
    for source in container["envFrom"].as_sequence().expect("envFrom") {
        let name = text(&source["configMapRef"]["name"]);
        let config_map = find(&docs, "ConfigMap", &name);
        assert_eq!(text(&config_map["metadata"]["namespace"]), namespace);
        for (key, value) in config_map["data"].as_mapping().expect("data") {
            variables.insert(text(key), text(value));
        }
    }
    let mut from_secrets = BTreeSet::new();
    for entry in container["env"].as_sequence().expect("env") {
        let name = text(&entry["name"]);
        let secret = &entry["valueFrom"]["secretKeyRef"];
        assert!(
            !secret.is_null(),
            "{name}: set in the container, not from a Secret"
        );
        assert!(!text(&secret["name"]).is_empty() && !text(&secret["key"]).is_empty());
        from_secrets.insert(name.clone());
        variables.insert(name, "<secret>".to_string());
    }
    for name in variables.keys() {
        assert!(
            KNOWN_VARIABLES.contains(&name.as_str()),
            "{name} is not a variable of the service"
        );
        let secret = name.ends_with("_SECRET") || name.ends_with("_ACCOUNT");
        assert_eq!(
            secret,
            from_secrets.contains(name),
            "{name}: secrets, and only they, come from the Secret"
        );
    }
    for name in REQUIRED {
        assert!(variables.contains_key(name), "{name} is required");
    }

    // The port the service listens on is the container's, the probes' and
    // the Service's.
    let address = &variables["ADDRESS"];
    let port: i64 = address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("ADDRESS host:port");
    let ports = container["ports"].as_sequence().expect("ports");
    let named = text(&ports[0]["name"]);
    assert_eq!(ports[0]["containerPort"].as_i64(), Some(port));
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(text(&get["path"]), path, "{probe}");
        assert_eq!(text(&get["port"]), named, "{probe} port");
    }
    let service = find(&docs, "Service", "forward-auth");
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(text(&service["spec"]["ports"][0]["targetPort"]), named);
    assert_eq!(service["spec"]["ports"][0]["port"].as_i64(), Some(port));

    // A drain never takes both replicas.
    let budget = find(&docs, "PodDisruptionBudget", "forward-auth");
    assert_eq!(&budget["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(budget["spec"]["minAvailable"].as_i64(), Some(1));

    // Both replicas on one Redis: SESSION_STORE names the Redis Service, which
    // selects the Redis pods on the port Redis listens on.
    let store = url::Url::parse(&variables["SESSION_STORE"]).expect("a redis:// URL");
    assert_eq!(store.scheme(), "redis");
    let redis_service = find(&docs, "Service", "forward-auth-redis");
    assert_eq!(
        store.host_str(),
        Some(format!("forward-auth-redis.{namespace}.svc.cluster.local").as_str())
    );
    assert_eq!(
        store.port().map(i64::from),
        redis_service["spec"]["ports"][0]["port"].as_i64()
    );
    let redis = find(&docs, "Deployment", "forward-auth-redis");
    assert_eq!(
        &redis_service["spec"]["selector"],
        &redis["spec"]["template"]["metadata"]["labels"]
    );
    let redis_container = &redis["spec"]["template"]["spec"]["containers"][0];
    assert!(text(&redis_container["image"]).starts_with("redis:7"));
    assert_eq!(
        text(&redis_service["spec"]["ports"][0]["targetPort"]),
        text(&redis_container["ports"][0]["name"])
    );
}

#[test]
fn the_ingress_nginx_example_sets_what_the_tested_nginx_file_sets() {
    let nginx = integration_file("nginx/forward-auth.conf");
    let ingress = documents(&integration_file("nginx/ingress-nginx.yaml"));
    let app = find(&ingress, "Ingress", "app");
    let annotation = |name: &str| {
        text(&app["metadata"]["annotations"][format!("nginx.ingress.kubernetes.io/{name}")])
    };

    // The check: /oauth2/auth, as `location = /oauth2/auth` proxies to.
    let auth_url = url::Url::parse(&annotation("auth-url")).expect("auth-url");
    assert_eq!(auth_url.path(), "/oauth2/auth");
    assert!(nginx.contains("location = /oauth2/auth {"));
    // The Service the manifests of integrations/kubernetes define.
    let manifests = documents(&integration_file("kubernetes/forward-auth.yaml"));
    let service = find(&manifests, "Service", "forward-auth");
    assert_eq!(
        auth_url.host_str(),
        Some(
            format!(
                "forward-auth.{}.svc.cluster.local",
                text(&service["metadata"]["namespace"])
            )
            .as_str()
        )
    );

    // Sign-in: the start URL with rd = the original URL (the nginx file takes
    // it from the service's 401 Location, which is that URL).
    let signin = annotation("auth-signin");
    assert!(
        signin.contains("/oauth2/start?rd=https://$host$escaped_request_uri"),
        "{signin}"
    );
    assert!(nginx.contains("return 302 $auth_location;"));

    // The identity headers: the ones the nginx file copies from the check.
    let copied: Vec<String> = nginx
        .lines()
        .filter_map(|l| l.trim().strip_prefix("auth_request_set "))
        .filter_map(|l| l.split_once("$upstream_http_").map(|(_, h)| h))
        .map(|h| h.trim_end_matches(';').replace('_', "-"))
        .filter(|h| h.starts_with("x-auth-request-"))
        .collect();
    let annotated: Vec<String> = annotation("auth-response-headers")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    assert_eq!(annotated, copied);
    // The signed identity among them, passed on to the app by the nginx file.
    assert!(
        copied.contains(&"x-auth-request-jwt".to_string()),
        "{copied:?}"
    );
    assert!(nginx.contains("proxy_set_header X-Auth-Request-Jwt $auth_jwt;"));

    // The cookie stripping: the nginx file's map patterns, each step once per
    // map, then the Cookie header set from the result.
    let patterns = |text: &str, marker: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once(marker).map(|(_, rest)| rest))
            .filter_map(|rest| rest.split('"').next())
            .filter(|p| p.contains("_forward_auth"))
            .map(str::to_string)
            .collect()
    };
    let maps = patterns(&nginx, "\"~");
    let snippet = annotation("configuration-snippet");
    let ifs = patterns(&snippet, "~ \"");
    assert_eq!(maps.len(), 6, "three maps of two patterns");
    assert_eq!(ifs, maps, "the snippet's patterns are the map's, in order");
    assert!(nginx.contains("proxy_set_header Cookie $cookie_without_auth;"));
    assert!(snippet.contains("set $cookie_without_auth $http_cookie;"));
    assert!(snippet.contains("proxy_set_header Cookie $cookie_without_auth;"));
}

/// The snippet's `if`/`set` steps in a real nginx location (as the controller
/// puts a configuration-snippet into the Ingress's location): our cookies go
/// in every spelling, the app's stay.
#[tokio::test]
async fn the_ingress_nginx_cookie_snippet_strips_our_cookies_in_real_nginx() {
    let Some(binary) = installed(Build::DebianNginx) else {
        return;
    };
    let ingress = documents(&integration_file("nginx/ingress-nginx.yaml"));
    let snippet = text(
        &find(&ingress, "Ingress", "app")["metadata"]["annotations"]
            ["nginx.ingress.kubernetes.io/configuration-snippet"],
    );
    let echo = Echo::start();
    let port = free_port();
    let dir = TempDir::new("nginx-snippet");
    let d = dir.path("").display().to_string();
    let config = format!(
        "pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         worker_processes 1;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         access_log off;\n\
         client_body_temp_path {d}/client_body;\n\
         proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n\
         server {{\n\
         listen 127.0.0.1:{port};\n\
         location / {{\n\
         {snippet}\n\
         proxy_pass http://127.0.0.1:{};\n\
         }}\n\
         }}\n\
         }}\n",
        echo.port
    );
    std::fs::write(dir.path("nginx.conf"), config).unwrap();
    let child = Command::new(&binary)
        .arg("-p")
        .arg(dir.path(""))
        .arg("-e")
        .arg(dir.path("error.log"))
        .arg("-c")
        .arg(dir.path("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path("stderr.log")).unwrap())
        .spawn()
        .expect("start nginx");
    let nginx = Running {
        child,
        dir,
        name: "nginx",
    };
    nginx.wait_for(port);

    let client = reqwest::Client::new();
    let cases = [
        ("_forward_auth=s; theme=dark", Some("theme=dark")),
        ("a=1; __Host-_forward_auth=s; b=2", Some("a=1; b=2")),
        (
            "__Secure-_forward_auth_csrf=x; a=1; _forward_auth_csrf_2=y",
            Some("a=1"),
        ),
        ("__Host-_forward_auth=s", None),
        ("theme=dark", Some("theme=dark")),
    ];
    for (sent, expected) in cases {
        let answer = client
            .get(format!("http://127.0.0.1:{port}/page"))
            .header("Cookie", sent)
            .send()
            .await
            .expect("nginx answers");
        let seen = echoed(answer).await;
        assert_eq!(
            seen.headers.get("cookie").map(String::as_str),
            expected,
            "{sent}"
        );
    }
}
