//! Shadow mode against ecm-apiserver over HTTP: a second ecm (the "writer",
//! standing in for kube-controller-manager) writes the endpoint objects; a
//! shadow instance beside it under churn reports no divergence and makes no
//! write at all (the server's write log, by user agent). Then, with the
//! writer stopped, the test edits objects behind its back — drops an
//! endpoint, flips `ready`, changes a zone and a hint, adds a stale extra
//! slice, deletes an Endpoints, adds a foreign label — and each edit is
//! reported once, with the right controller, Service and field and a
//! reason, and cleared when put right.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ecm::controllers::ControllerName;
use ecm::explain::limits;
use ecm::options::ControllerOptions;
use ecm::shadow::{Report, Shadow, ShadowConfig};
use ecm_apiserver::{ApiServer, ServeHandle};
use ecm_types::endpoint_slice::{endpoints, endpoints_mut, set_endpoints};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{QUIET_DEADLINE, http_client};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const SHADOW_AGENT: &str = "ecm-shadow-under-test";
const WRITER_AGENT: &str = "ecm-writer";
const NS: &str = "default";
const GRACE: Duration = Duration::from_millis(500);
const SLICES: &str = "endpointslice-controller";
const ENDPOINTS: &str = "endpoints-controller";

struct Cluster {
    server: ApiServer,
    _listener: ServeHandle,
    client: kube::Client,
    url: String,
}

