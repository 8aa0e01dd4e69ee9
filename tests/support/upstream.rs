//! The upstreams behind the proxies: the [`Echo`] app that answers with the
//! request it received ([`Seen`], read back with [`echoed`]) and a [`Relay`] in
//! front of the service that counts the connections made to it. It OWNS those
//! servers on loopback ports; it must NOT decide whether what was seen is right.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::Response;
use serde_json::Value;

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

pub(crate) async fn echoed(response: Response) -> Seen {
    let body: Value = response
        .json()
        .await
        .expect("the echo upstream answers JSON");
    serde_json::from_value(body).expect("an echoed request")
}
