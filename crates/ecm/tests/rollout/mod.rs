//! A rollout restart of a Deployment behind a Service in the embedded mode
//! (ecm-apiserver as `ecm run --embedded` configures it, ecm's three
//! controllers over HTTP with kube-controller-manager's client limits),
//! measured: the EndpointSlice and Endpoints writes it causes, against the
//! lower bound of endpoint changes / 100 (a write carries at most one
//! slice of 100 endpoints), and whether the slices end with exactly the
//! new pods. Shared by `tests/rollout_endpoints.rs` (small, in the suite)
//! and `benches/rollout.rs` (300 replicas).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecm::client::ClusterClients;
use ecm::controller_set::ControllerSet;
use ecm::controllers::ControllerName;
use ecm::options::ControllerOptions;
use ecm_apiserver::ApiServer;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Endpoints per EndpointSlice at most (the controller's default).
pub(crate) const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// What one rollout restart cost.
#[derive(Debug, Clone)]
pub(crate) struct RolloutReport {
    /// Deployment size.
    pub(crate) replicas: usize,
    /// EndpointSlice writes (create, update, patch, delete) by the controllers.
    pub(crate) slice_writes: usize,
    /// Endpoints writes by the controllers.
    pub(crate) endpoints_writes: usize,
    /// Changes of endpoint state the pods went through (an address
    /// appearing, turning ready, terminating, disappearing).
    pub(crate) endpoint_changes: usize,
    /// From the restart until the slices held exactly the new pods.
    pub(crate) elapsed: Duration,
    /// Addresses in the slices at the end.
    pub(crate) final_addresses: BTreeSet<String>,
    /// IPs of the new ReplicaSet's ready pods at the end.
    pub(crate) new_pod_ips: BTreeSet<String>,
    /// Endpoints listed more than once across slices at the end.
    pub(crate) duplicates: usize,
}

impl RolloutReport {
    /// `endpoint_changes / 100`, rounded up.
    pub(crate) fn lower_bound(&self) -> usize {
        self.endpoint_changes.div_ceil(MAX_ENDPOINTS_PER_SLICE).max(1)
    }

    /// Slice writes over the lower bound.
    pub(crate) fn slice_ratio(&self) -> f64 {
        self.slice_writes as f64 / self.lower_bound() as f64
    }

    /// Whether the slices ended with exactly the new pods.
    pub(crate) fn exact(&self) -> bool {
        self.duplicates == 0 && self.final_addresses == self.new_pod_ips && self.new_pod_ips.len() == self.replicas
    }
}

/// Endpoint-relevant state of a pod: address, ready, terminating.
type PodState = (Option<String>, bool, bool);

fn pod_state(p: &Pod) -> PodState {
    let status = p.status.as_ref();
    let ip = status.and_then(|s| s.pod_ip.clone());
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    (ip, ready, p.metadata.deletion_timestamp.is_some())
}

/// Addresses across the Service's slices, and how many appear twice.
async fn slice_addresses(slices: &Api<EndpointSlice>) -> (BTreeSet<String>, usize) {
    let list = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap();
    let mut all = BTreeSet::new();
    let mut dupes = 0;
    for s in list.items {
        for e in s.endpoints.into_iter().flatten() {
            for a in e.addresses {
                dupes += usize::from(!all.insert(a));
            }
        }
    }
    (all, dupes)
}

/// IPs of ready, not terminating pods of `app=web`, by pod-template-hash.
async fn ready_pods(pods: &Api<Pod>) -> HashMap<String, BTreeSet<String>> {
    let mut by_hash: HashMap<String, BTreeSet<String>> = HashMap::new();
    for p in pods.list(&ListParams::default().labels("app=web")).await.unwrap().items {
        let (ip, ready, terminating) = pod_state(&p);
        if let (Some(ip), true, false) = (ip, ready, terminating) {
            let hash = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"))
                .cloned()
                .unwrap_or_default();
            by_hash.entry(hash).or_default().insert(ip);
        }
    }
    by_hash
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a Deployment of `replicas` (maxSurge 25%) behind a Service, waits
/// for its endpoints, restarts it, and reports once the slices hold
/// exactly the new pods and the controllers are idle. Pods turn Ready
/// `ready_delay` after they start.
pub(crate) async fn rollout_restart(replicas: usize, ready_delay: Duration) -> RolloutReport {
    let limit = Duration::from_secs(60 + replicas as u64);
    let server = ApiServer::new(ecm::embedded::config(ready_delay)).unwrap();
    let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let config = kube::Config::new(listener.url().parse().unwrap());
    let client = kube::Client::try_from(config.clone()).unwrap();
    let components = ControllerName::ALL
        .iter()
        .map(|c| c.canonical())
        .chain([ecm::controller_set::SHARED_INFORMERS]);
    let clients = ClusterClients::new(&config, 20.0, 30, components).unwrap();
    let enabled: BTreeSet<ControllerName> = ControllerName::ALL.into_iter().collect();
    let shutdown = CancellationToken::new();
    let runtime = Arc::new(ControllerSet::new(
        &clients,
        &enabled,
        &ControllerOptions::default(),
        "rollout",
        &shutdown,
    ));
    let running = tokio::spawn({
        let (runtime, shutdown) = (Arc::clone(&runtime), shutdown.clone());
        async move { runtime.run(shutdown).await }
    });

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
        },
    }))
    .unwrap();
    deployments.create(&PostParams::default(), &deployment).await.unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    wait_until(limit, "the first rollout in the slices", || async {
        let by_hash = ready_pods(&pods).await;
        let ready: BTreeSet<String> = by_hash.values().flatten().cloned().collect();
        ready.len() == replicas && slice_addresses(&slices).await.0 == ready && runtime.is_idle()
    })
    .await;

    // Count endpoint-state changes of the pods from here on.
    let changes = Arc::new(Mutex::new(0usize));
    let listed = Arc::new(AtomicBool::new(false));
    let watch = tokio::spawn({
        let (pods, changes, listed) = (pods.clone(), Arc::clone(&changes), Arc::clone(&listed));
        async move {
            let mut states: HashMap<String, PodState> = HashMap::new();
            let mut initial = true;
            let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default()));
            while let Some(Ok(ev)) = stream.next().await {
                match ev {
                    watcher::Event::InitApply(p) => {
                        states.insert(p.metadata.name.clone().unwrap_or_default(), pod_state(&p));
                    }
                    watcher::Event::InitDone => {
                        initial = false;
                        listed.store(true, Ordering::SeqCst);
                    }
                    watcher::Event::Apply(p) if !initial => {
                        let new = pod_state(&p);
                        let old = states.insert(p.metadata.name.clone().unwrap_or_default(), new.clone());
                        let was = old.unwrap_or((None, false, false));
                        if was != new && (was.0.is_some() || new.0.is_some()) {
                            *changes.lock().unwrap() += 1;
                        }
                    }
                    watcher::Event::Delete(p) => {
                        if let Some((Some(_), ..)) = states.remove(p.metadata.name.as_deref().unwrap_or("")) {
                            *changes.lock().unwrap() += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
    });
    wait_until(limit, "the pod watch", || async { listed.load(Ordering::SeqCst) }).await;
    server.clear_write_log();

    let started = Instant::now();
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-12-06T20:00:00Z"}}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(restart))
        .await
        .unwrap();
    let old_hashes: BTreeSet<String> = ready_pods(&pods).await.into_keys().collect();
    wait_until(limit, "the slices to hold exactly the new pods", || async {
        let by_hash = ready_pods(&pods).await;
        let all = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items;
        let Some((hash, ips)) = by_hash.iter().find(|(h, _)| !old_hashes.contains(*h)) else {
            return false;
        };
        by_hash.len() == 1
            && ips.len() == replicas
            && all.len() == replicas
            && all
                .iter()
                .all(|p| p.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")) == Some(hash))
            && slice_addresses(&slices).await.0 == *ips
    })
    .await;
    let elapsed = started.elapsed();
    wait_until(limit, "idle controllers", || async { runtime.is_idle() }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (final_addresses, duplicates) = slice_addresses(&slices).await;
    let new_pod_ips = ready_pods(&pods)
        .await
        .into_iter()
        .filter(|(h, _)| !old_hashes.contains(h))
        .flat_map(|(_, ips)| ips)
        .collect();
    let log = server.write_log();
    let count = |resource: &str| log.iter().filter(|w| w.resource == resource && !w.dry_run).count();
    let report = RolloutReport {
        replicas,
        slice_writes: count("endpointslices"),
        endpoints_writes: count("endpoints"),
        endpoint_changes: *changes.lock().unwrap(),
        elapsed,
        final_addresses,
        new_pod_ips,
        duplicates,
    };
    watch.abort();
    shutdown.cancel();
    let _ = running.await;
    report
}
