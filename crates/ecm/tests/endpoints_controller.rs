//! The Endpoints controller, as the binary wires it, against ecm-apiserver
//! over real HTTP: it converges, follows every kind of change, and writes
//! nothing when nothing changed.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ecm::controllers::ControllerName;
use ecm_apiserver::{ApiServer, ServeHandle};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{RunningController, http_client};
use tokio::time::Instant;

const CONTROLLER_AGENT: &str = "ecm-under-test";

struct Harness {
    server: ApiServer,
    _listener: ServeHandle,
    controller: RunningController,
    /// A client of the test itself (another user agent).
    client: kube::Client,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with_resync(None).await
    }

    async fn start_with_resync(resync: Option<Duration>) -> Self {
        let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
        let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let controller_client = http_client(&listener.url(), CONTROLLER_AGENT);
        let controller = RunningController::start(&controller_client, ControllerName::Endpoints, resync);
        Self {
            client: http_client(&listener.url(), "test"),
            server,
            _listener: listener,
            controller,
        }
    }

    async fn quiet(&self) {
        self.controller.quiet(&self.server).await;
    }

    /// The controller's writes of Endpoints so far.
    fn endpoint_writes(&self) -> Vec<String> {
        self.server
            .write_log()
            .into_iter()
            .filter(|w| w.user_agent.as_deref() == Some(CONTROLLER_AGENT) && w.resource == "endpoints")
            .map(|w| format!("{} {}", w.verb, w.name.unwrap_or_default()))
            .collect()
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn endpoints(&self, name: &str) -> Option<Endpoints> {
        Api::<Endpoints>::namespaced(self.client.clone(), "default")
            .get_opt(name)
            .await
            .unwrap()
    }

    async fn set_status(&self, name: &str, ip: &str, ready: bool) {
        let status = json!({"status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "lastTransitionTime": "2024-01-15T10:00:00Z"}],
        }});
        self.pods()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    async fn stop(self) {
        self.controller.stop().await;
    }
}

/// (ready IPs, not-ready IPs) of an Endpoints object, sorted.
fn addresses(endpoints: &Endpoints) -> (Vec<String>, Vec<String>) {
    let mut ready = BTreeSet::new();
    let mut not_ready = BTreeSet::new();
    for subset in endpoints.subsets.iter().flatten() {
        ready.extend(subset.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(subset.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
    }
    (ready.into_iter().collect(), not_ready.into_iter().collect())
}

fn pod(name: &str, labels: &Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "app:1",
                 "ports": [{"name": "http", "containerPort": 8080}]}]},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_pods_and_services_and_skip_no_op_writes() {
    let h = Harness::start().await;
    let services: Api<Service> = Api::namespaced(h.client.clone(), "default");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }))
    .unwrap();
    services.create(&PostParams::default(), &service).await.unwrap();
    for (i, ready) in [true, true, true, false].into_iter().enumerate() {
        let name = format!("web-{i}");
        h.pods()
            .create(
                &PostParams::default(),
                &pod(&name, &json!({"app": "web", "track": "stable"})),
            )
            .await
            .unwrap();
        h.set_status(&name, &format!("10.0.0.{}", i + 1), ready).await;
    }
    h.quiet().await;
    let ep = h.endpoints("web").await.expect("endpoints created");
    assert_eq!(
        addresses(&ep),
        (
            vec!["10.0.0.1".into(), "10.0.0.2".into(), "10.0.0.3".into()],
            vec!["10.0.0.4".into()]
        )
    );
    assert_eq!(ep.subsets.as_ref().unwrap()[0].ports.as_ref().unwrap()[0].port, 8080);

    // Readiness flip.
    h.set_status("web-3", "10.0.0.4", true).await;
    h.quiet().await;
    assert_eq!(addresses(&h.endpoints("web").await.unwrap()).0.len(), 4);

    // IP change.
    h.set_status("web-0", "10.0.0.9", true).await;
    h.quiet().await;
    let (ready, _) = addresses(&h.endpoints("web").await.unwrap());
    assert!(
        ready.contains(&"10.0.0.9".to_owned()) && !ready.contains(&"10.0.0.1".to_owned()),
        "{ready:?}"
    );

    // Labels move a pod out of the selector and back in.
    let relabel = |app: &str| json!({"metadata": {"labels": {"app": app}}});
    h.pods()
        .patch("web-1", &PatchParams::default(), &Patch::Merge(&relabel("other")))
        .await
        .unwrap();
    h.quiet().await;
    assert!(
        !addresses(&h.endpoints("web").await.unwrap())
            .0
            .contains(&"10.0.0.2".to_owned())
    );
    h.pods()
        .patch("web-1", &PatchParams::default(), &Patch::Merge(&relabel("web")))
        .await
        .unwrap();
    h.quiet().await;
    assert!(
        addresses(&h.endpoints("web").await.unwrap())
            .0
            .contains(&"10.0.0.2".to_owned())
    );

    // A change that does not touch any endpoint writes nothing.
    let before = h.endpoint_writes();
    let annotate = json!({"metadata": {"annotations": {"note": "hello"}}});
    h.pods()
        .patch("web-2", &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap();
    let svc_annotate = json!({"metadata": {"annotations": {"owner": "team-a"}}});
    services
        .patch("web", &PatchParams::default(), &Patch::Merge(&svc_annotate))
        .await
        .unwrap();
    h.quiet().await;
    assert_eq!(h.endpoint_writes(), before, "no-op changes caused writes");

    // The selector narrows to one pod.
    h.pods()
        .patch(
            "web-2",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"track": "canary"}}})),
        )
        .await
        .unwrap();
    let selector = json!({"spec": {"selector": {"app": "web", "track": "canary"}}});
    services
        .patch("web", &PatchParams::default(), &Patch::Merge(&selector))
        .await
        .unwrap();
    h.quiet().await;
    assert_eq!(
        addresses(&h.endpoints("web").await.unwrap()),
        (vec!["10.0.0.3".into()], vec![])
    );

    // The Service goes, and its Endpoints with it.
    services.delete("web", &DeleteParams::default()).await.unwrap();
    h.quiet().await;
    assert!(h.endpoints("web").await.is_none());

    let writes = h.endpoint_writes();
    assert_eq!(writes.first().map(String::as_str), Some("create web"));
    assert_eq!(writes.last().map(String::as_str), Some("delete web"));
    assert_eq!(
        writes.iter().filter(|w| w.starts_with("delete")).count(),
        1,
        "one DELETE, not two: {writes:?}"
    );
    h.stop().await;
}

