//! The two lookups a pod change costs the endpoint controllers, with and
//! without the label index and the selector registry.
//!
//! One namespace holds `PODS` pods in Services of 10 pods each (`PODS / 10`
//! Services). A pod carries `app=<service>`, `tier=<one of 3>` and a
//! `pod-template-hash`; a Service selects `app=<service>,tier=<its tier>`.
//!
//! * `list_service_pods`: the pods of one Service, as a sync reads them
//!   (`Lister::list(namespace, selector)`): `scan` filters the namespace
//!   (a store without a label index, as before), `index` intersects the
//!   posting lists.
//! * `services_of_pod`: the Services selecting one pod, as the pod handler
//!   asks: `scan` lists the Services of the namespace and matches each
//!   selector (as before), `registry` asks a [`SelectorRegistry`].
//!
//! Each at 3 000 and 30 000 pods. Run with
//! `cargo bench -p ecm-informer --bench selector_index` (add `-- --quick`
//! for a short run).

// A benchmark that cannot set up must stop loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ecm_informer::{Lister, ObjectKey, Selector, SelectorRegistry, Store};
use k8s_openapi::api::core::v1::{Pod, Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

const NAMESPACE: &str = "bench";
const PODS_PER_SERVICE: usize = 10;
const SIZES: [usize; 2] = [3_000, 30_000];

fn meta(name: String, labels: Option<BTreeMap<String, String>>) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(NAMESPACE.into()),
        name: Some(name),
        labels,
        ..Default::default()
    }
}

fn selector_of(service: usize) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".to_owned(), format!("svc-{service}")),
        ("tier".to_owned(), format!("tier-{}", service % 3)),
    ])
}

fn pod_labels(pod: usize) -> BTreeMap<String, String> {
    let service = pod / PODS_PER_SERVICE;
    let mut labels = selector_of(service);
    labels.insert("pod-template-hash".to_owned(), format!("{service:08x}"));
    labels
}

/// The pod store (with or without label index) and the Service store and
/// registry for `pods` pods.
fn fixture(pods: usize, label_index: bool) -> (Store<Pod>, Store<Service>, SelectorRegistry) {
    let pod_store = Store::new();
    if label_index {
        pod_store.add_label_index();
    }
    for i in 0..pods {
        pod_store.insert(Arc::new(Pod {
            metadata: meta(format!("pod-{i}"), Some(pod_labels(i))),
            ..Default::default()
        }));
    }
    let services = Store::new();
    let registry = SelectorRegistry::new();
    for s in 0..pods / PODS_PER_SERVICE {
        let service = Service {
            metadata: meta(format!("svc-{s}"), None),
            spec: Some(ServiceSpec {
                selector: Some(selector_of(s)),
                ..Default::default()
            }),
            ..Default::default()
        };
        registry.register(ObjectKey::of(&service), Selector::from_labels(&selector_of(s)));
        services.insert(Arc::new(service));
    }
    (pod_store, services, registry)
}

fn list_service_pods(c: &mut Criterion) {
    let mut group = c.benchmark_group("list_service_pods");
    for pods in SIZES {
        let service = pods / PODS_PER_SERVICE / 2;
        let selector = Selector::from_labels(&selector_of(service));
        for (name, label_index) in [("scan", false), ("index", true)] {
            let lister = Lister::new(fixture(pods, label_index).0);
            assert_eq!(lister.list(NAMESPACE, &selector).len(), PODS_PER_SERVICE);
            group.bench_with_input(BenchmarkId::new(name, pods), &selector, |b, selector| {
                b.iter(|| black_box(lister.list(NAMESPACE, selector)));
            });
        }
    }
    group.finish();
}

fn services_of_pod(c: &mut Criterion) {
    let mut group = c.benchmark_group("services_of_pod");
    for pods in SIZES {
        let (_, services, registry) = fixture(pods, false);
        let services = Lister::new(services);
        let labels = pod_labels(pods / 2);
        let scan = |labels: &BTreeMap<String, String>| -> Vec<ObjectKey> {
            services
                .list(NAMESPACE, &Selector::everything())
                .iter()
                .filter(|svc| {
                    let selector = svc.spec.as_ref().and_then(|s| s.selector.as_ref());
                    selector.is_some_and(|sel| ecm_labels::ValidatedSetSelector::new(sel).matches(labels))
                })
                .map(|svc| ObjectKey::of(svc.as_ref()))
                .collect()
        };
        assert_eq!(scan(&labels).len(), 1);
        assert_eq!(registry.matching(NAMESPACE, &labels).len(), 1);
        group.bench_with_input(BenchmarkId::new("scan", pods), &labels, |b, labels| {
            b.iter(|| black_box(scan(labels)));
        });
        group.bench_with_input(BenchmarkId::new("registry", pods), &labels, |b, labels| {
            b.iter(|| black_box(registry.matching(NAMESPACE, labels)));
        });
    }
    group.finish();
}

criterion_group!(benches, list_service_pods, services_of_pod);
criterion_main!(benches);
