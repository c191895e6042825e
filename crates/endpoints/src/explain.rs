//! What this controller would write for one Service, and why, without
//! writing: the pod's address as the sync computes it, the desired object
//! built by the sync's own `plan` as for a first write, and whether the sync
//! would rewrite a stored object. For tools that explain or audit the
//! controller's decisions (`ecm explain`, `ecm shadow`); not used by the
//! sync itself.

use ecm_types::PodProjection;
use ecm_types::wellknown::ANNOTATION_OVER_CAPACITY;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};

use crate::desired::{Plan, desired_subsets, plan};

/// The address `pod` gets in the Endpoints of `svc` (of the Service's
/// family), or `None` when it has no IP of that family.
pub fn pod_address(svc: &Service, pod: &PodProjection) -> Option<EndpointAddress> {
    crate::address::pod_address(svc, pod)
}

/// The Endpoints object a Service should have.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredEndpoints {
    /// The object as the controller would create it (no trigger-time
    /// annotation).
    pub object: Endpoints,
    /// Ready (address, port) pairs before truncation.
    pub ready: usize,
    /// Not-ready (address, port) pairs before truncation.
    pub not_ready: usize,
    /// Whether the object was cut to 1000 addresses (`over-capacity:
    /// truncated`).
    pub truncated: bool,
}

/// Computes the Endpoints object of `svc` for `pods` (the pods its selector
/// matches) with the sync's own functions.
pub fn desired_endpoints<'p>(svc: &Service, pods: impl IntoIterator<Item = &'p PodProjection>) -> DesiredEndpoints {
    let desired = desired_subsets(svc, pods);
    let (ready, not_ready) = (desired.ready, desired.not_ready);
    let object = match plan(None, svc, desired.subsets, None) {
        Plan::Create(object) | Plan::Update(object) => object,
        // Without a stored object the plan always creates one.
        Plan::Unchanged => Endpoints::default(),
    };
    let truncated = object
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_OVER_CAPACITY));
    DesiredEndpoints {
        object,
        ready,
        not_ready,
        truncated,
    }
}

/// Whether a sync of `svc` would write, given the stored object `current`.
pub fn would_write<'p>(
    current: Option<&Endpoints>,
    svc: &Service,
    pods: impl IntoIterator<Item = &'p PodProjection>,
) -> bool {
    let desired = desired_subsets(svc, pods);
    !matches!(plan(current, svc, desired.subsets, None), Plan::Unchanged)
}

#[cfg(test)]
mod tests {
    use ecm_types::fixtures::{pod, service};

    use super::*;

    #[test]
    fn the_desired_object_is_the_first_write_of_the_sync() {
        let svc = service("ns", "web")
            .selector([("app", "web")])
            .port("http", 80, 8080)
            .build();
        let pods = [
            pod("ns", "a").ip("10.0.0.1").ready(true).projection(),
            pod("ns", "b").ip("10.0.0.2").ready(false).projection(),
        ];
        let desired = desired_endpoints(&svc, &pods);
        let subsets = desired.object.subsets.clone().unwrap();
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].addresses.as_ref().unwrap()[0].ip, "10.0.0.1");
        assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap()[0].ip, "10.0.0.2");
        assert_eq!((desired.ready, desired.not_ready, desired.truncated), (1, 1, false));
        assert!(would_write(None, &svc, &pods));
        let mut stored = desired.object.clone();
        stored.metadata.resource_version = Some("7".into());
        assert!(!would_write(Some(&stored), &svc, &pods));
    }
}
