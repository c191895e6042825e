//! What the binary's integration tests share: HTTP clients with a user agent
//! of their own, and a running controller runtime.

// Each test crate uses a part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ecm::controller_set::ControllerSet;
use ecm::controllers::ControllerName;
use ecm::options::ControllerOptions;
use ecm::simulate::wait_until_quiet;
use ecm_apiserver::ApiServer;
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

/// One running controller runtime, as the binary wires it.
pub(crate) struct RunningController {
    pub(crate) runtime: Arc<ControllerSet>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<()>,
}

impl RunningController {
    /// Starts `controller` alone through `client`, with kube-controller-
    /// manager's default options and informers resyncing each `resync`.
    pub(crate) fn start(client: &kube::Client, controller: ControllerName, resync: Option<Duration>) -> Self {
        let shutdown = CancellationToken::new();
        let enabled = BTreeSet::from([controller]);
        let runtime = Arc::new(ControllerSet::with_resync_period(
            client,
            &enabled,
            &ControllerOptions::default(),
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
