//! Which Services a pod event concerns (upstream's pod handlers'
//! `GetPodUpdateProjectionKey`, `GetServicesToUpdate` and
//! `determineNeededServiceUpdates`), shared by the Endpoints and
//! EndpointSlice controllers' pod handlers.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use ecm_informer::{ObjectKey, Selector, SelectorRegistry};
use ecm_types::PodProjection;
use ecm_types::service::{selector, selector_matches};
use k8s_openapi::api::core::v1::Service;

/// What a pod event asks of the Service queue: the labels to match Services
/// against, in one namespace (upstream's `PodProjectionKey`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodServiceQuery {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's current labels (or last known ones, for a deletion).
    pub labels: BTreeMap<String, String>,
    /// The pod's previous labels, set only when an update changed its labels,
    /// hostname or subdomain.
    pub old_labels: Option<BTreeMap<String, String>>,
    /// Whether the update also changed the pod's endpoint (readiness, IPs,
    /// deletion); decides between union and symmetric difference.
    pub endpoint_changed: bool,
}

impl PodServiceQuery {
    /// The query for a pod event (upstream's `GetPodUpdateProjectionKey`):
    /// `old` is `None` for an add, `new` is `None` for a delete. Returns
    /// `None` when the event cannot change any endpoints: an informer resync
    /// (same resourceVersion) or an update touching nothing the controllers
    /// read.
    pub fn for_event(old: Option<&PodProjection>, new: Option<&PodProjection>) -> Option<Self> {
        let plain = |pod: &PodProjection| Self {
            namespace: pod.namespace().to_owned(),
            labels: pod.labels().clone(),
            old_labels: None,
            endpoint_changed: false,
        };
        match (old, new) {
            (None, None) => None,
            (None, Some(pod)) | (Some(pod), None) => Some(plain(pod)),
            (Some(old), Some(new)) => {
                if new.metadata.resource_version == old.metadata.resource_version {
                    return None;
                }
                let change = new.change_from(old);
                match (change.endpoint_changed, change.labels_changed) {
                    (false, false) => None,
                    (true, false) => Some(plain(new)),
                    (endpoint_changed, true) => Some(Self {
                        old_labels: Some(old.labels().clone()),
                        endpoint_changed,
                        ..plain(new)
                    }),
                }
            }
        }
    }

    /// The keys of the Services to sync (upstream's `GetServicesToUpdate`),
    /// given the Services of the pod's namespace. Services with no selector
    /// never match. When the labels changed, the Services matching the old
    /// and the new labels are combined: their union when the endpoint also
    /// changed, else their symmetric difference (a Service matching both saw
    /// no change).
    pub fn services_to_update<'a, I>(&self, services_in_namespace: I) -> BTreeSet<ObjectKey>
    where
        I: IntoIterator<Item = &'a Service> + Clone,
    {
        let new = matching_services(services_in_namespace.clone(), &self.labels);
        let Some(old_labels) = &self.old_labels else {
            return new;
        };
        let old = matching_services(services_in_namespace, old_labels);
        needed_service_updates(&old, &new, self.endpoint_changed)
    }

    /// [`services_to_update`](Self::services_to_update), with the Services
    /// of the pod's namespace matching a label set given by
    /// `services_matching` (for instance a [`SelectorRegistry`] of Service
    /// selectors) instead of found by checking every Service. The same
    /// union or symmetric difference applies.
    pub fn services_to_update_with<F>(&self, mut services_matching: F) -> BTreeSet<ObjectKey>
    where
        F: FnMut(&BTreeMap<String, String>) -> BTreeSet<ObjectKey>,
    {
        let new = services_matching(&self.labels);
        let Some(old_labels) = &self.old_labels else {
            return new;
        };
        let old = services_matching(old_labels);
        needed_service_updates(&old, &new, self.endpoint_changed)
    }
}

/// What a Service's selector means to a [`SelectorRegistry`]: its
/// `spec.selector` as an equality selector (empty: every pod), or `None`
/// when it has none (no pod; the registry then forgets the Service). The
/// Service's type is not looked at, as [`matching_services`] does not.
pub fn service_selector(service: &Service) -> Option<Selector> {
    selector(service).map(Selector::from_labels)
}

