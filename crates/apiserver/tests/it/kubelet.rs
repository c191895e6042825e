use std::time::Duration;

use ecm_apiserver::{Config, KubeletConfig};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::{eventually, obj, start};

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn scheduled_pods_get_ips_and_become_ready() {
    let kubelet = KubeletConfig::default()
        .pod_cidrs(["10.244.0.0/16", "fd00:10:244::/64"])
        .ready_delay(Duration::from_millis(50))
        .termination_delay(Duration::from_millis(50));
    let h = start(Config::default().kubelet(kubelet)).await;
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let p: Pod = obj(
        json!({"metadata": {"name": "p"}, "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "i"}]}}),
    );
    pods.create(&PostParams::default(), &p).await.unwrap();
    let pod = eventually("pod ready", || async { pods.get("p").await.ok().filter(ready) }).await;
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.1"));
    let ips: Vec<String> = status.pod_ips.unwrap().into_iter().map(|i| i.ip).collect();
    assert_eq!(ips, ["10.244.0.1", "fd00:10:244::1"]);
    let cond = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(cond.last_transition_time.is_some());
    let nodes: Api<Node> = Api::all(h.client.clone());
    assert!(nodes.get("node-a").await.is_ok(), "missing node created");

    let deleting = pods
        .delete("p", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("graceful");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    eventually("pod removed by the kubelet", || async {
        pods.get_opt("p").await.unwrap().is_none().then_some(())
    })
    .await;
    assert_eq!(h.server.write_log().len(), 2, "kubelet writes are internal");
}
