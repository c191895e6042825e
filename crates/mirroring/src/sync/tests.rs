//! Upstream's `TestSyncEndpoints` and `TestEndpointSlicesMirroredForService`
//! cases, through [`Controller::sync`](crate::Controller::sync) on
//! hand-filled stores with a fake API.

use std::collections::BTreeMap;

use super::*;
use crate::test_support::{
    Events, FakeApi, Verb, addr, endpoints, mirrored_slice, port, service, service_with_selector, slice_endpoint,
    slice_port, subset,
};
use crate::{Config, Controller, Informers};
use ecm_controller::{EventRecorder, ObjectWriter, Writers};
use ecm_informer::{Informer, Store};
use ecm_types::wellknown::{ANNOTATION_LEADER, LABEL_MANAGED_BY, LABEL_SKIP_MIRROR};

struct Fixture {
    endpoints: Store<Endpoints>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    api: Arc<FakeApi>,
    events: Arc<Events>,
    controller: Controller,
}

fn fixture(max_per_subset: usize) -> Fixture {
    let (endpoints, services, slices) = (Store::new(), Store::new(), Store::new());
    let (api, events) = (FakeApi::new(), Events::new());
    let controller = Controller::new(
        Config::default().max_endpoints_per_slice(max_per_subset),
        &Informers {
            services: Informer::detached(services.clone()),
            endpoints: Informer::detached(endpoints.clone()),
            slices: Informer::detached(slices.clone()),
        },
        Writers {
            objects: Arc::clone(&api) as Arc<dyn ObjectWriter<EndpointSlice>>,
            events: Arc::clone(&events) as Arc<dyn EventRecorder>,
        },
    );
    Fixture {
        endpoints,
        services,
        slices,
        api,
        events,
        controller,
    }
}

fn foo_key() -> ObjectKey {
    ObjectKey::new("ns", "foo")
}

fn one_address(name: &str) -> Endpoints {
    endpoints(
        name,
        vec![subset(vec![addr("10.0.0.1")], vec![], vec![port("http", 80, "TCP")])],
    )
}

fn leftover(ep: &Endpoints) -> EndpointSlice {
    mirrored_slice(
        ep,
        "foo-left",
        "IPv4",
        vec![slice_port("http", 80, "TCP")],
        vec![slice_endpoint("10.0.0.1", true)],
    )
}

#[tokio::test]
async fn endpoints_without_addresses_write_nothing() {
    let f = fixture(1000);
    f.services.insert(Arc::new(service("foo")));
    f.endpoints.insert(Arc::new(endpoints(
        "foo",
        vec![subset(vec![], vec![], vec![port("http", 80, "TCP")])],
    )));
    f.controller.sync(&foo_key()).await.unwrap();
    assert!(f.api.calls().is_empty());
}

#[tokio::test]
async fn skip_mirror_only_opts_out_when_true() {
    for (value, writes) in [("true", 0), ("false", 1), ("True", 1)] {
        let f = fixture(1000);
        f.services.insert(Arc::new(service("foo")));
        let mut ep = one_address("foo");
        ep.metadata.labels = Some(BTreeMap::from([(LABEL_SKIP_MIRROR.to_owned(), value.to_owned())]));
        f.endpoints.insert(Arc::new(ep));
        f.controller.sync(&foo_key()).await.unwrap();
        assert_eq!(f.api.calls().len(), writes, "skip-mirror={value}");
    }
}

#[tokio::test]
async fn a_missing_service_or_a_selector_means_no_mirroring() {
    let f = fixture(1000);
    f.endpoints.insert(Arc::new(one_address("foo")));
    f.controller.sync(&foo_key()).await.unwrap();
    assert!(f.api.calls().is_empty(), "no Service");
    f.services
        .insert(Arc::new(service_with_selector("foo", &[("app", "foo")])));
    f.controller.sync(&foo_key()).await.unwrap();
    assert!(f.api.calls().is_empty(), "Service with selector");
    f.services.insert(Arc::new(service_with_selector("foo", &[])));
    f.controller.sync(&foo_key()).await.unwrap();
    assert_eq!(f.api.summary(), [(Verb::Create, "foo-0".to_owned())], "empty selector");
}