/// Waits, with a deadline, until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_puts_hand_edited_endpoints_right_and_writes_nothing_else() {
    // Endpoints edits are not watched (as upstream): only a sync of the
    // Service puts them right, and the periodic resync brings one.
    let h = Harness::start_with_resync(Some(Duration::from_millis(300))).await;
    let services: Api<Service> = Api::namespaced(h.client.clone(), "default");
    for name in ["web", "idle"] {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
        }))
        .unwrap();
        services.create(&PostParams::default(), &service).await.unwrap();
    }
    h.pods()
        .create(&PostParams::default(), &pod("web-0", &json!({"app": "web"})))
        .await
        .unwrap();
    h.set_status("web-0", "10.0.0.1", true).await;
    eventually("web's endpoints", || async {
        h.endpoints("web")
            .await
            .is_some_and(|ep| addresses(&ep).0 == ["10.0.0.1"])
    })
    .await;
    eventually("idle's endpoints", || async { h.endpoints("idle").await.is_some() }).await;

    let before = h.endpoint_writes().len();
    for round in 0..2 {
        let mut edited = h.endpoints("web").await.unwrap();
        edited.subsets.as_mut().unwrap()[0].addresses.as_mut().unwrap()[0].ip = format!("10.9.9.{round}");
        Api::<Endpoints>::namespaced(h.client.clone(), "default")
            .replace("web", &PostParams::default(), &edited)
            .await
            .unwrap();
        eventually("the resync to put web right", || async {
            addresses(&h.endpoints("web").await.unwrap()).0 == ["10.0.0.1"]
        })
        .await;
    }
    let writes = h.endpoint_writes();
    assert_eq!(writes.iter().filter(|w| *w == "create idle").count(), 1);
    assert!(
        !writes.iter().any(|w| w == "update idle"),
        "resyncs of a converged Service wrote: {writes:?}"
    );
    assert_eq!(
        writes[before..],
        ["update web", "update web"],
        "one correction per edit: {writes:?}"
    );
    h.stop().await;
}
