//! Who signed in: the [`Identity`] a verified sign-in names (Okta user id,
//! login, email, name, the ID token's groups claim and the IdP session id),
//! shared by the sign-in result and the stored session. It owns the compact
//! representation of those texts (one allocation for all of them) behind
//! accessor methods, and can keep one opaque secret of its owner in the same
//! allocation (a session's refresh token), which it never shows or compares;
//! it must NOT know what that secret is, expiry, storage formats or where
//! sessions live.

/// `text`'s first byte: the email is the login, stored once.
const EMAIL_IS_LOGIN: u8 = 1;
/// `text`'s first byte: there is an IdP session id (it may be empty).
const HAS_SID: u8 = 2;
/// `text`'s first byte: the owner's secret follows the sid (it may be empty).
const HAS_SECRET: u8 = 4;

/// The user a sign-in verified. Read it through the accessors: a million
/// sessions hold one each, so its representation is compact (see the fields)
/// and free to change. A clone carries its owner's secret too; `Debug` and
/// `==` never look at it.
#[derive(Clone)]
pub struct Identity {
    /// A flags byte, then sub, login, email (left out when it equals the
    /// login), name, sid and the owner's secret, end to end: one allocation
    /// for all the texts.
    text: Box<str>,
    /// Where sub, login, email, name and sid end in `text` (the secret is the
    /// rest), when the texts take less than 64 KiB: every identity Okta makes.
    /// Two bytes an offset; longer texts keep their offsets in `rare` instead,
    /// whole — never cut to fit.
    ends: [u16; ENDS],
    /// What few identities have, behind one pointer.
    rare: Option<Box<Rare>>,
}

/// The parts of an [`Identity`] most do not have.
#[derive(Clone, Default, PartialEq, Eq)]
struct Rare {
    /// Groups from the ID token's `groups` claim (`IDP_PROVIDER=oidc`).
    groups_claim: Option<Vec<String>>,
    /// Where the texts end when that is past `u16::MAX` (`ends` is unused).
    long_ends: Option<[usize; ENDS]>,
}

/// How many ends an identity keeps: sub, login, email, name and sid.
const ENDS: usize = 5;

/// An identity's texts, borrowed, to build one from.
struct Parts<'a> {
    sub: &'a str,
    login: &'a str,
    email: &'a str,
    name: &'a str,
    sid: Option<&'a str>,
    secret: Option<&'a str>,
}

impl Identity {
    /// An identity without groups claim and IdP session id (see
    /// [`with_groups_claim`](Self::with_groups_claim), [`with_sid`](Self::with_sid)).
    pub fn new(sub: String, login: String, email: String, name: String) -> Identity {
        let parts = Parts {
            sub: &sub,
            login: &login,
            email: &email,
            name: &name,
            sid: None,
            secret: None,
        };
        Identity::build(&parts, None)
    }

    fn build(parts: &Parts<'_>, groups_claim: Option<Vec<String>>) -> Identity {
        let email_is_login = parts.email == parts.login;
        let stored_email = if email_is_login { "" } else { parts.email };
        let flags = if email_is_login { EMAIL_IS_LOGIN } else { 0 }
            | if parts.sid.is_some() { HAS_SID } else { 0 }
            | if parts.secret.is_some() {
                HAS_SECRET
            } else {
                0
            };
        let texts = [
            parts.sub,
            parts.login,
            stored_email,
            parts.name,
            parts.sid.unwrap_or(""),
        ];
        let secret = parts.secret.unwrap_or("");
        let mut text =
            String::with_capacity(1 + texts.iter().map(|t| t.len()).sum::<usize>() + secret.len());
        text.push(char::from(b'0' + flags));
        let mut ends = [0usize; ENDS];
        for (end, part) in ends.iter_mut().zip(texts) {
            text.push_str(part);
            *end = text.len();
        }
        text.push_str(secret);
        let mut identity = Identity {
            text: text.into_boxed_str(),
            ends: [0; ENDS],
            rare: None,
        };
        match ends.map(u16::try_from) {
            [Ok(a), Ok(b), Ok(c), Ok(d), Ok(e)] => identity.ends = [a, b, c, d, e],
            _ => identity.rare_mut().long_ends = Some(ends),
        }
        identity.set_groups_claim(groups_claim);
        identity
    }

