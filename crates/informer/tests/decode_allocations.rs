//! `WithoutManagedFields` skips `metadata.managedFields` without building
//! them: decoding an object with a large `managedFields` allocates exactly
//! what decoding the same object without them does, while a full decode
//! allocates for every key of the `fieldsV1` trees.
//!
//! One test in its own binary: the counting allocator is global.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;

use ecm_informer::WithoutManagedFields;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations made by `f`.
fn allocations(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    region.change().allocations
}

fn slice(managed_fields: Option<Value>) -> Vec<u8> {
    let mut slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "web-x7k2p", "namespace": "shop", "resourceVersion": "7",
            "labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    });
    if let Some(fields) = managed_fields {
        slice["metadata"]["managedFields"] = fields;
    }
    serde_json::to_vec(&slice).unwrap()
}

/// `managers` entries of `fields` fields each, two levels deep.
fn managed_fields(managers: usize, fields: usize) -> Value {
    let tree: serde_json::Map<String, Value> = (0..fields)
        .map(|i| (format!("f:field-{i}"), json!({".": {}, "f:inner": {}})))
        .collect();
    (0..managers)
        .map(|i| json!({"manager": format!("manager-{i}"), "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": tree}))
        .collect()
}

#[test]
fn skipped_managed_fields_cost_no_allocation() {
    let without = slice(None);
    let small = slice(Some(managed_fields(1, 5)));
    let big = slice(Some(managed_fields(3, 50)));

    let lean = |bytes: &[u8]| {
        allocations(|| drop(serde_json::from_slice::<WithoutManagedFields<EndpointSlice>>(bytes).unwrap()))
    };
    let full = |bytes: &[u8]| allocations(|| drop(serde_json::from_slice::<EndpointSlice>(bytes).unwrap()));

    let (lean_without, lean_small, lean_big) = (lean(&without), lean(&small), lean(&big));
    let (full_without, full_small, full_big) = (full(&without), full(&small), full(&big));
    println!(
        "allocations without / with 5 / with 150 managed fields: full {full_without} / {full_small} / {full_big}, \
         skipped {lean_without} / {lean_small} / {lean_big}"
    );
    // Skipping reads nested values on serde_json's scratch stack: one
    // allocation however large the skipped value.
    assert_eq!(
        lean_big, lean_small,
        "skipping allocated in proportion to managedFields"
    );
    assert!(
        lean_small <= lean_without + 1,
        "skipping allocated: {lean_small} vs {lean_without}"
    );
    assert!(
        full_big > full_without + 300,
        "a full decode should build the trees: {full_big} vs {full_without} allocations"
    );
}
