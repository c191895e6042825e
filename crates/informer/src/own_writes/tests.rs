use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::WatchEvent;
use serde_json::json;

use super::*;
use crate::WithoutManagedFields;

/// A slice as the API server stores it at `rv`, with one address.
fn slice(rv: &str, address: &str) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": "web-abcde", "namespace": "shop", "resourceVersion": rv, "uid": "u-1",
            "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": true}}],
    }))
    .unwrap()
}

/// The watch event line of `object` as kube-apiserver writes it: type
/// first, the object's metadata (with managedFields) before its content.
fn event_line(kind: &str, object: &EndpointSlice) -> Vec<u8> {
    let mut metadata = serde_json::to_value(&object.metadata).unwrap();
    metadata["managedFields"] = json!([{"manager": "ecm", "operation": "Update", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:endpoints": {}}}]);
    let endpoints = serde_json::to_string(&object.endpoints).unwrap();
    format!(
        r#"{{"type":"{kind}","object":{{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{metadata},"addressType":"IPv4","endpoints":{endpoints}}}}}"#
    )
    .into_bytes()
}

/// Decodes a watch event line as kube's watcher does, with `own` in scope.
fn decode_event(own: &Arc<OwnWrites>, line: &[u8]) -> EndpointSlice {
    let event: WatchEvent<WithoutManagedFields<EndpointSlice>> =
        with_scope(Some(Arc::clone(own)), || serde_json::from_slice(line)).unwrap();
    match event {
        WatchEvent::Added(object) | WatchEvent::Modified(object) | WatchEvent::Deleted(object) => object.0,
        other => panic!("unexpected event {other:?}"),
    }
}

#[test]
fn the_echo_of_a_recorded_write_is_the_object_recorded() {
    let own = Arc::new(OwnWrites::new());
    // Recorded with another address than the event carries, so that the
    // object returned shows where it came from.
    own.record(slice("7", "10.0.0.1"));
    let stored = slice("7", "10.9.9.9");

    let echoed = decode_event(&own, &event_line("MODIFIED", &stored));

    assert_eq!(echoed, slice("7", "10.0.0.1"), "the recorded object, not a decode");
    assert_eq!(own.reused(), 1);
    assert!(own.is_empty(), "an entry serves one echo");
    // The next event of the same version decodes.
    assert_eq!(decode_event(&own, &event_line("MODIFIED", &stored)), stored);
}

#[test]
fn other_versions_decode_and_only_newer_ones_drop_the_entry() {
    let own = Arc::new(OwnWrites::new());
    own.record(slice("7", "10.0.0.1"));

    let older = slice("6", "10.0.0.6");
    assert_eq!(decode_event(&own, &event_line("MODIFIED", &older)), older);
    assert_eq!(own.len(), 1, "an older event may still precede the echo");

    let newer = slice("8", "10.0.0.8");
    assert_eq!(decode_event(&own, &event_line("MODIFIED", &newer)), newer);
    assert!(own.is_empty(), "a newer version makes the entry useless");
    assert_eq!(own.reused(), 0);
}

#[test]
fn decoders_outside_an_informer_scope_or_of_other_kinds_decode() {
    let own = Arc::new(OwnWrites::new());
    own.record(slice("7", "10.0.0.1"));
    let stored = slice("7", "10.9.9.9");
    let line = event_line("MODIFIED", &stored);

    let event: WatchEvent<WithoutManagedFields<EndpointSlice>> = serde_json::from_slice(&line).unwrap();
    assert!(matches!(event, WatchEvent::Modified(WithoutManagedFields(s)) if s == stored));

    // A ConfigMap of the same namespace, name and version is not the slice.
    let mut config = ConfigMap::default();
    config.metadata.namespace = Some("shop".into());
    config.metadata.name = Some("web-abcde".into());
    config.metadata.resource_version = Some("7".into());
    own.record(config);
    let other = Arc::new(OwnWrites::new());
    other.record(slice("7", "10.0.0.1"));
    let config_json = br#"{"metadata":{"name":"web-abcde","namespace":"shop","resourceVersion":"7"},"data":{"k":"v"}}"#;
    let decoded: WithoutManagedFields<ConfigMap> =
        with_scope(Some(Arc::clone(&other)), || serde_json::from_slice(config_json)).unwrap();
    assert_eq!(decoded.0.data.unwrap()["k"], "v");
    assert_eq!(other.len(), 1, "the slice entry is untouched");
    assert_eq!(own.len(), 2);
}

#[test]
fn an_event_whose_object_comes_before_its_type_decodes() {
    // serde buffers such an object before decoding it: it cannot be read in
    // place, so it is decoded as usual and the entry stays.
    let own = Arc::new(OwnWrites::new());
    own.record(slice("7", "10.0.0.1"));
    let stored = slice("7", "10.9.9.9");
    let line = format!(
        r#"{{"object":{},"type":"MODIFIED"}}"#,
        serde_json::to_string(&WithoutManagedFields(stored.clone())).unwrap()
    );
    assert_eq!(decode_event(&own, line.as_bytes()), stored);
    assert_eq!(own.len(), 1);
}

#[test]
fn a_list_item_of_the_recorded_version_is_reused() {
    let own = Arc::new(OwnWrites::new());
    own.record(slice("7", "10.0.0.1"));
    let list = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList", "metadata": {"resourceVersion": "9"},
        "items": [slice("7", "10.9.9.9"), slice("3", "10.0.0.3")]});
    let bytes = serde_json::to_vec(&list).unwrap();
    let decoded: kube::core::ObjectList<WithoutManagedFields<EndpointSlice>> =
        with_scope(Some(Arc::clone(&own)), || serde_json::from_slice(&bytes)).unwrap();
    let addresses: Vec<_> = decoded
        .items
        .iter()
        .map(|s| s.0.endpoints.as_ref().unwrap()[0].addresses[0].clone())
        .collect();
    assert_eq!(addresses, ["10.0.0.1", "10.0.0.3"]);
    assert_eq!(own.reused(), 1);
}

#[test]
fn escaped_names_are_read_and_unnamed_objects_never_kept() {
    let own = Arc::new(OwnWrites::new());
    own.record(EndpointSlice::default());
    assert!(own.is_empty(), "no name or resourceVersion: nothing to match");

    own.record(slice("7", "10.0.0.1"));
    let line = String::from_utf8(event_line("ADDED", &slice("7", "10.9.9.9")))
        .unwrap()
        .replace(r#""name":"web-abcde""#, r#""name":"web\u002dabcde""#);
    assert_eq!(decode_event(&own, line.as_bytes()), slice("7", "10.0.0.1"));
}

#[test]
fn a_deleted_object_is_forgotten() {
    let own = OwnWrites::new();
    own.record(slice("7", "10.0.0.1"));
    own.forget::<ConfigMap>("shop", "web-abcde");
    assert_eq!(own.len(), 1, "another kind");
    own.forget::<EndpointSlice>("shop", "web-abcde");
    assert!(own.is_empty());
}

#[test]
fn too_many_entries_of_a_kind_are_dropped_together() {
    let own = OwnWrites::new();
    for i in 0..MAX_ENTRIES {
        let mut config = ConfigMap::default();
        config.metadata.name = Some(format!("c{i}"));
        config.metadata.resource_version = Some("1".into());
        own.record(config);
    }
    assert_eq!(own.len(), MAX_ENTRIES);
    own.record(slice("7", "10.0.0.1"));
    let mut config = ConfigMap::default();
    config.metadata.name = Some("one-more".into());
    config.metadata.resource_version = Some("1".into());
    own.record(config);
    assert_eq!(own.len(), 2, "the ConfigMaps start again; the slice stays");
}

#[test]
fn a_verifying_registry_reuses_an_equal_echo() {
    let own = Arc::new(OwnWrites::verifying());
    assert!(own.is_verifying());
    let stored = slice("7", "10.0.0.1");
    own.record(stored.clone());
    assert_eq!(decode_event(&own, &event_line("MODIFIED", &stored)), stored);
    assert_eq!(own.reused(), 1);
}

#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "own write differs from its echo"))]
fn a_verifying_registry_reports_a_differing_echo_and_uses_the_decoded_object() {
    let own = Arc::new(OwnWrites::verifying());
    own.record(slice("7", "10.0.0.1"));
    let stored = slice("7", "10.9.9.9");
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let echoed = metrics::with_local_recorder(&recorder, || decode_event(&own, &event_line("MODIFIED", &stored)));
    assert_eq!(echoed, stored);
    assert_eq!(own.reused(), 0);
    let counted = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .any(|(key, ..)| key.key().name() == OWN_WRITE_MISMATCHES_TOTAL);
    assert!(counted);
}
