//! Looking an object up by namespace and name allocates nothing, and
//! building an [`ObjectKey`] allocates once: a sync reads its Service and
//! each changed pod through [`Lister::get`], so these sit on the path of
//! every change.
//!
//! Tests of their own binary: the counting allocator is global.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::sync::Arc;

use ecm_informer::{Lister, ObjectKey, Store};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations made by `f`, and its result.
fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let region = Region::new(GLOBAL);
    let out = f();
    (region.change().allocations, out)
}

fn service(namespace: &str, name: &str) -> Arc<Service> {
    Arc::new(Service {
        metadata: ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Service::default()
    })
}

#[test]
fn a_lister_look_up_allocates_nothing() {
    let store = Store::new();
    for i in 0..100 {
        store.insert(service("shop", &format!("web-{i}")));
        store.insert(service("shop-2", &format!("web-{i}")));
    }
    let lister = Lister::new(store);

    let (count, found) = allocations(|| lister.get("shop", "web-42"));
    assert_eq!(found.unwrap().metadata.name.as_deref(), Some("web-42"));
    assert_eq!(count, 0, "a hit");
    let (count, missing) = allocations(|| lister.get("shop", "web-100"));
    assert!(missing.is_none());
    assert_eq!(count, 0, "a miss");
    // The namespace and name are not merely concatenated: `shop/web-1` is
    // not `shop-2`'s `web-1`, nor a name `shop/web-1`.
    assert_eq!(
        lister.get("shop-2", "web-1").unwrap().metadata.namespace.as_deref(),
        Some("shop-2")
    );
    assert!(lister.get("", "shop/web-1").is_none());
}

#[test]
fn a_cluster_scoped_look_up_allocates_nothing() {
    let store = Store::new();
    store.insert(Arc::new(Namespace {
        metadata: ObjectMeta {
            name: Some("shop".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }));
    let lister = Lister::new(store);
    let (count, found) = allocations(|| lister.get("", "shop"));
    assert!(found.is_some());
    assert_eq!(count, 0);
}

#[test]
fn a_key_is_one_allocation() {
    let (count, key) = allocations(|| ObjectKey::new("kube-system", "coredns"));
    assert_eq!(key.as_str(), "kube-system/coredns");
    assert_eq!(count, 1, "namespaced");
    let (count, key) = allocations(|| ObjectKey::new("", "node-1"));
    assert_eq!(key.as_str(), "node-1");
    assert_eq!(count, 1, "cluster-scoped");
    // The longest namespace (63) and the longest name (253).
    let (namespace, name) = ("n".repeat(63), "x".repeat(253));
    let (count, key) = allocations(|| ObjectKey::new(&namespace, &name));
    assert_eq!((key.namespace(), key.name()), (namespace.as_str(), name.as_str()));
    assert_eq!(count, 1, "longest");
}
