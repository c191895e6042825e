//! Work per change, counted: against ecm-apiserver over real HTTP, with the
//! Endpoints and EndpointSlice controllers wired as the binary wires them
//! (`KubeWriter`, the slice tracker, the informers), each readiness flip of
//! a pod costs each controller exactly one sync and one write. A controller
//! that failed to recognise the echo of its own write would sync the
//! Service a second time: the outputs stay right and the write count too,
//! so only the sync count shows it.
//!
//! This binary holds one test because it installs a global metrics
//! recorder, which every test of a binary would share under `cargo test`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::OnceLock;

use ecm::controllers::ControllerName;
use ecm_apiserver::{ApiServer, WriteVerb};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use support::{RunningController, create_node, http_client};

const NAMESPACE: &str = "default";
const PODS: usize = 10;
const FLIPS: usize = 6;

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("the only recorder of this test binary");
        snapshotter
    })
}

/// Successful syncs of both controllers, (Endpoints, EndpointSlice), since
/// the last call: the debugging recorder's snapshots drain its counters.
fn syncs_since_last_call() -> (u64, u64) {
    let snapshot = snapshotter().snapshot().into_vec();
    let counter = |name: &str| -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| {
                let key = key.key();
                key.name() == name && key.labels().any(|l| (l.key(), l.value()) == ("result", "success"))
            })
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    };
    (
        counter("endpoints_controller_syncs_total"),
        counter("endpoint_slice_controller_syncs"),
    )
}

async fn set_ready(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_readiness_flip_costs_each_controller_one_sync_and_one_write() {
    snapshotter();
    let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
    let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = http_client(&listener.url(), "test");
    create_node(&client, "node-a", "zone-a").await;
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let ip = |i: usize| format!("10.0.0.{}", i + 1);
    for i in 0..PODS {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("web-{i}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "app:1"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        set_ready(&pods, &format!("web-{i}"), &ip(i), true).await;
    }

    let agent = |name: ControllerName| format!("ecm-under-test-{}", name.canonical());
    let controllers: Vec<RunningController> = [ControllerName::Endpoints, ControllerName::EndpointSlice]
        .into_iter()
        .map(|name| RunningController::start(&http_client(&listener.url(), &agent(name)), name, None))
        .collect();
    for controller in &controllers {
        controller.quiet(&server).await;
    }
    let updates = |resource: &str| {
        server
            .write_log()
            .into_iter()
            .filter(|w| w.resource == resource && w.verb == WriteVerb::Update)
            .filter(|w| {
                w.user_agent
                    .as_deref()
                    .is_some_and(|a| a.starts_with("ecm-under-test-"))
            })
            .count()
    };
    let initial = syncs_since_last_call();
    assert!(
        initial.0 >= 1 && initial.1 >= 1,
        "the controllers synced the Service: {initial:?}"
    );
    let updates_before = (updates("endpoints"), updates("endpointslices"));

    for flip in 0..FLIPS {
        set_ready(&pods, &format!("web-{flip}"), &ip(flip), false).await;
        for controller in &controllers {
            controller.quiet(&server).await;
        }
    }

    let (syncs, updates_after) = (
        syncs_since_last_call(),
        (updates("endpoints"), updates("endpointslices")),
    );
    let flips = FLIPS as u64;
    assert_eq!(
        syncs,
        (flips, flips),
        "syncs per controller (Endpoints, EndpointSlice) for {FLIPS} flips"
    );
    assert_eq!(
        (updates_after.0 - updates_before.0, updates_after.1 - updates_before.1),
        (FLIPS, FLIPS),
        "updates of Endpoints and EndpointSlices for {FLIPS} flips"
    );
    for controller in controllers {
        controller.stop().await;
    }
}
