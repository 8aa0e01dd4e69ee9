//! The demo's set-up: forward-auth on a laptop without an Okta tenant (`cargo run --example demo`).
//!
//! It OWNS the demo's settings (`DEMO_OKTA_PORT`, `DEMO_SERVICE_URL`), starting the fake Okta
//! as a development identity provider, configuring the real service against it (fresh random
//! cookie and hook secrets, plain-HTTP cookies, loopback only), the event hook and the banner.
//! `examples/demo.rs` runs it; the integration tests start it on free ports. It must NOT be
//! deployed or listen beyond loopback: the fake signs in anyone who types one of its usernames,
//! without a password. DEVELOPMENT ONLY.

use std::net::TcpListener;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use forward_auth::config::Config;
use forward_auth::startup::Application;

use fake_okta::FakeOkta;

/// Where the demo listens, and the service's public URL.
pub struct Settings {
    /// The fake Okta's port on 127.0.0.1; 0 picks a free one.
    pub okta_port: u16,
    /// The service's port on 127.0.0.1; 0 picks a free one.
    pub service_port: u16,
    /// `AUTHENTICATE_SERVICE_URL`; `None`: the service's own `http://127.0.0.1:<port>`.
    pub service_url: Option<String>,
    pub log_level: String,
}

impl Settings {
    /// From `DEMO_OKTA_PORT`, `DEMO_SERVICE_URL` and `LOG_LEVEL`; the service on 4180.
    pub fn from_env() -> Result<Settings, String> {
        let okta_port = match std::env::var("DEMO_OKTA_PORT") {
            Ok(port) => port
                .parse()
                .map_err(|_| format!("DEMO_OKTA_PORT={port} is not a port number"))?,
            Err(_) => 9000,
        };
        Ok(Settings {
            okta_port,
            service_port: 4180,
            service_url: std::env::var("DEMO_SERVICE_URL")
                .ok()
                .filter(|url| !url.is_empty()),
            log_level: std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".to_string()),
        })
    }
}

/// The fake Okta (serving already) and the service (built, not yet running).
pub struct Demo {
    pub okta: FakeOkta,
    pub app: Application,
    /// `127.0.0.1:<port>`, where the service listens.
    pub listen: String,
    /// `AUTHENTICATE_SERVICE_URL`.
    pub service_url: String,
    /// `OKTA_EVENT_HOOK_SECRET`, fresh for each run.
    pub hook_secret: String,
}

/// The demo users: login prefix as typed on the form.
pub const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// Starts the fake Okta and builds the service against it, in the current runtime.
pub async fn start(settings: &Settings) -> Result<Demo, String> {
    if let Some(url) = &settings.service_url {
        check_loopback(url)?;
    }
    let okta = FakeOkta::start_on_port(settings.okta_port)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on 127.0.0.1:{} for the fake Okta ({e}); set DEMO_OKTA_PORT",
                settings.okta_port
            )
        })?;
    let listener = TcpListener::bind(("127.0.0.1", settings.service_port)).map_err(|e| {
        format!(
            "cannot listen on 127.0.0.1:{} for forward-auth: {e}",
            settings.service_port
        )
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("the service's listener: {e}"))?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let service_url = settings
        .service_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"));
    let hook_secret = random_cookie_secret()?;
    let vars = [
        ("IDP_PROVIDER", "okta".to_string()),
        ("IDP_PROVIDER_URL", okta.org_issuer()),
        ("IDP_CLIENT_ID", FakeOkta::CLIENT_ID.to_string()),
        ("IDP_CLIENT_SECRET", FakeOkta::CLIENT_SECRET.to_string()),
        ("IDP_SERVICE_ACCOUNT", FakeOkta::API_TOKEN.to_string()),
        ("AUTHENTICATE_SERVICE_URL", service_url.clone()),
        ("ADDRESS", listen.clone()),
        ("COOKIE_SECRET", random_cookie_secret()?),
        // Plain HTTP on loopback: a `Secure` cookie would not come back.
        ("COOKIE_SECURE", "false".to_string()),
        ("LOG_LEVEL", settings.log_level.clone()),
        ("OKTA_EVENT_HOOK_SECRET", hook_secret.clone()),
    ]
    .map(|(name, value)| (name.to_string(), value));
    let (config, _warnings) = Config::from_vars(vars).map_err(|e| e.to_string())?;
    let app = Application::build_with_listener(config, listener)
        .await
        .map_err(|e| format!("forward-auth cannot start: {e}"))?;
    Ok(Demo {
        okta,
        app,
        listen,
        service_url,
        hook_secret,
    })
}

