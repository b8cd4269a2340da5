//! A private `redis-server` for the tests that stop or freeze one.

/// A `redis-server` of the test's own on a free loopback port, killed when dropped.
pub struct PrivateRedis {
    child: std::process::Child,
    port: u16,
}

impl PrivateRedis {
    /// `None` (after a loud notice) without the binary outside CI.
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        match std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(child) => Some(Self { child, port }),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "redis-server cannot start ({e}) and CI is set"
                );
                eprintln!("\n!!! SKIPPED: redis-server cannot start ({e}).\n");
                None
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends the server a signal: `STOP` freezes it (connections stay open, nothing
    /// answers), `CONT` thaws it.
    pub fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