    /// This identity's texts with another sid and secret, and `groups_claim`.
    fn rebuilt(
        &self,
        sid: Option<&str>,
        secret: Option<&str>,
        groups_claim: Option<Vec<String>>,
    ) -> Identity {
        let parts = Parts {
            sub: self.sub(),
            login: self.login(),
            email: self.email(),
            name: self.name(),
            sid,
            secret,
        };
        Identity::build(&parts, groups_claim)
    }

    /// The same identity with the ID token's `groups` claim.
    pub fn with_groups_claim(mut self, groups_claim: Option<Vec<String>>) -> Identity {
        self.set_groups_claim(groups_claim);
        self
    }

    /// The same identity with the IdP session id.
    pub fn with_sid(mut self, sid: Option<String>) -> Identity {
        let groups_claim = self.rare.as_mut().and_then(|r| r.groups_claim.take());
        self.rebuilt(sid.as_deref(), self.secret(), groups_claim)
    }

    /// The same identity keeping `secret` for its owner in its texts'
    /// allocation (instead of any it kept): read back only through
    /// [`secret`](Self::secret), never shown or compared.
    pub(crate) fn with_secret(mut self, secret: Option<&str>) -> Identity {
        self.set_secret(secret);
        self
    }

    /// Keeps `secret` instead of the one kept (see [`with_secret`](Self::with_secret)).
    pub(crate) fn set_secret(&mut self, secret: Option<&str>) {
        if secret.is_none() && self.secret().is_none() {
            return;
        }
        let groups_claim = self.rare.as_mut().and_then(|r| r.groups_claim.take());
        *self = self.rebuilt(self.sid(), secret, groups_claim);
    }

    /// Replaces the groups claim (a refreshed ID token carries a newer one).
    pub fn set_groups_claim(&mut self, groups_claim: Option<Vec<String>>) {
        if groups_claim.is_some() || self.rare.is_some() {
            self.rare_mut().groups_claim = groups_claim;
        }
        if self.rare.as_deref() == Some(&Rare::default()) {
            self.rare = None;
        }
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn flags(&self) -> u8 {
        self.text.as_bytes().first().map_or(0, |b| b - b'0')
    }

    /// Where the `i`th text (sub, login, email, name, sid) ends.
    fn end(&self, i: usize) -> usize {
        match self.rare.as_ref().and_then(|r| r.long_ends) {
            Some(long) => long.get(i).copied().unwrap_or(0),
            None => self.ends.get(i).map_or(0, |&end| usize::from(end)),
        }
    }

    /// The text between two offsets (empty if they do not fit, which
    /// [`build`](Self::build) never makes).
    fn part(&self, start: usize, end: usize) -> &str {
        self.text.get(start..end).unwrap_or("")
    }

    /// Okta user id (`00u…`), the ID token's `sub`.
    pub fn sub(&self) -> &str {
        self.part(1, self.end(0))
    }

    /// Okta login (`preferred_username`), falling back to the email.
    pub fn login(&self) -> &str {
        self.part(self.end(0), self.end(1))
    }

    pub fn email(&self) -> &str {
        if self.flags() & EMAIL_IS_LOGIN != 0 {
            self.login()
        } else {
            self.part(self.end(1), self.end(2))
        }
    }

    pub fn name(&self) -> &str {
        self.part(self.end(2), self.end(3))
    }

    /// Groups from the ID token's `groups` claim (`IDP_PROVIDER=oidc`).
    pub fn groups_claim(&self) -> Option<&[String]> {
        self.rare.as_ref()?.groups_claim.as_deref()
    }

    /// The IdP's session id (`sid`), for back-channel logout.
    pub fn sid(&self) -> Option<&str> {
        (self.flags() & HAS_SID != 0).then(|| self.part(self.end(3), self.end(4)))
    }

    /// The secret kept by [`with_secret`](Self::with_secret).
    pub(crate) fn secret(&self) -> Option<&str> {
        let start = self.end(4);
        (self.flags() & HAS_SECRET != 0).then(|| self.text.get(start..).unwrap_or(""))
    }
}

/// The same person: every text and the groups claim, not the owner's secret.
impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        self.sub() == other.sub()
            && self.login() == other.login()
            && self.email() == other.email()
            && self.name() == other.name()
            && self.sid() == other.sid()
            && self.groups_claim() == other.groups_claim()
    }
}

