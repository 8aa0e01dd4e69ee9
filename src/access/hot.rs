//! What a stored session keeps for its next checks ([`SessionHot`], the
//! session's last field): the cookie tag its first check verified, its
//! identity header values rendered once, and a link to its user's groups
//! answer, and its last signed identity (with `IDENTITY_JWT_KEY`), so that a
//! warm check computes no MAC, reads no other cache and builds no text; the
//! part an API token keeps too ([`Kept`]). Owns only these copies; the groups
//! cache stays the source of truth and says whether a link may still be used
//! ([`GroupsCache::linked`]). Must NOT decide access or outlive the session
//! it belongs to: a copy of a session (a refresh) starts empty.

use std::sync::{Arc, OnceLock, RwLock};

use once_cell::race::OnceBox;

use crate::groups::{GroupsCache, GroupsError, GroupsLink, UserGroups};
use crate::identity_headers::HeaderText;
use crate::identity_jwt::Memo;
use crate::session::{Session, TagText};

/// The copies a session keeps for its checks; nothing until its first check.
/// One pointer (a million idle sessions each hold one): two first checks at
/// once may both render, and one copy is kept for both — making it has no
/// effect beyond itself.
#[derive(Default)]
pub struct SessionHot(OnceBox<Hot>);

struct Hot {
    kept: Kept,
    /// A session cookie tag verified (HMAC under a configured key) for this
    /// session's id: a cookie bearing the same id and tag is the same value.
    tag: OnceLock<TagText>,
}

/// What a session and an API token both keep (`super::TokenHot` too): the
/// identity header values rendered once, a link to the user's groups answer
/// and the last signed identity.
pub(super) struct Kept {
    login: HeaderText,
    email: HeaderText,
    groups: RwLock<Option<GroupsLink>>,
    /// Boxed, as only `IDENTITY_JWT_KEY` uses it.
    signed: OnceLock<Box<Memo>>,
}

impl Kept {
    pub(super) fn new(login: &str, email: &str) -> Kept {
        Kept {
            login: HeaderText::new(login),
            email: HeaderText::new(email),
            groups: RwLock::new(None),
            signed: OnceLock::new(),
        }
    }

    /// The `X-Auth-Request-User` and `-Email` values.
    pub(super) fn identity_headers(&self) -> (HeaderText, HeaderText) {
        (self.login.clone(), self.email.clone())
    }

    /// The user's groups through the link, when the cache says the link may
    /// still be used.
    pub(super) fn linked(&self, cache: &GroupsCache) -> Option<Arc<UserGroups>> {
        cache.linked(self.groups.read().ok()?.as_ref()?)
    }

    /// The groups of `sub`: through the link, else from the cache, linking
    /// again when the cache hands out a link.
    pub(super) async fn groups(
        &self,
        cache: &GroupsCache,
        sub: &str,
    ) -> Result<Arc<UserGroups>, GroupsError> {
        if let Some(linked) = self.linked(cache) {
            return Ok(linked);
        }
        // Boxed: moka's lookup is the rare path once linked.
        let (found, link) = Box::pin(cache.groups_and_link(sub)).await?;
        if let (Some(link), Ok(mut kept)) = (link, self.groups.write()) {
            *kept = Some(link);
        }
        Ok(found)
    }

    /// The last signed identity, reused while it holds.
    pub(super) fn signed_identity(&self) -> &Memo {
        self.signed.get_or_init(Box::default)
    }
}

impl SessionHot {
    fn of(session: &Session) -> &Hot {
        session.hot.0.get_or_init(|| {
            Box::new(Hot {
                kept: Kept::new(session.identity().login(), session.identity().email()),
                tag: OnceLock::new(),
            })
        })
    }

    /// What the session keeps for its checks (rendered at the first).
    pub(super) fn kept(session: &Session) -> &Kept {
        &SessionHot::of(session).kept
    }

    /// The session's last signed identity, reused while it holds.
    pub fn signed_identity(session: &Session) -> &Memo {
        SessionHot::kept(session).signed_identity()
    }

    /// Whether `tag` equals the cookie tag a check of this session verified
    /// (in constant time). Keys change only with a restart, which empties
    /// every `SessionHot`, so a tag remembered here still verifies.
    pub(super) fn verified_tag(session: &Session, tag: &TagText) -> bool {
        session
            .hot
            .0
            .get()
            .and_then(|hot| hot.tag.get())
            .is_some_and(|known| known.same_as(tag))
    }

    /// Remembers a tag [`CookieCodec::verifies`](crate::session::CookieCodec::verifies)
    /// accepted for this session's id (the first one: an old key's cookie
    /// keeps taking the MAC path).
    pub(super) fn remember_tag(session: &Session, tag: TagText) {
        let _ = SessionHot::of(session).tag.set(tag);
    }

    /// The session's `X-Auth-Request-User` and `-Email` values.
    pub fn identity_headers(session: &Session) -> (HeaderText, HeaderText) {
        SessionHot::kept(session).identity_headers()
    }
}

/// A copy of a session (a refresh's) is another session: it renders and
/// links afresh.
impl Clone for SessionHot {
    fn clone(&self) -> SessionHot {
        SessionHot::default()
    }
}

impl std::fmt::Debug for SessionHot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionHot")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_of_a_session_renders_and_links_afresh() {
        let session: Session = serde_json::from_str(
            r#"{"sub":"00u1","login":"a\r\nb","email":"e@x","name":"","groups_claim":null,
                "sid":null,"created_at":0,"expires_at":0,"tokens_expire_at":0,
                "refresh_not_before":0,"refresh_token":null,"id_token":null}"#,
        )
        .unwrap();
        let (login, email) = SessionHot::identity_headers(&session);
        assert_eq!(login.as_bytes(), b"ab", "header-safe");
        assert_eq!(email.as_bytes(), b"e@x");
        assert!(session.hot.0.get().is_some());
        assert!(Session::clone(&session).hot.0.get().is_none());
    }
}