/// [`services_for_pod_event`] answered from `services`, a registry of the
/// Service selectors ([`service_selector`]) kept by the Service informer's
/// [`service_selector_handler`](crate::handlers::service_selector_handler):
/// the cost is that of the Services that may match, not of the namespace.
///
/// ```
/// use ecm_controller::{registered_services_for_pod_event, service_selector};
/// use ecm_informer::{ObjectKey, SelectorRegistry};
/// use ecm_types::fixtures::{pod, service};
///
/// let services = SelectorRegistry::new();
/// let web = service("shop", "web").selector([("app", "web")]).build();
/// services.register(ObjectKey::new("shop", "web"), service_selector(&web).unwrap());
/// let added = pod("shop", "web-0").labels([("app", "web")]).projection();
/// let keys = registered_services_for_pod_event(None, Some(&added), &services);
/// assert_eq!(keys.into_iter().collect::<Vec<_>>(), [ObjectKey::new("shop", "web")]);
/// ```
pub fn registered_services_for_pod_event(
    old: Option<&PodProjection>,
    new: Option<&PodProjection>,
    services: &SelectorRegistry,
) -> BTreeSet<ObjectKey> {
    let Some(query) = PodServiceQuery::for_event(old, new) else {
        return BTreeSet::new();
    };
    query.services_to_update_with(|labels| services.matching(&query.namespace, labels))
}

/// The keys of the Services a pod event concerns, for the pod handlers of the
/// Endpoints and EndpointSlice controllers (upstream's `onPodAdd`,
/// `onPodUpdate`, `onPodDelete`): [`PodServiceQuery::for_event`], then
/// [`PodServiceQuery::services_to_update`] over the Services
/// `services_in_namespace` returns for the pod's namespace. That lookup runs
/// at most once, and not at all for an event that cannot change endpoints.
///
/// ```
/// use std::sync::Arc;
/// use ecm_controller::services_for_pod_event;
/// use ecm_informer::ObjectKey;
/// use ecm_types::PodProjection;
/// use k8s_openapi::api::core::v1::{Pod, Service, ServiceSpec};
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
///
/// let app: std::collections::BTreeMap<_, _> = [("app".to_owned(), "web".to_owned())].into();
/// let meta = |name: &str| ObjectMeta {
///     namespace: Some("shop".into()),
///     name: Some(name.into()),
///     ..Default::default()
/// };
/// let web = Arc::new(Service {
///     metadata: meta("web"),
///     spec: Some(ServiceSpec { selector: Some(app.clone()), ..Default::default() }),
///     ..Default::default()
/// });
/// let added = PodProjection::from(Pod {
///     metadata: ObjectMeta { labels: Some(app), ..meta("web-0") },
///     ..Default::default()
/// });
/// let keys = services_for_pod_event(None, Some(&added), |namespace| {
///     assert_eq!(namespace, "shop");
///     vec![Arc::clone(&web)]
/// });
/// assert_eq!(keys.into_iter().collect::<Vec<_>>(), [ObjectKey::new("shop", "web")]);
/// ```
pub fn services_for_pod_event<S, F>(
    old: Option<&PodProjection>,
    new: Option<&PodProjection>,
    services_in_namespace: F,
) -> BTreeSet<ObjectKey>
where
    S: Borrow<Service>,
    F: FnOnce(&str) -> Vec<S>,
{
    let Some(query) = PodServiceQuery::for_event(old, new) else {
        return BTreeSet::new();
    };
    let services = services_in_namespace(&query.namespace);
    query.services_to_update(services.iter().map(Borrow::borrow))
}

/// The keys of the Services among `services` whose selector (non-nil)
/// selects a pod with `labels`.
pub fn matching_services<'a, I>(services: I, labels: &BTreeMap<String, String>) -> BTreeSet<ObjectKey>
where
    I: IntoIterator<Item = &'a Service>,
{
    services
        .into_iter()
        .filter(|svc| selector(svc).is_some_and(|sel| selector_matches(sel, labels)))
        .map(ObjectKey::of)
        .collect()
}

