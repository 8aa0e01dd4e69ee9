//! `forward-auth healthcheck`: the container probe, so the runtime image needs
//! no shell and no curl. It sends one plain `GET /healthz` to the port of
//! `ADDRESS` on loopback and succeeds only on a `200` status line.
//!
//! It reads `ADDRESS` and nothing else: a probe must not depend on secrets or on
//! the rest of the configuration being valid. Std only, blocking, with a short
//! timeout on every step; it never runs inside the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// The listen address the service uses when `ADDRESS` is unset.
pub const DEFAULT_ADDRESS: &str = "0.0.0.0:4180";

/// Limit for connecting, writing and reading, each.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The path probed: liveness, which answers 200 whenever the process serves.
const PATH: &str = "/healthz";

/// Runs the probe against the `ADDRESS` of this process's environment and
/// reports on stdout (healthy) or stderr (why not). Exit code 0 or 1, the two
/// that Docker's `HEALTHCHECK` understands.
pub fn main() -> ExitCode {
    let address = std::env::var("ADDRESS").ok();
    match check(address.as_deref()) {
        Ok(url) => {
            println!("forward-auth healthcheck: healthy ({url} answered 200)");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("forward-auth healthcheck: unhealthy: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Probes the service listening on `address` (`ADDRESS`; unset or blank means
/// the default). Returns the probed URL, or why the service is not healthy.
pub fn check(address: Option<&str>) -> Result<String, String> {
    let target = probe_target(address)?;
    let url = format!("http://{target}{PATH}");
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .collect();
    let mut last_error = format!("{target} resolves to no address");
    for addr in addrs {
        match probe(addr, &target) {
            Ok(status_line) => {
                return status_is_ok(&status_line)
                    .map(|()| url.clone())
                    .map_err(|e| format!("{url}: {e}"))
            }
            Err(e) => last_error = format!("{url}: {e}"),
        }
    }
    Err(last_error)
}

/// Where to send the probe (`host:port`): the port of the listen address, on
/// loopback when it listens on a wildcard (`0.0.0.0`, `::` or no host).
pub fn probe_target(address: Option<&str>) -> Result<String, String> {
    let address = match address.map(str::trim) {
        Some(a) if !a.is_empty() => a,
        _ => DEFAULT_ADDRESS,
    };
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("ADDRESS `{address}` is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("ADDRESS `{address}` has no valid port"))?;
    if port == 0 {
        return Err(format!("ADDRESS `{address}` has port 0: nothing to probe"));
    }
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "[::1]",
        other => other,
    };
    Ok(format!("{host}:{port}"))
}

/// Whether an HTTP status line (`HTTP/1.1 200 OK`) says 200.
pub fn status_is_ok(status_line: &str) -> Result<(), String> {
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(format!(
            "not an HTTP status line: {:?}",
            truncate(status_line)
        ));
    }
    if code == "200" {
        Ok(())
    } else {
        Err(format!("status {code} instead of 200"))
    }
}

/// One request; returns the response's status line.
fn probe(addr: SocketAddr, host: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let io = |e: std::io::Error| format!("{addr}: {e}");
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request = format!(
        "GET {PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: forward-auth-healthcheck\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    // The status line is all we need; read until its end, at most 1 KiB.
    let mut response = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !response.windows(2).any(|w| w == b"\r\n") && response.len() < 1024 {
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("no answer: {e}"))?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    if response.is_empty() {
        return Err("the connection closed without an answer".to_string());
    }
    let text = String::from_utf8_lossy(&response);
    Ok(text.split("\r\n").next().unwrap_or_default().to_string())
}

/// At most 80 characters of something the peer sent, for a message.
fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_or_missing_host_is_probed_on_loopback() {
        let cases = [
            (None, "127.0.0.1:4180"),
            (Some(""), "127.0.0.1:4180"),
            (Some("  "), "127.0.0.1:4180"),
            (Some("0.0.0.0:4180"), "127.0.0.1:4180"),
            (Some("0.0.0.0:8000"), "127.0.0.1:8000"),
            (Some(":9000"), "127.0.0.1:9000"),
            (Some("[::]:4180"), "[::1]:4180"),
            (Some("127.0.0.1:4181"), "127.0.0.1:4181"),
            (Some("[::1]:4180"), "[::1]:4180"),
            (Some("10.1.2.3:4180"), "10.1.2.3:4180"),
            (Some("localhost:4180"), "localhost:4180"),
        ];
        for (address, expected) in cases {
            assert_eq!(
                probe_target(address).as_deref(),
                Ok(expected),
                "ADDRESS {address:?}"
            );
        }
    }

    #[test]
    fn an_address_without_a_usable_port_is_refused_with_a_reason() {
        for address in [
            "4180",
            "0.0.0.0",
            "0.0.0.0:http",
            "0.0.0.0:70000",
            "0.0.0.0:0",
        ] {
            let err = probe_target(Some(address)).unwrap_err();
            assert!(err.contains(address), "{address}: {err}");
        }
    }

    #[test]
    fn only_a_200_status_line_is_healthy() {
        assert_eq!(status_is_ok("HTTP/1.1 200 OK"), Ok(()));
        assert_eq!(status_is_ok("HTTP/1.0 200"), Ok(()));
        for line in [
            "HTTP/1.1 503 Service Unavailable",
            "HTTP/1.1 204 No Content",
            "HTTP/1.1 2000 OK",
            "HTTP/1.1 OK",
            "200 OK",
            "SSH-2.0-OpenSSH_9.2",
            "",
        ] {
            assert!(status_is_ok(line).is_err(), "{line:?} must not pass");
        }
        assert_eq!(
            status_is_ok("HTTP/1.1 503 Service Unavailable").unwrap_err(),
            "status 503 instead of 200"
        );
    }
}
