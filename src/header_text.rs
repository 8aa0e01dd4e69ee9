//! Header values as text, read the way `HeaderValue::to_str` reads them
//! (visible ASCII, spaces and tabs) but without its early exit, so that the
//! check runs on whole vectors: a bearer token is ~1 kB and is read on every
//! API client's check; and whether a text holds whitespace or control
//! characters, the same way. Also a header's text by name without building
//! a `HeaderName` per lookup (a name outside the standard ones is copied
//! into a new allocation each time): the names the checks read are
//! constants here. Owns only these reads and checks.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

/// The request headers the checks read by name; any other name is looked up
/// as before.
static NAMES: [HeaderName; 13] = [
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-original-method"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-method"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-uri"),
    HeaderName::from_static("host"),
    HeaderName::from_static("sec-fetch-mode"),
    HeaderName::from_static("x-requested-with"),
    HeaderName::from_static("upgrade"),
    HeaderName::from_static("accept"),
    HeaderName::from_static("authorization"),
    HeaderName::from_static("forwarded"),
];

/// The (first) value of header `name`, lowercase as the checks name them.
pub fn find<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h HeaderValue> {
    match NAMES.iter().find(|known| known.as_str() == name) {
        Some(known) => headers.get(known),
        None => headers.get(name),
    }
}

/// [`find`] as text: `None` when the header is missing or not [`visible_ascii`].
pub fn value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    find(headers, name).and_then(text)
}

/// `bytes` as text when every byte is visible ASCII, a space or a tab; the
/// same answer as `HeaderValue::to_str`.
pub fn visible_ascii(bytes: &[u8]) -> Option<&str> {
    // Folded without an early exit: it compiles to whole-vector compares.
    let outside = bytes.iter().fold(false, |outside, &b| {
        outside | ((b < b' ' && b != b'\t') | (b > b'~'))
    });
    if outside {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Whether `text` holds a whitespace or control character (`char::is_whitespace`,
/// `char::is_control`). ASCII text, as every header value read as text is, is
/// read byte by byte without an early exit; other text char by char.
pub fn has_space_or_control(text: &str) -> bool {
    if !text.is_ascii() {
        return text.chars().any(|c| c.is_control() || c.is_whitespace());
    }
    // In ASCII: controls are below 0x20 and 0x7f; whitespace is those of
    // 0x09-0x0d and the space.
    text.bytes()
        .fold(false, |found, b| found | ((b <= b' ') | (b == 0x7f)))
}

/// A header value as text: [`visible_ascii`] of its bytes.
pub fn text(value: &HeaderValue) -> Option<&str> {
    visible_ascii(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_answer_as_to_str_for_every_byte_in_every_position() {
        for byte in 0..=255u8 {
            for at in [0, 1, 31, 32, 33, 63, 64, 65, 700] {
                let mut bytes = vec![b'a'; 701];
                bytes[at] = byte;
                // HeaderValue refuses controls other than tab, and DEL: such
                // bytes are not text either.
                match HeaderValue::from_bytes(&bytes) {
                    Ok(value) => {
                        assert_eq!(text(&value), value.to_str().ok(), "byte {byte} at {at}")
                    }
                    Err(_) => assert_eq!(visible_ascii(&bytes), None, "byte {byte} at {at}"),
                }
            }
        }
    }

    #[test]
    fn a_value_is_found_by_a_known_or_any_other_name() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-original-url", "https://app.example.com/a"),
            ("x-forwarded-uri", "/b"),
            ("host", "app.example.com"),
            ("x-something-else", "c"),
            ("accept", "caf\u{e9}"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        assert_eq!(
            value(&headers, "x-original-url"),
            Some("https://app.example.com/a")
        );
        assert_eq!(value(&headers, "x-forwarded-uri"), Some("/b"));
        assert_eq!(value(&headers, "host"), Some("app.example.com"));
        assert_eq!(value(&headers, "x-something-else"), Some("c"));
        assert_eq!(value(&headers, "x-forwarded-host"), None);
        assert_eq!(value(&headers, "accept"), None, "not text");
        for known in &NAMES {
            assert_eq!(known.as_str(), known.as_str().to_ascii_lowercase());
        }
    }

    #[test]
    fn space_or_control_as_the_char_predicates_say_for_every_char_in_every_position() {
        let chars = (0u32..=0x3000)
            .filter_map(char::from_u32)
            .chain(['\u{feff}', '\u{10ffff}']);
        for c in chars {
            for at in [0, 1, 15, 16, 17, 40] {
                let mut text: String = "a".repeat(41);
                text.replace_range(at..at + 1, c.encode_utf8(&mut [0; 4]));
                let expected = text.chars().any(|c| c.is_control() || c.is_whitespace());
                assert_eq!(has_space_or_control(&text), expected, "{c:?} at {at}");
            }
        }
        assert!(!has_space_or_control(""));
    }

    #[test]
    fn empty_short_and_refused_values_read_as_to_str_reads_them() {
        for bytes in [&b""[..], b" ", b"\t", b"Bearer x", b"\xff", b"caf\xc3\xa9"] {
            let value = HeaderValue::from_bytes(bytes).unwrap();
            assert_eq!(text(&value), value.to_str().ok(), "{bytes:?}");
        }
        // Bytes a header value cannot hold are not text either.
        for bytes in [&b"\x7f"[..], b"a\x00", b"\r\n", b"\x0b"] {
            assert_eq!(visible_ascii(bytes), None, "{bytes:?}");
        }
    }
}