#[tokio::test]
async fn leftover_slices_are_deleted_whenever_mirroring_stops() {
    type Setup = fn(&Fixture);
    let cases: [(&str, Setup); 5] = [
        ("endpoints gone", |f| {
            f.services.insert(Arc::new(service("foo")));
        }),
        ("skip-mirror", |f| {
            f.services.insert(Arc::new(service("foo")));
            let mut ep = one_address("foo");
            ep.metadata.labels = Some(BTreeMap::from([(LABEL_SKIP_MIRROR.to_owned(), "true".to_owned())]));
            f.endpoints.insert(Arc::new(ep));
        }),
        ("leader annotation", |f| {
            f.services.insert(Arc::new(service("foo")));
            let mut ep = one_address("foo");
            ep.metadata.annotations = Some(BTreeMap::from([(ANNOTATION_LEADER.to_owned(), "{}".to_owned())]));
            f.endpoints.insert(Arc::new(ep));
        }),
        ("service gone", |f| {
            f.endpoints.insert(Arc::new(one_address("foo")));
        }),
        ("service has selector", |f| {
            f.services
                .insert(Arc::new(service_with_selector("foo", &[("app", "foo")])));
            f.endpoints.insert(Arc::new(one_address("foo")));
        }),
    ];
    for (name, setup) in cases {
        let f = fixture(1000);
        setup(&f);
        let slice = leftover(&one_address("foo"));
        f.controller.context.reconciler.tracker().update(&slice);
        f.slices.insert(Arc::new(slice.clone()));
        f.controller.sync(&foo_key()).await.unwrap();
        assert_eq!(f.api.summary(), [(Verb::Delete, "foo-left".to_owned())], "{name}");
        assert!(
            !f.controller.context.reconciler.tracker().has(&slice),
            "{name}: key forgotten"
        );
    }
}

#[tokio::test]
async fn a_leftover_slice_with_nothing_desired_is_deleted() {
    let f = fixture(1000);
    f.services.insert(Arc::new(service("foo")));
    let ep = endpoints("foo", vec![]);
    f.slices.insert(Arc::new(leftover(&ep)));
    f.endpoints.insert(Arc::new(ep));
    f.controller.sync(&foo_key()).await.unwrap();
    assert_eq!(f.api.summary(), [(Verb::Delete, "foo-left".to_owned())]);
}

#[tokio::test]
async fn slices_of_other_managers_or_names_are_invisible() {
    let f = fixture(1000);
    f.services.insert(Arc::new(service("foo")));
    let ep = endpoints("foo", vec![]);
    let mut foreign = leftover(&ep);
    foreign.metadata.name = Some("foo-custom".to_owned());
    foreign
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(LABEL_MANAGED_BY.to_owned(), "something-else".to_owned());
    let mut other_name = leftover(&endpoints("bar", vec![]));
    other_name.metadata.name = Some("bar-1".to_owned());
    let mut other_namespace = leftover(&ep);
    other_namespace.metadata.name = Some("foo-other-ns".to_owned());
    other_namespace.metadata.namespace = Some("elsewhere".to_owned());
    for slice in [foreign, other_name, other_namespace] {
        f.slices.insert(Arc::new(slice));
    }
    f.endpoints.insert(Arc::new(ep));
    assert!(MANAGER.list(&Lister::new(f.slices.clone()), &foo_key()).is_empty());
    f.controller.sync(&foo_key()).await.unwrap();
    assert!(f.api.calls().is_empty());
}

#[tokio::test]
async fn the_label_fallback_lists_the_same_slices_as_the_index() {
    let plain: Store<EndpointSlice> = Store::new();
    let ep = endpoints("foo", vec![]);
    plain.insert(Arc::new(leftover(&ep)));
    let got = MANAGER.list(&Lister::new(plain), &foo_key());
    assert_eq!(got.len(), 1);
}

#[tokio::test]
async fn a_thousand_addresses_fit_one_slice_and_one_more_raises_an_event() {
    let many: Vec<_> = (0..1001)
        .map(|i| addr(&format!("10.0.{}.{}", i / 250, i % 250)))
        .collect();
    for (count, events) in [(1000, 0), (1001, 1)] {
        let f = fixture(1000);
        f.services.insert(Arc::new(service("foo")));
        f.endpoints.insert(Arc::new(endpoints(
            "foo",
            vec![subset(many[..count].to_vec(), vec![], vec![port("http", 80, "TCP")])],
        )));
        f.controller.sync(&foo_key()).await.unwrap();
        assert_eq!(f.api.calls().len(), 1, "{count}");
        assert_eq!(f.events.recorded().len(), events, "{count}");
    }
}

#[tokio::test]
async fn a_stale_cache_is_retried_not_written_over() {
    let f = fixture(1000);
    f.services.insert(Arc::new(service("foo")));
    f.endpoints.insert(Arc::new(one_address("foo")));
    f.controller.sync(&foo_key()).await.unwrap();
    assert_eq!(f.api.calls().len(), 1);
    // The created slice has not reached the cache yet.
    assert_eq!(
        f.controller.sync(&foo_key()).await,
        Err(SyncError::StaleCache(foo_key()))
    );
    assert_eq!(f.api.calls().len(), 1);
    // Once it has, the next sync finds nothing to do.
    let mut stored = f.api.calls()[0].sent.clone().unwrap();
    stored.metadata.name = Some("foo-0".to_owned());
    stored.metadata.uid = Some("uid-foo-0".to_owned());
    stored.metadata.generation = Some(1);
    f.slices.insert(Arc::new(stored));
    f.controller.sync(&foo_key()).await.unwrap();
    assert_eq!(f.api.calls().len(), 1);
}
