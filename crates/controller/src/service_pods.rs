//! [`ServicePods`]: a Service and the pods its selector matches, as the
//! syncs of the Endpoints and EndpointSlice controllers both begin
//! (upstream's opening of `syncService` in each).

use std::sync::Arc;

use ecm_informer::{Lister, ObjectKey, Selector};
use ecm_types::{PodProjection, service};
use k8s_openapi::api::core::v1::Service;

/// What the caches hold for a Service about to be synced.
#[derive(Clone, Debug)]
pub enum ServicePods {
    /// There is no such Service: it was deleted.
    Gone,
    /// The Service gets no endpoints from pods: it is of type ExternalName,
    /// or has no selector (someone else writes its endpoints).
    NotSelecting,
    /// The Service and the pods of its namespace its selector matches.
    Selecting {
        /// The Service.
        service: Arc<Service>,
        /// The pods it selects, in name order.
        pods: Vec<Arc<PodProjection>>,
    },
}

impl ServicePods {
    /// Looks the Service `key` up in `services` and its pods in `pods`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ecm_controller::ServicePods;
    /// use ecm_informer::{Lister, ObjectKey, Store};
    /// use ecm_types::fixtures::{pod, service};
    ///
    /// let (services, pods) = (Store::new(), Store::new());
    /// services.insert(Arc::new(service("ns", "web").selector([("app", "web")]).build()));
    /// pods.insert(Arc::new(pod("ns", "web-0").labels([("app", "web")]).projection()));
    /// pods.insert(Arc::new(pod("ns", "db-0").labels([("app", "db")]).projection()));
    /// let (services, pods) = (Lister::new(services), Lister::new(pods));
    /// match ServicePods::lookup(&services, &pods, &ObjectKey::new("ns", "web")) {
    ///     ServicePods::Selecting { pods, .. } => assert_eq!(pods.len(), 1),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert!(matches!(ServicePods::lookup(&services, &pods, &ObjectKey::new("ns", "gone")), ServicePods::Gone));
    /// ```
    pub fn lookup(services: &Lister<Service>, pods: &Lister<PodProjection>, key: &ObjectKey) -> Self {
        match services.get(key.namespace(), key.name()) {
            Some(svc) => Self::of(svc, pods),
            None => Self::Gone,
        }
    }

    /// [`lookup`](Self::lookup) for a Service already in hand.
    pub fn of(svc: Arc<Service>, pods: &Lister<PodProjection>) -> Self {
        if !Self::selects(&svc) {
            return Self::NotSelecting;
        }
        let Some(selector) = service::selector(&svc) else {
            return Self::NotSelecting;
        };
        let namespace = svc.metadata.namespace.as_deref().unwrap_or_default();
        let pods = pods.list(namespace, &Selector::from_labels(selector));
        Self::Selecting { service: svc, pods }
    }

    /// Whether `svc` takes its endpoints from the pods its selector matches:
    /// it is not an ExternalName Service and has a selector.
    pub fn selects(svc: &Service) -> bool {
        !service::is_external_name(svc) && service::selector(svc).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecm_informer::Store;
    use ecm_types::fixtures::{pod, service};

    #[test]
    fn external_name_and_selector_less_services_select_nothing() {
        let (services, pods) = (Store::new(), Store::new());
        services.insert(Arc::new(
            service("ns", "ext")
                .type_("ExternalName")
                .selector([("app", "a")])
                .build(),
        ));
        services.insert(Arc::new(service("ns", "manual").build()));
        services.insert(Arc::new(service("ns", "all").selector([]).build()));
        pods.insert(Arc::new(pod("ns", "p").labels([("app", "a")]).projection()));
        pods.insert(Arc::new(pod("other", "q").labels([("app", "a")]).projection()));
        let (services, pods) = (Lister::new(services), Lister::new(pods));
        let lookup = |name: &str| ServicePods::lookup(&services, &pods, &ObjectKey::new("ns", name));
        assert!(matches!(lookup("ext"), ServicePods::NotSelecting));
        assert!(matches!(lookup("manual"), ServicePods::NotSelecting));
        match lookup("all") {
            ServicePods::Selecting { pods, .. } => assert_eq!(pods.len(), 1, "an empty selector selects its namespace"),
            other => panic!("{other:?}"),
        }
    }
}
