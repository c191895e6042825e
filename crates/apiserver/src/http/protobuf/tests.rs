//! Round trips JSON → protobuf → JSON of every stored kind, and checks of
//! the bytes against k8s-pb's generated types.

use k8s_pb::api::core::v1 as pbcore;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message as _;
use serde_json::{Value, json};

use super::{decode, encode, read_watch_frames, supports, watch_frame};
use crate::resources::builtin_resources;

/// The JSON a protobuf round trip keeps: no empty strings, lists or maps
/// (`omitempty`; protobuf has no empty-versus-absent).
fn normalized(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(a) => {
            let items: Vec<Value> = a.iter().filter_map(normalized).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(o) => {
            let fields: serde_json::Map<String, Value> = o
                .iter()
                .filter_map(|(k, v)| normalized(v).map(|v| (k.clone(), v)))
                .collect();
            Some(Value::Object(fields))
        }
        other => Some(other.clone()),
    }
}

fn round_trip(obj: &Value) -> Value {
    let bytes = encode(obj).unwrap_or_else(|e| panic!("encode {}: {e}", obj["kind"]));
    assert_eq!(&bytes[..4], b"k8s\0");
    decode(&bytes).unwrap_or_else(|e| panic!("decode {}: {e}", obj["kind"]))
}

fn assert_round_trip(obj: &Value) {
    let back = round_trip(obj);
    assert_eq!(normalized(&back), normalized(obj), "{}", obj["kind"]);
}

fn meta(name: &str) -> Value {
    json!({
        "name": name,
        "namespace": "default",
        "uid": "0b7a3c4e-5f6a-4b8c-9d0e-1f2a3b4c5d6e",
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": "2026-01-02T03:04:05Z",
        "deletionTimestamp": "2026-01-02T03:05:05Z",
        "deletionGracePeriodSeconds": 30,
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"a": "b"},
        "finalizers": ["example.com/f"],
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u-1", "controller": true, "blockOwnerDeletion": false}],
        "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "time": "2026-01-02T03:04:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}],
    })
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta("web-0"),
        "spec": {
            "containers": [{
                "name": "c", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"}, {"name": "NODE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}],
                "envFrom": [{"configMapRef": {"name": "cm", "optional": true}}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"}, "periodSeconds": 5, "failureThreshold": 3},
                "livenessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 0},
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true}],
                "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                "imagePullPolicy": "IfNotPresent",
            }],
            "volumes": [{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420, "items": [{"key": "k", "path": "p"}]}}, {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
            "nodeName": "node-1", "hostNetwork": false, "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst", "setHostnameAsFQDN": true,
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}],
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}, {"ip": "fd00::5"}],
            "startTime": "2026-01-02T03:04:06Z", "qosClass": "Burstable",
            "conditions": [
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-01-02T03:04:10Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-02T03:04:05Z"},
            ],
            "containerStatuses": [{
                "name": "c", "ready": true, "started": true, "restartCount": 0, "image": "nginx:1.27", "imageID": "sha256:abc",
                "containerID": "containerd://123", "state": {"running": {"startedAt": "2026-01-02T03:04:08Z"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2026-01-02T03:00:00Z", "finishedAt": "2026-01-02T03:01:00Z"}},
            }],
        },
    })
}