impl Eq for Identity {}

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
        // Text pointer and length, five two-byte ends, one pointer: 34 B, padded.
        assert!(std::mem::size_of::<Identity>() <= 40);
    }

    /// Offsets are two bytes for texts under 64 KiB; longer ones (no IdP
    /// sends them, but nothing refuses them either) are kept whole, never cut.
    #[test]
    fn texts_of_64_kib_and_more_read_back_whole() {
        // The sid ends at 13 + the name's length: 65,535 is the last short offset.
        let cases = [(1, 0), (1, 65_522), (1, 65_523), (70_000, 5), (3, 200_000)];
        for (login_len, name_len) in cases {
            let (login, name) = ("l".repeat(login_len), "n".repeat(name_len));
            let mut identity =
                Identity::new("00u1".into(), login.clone(), "e".into(), name.clone())
                    .with_groups_claim(Some(vec!["g".into()]))
                    .with_sid(Some("idp-Ü".into()))
                    .with_secret(Some("rt-1"));
            identity.set_groups_claim(None);
            assert_eq!(identity.sub(), "00u1");
            assert_eq!(identity.login(), login);
            assert_eq!(identity.email(), "e");
            assert_eq!(identity.name(), name, "{name_len}");
            assert_eq!(identity.sid(), Some("idp-Ü"));
            assert_eq!(identity.groups_claim(), None);
            assert_eq!(identity.secret(), Some("rt-1"));
            // The sid ends last, 6 bytes after the name.
            let short = 1 + 4 + login_len + 1 + name_len + 6 <= 65_535;
            assert_eq!(identity.rare.is_none(), short, "{login_len} {name_len}");
        }
    }

    #[test]
    fn the_owners_secret_shares_the_allocation_reads_back_and_survives_a_new_sid() {
        let cases = [
            ("00u1", "al", "a@example.com", "Al Ü", Some("idp-1")),
            ("00u2", "b@example.com", "b@example.com", "", None),
            ("", "", "", "", Some("")),
        ];
        for (sub, login, email, name, sid) in cases {
            for secret in [Some("rt-Ü-1"), Some(""), None] {
                let identity = Identity::new(sub.into(), login.into(), email.into(), name.into())
                    .with_sid(sid.map(str::to_string))
                    .with_secret(secret)
                    .with_groups_claim(Some(vec!["g".into()]));
                assert_eq!(identity.secret(), secret);
                assert_eq!(identity.sid(), sid);
                let texts = (identity.sub(), identity.login(), identity.email());
                assert_eq!(texts, (sub, login, email));
                assert_eq!(identity.name(), name);
                assert!(identity.text.ends_with(secret.unwrap_or("")));
                let other_sid = identity.clone().with_sid(Some("idp-2".into()));
                assert_eq!(other_sid.secret(), secret, "a new sid keeps the secret");
                assert_eq!(other_sid.groups_claim(), Some(&["g".to_string()][..]));
                let replaced = identity.clone().with_secret(Some("rt-2"));
                assert_eq!((replaced.secret(), replaced.sid()), (Some("rt-2"), sid));
                let dropped = identity.with_secret(None);
                assert_eq!((dropped.secret(), dropped.sid()), (None, sid));
                assert_eq!(dropped.name(), name);
            }
        }
    }

    #[test]
    fn the_owners_secret_is_never_shown_nor_compared() {
        let plain = Identity::new("00u1".into(), "a".into(), "a".into(), "A".into());
        let keeping = plain.clone().with_secret(Some("rt-secret-value"));
        assert!(!format!("{keeping:?}").contains("secret-value"));
        assert_eq!(keeping, plain, "the same person, whatever the owner keeps");
        assert_ne!(keeping, plain.clone().with_sid(Some("s".into())));
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
