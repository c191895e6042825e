//! The controllers against an API server that refuses them or goes away
//! mid-run: 401 (an expired token), 403 (missing RBAC), a server that stops
//! listening. ecm logs, retries with backoff and catches up as soon as the
//! server answers again; it neither panics nor stops.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use ecm::controllers::ControllerName;
use ecm_apiserver::{ApiServer, FaultAction, FaultConfig, FaultRule, ServeHandle};
use serde_json::{Value, json};
use support::{RunningController, http_client};

/// Real time allowed for the controller to catch up once the server
/// answers again (its retry backoff included).
const CATCH_UP: Duration = Duration::from_secs(30);

struct Cluster {
    server: ApiServer,
    /// `None` while the server is not listening.
    listener: Option<ServeHandle>,
    controller: RunningController,
}

impl Cluster {
    /// A server with the Service `web` and its pod `web-0` (10.0.0.1),
    /// `faults` in force, and the Endpoints controller started over HTTP.
    async fn start(faults: FaultConfig) -> Self {
        Self::start_with(faults, ControllerName::Endpoints, &[]).await
    }

    /// Like [`Cluster::start`], with `controller` and `objects` stored as
    /// they are (no validation).
    async fn start_with(faults: FaultConfig, controller: ControllerName, objects: &[Value]) -> Self {
        let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
        for object in objects {
            server.insert_object(object.clone()).unwrap();
        }
        server
            .insert_object(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                         "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
            }))
            .unwrap();
        insert_pod(&server, "web-0", "10.0.0.1");
        server.set_faults(faults);
        let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = http_client(&listener.url(), "ecm-under-test");
        let controller = RunningController::start(&client, controller, None);
        Self {
            server,
            listener: Some(listener),
            controller,
        }
    }

    /// The ready IPs of the Endpoints `web`, sorted; `None` while it does not exist.
    fn endpoint_ips(&self) -> Option<Vec<String>> {
        let endpoints = self.server.get_object("endpoints", Some("default"), "web")?;
        let mut ips: Vec<String> = endpoints["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["ip"].as_str().map(str::to_owned))
            .collect();
        ips.sort();
        Some(ips)
    }

    /// The EndpointSlices of the Service `service`.
    fn slices(&self, service: &str) -> Vec<Value> {
        self.server
            .list_objects("endpointslices")
            .into_iter()
            .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == service)
            .collect()
    }

    /// Waits until the Endpoints `web` lists exactly `ips`.
    async fn wait_for(&self, ips: &[&str]) {
        let want: Vec<String> = ips.iter().map(|ip| (*ip).to_owned()).collect();
        self.wait_until(&format!("Endpoints web lists {ips:?}"), || {
            self.endpoint_ips().as_ref() == Some(&want)
        })
        .await;
    }

    /// Waits until `done` holds, at most [`CATCH_UP`].
    async fn wait_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Stores a running, ready pod of `web` (without a write through HTTP,
/// which faults could refuse).
fn insert_pod(server: &ApiServer, name: &str, ip: &str) -> Value {
    server
        .insert_object(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "app:1"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap()
}

fn refuse(resource: &str, verbs: &[&str], code: u16) -> FaultConfig {
    FaultConfig {
        seed: 0,
        rules: vec![FaultRule::new(
            resource,
            verbs,
            FaultAction::Error {
                code,
                retry_after_seconds: None,
                message: None,
            },
        )],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_on_every_request_is_retried_until_the_token_is_accepted() {
    // An expired token: every request, lists and watches included, is
    // refused, so the informers never sync and nothing is written.
    let cluster = Cluster::start(refuse("*", &[], 401)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!cluster.controller.runtime.has_synced());
    assert_eq!(cluster.endpoint_ips(), None);
    // A renewed token: the informers list, and the controller catches up.
    cluster.server.set_faults(FaultConfig::default());
    cluster.wait_for(&["10.0.0.1"]).await;
    cluster.controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_writes_is_retried_until_rbac_allows_them() {
    // RBAC without write access to Endpoints: reads work, writes are refused.
    let cluster = Cluster::start(refuse("endpoints", &["create", "update", "patch"], 403)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(cluster.controller.runtime.has_synced());
    assert_eq!(cluster.endpoint_ips(), None);
    // The Role fixed: the next retry writes.
    cluster.server.set_faults(FaultConfig::default());
    cluster.wait_for(&["10.0.0.1"]).await;
    cluster.controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_going_away_mid_run_is_waited_out() {
    let mut cluster = Cluster::start(FaultConfig::default()).await;
    let addr = cluster.listener.as_ref().unwrap().addr();
    cluster.wait_for(&["10.0.0.1"]).await;

    // The server stops listening (its connections closed); a pod comes
    // while the controller cannot see it.
    cluster.listener.take().unwrap().shutdown().await;
    insert_pod(&cluster.server, "web-1", "10.0.0.2");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(cluster.endpoint_ips().unwrap(), ["10.0.0.1"]);

    // Back on the same address: the controller relists and catches up.
    cluster.listener = Some(cluster.server.serve(addr).await.unwrap());
    cluster.wait_for(&["10.0.0.1", "10.0.0.2"]).await;
    cluster.controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_or_out_of_range_ports_fail_that_service_alone() {
    // A Service no real API server would store: two ports named `http`,
    // one targeting port 70000. The Endpoints or slices computed for it are
    // refused (422 Invalid); its syncs fail and are retried with backoff,
    // and `web`, on the same pod, is served.
    let bad = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.11", "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "http", "port": 81, "targetPort": 70000, "protocol": "TCP"}]},
    });
    let cluster = Cluster::start_with(
        FaultConfig::default(),
        ControllerName::Endpoints,
        std::slice::from_ref(&bad),
    )
    .await;
    cluster.wait_for(&["10.0.0.1"]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(cluster.server.get_object("endpoints", Some("default"), "bad").is_none());
    cluster.controller.stop().await;

    let cluster = Cluster::start_with(FaultConfig::default(), ControllerName::EndpointSlice, &[bad]).await;
    cluster
        .wait_until("web has a slice", || !cluster.slices("web").is_empty())
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // At most the empty placeholder slice (no ports, no endpoints) was
    // accepted for `bad`; every slice with its ports was refused.
    for slice in cluster.slices("bad") {
        assert_eq!(slice["endpoints"], json!([]), "{slice}");
        assert_eq!(slice["ports"], json!([]), "{slice}");
    }
    cluster.controller.stop().await;
}
