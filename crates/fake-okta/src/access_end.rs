//! Telling apps that access ended (OKTA.md): the event hook (with Okta's
//! verification), Universal Logout and front-channel Single Logout, and the
//! demo's admin page that triggers them. It OWNS the fake's outgoing calls to
//! the service, on loopback only; it must NOT change how sign-in works.

use super::*;

// ---------------------------------------------------------------------------
// Telling apps that access ended (OKTA.md): event hooks, Universal Logout and
// front-channel Single Logout, plus the demo's admin page that uses them.

/// The event hook and front-channel logout URI an admin registered.
#[derive(Default)]
pub(crate) struct AccessEnd {
    /// (URL, the `Authorization` value Okta sends).
    pub(crate) event_hook: Option<(String, String)>,
    pub(crate) frontchannel_logout_uri: Option<String>,
}

/// A client for Okta's own outgoing calls (hooks, Universal Logout, iframes).
pub(crate) fn outgoing() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a reqwest client")
}

/// `2024-05-01T12:00:00.000Z` for epoch seconds, as Okta writes `published`.
pub fn okta_time(epoch_secs: u64) -> String {
    let formatted = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs(epoch_secs));
    formatted.to_string()
}

impl FakeOkta {
    /// Registers an event hook as the admin console does: Okta first verifies
    /// the URL with a GET carrying `X-Okta-Verification-Challenge` and keeps
    /// the hook only if the answer echoes it. Returns the verification answer's status.
    pub async fn register_event_hook(&self, url: &str, secret: &str) -> Result<(), String> {
        let challenge = random_token();
        let answer = outgoing()
            .get(url)
            .header("Authorization", secret)
            .header("X-Okta-Verification-Challenge", &challenge)
            .send()
            .await
            .map_err(|e| format!("verification request failed: {e}"))?;
        let status = answer.status();
        let body: Value = answer
            .json()
            .await
            .map_err(|_| format!("verification answer {status} is not JSON"))?;
        if !status.is_success() || body["verification"] != json!(challenge) {
            return Err(format!("verification failed: {status} {body}"));
        }
        self.state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event_hook = Some((url.to_string(), secret.to_string()));
        Ok(())
    }

    /// A System Log event as an event hook carries it: a fresh `uuid`,
    /// `published` now, the user as the `User` target plus `extra_targets`.
    pub fn event(&self, event_type: &str, user_id: &str, extra_targets: Vec<Value>) -> Value {
        self.event_at(event_type, user_id, extra_targets, now_secs())
    }

    /// [`event`](Self::event) published at `published` (epoch seconds).
    pub fn event_at(
        &self,
        event_type: &str,
        user_id: &str,
        extra_targets: Vec<Value>,
        published: u64,
    ) -> Value {
        let login = self
            .lock()
            .user_by_id(user_id)
            .map(|u| u.login.clone())
            .unwrap_or_default();
        let mut targets = vec![json!({
            "id": user_id, "type": "User", "alternateId": login, "displayName": login,
        })];
        targets.extend(extra_targets);
        json!({
            "uuid": uuid(),
            "published": okta_time(published),
            "eventType": event_type,
            "version": "0",
            "severity": "INFO",
            "displayMessage": event_type,
            "actor": { "id": "00uadmin000000000000", "type": "User", "alternateId": "admin@example.com" },
            "outcome": { "result": "SUCCESS" },
            "target": targets,
        })
    }

    /// The `UserGroup` target of a membership event.
    pub fn group_target(name: &str) -> Value {
        let (id, name) = group(name);
        json!({ "id": id, "type": "UserGroup", "alternateId": "unknown", "displayName": name })
    }

    /// The `AppInstance` target of an app-membership event.
    pub fn app_target(client_id: &str) -> Value {
        json!({ "id": client_id, "type": "AppInstance", "alternateId": "forward-auth", "displayName": "forward-auth" })
    }

    /// One delivery of these events (in this order) to the registered hook,
    /// with the registered `Authorization`; the service's status.
    pub async fn deliver_events(&self, events: Vec<Value>) -> reqwest::StatusCode {
        let (url, secret) = self
            .state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event_hook
            .clone()
            .expect("register_event_hook first");
        self.deliver_events_to(&url, &secret, events).await
    }

