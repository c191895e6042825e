//! Service endpoints latency, measured the way upstream's conformance test
//! "Service endpoints latency should not be very high" measures it: one ready
//! pod, then 200 Services selecting it created 15 at a time; for each, the
//! time from its creation until a watcher sees its Endpoints with a ready
//! address (and here also its EndpointSlice with a ready endpoint).
//! Upstream's bounds are p50 ≤ 20 s and p99 ≤ 50 s.
//!
//! ecm runs all three controllers over HTTP against ecm-apiserver with
//! kube-controller-manager's client limits (20 QPS, burst 30, per
//! controller), which is what dominates: 200 creates per controller at
//! 20/s. `--unthrottled` lifts them, to see ecm's own cost.
//!
//! `cargo bench -p ecm --bench latency [-- --unthrottled]`, or
//! `cargo xtask bench latency`. Prints percentiles; asserts nothing.

// A benchmark binary: printing is its job, and a failure should stop it.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecm::client::ClusterClients;
use ecm::controller_set::ControllerSet;
use ecm::controllers::ControllerName;
use ecm::options::ControllerOptions;
use ecm_apiserver::ApiServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const SERVICES: usize = 200;
const PARALLEL: usize = 15;
const NAMESPACE: &str = "default";

/// When each Service was created and when its objects were first seen ready.
#[derive(Default)]
struct Timeline {
    created: HashMap<String, Instant>,
    endpoints_ready: HashMap<String, Instant>,
    slice_ready: HashMap<String, Instant>,
}

/// The Service of an Endpoints object with a ready address.
fn ready_endpoints_service(endpoints: &Endpoints) -> Option<String> {
    let ready = endpoints
        .subsets
        .iter()
        .flatten()
        .any(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty()));
    ready.then(|| endpoints.metadata.name.clone()).flatten()
}

/// The Service of an EndpointSlice with a ready endpoint.
fn ready_slice_service(slice: &EndpointSlice) -> Option<String> {
    let ready = slice
        .endpoints
        .iter()
        .flatten()
        .any(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true));
    ready
        .then(|| {
            slice
                .metadata
                .labels
                .as_ref()?
                .get("kubernetes.io/service-name")
                .cloned()
        })
        .flatten()
}

/// Watches `api`, recording in `seen(timeline)` when each Service's object is
/// first ready (`ready` names the Service).
fn watch_ready<K>(
    api: Api<K>,
    timeline: &Arc<Mutex<Timeline>>,
    ready: fn(&K) -> Option<String>,
    seen: fn(&mut Timeline) -> &mut HashMap<String, Instant>,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let timeline = Arc::clone(timeline);
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default()).applied_objects().boxed();
        while let Ok(Some(object)) = events.try_next().await {
            if let Some(service) = ready(&object) {
                seen(&mut timeline.lock().unwrap())
                    .entry(service)
                    .or_insert_with(Instant::now);
            }
        }
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn report(what: &str, created: &HashMap<String, Instant>, seen: &HashMap<String, Instant>) {
    let mut latencies: Vec<Duration> = created
        .iter()
        .filter_map(|(name, at)| seen.get(name).map(|s| s.saturating_duration_since(*at)))
        .collect();
    latencies.sort();
    if latencies.is_empty() {
        println!("{what}: no samples");
        return;
    }
    println!(
        "{what:<14} n={:<4} p50={:>8.1?} p90={:>8.1?} p99={:>8.1?} max={:>8.1?}",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let unthrottled = std::env::args().any(|a| a == "--unthrottled");
    let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
    let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let config = kube::Config::new(listener.url().parse().unwrap());
    let client = kube::Client::try_from(config.clone()).unwrap();

    // ecm as `ecm run` builds it: a client per controller, KCM's limits.
    let (qps, burst) = if unthrottled { (0.0, 0) } else { (20.0, 30) };
    let components = ControllerName::ALL
        .iter()
        .map(|c| c.canonical())
        .chain([ecm::controller_set::SHARED_INFORMERS]);
    let clients = ClusterClients::new(&config, qps, burst, components).unwrap();
    let enabled: BTreeSet<ControllerName> = ControllerName::ALL.into_iter().collect();
    let shutdown = CancellationToken::new();
    let runtime = Arc::new(ControllerSet::new(
        &clients,
        &enabled,
        &ControllerOptions::default(),
        "bench",
        &shutdown,
    ));
    let running = tokio::spawn({
        let (runtime, shutdown) = (Arc::clone(&runtime), shutdown.clone());
        async move { runtime.run(shutdown).await }
    });

    // One ready pod on an existing node (the EndpointSlice controller leaves
    // out pods whose node it does not know), as upstream's test runs one
    // replica behind every Service.
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "latency-0", "labels": {"app": "latency"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "pause"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Running", "podIP": "10.1.0.1", "podIPs": [{"ip": "10.1.0.1"}],
        "conditions": [{"type": "Ready", "status": "True"}]}});
    pods.patch_status("latency-0", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    while !runtime.has_synced() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let endpoints_watch = watch_ready(
        Api::<Endpoints>::namespaced(client.clone(), NAMESPACE),
        &timeline,
        ready_endpoints_service,
        |t| &mut t.endpoints_ready,
    );
    let slices_watch = watch_ready(
        Api::<EndpointSlice>::namespaced(client.clone(), NAMESPACE),
        &timeline,
        ready_slice_service,
        |t| &mut t.slice_ready,
    );

    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let started = Instant::now();
    futures::stream::iter(0..SERVICES)
        .for_each_concurrent(PARALLEL, |i| {
            let (services, timeline) = (services.clone(), Arc::clone(&timeline));
            async move {
                let name = format!("latency-svc-{i}");
                let service: Service = serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"selector": {"app": "latency"}, "ports": [{"port": 80, "targetPort": 8080}]},
                }))
                .unwrap();
                let at = Instant::now();
                services.create(&PostParams::default(), &service).await.unwrap();
                timeline.lock().unwrap().created.insert(name, at);
            }
        })
        .await;
    let deadline = started + Duration::from_secs(120);
    loop {
        let done = {
            let t = timeline.lock().unwrap();
            t.endpoints_ready.len() >= SERVICES && t.slice_ready.len() >= SERVICES
        };
        if done || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let t = std::mem::take(&mut *timeline.lock().unwrap());
    println!(
        "service endpoints latency: {SERVICES} Services, {PARALLEL} created at a time, {}",
        if unthrottled {
            "controllers unthrottled".to_owned()
        } else {
            format!("controllers at {qps} QPS / burst {burst} each")
        }
    );
    report("Endpoints", &t.created, &t.endpoints_ready);
    report("EndpointSlice", &t.created, &t.slice_ready);
    println!("all converged in {:.1?}", started.elapsed());
    endpoints_watch.abort();
    slices_watch.abort();
    shutdown.cancel();
    running.await.unwrap();
}