/// Upstream's `determineNeededServiceUpdates`: the union of `old` and `new`
/// when the pod itself changed, else their symmetric difference.
pub fn needed_service_updates(
    old: &BTreeSet<ObjectKey>,
    new: &BTreeSet<ObjectKey>,
    endpoint_changed: bool,
) -> BTreeSet<ObjectKey> {
    if endpoint_changed {
        old.union(new).cloned().collect()
    } else {
        old.symmetric_difference(new).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecm_types::fixtures::{pod, service};

    fn keys(names: &[&str]) -> BTreeSet<ObjectKey> {
        names.iter().map(|n| ObjectKey::new("test", *n)).collect()
    }

    #[test]
    fn needed_updates_are_union_or_symmetric_difference() {
        type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str]);
        let cases: [Case<'_>; 6] = [
            (
                "no services changed",
                &["a", "b", "c"],
                &["a", "b", "c"],
                &["a", "b", "c"],
                &[],
            ),
            (
                "all replaced",
                &["a", "b", "c"],
                &["d", "e", "f"],
                &["a", "b", "c", "d", "e", "f"],
                &["a", "b", "c", "d", "e", "f"],
            ),
            ("all removed", &["a", "b", "c"], &[], &["a", "b", "c"], &["a", "b", "c"]),
            ("all new", &[], &["a", "b", "c"], &["a", "b", "c"], &["a", "b", "c"]),
            (
                "one out, one in",
                &["a", "b", "c"],
                &["b", "c", "d"],
                &["a", "b", "c", "d"],
                &["a", "d"],
            ),
            ("none", &[], &[], &[], &[]),
        ];
        for (name, old, new, union, xor) in cases {
            assert_eq!(
                needed_service_updates(&keys(old), &keys(new), true),
                keys(union),
                "{name} (pod changed)"
            );
            assert_eq!(
                needed_service_updates(&keys(old), &keys(new), false),
                keys(xor),
                "{name} (labels only)"
            );
        }
    }

    fn three_services() -> Vec<Service> {
        (0..3)
            .map(|i| {
                service("test", &format!("service-{i}"))
                    .selector([("app", format!("test-{i}").as_str())])
                    .build()
            })
            .collect()
    }

    #[test]
    fn pod_add_concerns_the_services_selecting_it() {
        let services = three_services();
        for i in 0..5 {
            let app = format!("test-{i}");
            let label = format!("label-{i}");
            let p = pod("test", &format!("test-pod-{i}"))
                .labels([("app", app.as_str()), ("label", label.as_str())])
                .projection();
            let query = PodServiceQuery::for_event(None, Some(&p)).unwrap();
            let want = if i < 3 {
                keys(&[&format!("service-{i}")])
            } else {
                keys(&[])
            };
            assert_eq!(query.services_to_update(&services), want, "pod {i}");
        }
    }

    #[test]
    fn nil_selector_matches_nothing_and_empty_selector_everything() {
        let nil = service("test", "nil").build();
        let empty = service("test", "empty").selector([]).build();
        let p = pod("test", "p").labels([("app", "x")]).projection();
        let query = PodServiceQuery::for_event(Some(&p), None).unwrap();
        assert_eq!(query.services_to_update([&nil, &empty]), keys(&["empty"]));
    }

    #[test]
    fn resync_and_irrelevant_updates_concern_no_service() {
        let p = pod("test", "p").labels([("app", "test-0")]).ip("10.0.0.1").projection();
        assert_eq!(
            PodServiceQuery::for_event(Some(&p), Some(&p)),
            None,
            "same resourceVersion"
        );
        let moved = pod("test", "p")
            .labels([("app", "test-0")])
            .ip("10.0.0.1")
            .node("n")
            .resource_version("2")
            .projection();
        assert_eq!(
            PodServiceQuery::for_event(Some(&p), Some(&moved)),
            None,
            "node name is not looked at"
        );
    }

    #[test]
    fn relabelled_pod_syncs_services_it_left_and_joined() {
        let services = three_services();
        let old = pod("test", "p").labels([("app", "test-0")]).projection();
        let relabelled = pod("test", "p")
            .labels([("app", "test-1")])
            .resource_version("2")
            .projection();
        let query = PodServiceQuery::for_event(Some(&old), Some(&relabelled)).unwrap();
        assert_eq!(query.services_to_update(&services), keys(&["service-0", "service-1"]));

        // A label change that keeps the same Services and changes nothing else concerns none of them.
        let extra = pod("test", "p")
            .labels([("app", "test-0"), ("extra", "x")])
            .resource_version("2")
            .projection();
        let query = PodServiceQuery::for_event(Some(&old), Some(&extra)).unwrap();
        assert_eq!(query.services_to_update(&services), keys(&[]));

        // ...unless the endpoint changed too: then every Service of either label set is synced.
        let extra_ready = pod("test", "p")
            .labels([("app", "test-0"), ("extra", "x")])
            .ready(true)
            .resource_version("2")
            .projection();
        let query = PodServiceQuery::for_event(Some(&old), Some(&extra_ready)).unwrap();
        assert_eq!(query.services_to_update(&services), keys(&["service-0"]));
    }

    #[test]
    fn the_registry_answers_pod_events_as_the_scan_of_every_service_does() {
        let mut services = three_services();
        services.push(service("test", "nil").build());
        services.push(service("test", "empty").selector([]).build());
        services.push(
            service("test", "two")
                .selector([("app", "test-0"), ("tier", "x")])
                .build(),
        );
        services.push(service("other", "service-0").selector([("app", "test-0")]).build());
        let registry = SelectorRegistry::new();
        for svc in &services {
            if let Some(selector) = service_selector(svc) {
                registry.register(ObjectKey::of(svc), selector);
            }
        }
        let labels = [
            vec![("app", "test-0")],
            vec![("app", "test-0"), ("tier", "x")],
            vec![("app", "test-1")],
            vec![],
        ];
        let pods: Vec<PodProjection> = labels
            .iter()
            .enumerate()
            .flat_map(|(i, labels)| {
                let rv = (i + 2).to_string();
                [
                    pod("test", "p")
                        .labels(labels.iter().copied())
                        .resource_version(&rv)
                        .projection(),
                    pod("test", "p")
                        .labels(labels.iter().copied())
                        .ready(true)
                        .resource_version(&format!("{rv}0"))
                        .projection(),
                ]
            })
            .collect();
        let in_namespace = |namespace: &str| {
            services
                .iter()
                .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
                .collect::<Vec<_>>()
        };
        for old in pods.iter().map(Some).chain([None]) {
            for new in pods.iter().map(Some).chain([None]) {
                assert_eq!(
                    registered_services_for_pod_event(old, new, &registry),
                    services_for_pod_event(old, new, in_namespace),
                    "{:?} -> {:?}",
                    old.map(PodProjection::labels),
                    new.map(PodProjection::labels)
                );
            }
        }
    }

    #[test]
    fn pod_events_look_services_up_only_when_they_can_matter() {
        let services = three_services();
        let p = pod("test", "p").labels([("app", "test-1")]).ip("10.0.0.1").projection();
        let mut looked_up = Vec::new();
        let mut lookup = |namespace: &str| {
            looked_up.push(namespace.to_owned());
            services.iter().collect::<Vec<_>>()
        };
        assert_eq!(
            services_for_pod_event(None, Some(&p), &mut lookup),
            keys(&["service-1"])
        );
        assert_eq!(
            services_for_pod_event(Some(&p), None, &mut lookup),
            keys(&["service-1"])
        );
        assert_eq!(
            services_for_pod_event(Some(&p), Some(&p), &mut lookup),
            keys(&[]),
            "resync"
        );
        assert_eq!(services_for_pod_event(None, None, &mut lookup), keys(&[]));
        assert_eq!(looked_up, ["test", "test"], "no lookup for events that change nothing");
    }
}
