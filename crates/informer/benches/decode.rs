//! Decoding a watched object as kube-apiserver sends it, `managedFields`
//! included: in full and then stripped (the informers before
//! [`WithoutManagedFields`]), and without building them.
//!
//! The objects are what the endpoint controllers watch, with the
//! `managedFields` their writers leave on a real cluster: an EndpointSlice
//! of 10 and of 100 endpoints written by kube-controller-manager, a Service
//! applied by Helm (server-side apply) with its status by the cloud
//! controller, and a Node with the kubelet's and the node controller's
//! entries. Run with `cargo bench -p ecm-informer --bench decode` (add
//! `-- --quick` for a short run).

// A benchmark that cannot set up must stop loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ecm_informer::{WithoutManagedFields, strip_managed_fields};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// The `fieldsV1` tree of `value`: every field as `f:<name>`, list items
/// with a merge key as `k:{...}`, other lists atomic.
fn fields_of(value: &Value, merge_key: fn(&str) -> Option<&'static str>) -> Value {
    let Value::Object(map) = value else { return json!({}) };
    let mut out = Map::new();
    for (name, child) in map {
        let entry = match (child, merge_key(name)) {
            (Value::Array(items), Some(key)) => {
                let mut list = Map::new();
                list.insert(".".into(), json!({}));
                for item in items {
                    let mut fields = fields_of(item, merge_key);
                    fields.as_object_mut().unwrap().insert(".".into(), json!({}));
                    list.insert(format!("k:{}", json!({ key: item[key] })), fields);
                }
                Value::Object(list)
            }
            (Value::Object(_), _) => {
                let mut fields = fields_of(child, merge_key);
                fields.as_object_mut().unwrap().insert(".".into(), json!({}));
                fields
            }
            // Scalars, and lists without a merge key (atomic).
            _ => json!({}),
        };
        out.insert(format!("f:{name}"), entry);
    }
    Value::Object(out)
}

fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "addresses" | "conditions" | "taints" => Some("type"),
        "ports" => Some("port"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

fn entry(manager: &str, subresource: &str, fields: Value) -> Value {
    let mut entry = json!({"manager": manager, "operation": if manager == "helm" { "Apply" } else { "Update" },
        "apiVersion": "v1", "time": "2026-12-07T10:00:00Z", "fieldsType": "FieldsV1", "subresource": subresource});
    entry["fieldsV1"] = fields;
    entry
}

fn slice(endpoints: usize) -> Value {
    let metadata = json!({"name": "web-x7k2p", "generateName": "web-", "namespace": "shop",
        "uid": "3f0c2a1e-8d7b-4c7e-9a55-1b2c3d4e5f60", "resourceVersion": "48213377", "generation": 12,
        "creationTimestamp": "2026-12-07T10:00:00Z",
        "labels": {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            "app.kubernetes.io/name": "web"},
        "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-12-07T10:00:00Z"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web",
            "uid": "7d3c0b6a-2f1e-4d5c-8b9a-0e1f2a3b4c5d", "controller": true, "blockOwnerDeletion": true}]});
    let mut slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": metadata,
        "endpoints": (0..endpoints).map(|i| json!({
            "addresses": [format!("10.1.{}.{}", i / 250, i % 250 + 1)],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": format!("node-{}", i % 100), "zone": "europe-west1-b",
            "targetRef": {"kind": "Pod", "namespace": "shop", "name": format!("web-6d9f7c8b5-{i:05}"),
                "uid": format!("0b5c{i:04}-1a2b-4c3d-8e9f-a0b1c2d3e4f5")}})).collect::<Vec<_>>(),
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    });
    let fields = fields_of(
        &json!({"metadata": slice["metadata"].clone(), "addressType": "", "endpoints": [],
        "ports": []}),
        merge_key,
    );
    // Only what the controller writes: not the server's own fields.
    let mut fields = fields;
    for server_field in [
        "f:uid",
        "f:resourceVersion",
        "f:generation",
        "f:creationTimestamp",
        "f:name",
        "f:namespace",
    ] {
        fields["f:metadata"].as_object_mut().unwrap().remove(server_field);
    }
    slice["metadata"]["managedFields"] = json!([entry("kube-controller-manager", "", fields)]);
    slice
}