    /// One delivery to any URL with any `Authorization` value.
    pub async fn deliver_events_to(
        &self,
        url: &str,
        authorization: &str,
        events: Vec<Value>,
    ) -> reqwest::StatusCode {
        let body = json!({
            "eventType": "com.okta.event_hook",
            "eventTypeVersion": "1.0",
            "cloudEventsVersion": "0.1",
            "source": format!("{}/api/v1/eventHooks/whofake0000000000000", self.base_url()),
            "eventId": uuid(),
            "eventTime": okta_time(now_secs()),
            "contentType": "application/json",
            "data": { "events": events },
        });
        outgoing()
            .post(url)
            .header("Authorization", authorization)
            .json(&body)
            .send()
            .await
            .expect("the event hook answers")
            .status()
    }

    /// Removes the user from a group, as an admin would, and (with a hook
    /// registered) delivers `group.user_membership.remove`.
    pub async fn remove_from_group(
        &self,
        user_id: &str,
        name: &str,
    ) -> Option<reqwest::StatusCode> {
        self.lock()
            .user_by_id_mut(user_id)
            .groups
            .retain(|(_, n)| n != name);
        self.notify(self.event(
            "group.user_membership.remove",
            user_id,
            vec![Self::group_target(name)],
        ))
        .await
    }

    /// Adds the user to a group and delivers `group.user_membership.add`.
    pub async fn add_to_group(&self, user_id: &str, name: &str) -> Option<reqwest::StatusCode> {
        {
            let mut inner = self.lock();
            let user = inner.user_by_id_mut(user_id);
            if !user.groups.iter().any(|(_, n)| n == name) {
                user.groups.push(group(name));
            }
        }
        self.notify(self.event(
            "group.user_membership.add",
            user_id,
            vec![Self::group_target(name)],
        ))
        .await
    }

    /// Deactivates the user and delivers `user.lifecycle.deactivate`.
    pub async fn deactivate(&self, user_id: &str) -> Option<reqwest::StatusCode> {
        self.set_active(user_id, false);
        self.notify(self.event("user.lifecycle.deactivate", user_id, vec![]))
            .await
    }

    /// Delivers one event to the registered hook, if any.
    pub(crate) async fn notify(&self, event: Value) -> Option<reqwest::StatusCode> {
        let registered = self
            .state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event_hook
            .is_some();
        if registered {
            Some(self.deliver_events(vec![event]).await)
        } else {
            None
        }
    }