impl Cluster {
    async fn start() -> Self {
        let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
        let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let url = listener.url();
        let client = http_client(&url, "test");
        for (node, zone) in [("node-a", "zone-a"), ("node-b", "zone-b")] {
            let node: Node = serde_json::from_value(json!({
                "metadata": {"name": node, "labels": {"topology.kubernetes.io/zone": zone}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"cpu": "4"}},
            }))
            .unwrap();
            Api::<Node>::all(client.clone())
                .create(&PostParams::default(), &node)
                .await
                .unwrap();
        }
        Self {
            server,
            _listener: listener,
            client,
            url,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn create<K>(&self, value: Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let object: K = serde_json::from_value(value).unwrap();
        self.api::<K>().create(&PostParams::default(), &object).await.unwrap()
    }

    /// Creates pod `name` on `node` and gives it `ip`, Ready or not.
    async fn pod(&self, name: &str, node: &str, ip: &str, ready: bool) {
        self.create::<Pod>(json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1",
                     "ports": [{"name": "http", "containerPort": 8080}]}]},
        }))
        .await;
        self.set_ready(name, ip, ready).await;
    }

    async fn set_ready(&self, name: &str, ip: &str, ready: bool) {
        let status = json!({"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        }});
        self.api::<Pod>()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    /// The `web` Service's slice written by the EndpointSlice controller.
    async fn web_slice(&self) -> EndpointSlice {
        let params = ListParams::default().labels(
            "kubernetes.io/service-name=web,endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io",
        );
        let mut slices = self.api::<EndpointSlice>().list(&params).await.unwrap().items;
        assert_eq!(slices.len(), 1, "one slice for web");
        slices.remove(0)
    }

    async fn replace_slice(&self, slice: &EndpointSlice) {
        let name = slice.metadata.name.clone().unwrap();
        self.api::<EndpointSlice>()
            .replace(&name, &PostParams::default(), slice)
            .await
            .unwrap();
    }

    /// Puts `original`'s content back over the current version.
    async fn restore_slice(&self, original: &EndpointSlice) {
        let mut restored = original.clone();
        restored.metadata.resource_version = self.web_slice().await.metadata.resource_version;
        self.replace_slice(&restored).await;
    }
}

/// Whether `shadow` has checked everything the server holds and has no
/// difference within its grace period.
fn settled(shadow: &Shadow, server: &ApiServer) -> bool {
    shadow.has_synced()
        && shadow.is_idle()
        && shadow.state().report().pending == 0
        && shadow.watched().iter().all(|w| {
            let applied = w
                .progress
                .borrow()
                .resource_version
                .as_deref()
                .and_then(|rv| rv.parse::<u64>().ok());
            let latest = server.latest_event_resource_version(w.resource).unwrap_or(0);
            applied.is_some_and(|a| a >= latest)
        })
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + QUIET_DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the shadow reports exactly one divergence, of `controller`
/// on `default/web` in `field`, and returns the report.
async fn expect_divergence(shadow: &Shadow, server: &ApiServer, controller: &str, field: &str) -> Report {
    wait_until(&format!("{controller} {field} reported"), || {
        settled(shadow, server) && !shadow.state().report().divergences.is_empty()
    })
    .await;
    let report = shadow.state().report();
    assert_eq!(report.divergences.len(), 1, "exactly one divergence: {report:#?}");
    let d = &report.divergences[0];
    assert_eq!(
        (d.controller.as_str(), d.service.as_str(), d.field.as_str()),
        (controller, "default/web", field),
        "{report:#?}"
    );
    assert!(!d.reason.is_empty(), "a reason is given: {d:?}");
    report
}

async fn expect_cleared(shadow: &Shadow, server: &ApiServer) {
    wait_until("the divergence to clear", || {
        settled(shadow, server) && shadow.state().report().divergences.is_empty()
    })
    .await;
}

fn all_controllers() -> BTreeSet<ControllerName> {
    ControllerName::ALL.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_agrees_with_a_writer_under_churn_and_reports_each_edit_behind_its_back_once() {
    let cluster = Cluster::start().await;
    // The writer: every controller, as `ecm run` wires them.
    let writer_client = http_client(&cluster.url, WRITER_AGENT);
    let stop_writer = CancellationToken::new();
    let writer = Arc::new(ecm::controller_set::ControllerSet::new(
        &writer_client,
        &all_controllers(),
        &ControllerOptions::default(),
        "writer",
        &stop_writer,
    ));
    let writer_running = tokio::spawn({
        let (writer, stop) = (Arc::clone(&writer), stop_writer.clone());
        async move { writer.run(stop).await }
    });
    // The shadow, with a client of its own.
    let shadow_client = http_client(&cluster.url, SHADOW_AGENT);
    let stop_shadow = CancellationToken::new();
    let shadow = Arc::new(Shadow::new(
        &shadow_client,
        ShadowConfig {
            controllers: all_controllers(),
            limits: limits(&ControllerOptions::default()),
            grace_period: GRACE,
            workers: 2,
        },
        &stop_shadow,
        None,
    ));
    let shadow_running = tokio::spawn({
        let (shadow, stop) = (Arc::clone(&shadow), stop_shadow.clone());
        async move { shadow.run(stop).await }
    });

    // Churn: Services, pods coming, going and flipping readiness, a
    // selector-less Service with hand-written Endpoints (mirrored).
    cluster
        .create::<Service>(json!({
            "metadata": {"name": "web", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "trafficDistribution": "PreferClose",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }))
        .await;
    cluster
        .create::<Service>(json!({
            "metadata": {"name": "manual"},
            "spec": {"ports": [{"name": "db", "port": 5432}]},
        }))
        .await;
    cluster
        .create::<Endpoints>(json!({
            "metadata": {"name": "manual"},
            "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"name": "db", "port": 5432}]}],
        }))
        .await;
    for i in 0..6 {
        let node = if i % 2 == 0 { "node-a" } else { "node-b" };
        cluster
            .pod(&format!("web-{i}"), node, &format!("10.0.0.{}", i + 1), i != 5)
            .await;
    }
    for round in 0..3 {
        cluster.set_ready("web-1", "10.0.0.2", round % 2 == 1).await;
        cluster.set_ready("web-5", "10.0.0.6", round % 2 == 0).await;
    }
    cluster
        .api::<Pod>()
        .delete("web-4", &DeleteParams::default())
        .await
        .unwrap();
    cluster.pod("web-6", "node-b", "10.0.0.7", true).await;

    // Quiet: the writer has converged and the shadow checked the result.
    let deadline = Instant::now() + QUIET_DEADLINE;
    ecm::simulate::wait_until_quiet(&writer, &cluster.server, deadline)
        .await
        .unwrap();
    wait_until("the shadow to settle", || settled(&shadow, &cluster.server)).await;
    let report = shadow.state().report();
    assert!(report.divergences.is_empty(), "no divergence under churn: {report:#?}");
    assert_eq!(report.services_compared.get(SLICES), Some(&1), "{report:#?}");
    assert_eq!(report.services_compared.get(ENDPOINTS), Some(&1), "{report:#?}");
    assert_eq!(
        report.services_compared.get("endpointslice-mirroring-controller"),
        Some(&1),
        "{report:#?}"
    );
    let shadow_writes: Vec<_> = cluster
        .server
        .write_log()
        .into_iter()
        .filter(|w| w.user_agent.as_deref() == Some(SHADOW_AGENT))
        .collect();
    assert!(shadow_writes.is_empty(), "the shadow wrote: {shadow_writes:?}");
    assert!(
        cluster
            .server
            .write_log()
            .iter()
            .any(|w| w.user_agent.as_deref() == Some(WRITER_AGENT)),
        "the writer wrote"
    );

    // Behind the writer's back.
    stop_writer.cancel();
    writer_running.await.unwrap();
    let original = cluster.web_slice().await;
    assert_eq!(endpoints(&original).len(), 6, "{original:?}");

    // Drop an endpoint.
    let mut edited = original.clone();
    endpoints_mut(&mut edited).pop();
    cluster.replace_slice(&edited).await;
    let report = expect_divergence(&shadow, &cluster.server, SLICES, "endpoints").await;
    assert!(report.divergences[0].subject.contains("(pod "), "{report:#?}");
    cluster.restore_slice(&original).await;
    expect_cleared(&shadow, &cluster.server).await;

    // Flip ready.
    let mut edited = cluster.web_slice().await;
    let ready = endpoints(&edited)[0].conditions.as_ref().unwrap().ready;
    endpoints_mut(&mut edited)[0].conditions.as_mut().unwrap().ready = ready.map(|r| !r);
    cluster.replace_slice(&edited).await;
    let report = expect_divergence(&shadow, &cluster.server, SLICES, "conditions.ready").await;
    assert!(report.divergences[0].reason.contains("pod web-"), "{report:#?}");
    cluster.restore_slice(&original).await;
    expect_cleared(&shadow, &cluster.server).await;

    // Change a zone.
    let mut edited = cluster.web_slice().await;
    endpoints_mut(&mut edited)[0].zone = Some("zone-x".into());
    cluster.replace_slice(&edited).await;
    let report = expect_divergence(&shadow, &cluster.server, SLICES, "zone").await;
    assert_eq!(report.divergences[0].actual, "zone-x");
    assert!(report.divergences[0].reason.contains("zone zone-"), "{report:#?}");
    cluster.restore_slice(&original).await;
    expect_cleared(&shadow, &cluster.server).await;

    // Change a hint (trafficDistribution PreferClose hints each ready
    // endpoint for its own zone).
    let mut edited = cluster.web_slice().await;
    let ready_index = endpoints(&edited)
        .iter()
        .position(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .unwrap();
    assert!(endpoints(&edited)[ready_index].hints.is_some(), "{edited:?}");
    endpoints_mut(&mut edited)[ready_index].hints =
        Some(serde_json::from_value(json!({"forZones": [{"name": "zone-x"}]})).unwrap());
    cluster.replace_slice(&edited).await;
    let report = expect_divergence(&shadow, &cluster.server, SLICES, "hints").await;
    assert!(report.divergences[0].reason.contains("PreferClose"), "{report:#?}");
    cluster.restore_slice(&original).await;
    expect_cleared(&shadow, &cluster.server).await;

    // A stale extra slice.
    let mut stale = original.clone();
    stale.metadata = kube::api::ObjectMeta {
        name: Some("web-stale".into()),
        labels: original.metadata.labels.clone(),
        owner_references: original.metadata.owner_references.clone(),
        ..Default::default()
    };
    set_endpoints(
        &mut stale,
        vec![serde_json::from_value(json!({"addresses": ["10.0.9.9"], "conditions": {"ready": true}})).unwrap()],
    );
    cluster
        .api::<EndpointSlice>()
        .create(&PostParams::default(), &stale)
        .await
        .unwrap();
    let report = expect_divergence(&shadow, &cluster.server, SLICES, "endpoints").await;
    assert!(report.divergences[0].subject.contains("10.0.9.9"), "{report:#?}");
    assert_eq!(report.divergences[0].desired, "absent");
    cluster
        .api::<EndpointSlice>()
        .delete("web-stale", &DeleteParams::default())
        .await
        .unwrap();
    expect_cleared(&shadow, &cluster.server).await;

    // Delete an Endpoints.
    let saved = cluster.api::<Endpoints>().get("web").await.unwrap();
    cluster
        .api::<Endpoints>()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let report = expect_divergence(&shadow, &cluster.server, ENDPOINTS, "object").await;
    assert_eq!(report.divergences[0].actual, "absent");
    let mut recreated = saved.clone();
    recreated.metadata = kube::api::ObjectMeta {
        name: saved.metadata.name.clone(),
        labels: saved.metadata.labels.clone(),
        annotations: saved.metadata.annotations.clone(),
        ..Default::default()
    };
    cluster
        .api::<Endpoints>()
        .create(&PostParams::default(), &recreated)
        .await
        .unwrap();
    expect_cleared(&shadow, &cluster.server).await;

    // A foreign label.
    let mut edited = cluster.web_slice().await;
    edited
        .metadata
        .labels
        .get_or_insert_default()
        .insert("example.com/foreign".into(), "yes".into());
    cluster.replace_slice(&edited).await;
    let report = expect_divergence(&shadow, &cluster.server, SLICES, "labels").await;
    assert!(
        report.divergences[0].actual.contains("example.com/foreign=yes"),
        "{report:#?}"
    );
    cluster.restore_slice(&original).await;
    expect_cleared(&shadow, &cluster.server).await;

    // Still nothing written by the shadow.
    assert!(
        cluster
            .server
            .write_log()
            .iter()
            .all(|w| w.user_agent.as_deref() != Some(SHADOW_AGENT)),
        "the shadow wrote"
    );
    stop_shadow.cancel();
    shadow_running.await.unwrap();
}
