//! The access core without HTTP: a memory store, an OIDC client that never
//! completed discovery (so a refresh is "Okta cannot be asked"), and groups
//! from the ID token claim or a warmed groups cache.

use std::sync::Arc;
use std::time::Duration;

use super::refresh::TRANSIENT_REFRESH_PAUSE;
use super::*;
use crate::clock::now;
use crate::groups::OktaGroupsClient;
use crate::identity::Identity;
use crate::oidc::SignedIn;
use crate::secret::{Secret, SecretRef};
use crate::session::MemoryStore;

const NOW: u64 = 1_800_000_000;
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn config(provider: &str) -> Arc<Config> {
    let mut vars = vec![
        ("IDP_PROVIDER", provider),
        ("IDP_PROVIDER_URL", "https://dev-123.okta.com"),
        ("IDP_CLIENT_ID", "0oa1client"),
        ("IDP_CLIENT_SECRET", "client-secret-value-7f3a"),
        ("AUTHENTICATE_SERVICE_URL", "https://auth.example.com"),
        ("COOKIE_SECRET", KEY),
    ];
    if provider == "okta" {
        vars.push(("IDP_SERVICE_ACCOUNT", "00ssws-token-value-9c1d"));
    }
    let vars = vars.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned()));
    match Config::from_vars(vars) {
        Ok((config, _)) => Arc::new(config),
        Err(e) => panic!("{e}"),
    }
}

struct Fixture {
    access: Access,
    store: Arc<MemoryStore>,
    codec: CookieCodec,
}

fn fixture(config: Arc<Config>, groups: Option<GroupsCache>) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let oidc = Arc::new(Oidc::new(&config, reqwest::Client::new()));
    Fixture {
        codec: CookieCodec::new(config.cookie.keys.clone()),
        access: Access::new(config, store.clone(), oidc, groups),
        store,
    }
}

fn alice(groups: &[&str]) -> Session {
    Session::new(
        Identity::new(
            "00ualice".into(),
            "alice@example.com".into(),
            "alice@example.com".into(),
            "Alice".into(),
        )
        .with_groups_claim(Some(groups.iter().map(|g| g.to_string()).collect())),
        NOW - 60,
        NOW + 3_600,
        NOW + 600,
        None,
    )
}

impl Fixture {
    /// Saves a session and returns its cookie value.
    async fn signed_in(&self, session: &Session) -> (SessionId, String) {
        let id = SessionId::random();
        self.store.save(&id, session).await.unwrap();
        let cookie = self.codec.encode_session(&id);
        (id, cookie)
    }
}

fn route(query: &str) -> AllowLists {
    AllowLists::from_query(query).unwrap()
}

fn signed_in_from(sign_in_refresh_token: Option<&str>) -> SignedIn {
    SignedIn {
        identity: Identity::new(
            "00ubob".into(),
            "bob@example.com".into(),
            "bob@example.com".into(),
            "Bob".into(),
        )
        .with_groups_claim(Some(vec!["ops".into()]))
        .with_sid(Some("idp-session".into())),
        tokens_expire_at: NOW + 3_600,
        refresh_token: sign_in_refresh_token.map(|t| Secret::new(t.into())),
        id_token: Secret::new("id.token.value".into()),
    }
}

