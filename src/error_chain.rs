//! An error and its sources as one log line. Used wherever a cause is
//! logged; never sent to a client (see `error` for what clients see).

/// An error and its sources on one line, for logs.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
