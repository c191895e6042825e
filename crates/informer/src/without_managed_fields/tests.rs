// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::WithoutManagedFields;
use crate::strip_managed_fields;

/// Entries as kube-apiserver writes them: one per manager and operation.
fn managed_fields() -> Value {
    json!([
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "discovery.k8s.io/v1",
         "time": "2026-12-07T10:00:00Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:addressType": {}, "f:endpoints": {}, "f:ports": {},
            "f:metadata": {"f:annotations": {".": {}, "f:endpoints.kubernetes.io/last-change-trigger-time": {}},
                "f:generateName": {}, "f:labels": {".": {}, "f:kubernetes.io/service-name": {}},
                "f:ownerReferences": {".": {}, "k:{\"uid\":\"7d3c\"}": {}}}}},
        {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2026-12-07T10:00:01Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}, "subresource": ""}
    ])
}

/// Decodes `json` both ways: through the wrapper, and fully and then
/// stripped as the default transform does; they must be equal.
fn assert_same<K>(json: &Value)
where
    K: DeserializeOwned + kube::Resource + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(json).unwrap();
    let lean = serde_json::from_str::<WithoutManagedFields<K>>(&text)
        .unwrap()
        .into_inner();
    let full = strip_managed_fields(serde_json::from_str::<K>(&text).unwrap());
    assert_eq!(lean, full, "{text}");
    // From a byte slice (borrowed keys) and from a `Value` (owned keys):
    // serde_json hands keys over differently.
    let from_slice = serde_json::from_slice::<WithoutManagedFields<K>>(text.as_bytes())
        .unwrap()
        .0;
    assert_eq!(from_slice, full);
    let from_value = serde_json::from_value::<WithoutManagedFields<K>>(json.clone())
        .unwrap()
        .0;
    assert_eq!(from_value, full);
}

fn slice_json() -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "web-x7k2p", "generateName": "web-", "namespace": "shop", "uid": "9a1b",
            "resourceVersion": "4711", "generation": 3, "creationTimestamp": "2026-12-07T10:00:00Z",
            "labels": {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-12-07T10:00:00Z"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "7d3c", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": managed_fields()},
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
             "nodeName": "node-1", "zone": "a", "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-1", "uid": "p1"}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "serving": false, "terminating": true}}
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
}

#[test]
fn every_watched_kind_decodes_as_a_full_decode_then_a_strip_would() {
    assert_same::<EndpointSlice>(&slice_json());
    assert_same::<Endpoints>(&json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"managedFields": managed_fields(), "name": "web", "namespace": "shop", "resourceVersion": "12",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": "10.0.0.1", "nodeName": "node-1"}], "ports": [{"port": 8080, "protocol": "TCP"}]}]
    }));
    assert_same::<Service>(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "5", "managedFields": managed_fields()},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ports": [{"port": 80, "targetPort": 8080}]},
        "status": {"loadBalancer": {}}
    }));
    assert_same::<Node>(&json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "a"}, "managedFields": managed_fields()},
        "status": {"allocatable": {"cpu": "4"}, "addresses": [{"type": "InternalIP", "address": "192.168.0.1"}]}
    }));
    assert_same::<Pod>(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "managedFields": managed_fields()},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        "status": {"podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
    }));
}

#[test]
fn the_projection_of_a_pod_decodes_the_same_way() {
    let json = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "resourceVersion": "9", "labels": {"app": "web"},
            "managedFields": managed_fields()},
        "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 8080, "name": "http"}]}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
            "conditions": [{"type": "Ready", "status": "True"}]}
    });
    let text = serde_json::to_string(&json).unwrap();
    let lean = serde_json::from_str::<WithoutManagedFields<ecm_types::PodProjection>>(&text)
        .unwrap()
        .0;
    let full = serde_json::from_str::<ecm_types::PodProjection>(&text).unwrap();
    assert_eq!(lean, full);
}

#[test]
fn only_the_objects_own_metadata_loses_its_managed_fields() {
    // The same key elsewhere is data: an annotation, a label, and the
    // metadata of a pod template inside the object.
    let mut json = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "managedFields": managed_fields(),
            "annotations": {"managedFields": "kept"}, "labels": {"managedFields": "kept"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}, "managedFields": managed_fields()},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    });
    assert_same::<Deployment>(&json);
    let lean = serde_json::from_value::<WithoutManagedFields<Deployment>>(json.clone())
        .unwrap()
        .0;
    assert_eq!(lean.metadata.managed_fields, None);
    assert_eq!(lean.metadata.annotations.unwrap()["managedFields"], "kept");
    assert_eq!(lean.metadata.labels.unwrap()["managedFields"], "kept");
    let template = lean.spec.unwrap().template.metadata.unwrap();
    assert_eq!(template.managed_fields.unwrap().len(), 2);

    // A key spelled with escapes is the same key once read.
    let text = serde_json::to_string(&json)
        .unwrap()
        .replacen("\"managedFields\"", "\"managed\\u0046ields\"", 1);
    let lean = serde_json::from_str::<WithoutManagedFields<Deployment>>(&text)
        .unwrap()
        .0;
    assert_eq!(lean.metadata.managed_fields, None);
    assert_eq!(lean.metadata.name.as_deref(), Some("web"));

    // No metadata, empty metadata, managedFields null: nothing to skip.
    json.as_object_mut().unwrap().remove("metadata");
    assert_same::<Deployment>(&json);
    json["metadata"] = json!({});
    assert_same::<Deployment>(&json);
    json["metadata"] = json!({"name": "web", "managedFields": null});
    assert_same::<Deployment>(&json);
}