fn service() -> Value {
    let spec = json!({"selector": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web"},
        "type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}],
        "sessionAffinity": "None", "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
        "clusterIP": "10.96.14.2", "clusterIPs": ["10.96.14.2"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"});
    let labels = json!({"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web",
        "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "web-1.4.2", "app.kubernetes.io/version": "2.7.0"});
    let annotations = json!({"meta.helm.sh/release-name": "web", "meta.helm.sh/release-namespace": "shop"});
    let status = json!({"loadBalancer": {"ingress": [{"ip": "34.76.1.20", "ipMode": "VIP"}]}});
    let applied = fields_of(
        &json!({"metadata": {"labels": labels, "annotations": annotations},
        "spec": {"selector": spec["selector"], "type": "", "ports": spec["ports"]}}),
        merge_key,
    );
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "uid": "7d3c0b6a-2f1e-4d5c-8b9a-0e1f2a3b4c5d",
            "resourceVersion": "48213001", "creationTimestamp": "2026-11-02T08:00:00Z",
            "labels": labels, "annotations": annotations, "finalizers": ["service.kubernetes.io/load-balancer-cleanup"],
            "managedFields": [entry("helm", "", applied),
                entry("cloud-controller-manager", "status", fields_of(&json!({"status": status}), merge_key)),
                entry("cloud-controller-manager", "", json!({"f:metadata": {"f:finalizers": {".": {}}}}))]},
        "spec": spec, "status": status})
}

fn node() -> Value {
    let condition = |kind: &str, status: &str| {
        json!({"type": kind, "status": status,
        "lastHeartbeatTime": "2026-12-07T10:00:00Z", "lastTransitionTime": "2026-11-02T08:00:00Z",
        "reason": format!("Kubelet{kind}"), "message": format!("kubelet reports {kind} {status}")})
    };
    let status = json!({
        "capacity": {"cpu": "8", "ephemeral-storage": "101430960Ki", "hugepages-2Mi": "0", "memory": "32882124Ki", "pods": "110"},
        "allocatable": {"cpu": "7910m", "ephemeral-storage": "47093746742", "hugepages-2Mi": "0", "memory": "29437900Ki", "pods": "110"},
        "conditions": [condition("MemoryPressure", "False"), condition("DiskPressure", "False"),
            condition("PIDPressure", "False"), condition("Ready", "True")],
        "addresses": [{"type": "InternalIP", "address": "10.132.0.17"}, {"type": "ExternalIP", "address": "34.76.1.17"},
            {"type": "Hostname", "address": "gke-pool-1-node-17"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": "5f1e", "systemUUID": "5f1e", "bootID": "a7c2", "kernelVersion": "6.6.56",
            "osImage": "Container-Optimized OS", "containerRuntimeVersion": "containerd://1.7.24",
            "kubeletVersion": "v1.36.0", "kubeProxyVersion": "v1.36.0", "operatingSystem": "linux", "architecture": "amd64"},
        "images": (0..30).map(|i| json!({"names": [format!("registry.example/team/image-{i}@sha256:{i:064x}"),
            format!("registry.example/team/image-{i}:v{i}")], "sizeBytes": 50_000_000 + i * 1_000_000})).collect::<Vec<_>>()
    });
    let labels = json!({"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux", "kubernetes.io/hostname": "gke-pool-1-node-17",
        "node.kubernetes.io/instance-type": "e2-standard-8", "topology.kubernetes.io/region": "europe-west1",
        "topology.kubernetes.io/zone": "europe-west1-b", "cloud.google.com/gke-nodepool": "pool-1"});
    let mut kubelet_status = status.clone();
    kubelet_status["images"] = json!([]);
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "gke-pool-1-node-17", "uid": "c0ffee00-1111-2222-3333-444455556666",
            "resourceVersion": "48213999", "creationTimestamp": "2026-11-02T08:00:00Z", "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            "managedFields": [
                entry("kubelet", "", fields_of(&json!({"metadata": {"labels": labels, "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": ""}}}), merge_key)),
                entry("kube-controller-manager", "", json!({"f:metadata": {"f:annotations": {"f:node.alpha.kubernetes.io/ttl": {}}},
                    "f:spec": {"f:podCIDR": {}, "f:podCIDRs": {".": {}, "v:\"10.4.17.0/24\"": {}}}})),
                entry("kubelet", "status", fields_of(&json!({"status": kubelet_status}), merge_key)),
            ]},
        "spec": {"podCIDR": "10.4.17.0/24", "podCIDRs": ["10.4.17.0/24"], "providerID": "gce://project/europe-west1-b/gke-pool-1-node-17"},
        "status": status})
}

fn decode_both<K>(c: &mut Criterion, name: &str, json: &Value)
where
    K: DeserializeOwned + kube::Resource,
{
    let bytes = serde_json::to_vec(json).unwrap();
    let fields = serde_json::to_vec(&json["metadata"]["managedFields"]).unwrap().len();
    let mut group = c.benchmark_group(format!("decode/{name}"));
    let label = format!("{} B, {fields} B of managedFields", bytes.len());
    group.bench_with_input(BenchmarkId::new("full then strip", &label), &bytes, |b, bytes| {
        b.iter(|| strip_managed_fields(serde_json::from_slice::<K>(black_box(bytes)).unwrap()));
    });
    group.bench_with_input(BenchmarkId::new("without managedFields", &label), &bytes, |b, bytes| {
        b.iter(|| {
            serde_json::from_slice::<WithoutManagedFields<K>>(black_box(bytes))
                .unwrap()
                .0
        });
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    decode_both::<EndpointSlice>(c, "endpointslice-10", &slice(10));
    decode_both::<EndpointSlice>(c, "endpointslice-100", &slice(100));
    decode_both::<Service>(c, "service", &service());
    decode_both::<Node>(c, "node", &node());
}

criterion_group!(benches, bench);
criterion_main!(benches);
