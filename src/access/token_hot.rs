//! What a verified access token keeps for its next checks ([`TokenHot`], the
//! last field of `TokenIdentity`, shared by every check through the
//! verifier's caches): its identity header values rendered once, the groups
//! answer that cannot change during its life (a machine's none, a `groups`
//! claim's), a link to its user's groups answer, and its last signed
//! identity. Owns only these copies: the groups cache says whether a link may
//! still be used ([`GroupsCache::linked`]) and `identity_jwt::Memo` whether a
//! signed identity may be reused. Must NOT decide access; a copy of an
//! identity starts empty.

use std::sync::{Arc, OnceLock};

use super::hot::Kept;
use crate::groups::UserGroups;
use crate::identity_headers::HeaderText;
use crate::identity_jwt::Memo;
use crate::oidc::bearer::TokenIdentity;

/// The copies a token keeps for its checks; nothing until its first check.
#[derive(Default)]
pub struct TokenHot(OnceLock<Box<Hot>>);

struct Hot {
    kept: Kept,
    fixed: OnceLock<Arc<UserGroups>>,
}

impl TokenHot {
    fn of(token: &TokenIdentity) -> &Hot {
        token.hot.0.get_or_init(|| {
            Box::new(Hot {
                kept: Kept::new(&token.login, &token.email),
                fixed: OnceLock::new(),
            })
        })
    }

    /// What the token keeps for its checks (rendered at the first).
    pub(super) fn kept(token: &TokenIdentity) -> &Kept {
        &TokenHot::of(token).kept
    }

    /// The token's `X-Auth-Request-User` and `-Email` values.
    pub fn identity_headers(token: &TokenIdentity) -> (HeaderText, HeaderText) {
        TokenHot::kept(token).identity_headers()
    }

    /// Groups that only depend on the token itself (a machine's, a claim's):
    /// made by `make` at the first check, the same answer after.
    pub(super) fn fixed_groups(
        token: &TokenIdentity,
        make: impl FnOnce() -> Arc<UserGroups>,
    ) -> Arc<UserGroups> {
        TokenHot::of(token).fixed.get_or_init(make).clone()
    }

    /// The token's last signed identity.
    pub fn signed_identity(token: &TokenIdentity) -> &Memo {
        TokenHot::kept(token).signed_identity()
    }
}

/// A copy of an identity is another one: it renders and links afresh.
impl Clone for TokenHot {
    fn clone(&self) -> TokenHot {
        TokenHot::default()
    }
}

/// Copies of what the token says: never part of what an identity is.
impl PartialEq for TokenHot {
    fn eq(&self, _: &TokenHot) -> bool {
        true
    }
}

impl Eq for TokenHot {}

impl std::fmt::Debug for TokenHot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHot")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::groups::GroupsCache;
    use crate::groups::OktaGroupsClient;
    use crate::policy::Group;
    use crate::secret::Secret;

    fn group(name: &str) -> Group {
        Group {
            id: format!("00g{name}"),
            name: name.into(),
        }
    }

    /// Okta is never reachable: every answer comes from `remember`.
    fn cache(ttl: Duration) -> GroupsCache {
        let client = OktaGroupsClient::new(
            reqwest::Client::new(),
            "http://127.0.0.1:9",
            Secret::new("unused".into()),
        )
        .unwrap();
        GroupsCache::new(client, ttl)
    }

    fn token(user: &str) -> TokenIdentity {
        TokenIdentity {
            subject: user.into(),
            login: "alice\r\n@example.com".into(),
            email: "alice@example.com".into(),
            machine: false,
            groups_claim: None,
            expires_at: u64::MAX,
            hot: TokenHot::default(),
        }
    }

    #[tokio::test]
    async fn an_invalidation_of_the_user_or_of_anyone_ends_a_tokens_link() {
        let cache = cache(Duration::from_secs(3600));
        cache.remember("00u1", vec![group("admins")]).await;
        let alice = token("00u1");
        let first = TokenHot::kept(&alice).groups(&cache, "00u1").await.unwrap();
        let linked = TokenHot::kept(&alice).linked(&cache).expect("linked");
        assert!(Arc::ptr_eq(&first, &linked));
        // Another user's invalidation: the link may be stale, the cache decides.
        cache.invalidate("00u2").await.unwrap();
        assert!(TokenHot::kept(&alice).linked(&cache).is_none());
        assert!(Arc::ptr_eq(
            &TokenHot::kept(&alice).groups(&cache, "00u1").await.unwrap(),
            &first
        ));
        assert!(
            TokenHot::kept(&alice).linked(&cache).is_some(),
            "linked again"
        );
        // The user's own: the new answer, never the linked one.
        cache.invalidate("00u1").await.unwrap();
        cache.remember("00u1", vec![group("staff")]).await;
        assert!(TokenHot::kept(&alice).linked(&cache).is_none());
        let now = TokenHot::kept(&alice).groups(&cache, "00u1").await.unwrap();
        assert_eq!(now.list, vec![group("staff")]);
    }

    #[tokio::test]
    async fn a_tokens_link_ends_at_the_answers_refresh_ahead_point() {
        let cache = cache(Duration::from_millis(400));
        cache.remember("00u1", vec![group("admins")]).await;
        let alice = token("00u1");
        TokenHot::kept(&alice).groups(&cache, "00u1").await.unwrap();
        assert!(TokenHot::kept(&alice).linked(&cache).is_some());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(TokenHot::kept(&alice).linked(&cache).is_none());
    }

    #[test]
    fn a_tokens_headers_are_rendered_once_and_a_copy_starts_empty() {
        let alice = token("00u1");
        let (login, email) = TokenHot::identity_headers(&alice);
        assert_eq!(login.as_bytes(), b"alice@example.com", "header-safe");
        assert_eq!(email.as_bytes(), b"alice@example.com");
        assert!(alice.hot.0.get().is_some());
        assert!(alice.clone().hot.0.get().is_none());
        assert_eq!(
            alice.clone(),
            alice,
            "the copies are no part of the identity"
        );
    }
}
