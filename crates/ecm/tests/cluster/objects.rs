//! The objects of a chaos world, as JSON: nodes with a zone, Services with
//! two ports, pods with named container ports.

use serde_json::{Value, json};

/// Namespace of everything.
pub(crate) const NAMESPACE: &str = "default";

/// Finalizer some pods carry, so that deleting them leaves them terminating
/// until the churn removes it.
pub(crate) const HOLD: &str = "chaos.ecm.dev/hold";

/// Node `name` in `zone`, Ready.
pub(crate) fn node(name: &str, zone: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"cpu": "4"}}})
}

/// Service `svc-{index}` selecting `app=app-{index}`. `variant` picks the
/// `http` port (80 or 81) and its target (the named port `web` or 8080);
/// the `metrics` port always targets the named port `metrics`.
pub(crate) fn service(index: usize, variant: u8) -> Value {
    let port = if variant & 1 == 0 { 80 } else { 81 };
    let target = if variant & 2 == 0 { json!("web") } else { json!(8080) };
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{index}"), "namespace": NAMESPACE},
        "spec": {"selector": {"app": format!("app-{index}")},
                 "clusterIP": format!("10.96.0.{}", 10 + index), "clusterIPs": [format!("10.96.0.{}", 10 + index)],
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "type": "ClusterIP",
                 "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"},
                           {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]}})
}

/// What a pod is made of.
#[derive(Debug, Clone)]
pub(crate) struct PodSpec {
    /// Name.
    pub(crate) name: String,
    /// The `app` label (which Service selects it).
    pub(crate) app: String,
    /// Its IP, unique over the run.
    pub(crate) ip: String,
    /// Node it runs on.
    pub(crate) node: String,
    /// Ready condition.
    pub(crate) ready: bool,
    /// Container port named `web` (8080 or 8081).
    pub(crate) web: u16,
    /// Whether it has a container port named `metrics`.
    pub(crate) metrics: bool,
    /// Whether it carries the [`HOLD`] finalizer.
    pub(crate) hold: bool,
}

/// The Pod object of `spec`, Running.
pub(crate) fn pod(spec: &PodSpec) -> Value {
    let mut ports = vec![json!({"name": "web", "containerPort": spec.web, "protocol": "TCP"})];
    if spec.metrics {
        ports.push(json!({"name": "metrics", "containerPort": 9100, "protocol": "TCP"}));
    }
    let finalizers: Vec<&str> = if spec.hold { vec![HOLD] } else { vec![] };
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": spec.name, "namespace": NAMESPACE, "labels": {"app": spec.app}, "finalizers": finalizers},
        "spec": {"nodeName": spec.node, "containers": [{"name": "app", "image": "app:1", "ports": ports}]},
        "status": {"phase": "Running", "podIP": spec.ip, "podIPs": [{"ip": spec.ip}],
                   "conditions": [{"type": "Ready", "status": if spec.ready { "True" } else { "False" }}]}})
}

/// Sets a stored pod's Ready condition.
pub(crate) fn set_ready(pod: &mut Value, ready: bool) {
    pod["status"]["conditions"] = json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
}

/// A stored object ready to be stored again with [`ecm_apiserver::ApiServer::insert_object`].
pub(crate) fn for_reinsert(mut object: Value) -> Value {
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    object
}
