//! ecm as a child process: spawned as `ecm run` against a kubeconfig with
//! client limits and leader election off, its readiness probe polled, its
//! CPU time and memory read from `/proc`, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// A running `ecm run`.
pub struct Ecm {
    child: Child,
    probes: u16,
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, else 100).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Time on CPU of all live threads of `pid` in seconds, from the first field
/// of `/proc/<pid>/task/<tid>/schedstat` (nanoseconds); `None` where the
/// kernel has no schedstat (`CONFIG_SCHED_INFO` off).
fn scheduled_secs(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut nanos: u64 = 0;
    for task in tasks.flatten() {
        // A thread may exit between the listing and the read: skip it.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        nanos += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(nanos as f64 / 1e9)
}

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Memory of a process, from `/proc/<pid>/status`, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set now (`VmRSS`).
    pub rss: u64,
    /// Peak resident set (`VmHWM`).
    pub hwm: u64,
}

impl Ecm {
    /// Spawns `ecm run --kubeconfig <kubeconfig>`, all controllers, no client
    /// limits, no leader election, probes on a free loopback port, metrics
    /// off; its output goes to `log`.
    pub fn spawn(binary: &Path, kubeconfig: &Path, log: &Path) -> Self {
        let probes = free_port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(binary)
            .arg("run")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "--kube-api-qps",
                "0",
                "--kube-api-burst",
                "0",
                "--leader-elect",
                "false",
            ])
            .args(["--health-probe-bind-address", &format!("127.0.0.1:{probes}")])
            .args(["--metrics-bind-address", "0", "--startup-timeout", "60s"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Self { child, probes }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds used so far (user + system). The scheduler's own count
    /// in nanoseconds (`/proc/<pid>/task/*/schedstat`, summed over the
    /// threads) where the kernel has it: a short phase such as the 300 × 10
    /// cold start is only 8–12 ticks of `/proc/<pid>/stat`'s 10 ms clock, so
    /// one tick moved a ratio by 1–2×. `/proc/<pid>/stat` also counts
    /// threads that have exited, so the larger of the two is taken.
    pub fn cpu_secs(&self, ticks: f64) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // The command name may hold spaces; the fields after it do not.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state is field 3 of the man page, utime 14, stime 15.
        let utime: f64 = fields[11].parse().unwrap();
        let stime: f64 = fields[12].parse().unwrap();
        let ticked = (utime + stime) / ticks;
        scheduled_secs(self.pid()).map_or(ticked, |exact| exact.max(ticked))
    }

    /// Resident and peak resident memory.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        Memory {
            rss: kib("VmRSS:"),
            hwm: kib("VmHWM:"),
        }
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.probes)).await else {
            return false;
        };
        let request = "GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if stream.write_all(request.as_bytes()).await.is_err() {
            return false;
        }
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200")
    }

    /// Waits until `/readyz` answers 200; the instant it did.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            if self.ready().await {
                return Instant::now();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ecm exited before it was ready: {status}");
            }
            assert!(Instant::now() < deadline, "ecm not ready after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The ecm binary: `--ecm`/`ECM_BIN`, else the one cargo built with this bench.
pub fn binary(given: Option<&PathBuf>) -> PathBuf {
    given
        .cloned()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ecm")))
}