    /// A Universal Logout token as Okta signs it: header `typ`
    /// `global-token-revocation+jwt` and the current ID-token key; `iss` the
    /// org, `sub` the client id, `aud` the endpoint, `exp` +5 min, `nbf` −5 min.
    /// `changes` replace claims (`null` removes one).
    pub fn sign_universal_logout_token(&self, aud: &str, changes: Value) -> String {
        let now = now_secs();
        let mut claims = json!({
            "iss": self.org_issuer(),
            "sub": Self::CLIENT_ID,
            "aud": aud,
            "iat": now,
            "nbf": now - 300,
            "exp": now + 300,
            "jti": format!("gtr.{}", random_token()),
        });
        for (name, value) in changes.as_object().expect("changes is an object") {
            if value.is_null() {
                claims.as_object_mut().expect("an object").remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        let key = self.lock().key;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("global-token-revocation+jwt".to_string());
        header.kid = Some(key.kid().to_string());
        jsonwebtoken::encode(&header, &claims, self.encoding_key(key))
            .expect("sign with a test key")
    }

    /// Universal Logout of a user, as Okta calls it: POST `endpoint` with a
    /// fresh token and `{"sub_id":{"format":"iss_sub",…}}`.
    pub async fn universal_logout(&self, endpoint: &str, user_id: &str) -> reqwest::StatusCode {
        let token = self.sign_universal_logout_token(endpoint, json!({}));
        let body =
            json!({ "sub_id": { "format": "iss_sub", "iss": self.org_issuer(), "sub": user_id } });
        outgoing()
            .post(endpoint)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("the revocation endpoint answers")
            .status()
    }

    /// The app's front-channel logout URI ("Single Logout", "session required").
    pub fn set_frontchannel_logout_uri(&self, uri: Option<&str>) {
        self.state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frontchannel_logout_uri = uri.map(str::to_string);
    }

    /// Single Logout of the Okta session `sid`: loads the app's front-channel
    /// logout URI with `iss` and `sid`, as the hidden iframe would. `None`
    /// without a registered URI.
    pub async fn single_logout(&self, sid: &str) -> Option<reqwest::Response> {
        let uri = self
            .state
            .access_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frontchannel_logout_uri
            .clone()?;
        let mut url = Url::parse(&uri).expect("a registered URI is a URL");
        url.query_pairs_mut()
            .append_pair("iss", &self.org_issuer())
            .append_pair("sid", sid);
        Some(
            outgoing()
                .get(url)
                .header("Sec-Fetch-Dest", "iframe")
                .send()
                .await
                .expect("the front-channel logout URI answers"),
        )
    }
}

/// An Okta-looking event `uuid` (a random v4 UUID).
pub(crate) fn uuid() -> String {
    let bytes = Sha256::digest(random_token().as_bytes());
    let hex: String = bytes[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The demo's stand-in for the Okta admin console: a page listing the users,
/// with buttons that remove a user from a group or deactivate them; each
/// change is delivered to the registered event hook at once.
pub(crate) fn demo_admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo/admin", web::get().to(demo_admin_page))
        .route("/demo/admin/remove", web::post().to(demo_admin_remove))
        .route(
            "/demo/admin/deactivate",
            web::post().to(demo_admin_deactivate),
        );
}

pub(crate) async fn demo_admin_page(fake: web::Data<FakeOkta>) -> HttpResponse {
    let users = fake.lock().users.clone();
    let mut rows = String::new();
    for user in &users {
        let mut groups = String::new();
        for (_, name) in user.groups.iter().filter(|(_, n)| n != "Everyone") {
            groups.push_str(&format!(
                "<form method=\"post\" action=\"/demo/admin/remove\" style=\"display:inline\">\
                 <input type=\"hidden\" name=\"user\" value=\"{id}\">\
                 <input type=\"hidden\" name=\"group\" value=\"{group}\">\
                 <button>remove from {group}</button></form> ",
                id = escape(&user.id),
                group = escape(name),
            ));
        }
        let status = if user.active {
            "ACTIVE"
        } else {
            "DEPROVISIONED"
        };
        rows.push_str(&format!(
            "<tr><td>{login}</td><td>{status}</td><td>{groups}</td><td>\
             <form method=\"post\" action=\"/demo/admin/deactivate\">\
             <input type=\"hidden\" name=\"user\" value=\"{id}\"><button>deactivate</button></form></td></tr>",
            login = escape(&user.login),
            id = escape(&user.id),
        ));
    }
    let hook = fake
        .state
        .access_end
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .event_hook
        .as_ref()
        .map(|(url, _)| escape(url))
        .unwrap_or_else(|| "none registered".into());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Fake Okta admin</title></head><body>\
             <h1>Fake Okta admin (development only)</h1><p>Event hook: {hook}</p>\
             <table><tr><th>user</th><th>status</th><th>groups</th><th></th></tr>{rows}</table></body></html>"
        ))
}

pub(crate) async fn demo_admin_remove(body: web::Bytes, fake: web::Data<FakeOkta>) -> HttpResponse {
    let form: HashMap<String, String> = parse_pairs(&body).into_iter().collect();
    let (Some(user), Some(group)) = (form.get("user"), form.get("group")) else {
        return error_page("user and group are required");
    };
    if fake.lock().user_by_id(user).is_none() {
        return error_page("no such user");
    }
    let _ = fake.remove_from_group(user, group).await;
    found("/demo/admin")
}

pub(crate) async fn demo_admin_deactivate(
    body: web::Bytes,
    fake: web::Data<FakeOkta>,
) -> HttpResponse {
    let form: HashMap<String, String> = parse_pairs(&body).into_iter().collect();
    let Some(user) = form.get("user") else {
        return error_page("user is required");
    };
    if fake.lock().user_by_id(user).is_none() {
        return error_page("no such user");
    }
    let _ = fake.deactivate(user).await;
    found("/demo/admin")
}