fn kinds() -> Vec<Value> {
    vec![
        pod(),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("web"), "spec": {
            "type": "LoadBalancer", "selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00:96::a"],
            "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack", "externalIPs": ["1.2.3.4"],
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": 30080, "appProtocol": "http"}, {"name": "metrics", "port": 9090, "targetPort": 9091}],
            "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000, "publishNotReadyAddresses": true,
            "internalTrafficPolicy": "Cluster", "trafficDistribution": "PreferClose", "allocateLoadBalancerNodePorts": false,
        }, "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP"}]}]}, "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-02T03:04:05Z", "reason": "R", "message": "m", "observedGeneration": 2}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta("web-abcde"), "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.1.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false}, "nodeName": "node-1", "zone": "a",
                 "hostname": "web-0", "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u-2"},
                 "hints": {"forZones": [{"name": "a"}], "forNodes": [{"name": "node-1"}]}, "deprecatedTopology": {"kubernetes.io/hostname": "node-1"}},
                {"addresses": ["10.1.0.6"], "conditions": {"ready": false, "serving": false, "terminating": true}},
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}, {"port": 53, "protocol": "UDP"}]}),
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("web"), "subsets": [{
            "addresses": [{"ip": "10.1.0.5", "hostname": "web-0", "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "default"}}],
            "notReadyAddresses": [{"ip": "10.1.0.6"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]}]}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": meta("node-1"),
            "spec": {"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.1.0.0/24", "fd00:1::/64"], "providerID": "kind://node-1", "unschedulable": true,
                     "taints": [{"key": "k", "value": "v", "effect": "NoSchedule", "timeAdded": "2026-01-02T03:04:05Z"}]},
            "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"}, "allocatable": {"cpu": "3800m"},
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "node-1"}],
                       "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-02T03:04:05Z", "lastTransitionTime": "2026-01-02T03:04:05Z", "reason": "KubeletReady", "message": "ok"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                       "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1", "osImage": "Debian", "containerRuntimeVersion": "containerd://2", "kubeletVersion": "v1.36.0", "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
                       "images": [{"names": ["nginx:1.27"], "sizeBytes": 70_000_000_i64}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web"), "spec": {
            "replicas": 0, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x", "resources": {}}]}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, "minReadySeconds": 5, "paused": false},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1, "unavailableReplicas": 1,
                       "conditions": [{"type": "Available", "status": "False", "lastUpdateTime": "2026-01-02T03:04:05Z", "lastTransitionTime": "2026-01-02T03:04:05Z", "reason": "MinimumReplicasUnavailable", "message": "m"}]}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta("ecm"), "spec": {
            "holderIdentity": "ecm-0", "leaseDurationSeconds": 15, "acquireTime": "2026-01-02T03:04:05.123456Z",
            "renewTime": "2026-01-02T03:04:20.000001Z", "leaseTransitions": 2}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": meta("web.1"), "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u", "apiVersion": "v1", "resourceVersion": "1", "fieldPath": "spec.containers{c}"},
            "reason": "Started", "message": "Started container c", "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2026-01-02T03:04:05Z", "lastTimestamp": "2026-01-02T03:04:06Z", "count": 2, "type": "Normal",
            "eventTime": "2026-01-02T03:04:05.000100Z", "series": {"count": 2, "lastObservedTime": "2026-01-02T03:04:06.500000Z"},
            "action": "Start", "reportingComponent": "kubelet", "reportingInstance": "node-1"}),
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("web.2"), "eventTime": "2026-01-02T03:04:05.654321Z",
            "reportingController": "ecm", "reportingInstance": "ecm-0", "action": "Sync", "reason": "FailedToUpdateEndpoint", "note": "n",
            "type": "Warning", "regarding": {"kind": "Service", "name": "web"}, "deprecatedCount": 3, "deprecatedFirstTimestamp": "2026-01-02T03:04:05Z"}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cm"), "data": {"k": "v", "empty-value-is-kept-out": "x"}, "binaryData": {"b": "AAEC/w=="}, "immutable": true}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("s"), "type": "Opaque", "data": {"password": "c2VjcmV0"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo", "labels": {"kubernetes.io/metadata.name": "foo"}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("sa"), "automountServiceAccountToken": false, "secrets": [{"name": "t"}]}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta("web-1"), "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}, "status": {"replicas": 2, "fullyLabeledReplicas": 2}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}], "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("rb"), "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "default"}]}),
    ]
}

#[test]
fn every_stored_kind_round_trips() {
    for obj in kinds() {
        assert_round_trip(&obj);
    }
}

#[test]
fn every_builtin_resource_has_messages() {
    for info in builtin_resources() {
        assert!(supports(&info.api_version(), &info.kind), "{}", info.kind);
        assert!(supports(&info.api_version(), &info.list_kind()), "{}", info.list_kind());
    }
}

#[test]
fn lists_and_status_round_trip() {
    let list = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "7", "continue": "c", "remainingItemCount": 3}, "items": [pod()]});
    let back = round_trip(&list);
    // Items of a list carry no apiVersion/kind in protobuf, as upstream.
    let mut expected = list.clone();
    if let Some(item) = expected["items"][0].as_object_mut() {
        item.remove("apiVersion");
        item.remove("kind");
    }
    assert_eq!(normalized(&back), normalized(&expected));
    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": "pods \"x\" not found", "reason": "NotFound", "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueInvalid", "message": "m", "field": "spec"}], "retryAfterSeconds": 1}, "code": 404});
    assert_round_trip(&status);
}