/// Registers the service's `/oauth2/okta/events` as the fake Okta's event
/// hook (Okta's verification included): the service must be running.
pub async fn connect_event_hook(okta: &FakeOkta, listen: &str, secret: &str) -> Result<(), String> {
    okta.register_event_hook(&format!("http://{listen}/oauth2/okta/events"), secret)
        .await
}

/// The fake accepts only loopback redirect URIs (as a dev app registered in Okta
/// would), and the demo is not for other machines anyway.
fn check_loopback(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).ok();
    let host = parsed.as_ref().and_then(|u| u.host_str());
    match (parsed.as_ref().map(|u| u.scheme()), host) {
        (Some("http"), Some("127.0.0.1" | "localhost")) => Ok(()),
        _ => Err(format!(
            "DEMO_SERVICE_URL={url}: the demo serves only plain-HTTP loopback origins, \
             e.g. http://127.0.0.1:8000 or http://localhost:8000"
        )),
    }
}

/// base64 of 32 fresh random bytes: sessions end when the demo stops.
fn random_cookie_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no OS random source: {e}"))?;
    Ok(STANDARD.encode(bytes))
}

/// What the demo prints at start: the warning, the URLs, the users, what next.
pub fn banner(demo: &Demo) -> String {
    let okta = demo.okta.base_url();
    let service = demo.service_url.trim_end_matches('/');
    let users: String = USERS
        .iter()
        .map(|name| {
            let user = demo.okta.user(name);
            let groups: Vec<&str> = user.groups.iter().map(|(_, g)| g.as_str()).collect();
            format!(
                "    {name:<6} {:<20} groups: {}\n",
                user.login,
                groups.join(", ")
            )
        })
        .collect();
    let behind_proxy = if demo.service_url == format!("http://{}", demo.listen) {
        "\nBehind the shipped nginx or Caddy config (integrations/), so that your app\n\
         gets the identity headers: restart with the proxy's origin as the public URL,\n\
         \x20   DEMO_SERVICE_URL=http://127.0.0.1:8000 cargo run --example demo\n"
    } else {
        "\nThe public URL above is the proxy's origin: run the proxy there (below; the\n\
         examples use http://127.0.0.1:8000) and it sends /oauth2/ to forward-auth.\n"
    };
    format!(
        r#"
==============================================================================
  forward-auth DEMO — FOR DEVELOPMENT ONLY
  The identity provider is a FAKE Okta: it signs in ANYONE who types one of
  the usernames below, with no password. Keep it on this machine; never put
  it in front of real data or expose these ports.
==============================================================================

  fake Okta (dev IdP)        {okta}   (issuer; its sign-in form asks for a username)
  forward-auth listens on    {listen}
  AUTHENTICATE_SERVICE_URL   {service}

  Demo users (type the name on the fake Okta's form):
{users}
Try it:
  sign in:   {service}/oauth2/start?rd=/oauth2/userinfo
             (the fake Okta's form; type alice; your session as JSON)
  sign out:  {service}/oauth2/sign_out?rd=/oauth2/userinfo
  end access: {okta}/demo/admin
             (the fake Okta's admin page: remove bob from staff or deactivate
             him; the event hook tells forward-auth at once, and his next
             check shows it)
{behind_proxy}
  nginx: copy integrations/nginx/forward-auth.conf into nginx's http {{}}
         (e.g. /etc/nginx/conf.d/), change `listen 80;` to
         `listen 127.0.0.1:8000;` and 127.0.0.1:8080 to your app, reload nginx.
  Caddy: in integrations/caddy/Caddyfile change `app.example.com {{` to
         `http://127.0.0.1:8000 {{` and 127.0.0.1:8080 to your app, then
         `caddy run --adapter caddyfile --config Caddyfile`.
  Then open http://127.0.0.1:8000/ : sign in on the fake Okta, and your app
  receives X-Auth-Request-User/-Email/-Groups. /admin/ admits only alice
  (group admins); bob and carol get 403.

Ctrl-C stops the demo.
"#,
        listen = demo.listen,
    )
}
