//! Wiring: [`Application::build`] makes the HTTP client, the OIDC relying party,
//! the groups cache and the session store from a [`Config`], binds the listeners
//! (port 0 in tests) and exposes the bound ports. The only module that knows all
//! the others.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::config::{Config, Provider, StoreKind};
use crate::groups::{GroupsCache, OktaGroupsClient, RedisGroups};
use crate::oidc::Oidc;
use crate::okta_api::ApiCredential;
use crate::okta_events::{EventHooks, Ledger};
use crate::routes::{self, AppState};
use crate::session::{MemoryStore, RedisStore, SessionStore};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// A built, bound, not yet running service.
pub struct Application {
    server: Server,
    metrics: Option<Server>,
    port: u16,
    metrics_port: Option<u16>,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds `ADDRESS` and builds.
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let listener = bind(&config.address)?;
        Application::build_with_listener(config, listener).await
    }

    /// Builds on a listener bound already (tests bind port 0 first, to know the
    /// port that `AUTHENTICATE_SERVICE_URL` must name).
    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> Result<Application, StartupError> {
        // The binary installed it first thing; an embedding (the tests) gets
        // it here unless a token was read or signed before.
        if !crate::oidc::jwt_crypto::install() {
            tracing::debug!(
                "jsonwebtoken's crypto was chosen before start-up: RS256 tokens are \
                 checked by its pure-Rust RSA (the same answers, slower)"
            );
        }
        let config = Arc::new(config);
        let http = reqwest::Client::builder()
            // Following redirects from the IdP would open us to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("forward-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StartupError::Setup(format!("HTTP client: {e}")))?;

        let mut first_prefixed_start = None;
        let store: Arc<dyn SessionStore> = match &config.session_store {
            StoreKind::Memory => {
                let store = Arc::new(MemoryStore::new());
                crate::metrics::observed::watch_sessions(&store);
                store
            }
            StoreKind::Redis(url) => {
                let store = RedisStore::new(url.as_str()).map_err(|e| StartupError::Setup(e.0))?;
                // Sessions outlive this process: old cookie names are read for
                // one COOKIE_EXPIRE from the first prefixed start. Unknown
                // (Redis down now): not read at all, which fails closed.
                first_prefixed_start = store.first_prefixed_start(crate::clock::now()).await.ok();
                // Connecting is lazy: a Redis that is down now does not stop the
                // start; checks answer 503 and /readyz fails until it is back.
                let probe = store.clone();
                tokio::spawn(async move {
                    match probe.ping().await {
                        Ok(()) => tracing::info!("session store: Redis answers"),
                        Err(e) => {
                            tracing::warn!(error = %e, "session store: Redis is not reachable yet; /readyz fails until it is")
                        }
                    }
                });
                Arc::new(store)
            }
        };

        let groups = match api_credential(&config).map_err(StartupError::Setup)? {
            Some(credential) if config.provider == Provider::Okta => {
                let client =
                    OktaGroupsClient::with_credential(http.clone(), &config.org_url, credential)
                        .map_err(StartupError::Setup)?;
                let redis = match &config.session_store {
                    StoreKind::Memory => None,
                    // Replicas share groups, fetch leases, Okta's 429 and
                    // invalidations through the same Redis as sessions (its
                    // own connections).
                    StoreKind::Redis(url) => Some(
                        RedisGroups::new(url.as_str())
                            .map_err(|e| StartupError::Setup(format!("SESSION_STORE: {e}")))?,
                    ),
                };
                Some(GroupsCache::configured(
                    client,
                    config.groups_cache_ttl,
                    config.groups_stale_if_error,
                    redis,
                ))
            }
            _ => None,
        };

        let oidc = Arc::new(Oidc::new(&config, http));
        discover_until_ready(oidc.clone()).await;

        let event_hooks = match &config.event_hook_secret {
            Some(secret) => {
                let ledger = match &config.session_store {
                    StoreKind::Memory => Ledger::in_memory(),
                    StoreKind::Redis(url) => Ledger::with_redis(url.as_str())
                        .map_err(|e| StartupError::Setup(format!("SESSION_STORE: {e}")))?,
                };
                Some(EventHooks::start(
                    secret,
                    &config.client_id,
                    store.clone(),
                    groups.clone(),
                    ledger,
                ))
            }
            None => None,
        };
        let state = web::Data::new(
            AppState::new(config.clone(), store, oidc, groups)
                .with_event_hooks(event_hooks)
                .with_cookie_migration(first_prefixed_start),
        );
        let port = local_port(&listener, &config.address)?;
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    crate::error::AppError::BadRequest(format!(
                        "The query string cannot be read: {e}"
                    ))
                    .into()
                }))
                .configure(routes::configure(app_state.clone()))
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            address: config.address.clone(),
            source,
        })?
        .run();

        // Metrics get their own listener and server, so they are never public.
        let (metrics, metrics_port) = match &config.metrics_address {
            Some(address) => {
                let listener = bind(address)?;
                let port = local_port(&listener, address)?;
                let server = HttpServer::new(|| App::new().configure(routes::configure_metrics))
                    .workers(1)
                    .listen(listener)
                    .map_err(|source| StartupError::Bind {
                        address: address.clone(),
                        source,
                    })?
                    .run();
                (Some(server), Some(port))
            }
            None => (None, None),
        };
        Ok(Application {
            server,
            metrics,
            port,
            metrics_port,
            state,
        })
    }

    /// The port of the public listener.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// The session store, for tests and benchmarks that create sessions directly.
    pub fn store(&self) -> Arc<dyn SessionStore> {
        self.state.store.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.metrics {
            Some(metrics) => {
                let (public, metrics) = futures_util::future::join(self.server, metrics).await;
                public.and(metrics)
            }
            None => self.server.await,
        }
    }
}

fn bind(address: &str) -> Result<TcpListener, StartupError> {
    TcpListener::bind(address).map_err(|source| StartupError::Bind {
        address: address.to_owned(),
        source,
    })
}

fn local_port(listener: &TcpListener, address: &str) -> Result<u16, StartupError> {
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| StartupError::Bind {
            address: address.to_owned(),
            source,
        })
}

/// Tries discovery once now; if Okta cannot be reached, keeps trying in the
/// background (readiness stays false meanwhile) instead of refusing to start.
async fn discover_until_ready(oidc: Arc<Oidc>) {
    match oidc.discover().await {
        Ok(()) => tracing::info!("OIDC discovery and signing keys loaded"),
        Err(e) => {
            tracing::warn!(error = %e, "OIDC discovery failed; retrying in the background");
            tokio::spawn(async move {
                let mut delay = Duration::from_secs(1);
                loop {
                    tokio::time::sleep(delay).await;
                    match oidc.discover().await {
                        Ok(()) => {
                            tracing::info!("OIDC discovery and signing keys loaded");
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "OIDC discovery failed; retrying"),
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            });
        }
    }
}

/// The management API credential the configuration names, if any.
pub fn api_credential(config: &Config) -> Result<Option<ApiCredential>, String> {
    match (&config.service_app, &config.service_account) {
        (Some(app), _) => ApiCredential::service_app(app, &config.org_url).map(Some),
        (None, Some(token)) => Ok(Some(ApiCredential::Ssws(token.clone()))),
        (None, None) => Ok(None),
    }
}