#[tokio::test]
async fn a_valid_cookie_names_its_session_and_garbage_is_no_session() {
    let f = fixture(config("oidc"), None);
    let (id, cookie) = f.signed_in(&alice(&[])).await;
    let found = f
        .access
        .stored_session([cookie.as_str()], now())
        .await
        .unwrap();
    assert_eq!(found.map(|(found, _)| found), Some(id));
    let tampered = format!("{}x", &cookie[..cookie.len() - 1]);
    for values in [vec![], vec!["garbage"], vec![tampered.as_str()]] {
        assert!(f
            .access
            .stored_session(values, now())
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn at_most_three_cookie_values_with_a_valid_mac_are_looked_up() {
    let f = fixture(config("oidc"), None);
    let (_, cookie) = f.signed_in(&alice(&[])).await;
    let ended: Vec<String> = (0..MAX_SESSION_LOOKUPS)
        .map(|_| f.codec.encode_session(&SessionId::random()))
        .collect();
    let mut values: Vec<&str> = ended.iter().map(String::as_str).collect();
    values.push(&cookie);
    assert!(
        f.access
            .stored_session(values, now())
            .await
            .unwrap()
            .is_none(),
        "the fourth value is never read"
    );
    // Values without a valid MAC cost no lookup, so they do not count.
    let mut values = vec!["forged"; 10];
    values.push(&cookie);
    assert!(f
        .access
        .stored_session(values, now())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_warm_check_accepts_only_the_tag_it_verified_and_only_while_the_session_lasts() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    let f = fixture(config("oidc"), None);
    let (id, cookie) = f.signed_in(&alice(&[])).await;
    let parsed = SessionCookie::parse(&cookie).unwrap();
    let (_, session) = f
        .access
        .stored_session([cookie.as_str()], now())
        .await
        .unwrap()
        .unwrap();
    assert!(
        SessionHot::verified_tag(&session, &parsed.tag),
        "the first check remembers the tag its MAC verified"
    );
    let (encoded_id, _) = cookie.split_once('.').unwrap();
    let mut forgeries: Vec<String> = [0, 17, 31]
        .map(|flipped| {
            let mut tag = parsed.tag.decoded().unwrap();
            tag[flipped] ^= 1;
            URL_SAFE_NO_PAD.encode(tag)
        })
        .into();
    // The same tag in a text that is not its canonical encoding (the last
    // character's two unused bits set), and text that is no encoding at all.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let text = parsed.tag.as_text();
    let last = ALPHABET
        .iter()
        .position(|c| *c == text.as_bytes()[42])
        .unwrap();
    let same_bits_but_one_unused = char::from(ALPHABET[last ^ 1]);
    forgeries.push(format!("{}{same_bits_but_one_unused}", &text[..42]));
    forgeries.push(format!("{}!", &text[..42]));
    for tag in forgeries {
        let forged = format!("{encoded_id}.{tag}");
        let cookie = SessionCookie::parse(&forged).unwrap();
        assert!(!SessionHot::verified_tag(&session, &cookie.tag), "{tag}");
        assert!(!f.codec.verifies(&cookie), "{tag}");
        let found = f.access.stored_session([forged.as_str()], now()).await;
        assert!(found.unwrap().is_none(), "a warm id with another tag");
    }
    let found = f.access.stored_session([cookie.as_str()], now()).await;
    assert_eq!(found.unwrap().map(|(found, _)| found), Some(id.clone()));
    f.store.remove(&id).await.unwrap();
    let found = f.access.stored_session([cookie.as_str()], now()).await;
    assert!(
        found.unwrap().is_none(),
        "an ended session, whatever tag it knew"
    );
}

#[tokio::test]
async fn a_warm_value_counts_as_a_lookup_like_any_value_with_a_valid_mac() {
    let f = fixture(config("oidc"), None);
    let (_, cookie) = f.signed_in(&alice(&[])).await;
    let warm = f.access.stored_session([cookie.as_str()], now()).await;
    assert!(warm.unwrap().is_some());
    let ended: Vec<String> = (0..MAX_SESSION_LOOKUPS)
        .map(|_| f.codec.encode_session(&SessionId::random()))
        .collect();
    let mut values: Vec<&str> = ended.iter().map(String::as_str).collect();
    values.push(&cookie);
    let found = f.access.stored_session(values, now()).await;
    assert!(found.unwrap().is_none(), "the fourth value is never read");
}

#[tokio::test]
async fn a_store_that_does_not_answer_is_a_check_that_could_not_be_decided() {
    let config = config("oidc");
    // Nothing listens on port 1: every read fails.
    let store = Arc::new(crate::session::RedisStore::new("redis://127.0.0.1:1/").unwrap());
    let oidc = Arc::new(Oidc::new(&config, reqwest::Client::new()));
    let codec = CookieCodec::new(config.cookie.keys.clone());
    let access = Access::new(config, store, oidc, None);
    let cookie = codec.encode_session(&SessionId::random());
    let before = metrics::AUTH_UNAVAILABLE.get();
    let verdict = access.check([cookie.as_str()], None, &route(""), NOW).await;
    assert!(matches!(verdict, Err(AccessError::Store(_))), "{verdict:?}");
    assert!(
        metrics::AUTH_UNAVAILABLE.get() > before,
        "counted as unavailable"
    );
}

#[tokio::test]
async fn a_check_without_a_session_asks_who_you_are() {
    let f = fixture(config("oidc"), None);
    let verdict = f.access.check([], None, &route(""), NOW).await.unwrap();
    assert!(matches!(verdict, Verdict::NoSession), "{verdict:?}");
}

#[tokio::test]
async fn groups_come_from_the_claim_and_the_policy_decides() {
    let f = fixture(config("oidc"), None);
    let (_, cookie) = f.signed_in(&alice(&["admins"])).await;
    let allowed = f
        .access
        .check(
            [cookie.as_str()],
            None,
            &route("allowed_groups=admins"),
            NOW,
        )
        .await
        .unwrap();
    let Verdict::Allowed(identified) = allowed else {
        panic!("{allowed:?}");
    };
    assert_eq!(identified.who.login(), "alice@example.com");
    assert_eq!(identified.who.subject(), "00ualice");
    assert_eq!(identified.groups.list.len(), 1);
    assert_eq!(identified.groups.list[0].name, "admins");

    let denied = f
        .access
        .check([cookie.as_str()], None, &route("allowed_groups=ops"), NOW)
        .await
        .unwrap();
    let Verdict::Forbidden { who, reason } = denied else {
        panic!("{denied:?}");
    };
    assert_eq!(who.login(), "alice@example.com");
    assert_eq!(reason, "not in an allowed group");
}

#[tokio::test]
async fn with_okta_the_groups_cache_speaks_not_the_claim() {
    let client = OktaGroupsClient::new(
        reqwest::Client::new(),
        "http://127.0.0.1:9",
        Secret::new("unused".into()),
    )
    .unwrap();
    let cache = GroupsCache::new(client, Duration::from_secs(300));
    cache
        .remember(
            "00ualice",
            vec![Group {
                id: "00gops".into(),
                name: "ops".into(),
            }],
        )
        .await;
    let f = fixture(config("okta"), Some(cache));
    let (_, cookie) = f.signed_in(&alice(&["admins"])).await;
    let verdict = f
        .access
        .check([cookie.as_str()], None, &route("allowed_groups=ops"), NOW)
        .await
        .unwrap();
    assert!(matches!(verdict, Verdict::Allowed(_)), "{verdict:?}");
    let verdict = f
        .access
        .check(
            [cookie.as_str()],
            None,
            &route("allowed_groups=admins"),
            NOW,
        )
        .await
        .unwrap();
    assert!(matches!(verdict, Verdict::Forbidden { .. }), "{verdict:?}");
}

#[tokio::test]
async fn identify_gives_the_user_and_groups_without_a_decision() {
    let f = fixture(config("oidc"), None);
    let (_, cookie) = f.signed_in(&alice(&["admins", "ops"])).await;
    let identified = f
        .access
        .identify([cookie.as_str()], None, NOW)
        .await
        .unwrap();
    let identified = identified.expect("signed in");
    assert_eq!(identified.groups.list.len(), 2);
    assert!(f.access.identify([], None, NOW).await.unwrap().is_none());
}

#[tokio::test]
async fn a_refresh_okta_cannot_answer_keeps_the_session_and_waits_before_retrying() {
    let f = fixture(config("oidc"), None);
    let mut session = alice(&[]);
    session.set_refresh_token(Some(SecretRef::new("refresh-1")));
    session.set_tokens_expire_at(NOW - 1);
    let (id, cookie) = f.signed_in(&session).await;
    let found = f
        .access
        .current_session([cookie.as_str()], NOW)
        .await
        .unwrap();
    let (_, found) = found.expect("the session survives a transient failure");
    assert_eq!(found.refresh_not_before(), NOW + TRANSIENT_REFRESH_PAUSE);
    let stored = f.store.load(&id).await.unwrap().expect("still stored");
    assert_eq!(stored.refresh_not_before(), NOW + TRANSIENT_REFRESH_PAUSE);
    assert_eq!(
        stored.refresh_token().map(SecretRef::expose),
        Some("refresh-1")
    );
}

#[tokio::test]
async fn a_session_of_another_domain_is_no_session_and_costs_no_refresh() {
    let vars = [
        ("IDP_PROVIDER", "oidc"),
        ("IDP_PROVIDER_URL", "https://dev-123.okta.com"),
        ("IDP_CLIENT_ID", "0oa1client"),
        ("IDP_CLIENT_SECRET", "client-secret-value-7f3a"),
        ("COOKIE_DOMAIN", ".a.test,.b.test"),
        (
            "AUTHENTICATE_SERVICE_URL",
            "https://auth.a.test,https://auth.b.test",
        ),
        ("COOKIE_SECRET", KEY),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let f = fixture(Arc::new(Config::from_vars(vars).unwrap().0), None);
    let site_a = f.access.config.sites.for_host("app.a.test").unwrap();
    let mut session = alice(&[]).with_cookie_domain(Some(site_a.cookie_domain.clone()));
    // Due for a refresh, which this fixture's unreachable IdP would fail,
    // leaving a pause behind: the trace of an attempt.
    session.set_refresh_token(Some(SecretRef::new("refresh-1")));
    session.set_tokens_expire_at(NOW - 1);
    let (id, cookie) = f.signed_in(&session).await;
    let on_b = f
        .access
        .check([cookie.as_str()], Some("app.b.test"), &route(""), NOW)
        .await;
    assert!(matches!(on_b, Ok(Verdict::NoSession)), "{on_b:?}");
    let stored = f.store.load(&id).await.unwrap().expect("still stored");
    assert_eq!(stored.refresh_not_before(), 0, "no refresh was tried for b");
    let on_a = f
        .access
        .check([cookie.as_str()], Some("app.a.test"), &route(""), NOW)
        .await;
    assert!(matches!(on_a, Ok(Verdict::Allowed(_))), "{on_a:?}");
    let stored = f.store.load(&id).await.unwrap().expect("still stored");
    assert_eq!(stored.refresh_not_before(), NOW + TRANSIENT_REFRESH_PAUSE);
}

#[tokio::test]
async fn no_refresh_before_the_tokens_are_due_or_while_told_to_wait() {
    let f = fixture(config("oidc"), None);
    let mut session = alice(&[]);
    session.set_refresh_token(Some(SecretRef::new("refresh-1")));
    session.set_tokens_expire_at(NOW - 1);
    session.set_refresh_not_before(NOW + 5);
    let (id, cookie) = f.signed_in(&session).await;
    let found = f
        .access
        .current_session([cookie.as_str()], NOW)
        .await
        .unwrap();
    assert_eq!(found.expect("kept").1.refresh_not_before(), NOW + 5);
    let mut fresh = alice(&[]);
    fresh.set_refresh_token(Some(SecretRef::new("refresh-2")));
    f.store.save(&id, &fresh).await.unwrap();
    let found = f
        .access
        .current_session([cookie.as_str()], NOW)
        .await
        .unwrap();
    assert_eq!(found.expect("kept").1.refresh_not_before(), 0);
}

#[tokio::test]
async fn a_sign_in_opens_one_session_per_state() {
    let f = fixture(config("oidc"), None);
    let opened = f
        .access
        .open_session(signed_in_from(None), "state-1", None, NOW)
        .await
        .unwrap()
        .expect("first use of the state");
    let expire = config("oidc").cookie.expire.as_secs();
    assert_eq!(opened.session.created_at(), NOW);
    assert_eq!(opened.session.expires_at(), NOW + expire);
    assert!(
        opened.session.id_token().is_some(),
        "without a refresh token the ID token is kept for sign-out"
    );
    let (_, stored) = f
        .access
        .stored_session([opened.cookie.as_str()], now())
        .await
        .unwrap()
        .expect("the cookie names the new session");
    assert_eq!(stored.identity().login(), "bob@example.com");
    let replay = f
        .access
        .open_session(signed_in_from(None), "state-1", None, NOW)
        .await
        .unwrap();
    assert!(replay.is_none(), "a used state opens nothing");
}

#[test]
fn a_session_with_a_refresh_token_does_not_keep_the_id_token() {
    let session = new_session(
        signed_in_from(Some("r")),
        NOW,
        100,
        Some("a.example".into()),
    );
    assert!(session.id_token().is_none());
    assert_eq!(session.expires_at(), NOW + 100);
    assert_eq!(session.refresh_not_before(), 0);
    assert_eq!(session.cookie_domain(), Some("a.example"));
}

#[tokio::test]
async fn sign_out_ends_the_session_or_every_session_of_the_user() {
    let f = fixture(config("oidc"), None);
    let (first, cookie) = f.signed_in(&alice(&[])).await;
    let (second, other) = f.signed_in(&alice(&[])).await;
    let out = f.access.sign_out([cookie.as_str()], false).await.unwrap();
    assert_eq!(out.expect("signed in").ended, 1);
    assert!(f.store.load(&first).await.unwrap().is_none());
    assert!(f.store.load(&second).await.unwrap().is_some());
    assert!(f
        .access
        .sign_out([cookie.as_str()], false)
        .await
        .unwrap()
        .is_none());
    let (_, third) = f.signed_in(&alice(&[])).await;
    let out = f.access.sign_out([third.as_str()], true).await.unwrap();
    assert_eq!(out.expect("signed in").ended, 2);
    assert!(f
        .access
        .stored_session([other.as_str()], now())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_sign_out_hint_is_the_kept_id_token() {
    let f = fixture(config("oidc"), None);
    let session = alice(&[]).with_id_token(Some(Secret::new("kept.id.token".into())));
    let hint = f.access.sign_out_hint(&session).await;
    assert_eq!(hint.as_ref().map(Secret::expose), Some("kept.id.token"));
    // Neither an ID token nor a refresh token: nothing to offer Okta.
    assert!(f.access.sign_out_hint(&alice(&[])).await.is_none());
}

#[test]
fn with_one_domain_every_session_fits_every_host() {
    let f = fixture(config("oidc"), None);
    assert!(f.access.fits_host(&alice(&[]), Some("app.example.com")));
    assert!(f.access.fits_host(&alice(&[]), None));
}

// The warm path: a session's link to its user's groups answer must never
// answer where the groups cache itself would not.

fn okta_groups(ttl: Duration, stale_if_error: Duration) -> GroupsCache {
    // Nothing listens on port 9: every Okta call fails.
    let client = OktaGroupsClient::new(
        reqwest::Client::new(),
        "http://127.0.0.1:9",
        Secret::new("unused".into()),
    )
    .unwrap();
    GroupsCache::configured(client, ttl, stale_if_error, None)
}

fn group(name: &str) -> Group {
    Group {
        id: format!("00g{name}"),
        name: name.into(),
    }
}

impl Fixture {
    async fn check(&self, cookie: &str, query: &str) -> Result<Verdict, AccessError> {
        self.access.check([cookie], None, &route(query), NOW).await
    }
}

#[tokio::test]
async fn the_linked_groups_are_the_cached_ones_and_each_route_still_decides() {
    let cache = okta_groups(Duration::from_secs(300), Duration::ZERO);
    cache.remember("00ualice", vec![group("ops")]).await;
    let f = fixture(config("okta"), Some(cache));
    let (_, cookie) = f.signed_in(&alice(&[])).await;
    let Ok(Verdict::Allowed(first)) = f.check(&cookie, "allowed_groups=ops").await else {
        panic!("ops may pass");
    };
    let Ok(Verdict::Allowed(second)) = f.check(&cookie, "allowed_groups=ops").await else {
        panic!("ops may still pass");
    };
    assert!(Arc::ptr_eq(&first.groups, &second.groups), "one answer");
    let verdict = f.check(&cookie, "allowed_groups=admins").await;
    assert!(
        matches!(verdict, Ok(Verdict::Forbidden { .. })),
        "{verdict:?}"
    );
    let verdict = f.check(&cookie, "allowed_users=bob@example.com").await;
    assert!(
        matches!(verdict, Ok(Verdict::Forbidden { .. })),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn an_invalidation_voids_the_link_at_once() {
    let cache = okta_groups(Duration::from_secs(300), Duration::from_secs(900));
    cache.remember("00ualice", vec![group("ops")]).await;
    let f = fixture(config("okta"), Some(cache.clone()));
    let (_, cookie) = f.signed_in(&alice(&[])).await;
    for _ in 0..2 {
        let verdict = f.check(&cookie, "allowed_groups=ops").await;
        assert!(matches!(verdict, Ok(Verdict::Allowed(_))), "{verdict:?}");
    }
    cache.invalidate("00ualice").await.unwrap();
    // Okta cannot be asked and nothing is known any more: no answer, never the old one.
    let verdict = f.check(&cookie, "allowed_groups=ops").await;
    assert!(
        matches!(verdict, Err(AccessError::Groups { .. })),
        "{verdict:?}"
    );
    // Okta's next answer is the one served, link or not.
    cache.remember("00ualice", vec![group("admins")]).await;
    for _ in 0..2 {
        let verdict = f.check(&cookie, "allowed_groups=ops").await;
        assert!(
            matches!(verdict, Ok(Verdict::Forbidden { .. })),
            "{verdict:?}"
        );
    }
}

#[tokio::test]
async fn the_link_never_outlives_the_groups_ttl() {
    // A 2 s TTL: linkable for its first second; past 2 s and with no
    // stale-if-error, an Okta that cannot answer means no answer at all.
    let cache = okta_groups(Duration::from_secs(2), Duration::ZERO);
    cache.remember("00ualice", vec![group("ops")]).await;
    let f = fixture(config("okta"), Some(cache));
    let (_, cookie) = f.signed_in(&alice(&[])).await;
    for _ in 0..2 {
        let verdict = f.check(&cookie, "allowed_groups=ops").await;
        assert!(matches!(verdict, Ok(Verdict::Allowed(_))), "{verdict:?}");
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let verdict = f.check(&cookie, "allowed_groups=ops").await;
    assert!(
        matches!(verdict, Err(AccessError::Groups { .. })),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn an_ended_or_expired_session_is_no_session_whatever_it_linked() {
    let cache = okta_groups(Duration::from_secs(300), Duration::ZERO);
    cache.remember("00ualice", vec![group("ops")]).await;
    let f = fixture(config("okta"), Some(cache));
    let (id, cookie) = f.signed_in(&alice(&[])).await;
    let mut short = alice(&[]);
    // The memory store reads the real clock: this one ends in about a second.
    short.set_expires_at(crate::clock::now() + 1);
    let (_, expiring) = f.signed_in(&short).await;
    for cookie in [&cookie, &expiring] {
        let verdict = f.check(cookie, "allowed_groups=ops").await;
        assert!(matches!(verdict, Ok(Verdict::Allowed(_))), "{verdict:?}");
    }
    f.store.remove(&id).await.unwrap();
    let verdict = f.check(&cookie, "allowed_groups=ops").await;
    assert!(matches!(verdict, Ok(Verdict::NoSession)), "{verdict:?}");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let verdict = f.check(&expiring, "allowed_groups=ops").await;
    assert!(matches!(verdict, Ok(Verdict::NoSession)), "{verdict:?}");
}

#[tokio::test]
async fn a_user_okta_no_longer_knows_is_refused_through_a_former_link() {
    let cache = okta_groups(Duration::from_secs(300), Duration::from_secs(900));
    cache.remember("00ualice", vec![group("ops")]).await;
    let f = fixture(config("okta"), Some(cache.clone()));
    let (_, cookie) = f.signed_in(&alice(&[])).await;
    let verdict = f.check(&cookie, "allowed_groups=ops").await;
    assert!(matches!(verdict, Ok(Verdict::Allowed(_))), "{verdict:?}");
    // The user is removed at Okta: an event invalidates, the refetch says so.
    cache.invalidate("00ualice").await.unwrap();
    cache
        .remember_refusal("00ualice", GroupsError::UserNotFound)
        .await;
    let verdict = f.check(&cookie, "allowed_groups=ops").await;
    assert!(
        matches!(verdict, Ok(Verdict::Forbidden { .. })),
        "{verdict:?}"
    );
}
