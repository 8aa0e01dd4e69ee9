//! Logging: `LOG_LEVEL` (a level or a tracing filter such as
//! `info,forward_auth=debug`) and `LOG_FORMAT` (text or json). It only checks
//! the values; `telemetry` installs the subscriber.

use super::parse::{get, Problems};
use super::{LogFormat, RawConfig};

/// How the service logs.
pub(super) struct Log {
    pub(super) level: String,
    pub(super) format: LogFormat,
}

/// Reads and checks `LOG_LEVEL`, then `LOG_FORMAT`; a bad value falls back to
/// the default after recording a problem.
pub(super) fn check(raw: &RawConfig, p: &mut Problems) -> Log {
    let log_level = get(&raw.log_level).unwrap_or_else(|| "info".to_string());
    let lower = log_level.to_ascii_lowercase();
    let log_level = if matches!(
        lower.as_str(),
        "trace" | "debug" | "info" | "warn" | "error" | "off"
    ) {
        lower
    } else if log_level.contains('=') {
        log_level
    } else {
        p.push(format!(
            "LOG_LEVEL `{log_level}` is not a level: use trace, debug, info, warn or error, \
             or a filter such as info,forward_auth=debug"
        ));
        "info".to_string()
    };

    let log_format = match get(&raw.log_format)
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            p.push(format!("LOG_FORMAT `{other}` must be text or json"));
            LogFormat::Text
        }
    };

    Log {
        level: log_level,
        format: log_format,
    }
}
