//! Starting each proxy with its shipped config from `integrations/`, templated
//! for loopback ports: nginx (wrapped in a main config that keeps pid, logs and
//! temp files in a temporary directory), Caddy, and Traefik (with the README's
//! plugin blocks merged in). It OWNS the substitutions, and each must occur in
//! the file or the start fails; it must NOT change a shipped file otherwise.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::process::TempDir;
use crate::support::proxies::{integration_file, substitute, TlsFiles};

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
