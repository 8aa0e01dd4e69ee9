//! Processes, ports and directories for the harness: a free loopback port, a
//! started child ([`Running`]: its logs kept, killed and reaped on drop) and a
//! temporary directory removed on drop. It OWNS the clean-up; it must NOT know
//! which program runs or what a test checks.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A child that is killed and reaped when the test ends, pass or fail.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A started proxy: killed and reaped on drop, its directory removed.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) dir: TempDir,
    pub(crate) name: &'static str,
}

impl Running {
    /// Waits until the proxy accepts connections; panics with its log if it exits.
    pub(crate) fn wait_for(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not start:\n{}", self.name, self.logs());
    }

    /// Waits until a request reaches the service through the proxy (Traefik
    /// answers 404 until its file provider's routers are in).
    pub(crate) async fn wait_for_routes(&self, port: u16, https: bool) {
        let scheme = if https { "https" } else { "http" };
        let probe = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let url = format!("{scheme}://127.0.0.1:{port}/oauth2/userinfo");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(answer) = probe.get(&url).send().await {
                if answer.status() != StatusCode::NOT_FOUND {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} did not route to the service:\n{}",
                self.name,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.path(f)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master then stops its workers, which a SIGKILL
        // to the master would leave running.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{} logs:\n{}", self.name, self.logs());
        }
    }
}

pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "forward-auth-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
