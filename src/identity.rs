//! Who signed in: the [`Identity`] a verified sign-in names (Okta user id,
//! login, email, name, the ID token's groups claim and the IdP session id),
//! shared by the sign-in result and the stored session. It owns the compact
//! representation of those texts (one allocation for all of them) behind
//! accessor methods; it must NOT know tokens, expiry, storage formats or
//! where sessions live.

/// `text`'s first byte: the email is the login, stored once.
const EMAIL_IS_LOGIN: u8 = 1;
/// `text`'s first byte: there is an IdP session id (it may be empty).
const HAS_SID: u8 = 2;

/// The user a sign-in verified. Read it through the accessors: a million
/// sessions hold one each, so its representation is compact (see the fields)
/// and free to change.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// A flags byte, then sub, login, email (left out when it equals the
    /// login), name and sid, end to end: one allocation for all the texts.
    text: Box<str>,
    /// Where sub, login, email and name end in `text`; the sid is the rest.
    ends: [u32; 4],
    /// Groups from the ID token's `groups` claim (`IDP_PROVIDER=oidc`); rare,
    /// so one pointer when absent.
    #[allow(
        clippy::box_collection,
        reason = "one pointer per session instead of three words for a rarely present list"
    )]
    groups_claim: Option<Box<Vec<String>>>,
}

impl Identity {
    /// An identity without groups claim and IdP session id (see
    /// [`with_groups_claim`](Self::with_groups_claim), [`with_sid`](Self::with_sid)).
    pub fn new(sub: String, login: String, email: String, name: String) -> Identity {
        Identity::build(&sub, &login, &email, &name, None, None)
    }

    #[allow(
        clippy::box_collection,
        reason = "the field's own type, passed through"
    )]
    fn build(
        sub: &str,
        login: &str,
        email: &str,
        name: &str,
        sid: Option<&str>,
        groups_claim: Option<Box<Vec<String>>>,
    ) -> Identity {
        let email_is_login = email == login;
        let stored_email = if email_is_login { "" } else { email };
        let flags = if email_is_login { EMAIL_IS_LOGIN } else { 0 }
            | if sid.is_some() { HAS_SID } else { 0 };
        let sid = sid.unwrap_or("");
        let mut text = String::with_capacity(
            1 + sub.len() + login.len() + stored_email.len() + name.len() + sid.len(),
        );
        text.push(char::from(b'0' + flags));
        let mut ends = [0u32; 4];
        for (end, part) in ends.iter_mut().zip([sub, login, stored_email, name]) {
            text.push_str(part);
            *end = offset(text.len());
        }
        text.push_str(sid);
        Identity {
            text: text.into_boxed_str(),
            ends,
            groups_claim,
        }
    }

    /// The same identity with the ID token's `groups` claim.
    pub fn with_groups_claim(mut self, groups_claim: Option<Vec<String>>) -> Identity {
        self.set_groups_claim(groups_claim);
        self
    }

    /// The same identity with the IdP session id.
    pub fn with_sid(mut self, sid: Option<String>) -> Identity {
        let groups_claim = self.groups_claim.take();
        Identity::build(
            self.sub(),
            self.login(),
            self.email(),
            self.name(),
            sid.as_deref(),
            groups_claim,
        )
    }

    /// Replaces the groups claim (a refreshed ID token carries a newer one).
    pub fn set_groups_claim(&mut self, groups_claim: Option<Vec<String>>) {
        self.groups_claim = groups_claim.map(Box::new);
    }

    fn flags(&self) -> u8 {
        self.text.as_bytes().first().map_or(0, |b| b - b'0')
    }

    /// The text between two offsets (empty if they do not fit, which
    /// [`build`](Self::build) never makes).
    fn part(&self, start: u32, end: u32) -> &str {
        self.text.get(start as usize..end as usize).unwrap_or("")
    }

    /// Okta user id (`00u…`), the ID token's `sub`.
    pub fn sub(&self) -> &str {
        self.part(1, self.ends[0])
    }

    /// Okta login (`preferred_username`), falling back to the email.
    pub fn login(&self) -> &str {
        self.part(self.ends[0], self.ends[1])
    }

    pub fn email(&self) -> &str {
        if self.flags() & EMAIL_IS_LOGIN != 0 {
            self.login()
        } else {
            self.part(self.ends[1], self.ends[2])
        }
    }

    pub fn name(&self) -> &str {
        self.part(self.ends[2], self.ends[3])
    }

    /// Groups from the ID token's `groups` claim (`IDP_PROVIDER=oidc`).
    pub fn groups_claim(&self) -> Option<&[String]> {
        self.groups_claim.as_deref().map(Vec::as_slice)
    }

    /// The IdP's session id (`sid`), for back-channel logout.
    pub fn sid(&self) -> Option<&str> {
        let start = self.ends[3] as usize;
        (self.flags() & HAS_SID != 0).then(|| self.text.get(start..).unwrap_or(""))
    }
}

/// A text offset as stored. An identity's texts come from one ID token,
/// which the HTTP client holds in memory: far below 4 GiB.
fn offset(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("sub", &self.sub())
            .field("login", &self.login())
            .field("email", &self.email())
            .field("name", &self.name())
            .field("groups_claim", &self.groups_claim())
            .field("sid", &self.sid())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_reads_back_as_given() {
        let cases = [
            ("00u1", "al", "a@example.com", "Al Ü", Some("idp-1")),
            ("00u2", "b@example.com", "b@example.com", "", None),
            ("", "", "", "", Some("")),
            ("00u3", "c", "", "C", None),
            ("00u4", "", "d@example.com", "D", Some("s")),
        ];
        for (sub, login, email, name, sid) in cases {
            let identity = Identity::new(sub.into(), login.into(), email.into(), name.into())
                .with_groups_claim(Some(vec!["g".into()]))
                .with_sid(sid.map(str::to_string));
            assert_eq!(identity.sub(), sub);
            assert_eq!(identity.login(), login);
            assert_eq!(identity.email(), email);
            assert_eq!(identity.name(), name);
            assert_eq!(identity.sid(), sid);
            assert_eq!(identity.groups_claim(), Some(&["g".to_string()][..]));
        }
    }

    #[test]
    fn the_email_is_stored_once_when_it_is_the_login_and_all_texts_in_one_allocation() {
        let same = Identity::new("00u1".into(), "a@x.io".into(), "a@x.io".into(), "A".into());
        assert_eq!(same.text.len(), 1 + 4 + 6 + 1);
        assert_eq!(same.email(), "a@x.io");
        assert!(std::mem::size_of::<Identity>() <= 40);
    }

    #[test]
    fn the_groups_claim_is_replaced_or_cleared() {
        let mut identity = Identity::new("u".into(), "l".into(), "e".into(), "n".into());
        assert_eq!(identity.groups_claim(), None);
        identity.set_groups_claim(Some(vec!["a".into(), "b".into()]));
        assert_eq!(identity.groups_claim().map(<[String]>::len), Some(2));
        identity.set_groups_claim(None);
        assert_eq!(identity.groups_claim(), None);
    }
}
