//! What the binary's integration tests share: HTTP clients with a user agent
//! of their own, a running controller runtime, and the `ecm` binary run as
//! a child process with a condition to wait on.

// Each test crate uses a part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecm::controller_set::ControllerSet;
use ecm::controllers::ControllerName;
use ecm::options::ControllerOptions;
use ecm::simulate::wait_until_quiet;
use ecm_apiserver::ApiServer;
use ecm_controller::IncrementalSyncs;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Real time (the clock is not paused in these tests) allowed to reach
/// quiescence.
pub(crate) const QUIET_DEADLINE: Duration = Duration::from_secs(60);

/// A client of the server at `url` whose requests carry `agent` as user
/// agent, so the server's write log tells whose write it was.
pub(crate) fn http_client(url: &str, agent: &str) -> kube::Client {
    let mut config = kube::Config::new(url.parse().unwrap());
    config.headers.push((http::header::USER_AGENT, agent.parse().unwrap()));
    kube::Client::try_from(config).unwrap()
}

/// Creates the Ready node `name` in `zone` (what the EndpointSlice
/// controller looks up for each pod's `nodeName`).
pub(crate) async fn create_node(client: &kube::Client, name: &str, zone: &str) {
    let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .unwrap();
    kube::Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .create(&kube::api::PostParams::default(), &node)
        .await
        .unwrap();
}

/// One running controller runtime, as the binary wires it.
pub(crate) struct RunningController {
    pub(crate) runtime: Arc<ControllerSet>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<()>,
}

impl RunningController {
    /// Starts `controller` alone through `client`, with kube-controller-
    /// manager's default options and informers resyncing each `resync`.
    /// Every incremental sync is checked against a full recompute
    /// (`--incremental-syncs verify`; a difference panics the worker).
    pub(crate) fn start(client: &kube::Client, controller: ControllerName, resync: Option<Duration>) -> Self {
        let shutdown = CancellationToken::new();
        let enabled = BTreeSet::from([controller]);
        let runtime = Arc::new(ControllerSet::with_resync_period(
            client,
            &enabled,
            &ControllerOptions {
                incremental_syncs: IncrementalSyncs::Verify,
                ..ControllerOptions::default()
            },
            "test",
            &shutdown,
            resync,
        ));
        let running = tokio::spawn({
            let (runtime, shutdown) = (Arc::clone(&runtime), shutdown.clone());
            async move { runtime.run(shutdown).await }
        });
        Self {
            runtime,
            shutdown,
            running,
        }
    }

    /// Waits until nothing can happen any more (at most [`QUIET_DEADLINE`]);
    /// returns how long it took.
    pub(crate) async fn quiet(&self, server: &ApiServer) -> Duration {
        let started = Instant::now();
        wait_until_quiet(&self.runtime, server, started + QUIET_DEADLINE)
            .await
            .unwrap();
        started.elapsed()
    }

    /// Stops the runtime and waits for it to finish.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.running.await.unwrap();
    }
}

/// The `ecm` binary running as a child process, killed when dropped; its
/// stdout is collected as it comes.
pub(crate) struct Ecm {
    child: Child,
    stdout: Arc<Mutex<String>>,
}

impl Ecm {
    /// Spawns `command` (stderr discarded, stdout collected).
    pub(crate) fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ecm starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let pipe = child.stdout.take().expect("piped stdout");
        std::thread::spawn({
            let stdout = Arc::clone(&stdout);
            move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut out = stdout.lock().expect("not poisoned");
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        });
        Self { child, stdout }
    }

    /// What it printed to stdout so far.
    pub(crate) fn stdout(&self) -> String {
        self.stdout.lock().expect("not poisoned").clone()
    }

    /// Its process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Ecm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns `Some`, or panics after `limit`.
pub(crate) fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status code of a plain HTTP/1.1 `GET path` to `addr`.
pub(crate) fn http_get_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))
}
