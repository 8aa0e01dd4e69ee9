//! The real binary as a child process (for what only a separate process shows:
//! its resident memory), against a fake Okta, killed and reaped on drop. It
//! OWNS that process's start and end; it must NOT check what the service answers
//! beyond being ready.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::app::base_vars;
use crate::support::process::free_port;
use fake_okta::FakeOkta;

pub(crate) struct ServiceProcess {
    child: Child,
    pub(crate) base: String,
}

impl ServiceProcess {
    /// Starts `forward-auth` with the test variables plus `vars` and waits
    /// (generously: the machine may be loaded) until `/readyz` answers 200.
    pub(crate) async fn start(okta: &FakeOkta, vars: &[(&str, &str)]) -> ServiceProcess {
        let port = free_port();
        let mut env = base_vars(okta, port);
        for (k, v) in vars {
            env.retain(|(name, _)| name != k);
            env.push((k.to_string(), v.to_string()));
        }
        let child = Command::new(env!("CARGO_BIN_EXE_forward-auth"))
            .env_clear()
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let service = ServiceProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", service.base)).send().await {
                if r.status() == StatusCode::OK {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the service never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        service
    }

    /// The process's resident set size in bytes (Linux `/proc`).
    pub(crate) fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS in kB")
            * 1024
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
