//! A real `redis-server` for the tests of `SESSION_STORE=redis://…`: a child on
//! a free loopback port, optionally persistent, that can be stopped and
//! restarted (an outage) and is stopped and reaped on drop. It OWNS that
//! process; it must NOT test the service (the feature files do).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::process::{free_port, TempDir};

/// A `redis-server` child on 127.0.0.1, stopped and reaped on drop.
pub(crate) struct RedisServer {
    child: Option<Child>,
    port: u16,
    persistent: bool,
    dir: TempDir,
}

impl RedisServer {
    /// Starts one, or `None` (loudly) when `redis-server` is not installed;
    /// with `CI=true` a missing binary fails the test instead. `persistent`
    /// keeps data across [`restart`](Self::restart) (append-only file in a
    /// temporary directory).
    pub(crate) fn start(persistent: bool) -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            let message = "redis-server not installed — apt-get install redis-server";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message} (CI=true: a missing Redis is a failure)");
            }
            eprintln!("\n!!!!! SKIPPED: {message}; the Redis store was NOT tested !!!!!\n");
            return None;
        }
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            persistent,
            dir: TempDir::new("redis"),
        };
        server.run();
        Some(server)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn run(&mut self) {
        let dir = self.dir.path("");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if self.persistent { "yes" } else { "no" }])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Stops the server (SIGTERM: it writes its append-only file first).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Sends one inline command (e.g. `REPLICAOF NO ONE`) to the server on
    /// `port`; its first reply line.
    pub(crate) fn command_on(port: u16, line: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).ok()?;
            reply.push(byte[0]);
        }
        Some(String::from_utf8_lossy(&reply).trim_end().to_string())
    }

    /// A numeric field of `INFO` (e.g. `used_memory`), read over a plain socket.
    pub(crate) fn info_number(&self, field: &str) -> Option<u64> {
        Self::info_number_on(self.port, field)
    }

    /// [`info_number`](Self::info_number) on the server at `port`; `field` may
    /// also name one counter of a `commandstats` line (`cmdstat_eval.failed_calls`).
    pub(crate) fn info_number_on(port: u16, field: &str) -> Option<u64> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(b"INFO everything\r\n").ok()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        // A bulk string: `$<length>\r\n<text>\r\n`.
        loop {
            let n = stream.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&buf[..n]);
            let header_end = reply.windows(2).position(|w| w == b"\r\n")?;
            let length: usize = std::str::from_utf8(reply.get(1..header_end)?)
                .ok()?
                .parse()
                .ok()?;
            if reply.len() >= header_end + 2 + length {
                let text = String::from_utf8_lossy(&reply[header_end + 2..header_end + 2 + length]);
                let (line, counter) = field.split_once('.').unwrap_or((field, ""));
                let prefix = format!("{line}:");
                let value = text.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
                if counter.is_empty() {
                    return value.and_then(|v| v.trim().parse().ok());
                }
                // An absent line (the command never ran) counts 0.
                return Some(
                    value
                        .and_then(|v| {
                            v.split(',')
                                .find_map(|kv| kv.strip_prefix(&format!("{counter}=")))
                        })
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(0),
                );
            }
        }
    }

    /// Starts it again on the same port and directory.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
