//! One session's or API token's last signed identity ([`Memo`]), so that its
//! next checks on the same origin neither hash the identity nor read the
//! tokens' cache, and hand the header on as a shared value. Owns only that
//! copy and when it may be reused: for the same issuer, the same origin, the
//! very groups answer it names, and only while [`IdentityTokens`] would still
//! hand it out. Must NOT sign, nor be shared by two identities.
//!
//! [`IdentityTokens`]: super::IdentityTokens

use std::sync::{Arc, RwLock};

use super::{Signed, LIFETIME};
use crate::identity_headers::{HeaderText, UserGroups};

/// The last signed identity of one session or token; empty at first.
#[derive(Default)]
pub struct Memo(RwLock<Option<Memoized>>);

struct Memoized {
    issuer: Box<str>,
    origin: Box<str>,
    groups: Arc<UserGroups>,
    signed: Signed,
}

impl Memo {
    /// The kept JWT, if it was made for `issuer`, for an audience `origin`
    /// names (text that fully determines the audience, e.g. the checked URL
    /// up to its port), from this very groups answer (a new answer, even an
    /// equal one, is not trusted to be the same), and `now` is before the point
    /// where the tokens' cache signs afresh (half the lifetime).
    pub fn get(
        &self,
        issuer: &str,
        origin: &str,
        groups: &Arc<UserGroups>,
        now: u64,
    ) -> Option<HeaderText> {
        let kept = self.0.read().ok()?;
        let kept = kept.as_ref()?;
        let usable = now < kept.signed.issued_at + LIFETIME / 2
            && Arc::ptr_eq(&kept.groups, groups)
            && *kept.origin == *origin
            && *kept.issuer == *issuer;
        usable.then(|| kept.signed.jwt.clone())
    }

    /// Keeps `signed`, made for these, in place of the last one.
    pub fn keep(&self, issuer: &str, origin: &str, groups: &Arc<UserGroups>, signed: &Signed) {
        if let Ok(mut kept) = self.0.write() {
            *kept = Some(Memoized {
                issuer: issuer.into(),
                origin: origin.into(),
                groups: groups.clone(),
                signed: signed.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Group;

    fn groups(names: &[&str]) -> Arc<UserGroups> {
        Arc::new(UserGroups::new(
            names
                .iter()
                .map(|n| Group {
                    id: format!("00g{n}"),
                    name: n.to_string(),
                })
                .collect(),
        ))
    }

    fn signed(jwt: &str, issued_at: u64) -> Signed {
        Signed {
            jwt: HeaderText::new(jwt),
            issued_at,
        }
    }

    const ISSUER: &str = "https://auth.example.com";
    const APP: &str = "https://app.example.com";

    #[test]
    fn a_kept_identity_serves_only_its_issuer_origin_and_groups_answer() {
        let memo = Memo::default();
        let admins = groups(&["admins"]);
        assert!(memo.get(ISSUER, APP, &admins, 100).is_none(), "empty");
        memo.keep(ISSUER, APP, &admins, &signed("a.b.c", 100));
        assert_eq!(
            memo.get(ISSUER, APP, &admins, 100).unwrap().as_bytes(),
            b"a.b.c"
        );
        assert!(memo
            .get(ISSUER, "https://wiki.example.com", &admins, 100)
            .is_none());
        assert!(memo
            .get(ISSUER, "https://app.example.com:8443", &admins, 100)
            .is_none());
        assert!(memo
            .get(ISSUER, "http://app.example.com", &admins, 100)
            .is_none());
        assert!(memo
            .get("https://auth.other.org", APP, &admins, 100)
            .is_none());
        // A new answer of the groups cache, even with the same names.
        assert!(memo.get(ISSUER, APP, &groups(&["admins"]), 100).is_none());
        assert!(memo.get(ISSUER, APP, &groups(&["staff"]), 100).is_none());
    }

    #[test]
    fn a_kept_identity_serves_until_the_cache_would_sign_afresh() {
        let memo = Memo::default();
        let admins = groups(&["admins"]);
        memo.keep(ISSUER, APP, &admins, &signed("a.b.c", 1_000));
        let renewal = 1_000 + LIFETIME / 2;
        assert!(memo.get(ISSUER, APP, &admins, renewal - 1).is_some());
        assert!(memo.get(ISSUER, APP, &admins, renewal).is_none());
        memo.keep(ISSUER, APP, &admins, &signed("d.e.f", renewal));
        assert_eq!(
            memo.get(ISSUER, APP, &admins, renewal).unwrap().as_bytes(),
            b"d.e.f"
        );
    }
}