#[test]
fn what_a_full_decode_refuses_it_refuses_too() {
    for bad in [
        json!({"kind": "EndpointSlice", "metadata": 5}),
        json!({"kind": "EndpointSlice", "metadata": {"name": 5}}),
        json!({"kind": "EndpointSlice", "addressType": "IPv4", "endpoints": {"not": "a list"}}),
        json!(["not", "an", "object"]),
        json!("a string"),
    ] {
        let text = serde_json::to_string(&bad).unwrap();
        assert!(serde_json::from_str::<EndpointSlice>(&text).is_err(), "{text}");
        assert!(
            serde_json::from_str::<WithoutManagedFields<EndpointSlice>>(&text).is_err(),
            "{text}"
        );
    }
    // Malformed JSON inside the skipped value is still malformed.
    let text = serde_json::to_string(&slice_json())
        .unwrap()
        .replacen("\"f:addressType\":{}", "\"f:addressType\":{", 1);
    assert!(serde_json::from_str::<WithoutManagedFields<EndpointSlice>>(&text).is_err());
}

#[test]
fn managed_fields_of_the_wrong_shape_are_skipped_like_any_other() {
    for odd in [
        json!(5),
        json!("text"),
        json!({"not": "a list"}),
        json!([{"manager": 7}]),
    ] {
        let mut json = slice_json();
        json["metadata"]["managedFields"] = odd;
        let text = serde_json::to_string(&json).unwrap();
        assert!(serde_json::from_str::<EndpointSlice>(&text).is_err(), "{text}");
        let lean = serde_json::from_str::<WithoutManagedFields<EndpointSlice>>(&text)
            .unwrap()
            .0;
        json["metadata"].as_object_mut().unwrap().remove("managedFields");
        assert_eq!(lean, serde_json::from_value::<EndpointSlice>(json).unwrap());
    }
}

#[test]
fn it_serializes_as_the_object_and_reads_the_same_collection() {
    use kube::Resource;
    let slice = serde_json::from_value::<EndpointSlice>(slice_json()).unwrap();
    let wrapped = WithoutManagedFields(slice.clone());
    assert_eq!(
        serde_json::to_value(&wrapped).unwrap(),
        serde_json::to_value(&slice).unwrap()
    );
    assert_eq!(
        WithoutManagedFields::<EndpointSlice>::url_path(&(), Some("shop")),
        EndpointSlice::url_path(&(), Some("shop"))
    );
    assert_eq!(WithoutManagedFields::<EndpointSlice>::kind(&()), "EndpointSlice");
    assert_eq!(
        WithoutManagedFields::<EndpointSlice>::api_version(&()),
        "discovery.k8s.io/v1"
    );
    assert_eq!(wrapped.meta().name.as_deref(), Some("web-x7k2p"));
}

/// Any JSON value: what `fieldsV1` and unknown fields may hold.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z:.\\\\\"{}]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z:.\"{}]{0,8}", inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Whatever the managers wrote, wherever the key sits among the
    /// metadata's keys, and whatever the labels hold: the same object.
    #[test]
    fn any_managed_fields_anywhere_in_the_metadata(
        fields in prop::collection::vec(any_json(), 0..3),
        labels in prop::collection::btree_map("[a-zA-Z]{1,6}", "[a-zA-Z]{0,6}", 0..4),
        position in 0_usize..6,
    ) {
        let entries: Vec<Value> = fields
            .into_iter()
            .map(|tree| json!({"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": tree}))
            .collect();
        let mut metadata: Vec<(String, Value)> = vec![
            ("name".into(), json!("web-x7k2p")),
            ("namespace".into(), json!("shop")),
            ("resourceVersion".into(), json!("7")),
            ("labels".into(), json!(labels)),
            ("uid".into(), json!("9a1b")),
        ];
        metadata.insert(position.min(metadata.len()), ("managedFields".into(), Value::from(entries)));
        // Written by hand so that the keys keep this order.
        let metadata_text = metadata
            .iter()
            .map(|(key, value)| format!("{}:{}", serde_json::to_string(key).unwrap(), value))
            .collect::<Vec<_>>()
            .join(",");
        let text = format!(
            r#"{{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{{{metadata_text}}},"addressType":"IPv4","endpoints":[]}}"#
        );
        let lean = serde_json::from_str::<WithoutManagedFields<EndpointSlice>>(&text).unwrap().0;
        let full = strip_managed_fields(serde_json::from_str::<EndpointSlice>(&text).unwrap());
        prop_assert_eq!(lean, full);
    }
}