#[test]
fn the_bytes_are_what_k8s_pb_reads() {
    let bytes = encode(&kinds()[4]).expect("node");
    let unknown = Unknown::decode(&bytes[4..]).expect("envelope");
    let type_meta = unknown.type_meta.expect("typeMeta");
    assert_eq!(type_meta.api_version.as_deref(), Some("v1"));
    assert_eq!(type_meta.kind.as_deref(), Some("Node"));
    let node = pbcore::Node::decode(unknown.raw.expect("raw").as_slice()).expect("a Node");
    let spec = node.spec.expect("spec");
    assert_eq!(spec.pod_cid_rs, vec!["10.1.0.0/24", "fd00:1::/64"]);
    let status = node.status.expect("status");
    let port = status
        .daemon_endpoints
        .and_then(|d| d.kubelet_endpoint)
        .and_then(|k| k.port);
    assert_eq!(port, Some(10250));
    let cpu = status.capacity.get("cpu").and_then(|q| q.string.clone());
    assert_eq!(cpu.as_deref(), Some("4"));
    let created = node.metadata.and_then(|m| m.creation_timestamp).and_then(|t| t.seconds);
    assert_eq!(created, Some(1_767_323_045));

    let bytes = encode(&pod()).expect("pod");
    let unknown = Unknown::decode(&bytes[4..]).expect("envelope");
    let pod = pbcore::Pod::decode(unknown.raw.expect("raw").as_slice()).expect("a Pod");
    let spec = pod.spec.expect("spec");
    // Volume.volumeSource is inline in JSON, a message in protobuf.
    let cm = spec.volumes[0]
        .volume_source
        .as_ref()
        .and_then(|s| s.config_map.as_ref());
    let cm_name = cm
        .and_then(|c| c.local_object_reference.as_ref())
        .and_then(|r| r.name.clone());
    assert_eq!(cm_name.as_deref(), Some("cm"));
    // IntOrString: a string port is type 1.
    let probe = spec.containers[0]
        .readiness_probe
        .as_ref()
        .and_then(|p| p.handler.as_ref());
    let port = probe
        .and_then(|h| h.http_get.as_ref())
        .and_then(|g| g.port.clone())
        .expect("port");
    assert_eq!((port.r#type, port.str_val.as_deref()), (Some(1), Some("http")));
    let status = pod.status.expect("status");
    let ips: Vec<_> = status.pod_ips.iter().filter_map(|i| i.ip.clone()).collect();
    assert_eq!(ips, vec!["10.1.0.5", "fd00::5"]);
}

#[test]
fn decoding_drops_what_go_writes_for_empty_fields() {
    // What kubectl sends for `create namespace foo`: Go writes every
    // non-pointer string and the zero creationTimestamp.
    let ns = pbcore::Namespace {
        metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("foo".into()),
            generate_name: Some(String::new()),
            namespace: Some(String::new()),
            uid: Some(String::new()),
            resource_version: Some(String::new()),
            creation_timestamp: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::Time {
                seconds: Some(-62_135_596_800),
                nanos: Some(0),
            }),
            ..Default::default()
        }),
        spec: Some(pbcore::NamespaceSpec::default()),
        status: Some(pbcore::NamespaceStatus {
            phase: Some(String::new()),
            ..Default::default()
        }),
    };
    let unknown = Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
        }),
        raw: Some(ns.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut bytes = b"k8s\0".to_vec();
    bytes.extend(unknown.encode_to_vec());
    let v = decode(&bytes).expect("decodes");
    assert_eq!(
        v,
        json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "foo"}, "spec": {}, "status": {}})
    );
}

#[test]
fn undecodable_bodies_are_errors() {
    assert!(decode(b"{\"kind\":\"Pod\"}").is_err());
    assert!(decode(b"k8s\0\xff\xff").is_err());
    let unknown_kind = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    assert!(encode(&unknown_kind).is_err());
    let wrong_type = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": 5}});
    assert!(encode(&wrong_type).is_err());
}

#[test]
fn watch_frames_carry_enveloped_objects() {
    let mut body = Vec::new();
    body.extend_from_slice(&watch_frame("ADDED", &pod()).expect("frame"));
    body.extend_from_slice(&watch_frame("DELETED", &kinds()[1]).expect("frame"));
    let events = read_watch_frames(&body).expect("frames");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].0, "ADDED");
    assert_eq!(normalized(&events[0].1), normalized(&pod()));
    assert_eq!(events[1].0, "DELETED");
    assert_eq!(events[1].1["kind"], "Service");
    // The frame: 4-byte big-endian length, then a bare WatchEvent.
    let len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    let first = k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent::decode(&body[4..4 + len]).expect("event");
    assert_eq!(first.r#type.as_deref(), Some("ADDED"));
    let raw = first.object.and_then(|o| o.raw).expect("raw");
    assert_eq!(&raw[..4], b"k8s\0");
}
