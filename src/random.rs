//! Randomness from the operating system's CSPRNG: raw bytes and URL-safe
//! tokens (state, nonce, browser binding, session ids). Nothing here is
//! seeded or predictable; there is no fallback generator.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Fills a buffer from the operating system's CSPRNG.
#[allow(
    clippy::expect_used,
    reason = "without the OS RNG no secret can be made; there is no safe fallback"
)]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing means the machine cannot do cryptography at all; there is
    // no safe fallback, so stopping is the only honest answer.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// A random token as URL-safe base64, for state, nonce and browser binding.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<24>())
}
