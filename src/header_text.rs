//! Header values as text, read the way `HeaderValue::to_str` reads them
//! (visible ASCII, spaces and tabs) but without its early exit, so that the
//! check runs on whole vectors: a bearer token is ~1 kB and is read on every
//! API client's check. Owns only that check.

use actix_web::http::header::HeaderValue;

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
                // HeaderValue refuses only CR, LF and NUL; anything else is a value.
                let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                    continue;
                };
                assert_eq!(text(&value), value.to_str().ok(), "byte {byte} at {at}");
            }
        }
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
