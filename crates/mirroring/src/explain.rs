//! Whether, and what, this controller mirrors for one Endpoints object,
//! without writing: the decision table of the sync (see the `sync` module)
//! as a function, and the desired slices from scratch. The sync itself
//! decides through [`decide`]; `ecm explain` and `ecm shadow` use both.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::plan::plan;
use crate::slice::{has_selector, should_mirror};

/// What the controller does with an Endpoints object of a given name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Mirror it into slices.
    Mirror,
    /// There is no Endpoints object: its mirrored slices are deleted.
    EndpointsGone,
    /// It is labelled `endpointslice.kubernetes.io/skip-mirror: "true"` or
    /// carries the leader-election annotation: not mirrored.
    NotMirrored,
    /// There is no Service of that name: not mirrored.
    ServiceGone,
    /// Its Service has a selector (the EndpointSlice controller writes its
    /// slices): not mirrored.
    ServiceHasSelector,
}

impl Decision {
    /// Why, in words, for people.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Mirror => "the Service has no selector: its Endpoints are mirrored",
            Self::EndpointsGone => "there is no Endpoints object to mirror",
            Self::NotMirrored => {
                "the Endpoints is labelled endpointslice.kubernetes.io/skip-mirror=true or is a leader-election lock"
            }
            Self::ServiceGone => "there is no Service of that name",
            Self::ServiceHasSelector => "the Service has a selector: the EndpointSlice controller writes its slices",
        }
    }
}

/// Decides what to do with the Endpoints object `endpoints` whose Service
/// (same namespace and name) is `service`, in the sync's order.
pub fn decide(endpoints: Option<&Endpoints>, service: Option<&Service>) -> Decision {
    let Some(endpoints) = endpoints else {
        return Decision::EndpointsGone;
    };
    if !should_mirror(endpoints) {
        return Decision::NotMirrored;
    }
    let Some(service) = service else {
        return Decision::ServiceGone;
    };
    if has_selector(service) {
        return Decision::ServiceHasSelector;
    }
    Decision::Mirror
}

/// The slices mirrored from `endpoints` once the sync's plan is carried
/// out over `existing` (the slices mirrored for it): the slices kept or
/// rewritten, by name, then those created (names unset); with the number
/// of addresses skipped as invalid or over the per-subset cap.
pub fn desired_slices<'a>(
    endpoints: &Endpoints,
    existing: impl IntoIterator<Item = &'a EndpointSlice>,
    max_endpoints_per_subset: usize,
) -> (Vec<EndpointSlice>, usize, usize) {
    let existing: Vec<&EndpointSlice> = existing.into_iter().collect();
    let planned = plan(endpoints, existing.iter().copied(), max_endpoints_per_subset);
    let mut kept: BTreeMap<Option<String>, EndpointSlice> = existing
        .iter()
        .map(|s| (s.metadata.name.clone(), (*s).clone()))
        .collect();
    for deleted in planned.to_delete {
        kept.remove(&deleted.metadata.name);
    }
    for updated in planned.to_update {
        kept.insert(updated.metadata.name.clone(), updated);
    }
    let slices = kept.into_values().chain(planned.to_create).collect();
    (slices, planned.invalid_addresses, planned.addresses_skipped)
}

#[cfg(test)]
mod tests {
    use ecm_types::fixtures::service;

    use super::*;

    #[test]
    fn the_decision_follows_the_sync_table_in_order() {
        let mut ep = Endpoints::default();
        ep.metadata.name = Some("web".into());
        let manual = service("ns", "web").build();
        let selecting = service("ns", "web").selector([("app", "web")]).build();
        assert_eq!(decide(None, Some(&manual)), Decision::EndpointsGone);
        assert_eq!(decide(Some(&ep), None), Decision::ServiceGone);
        assert_eq!(decide(Some(&ep), Some(&selecting)), Decision::ServiceHasSelector);
        assert_eq!(decide(Some(&ep), Some(&manual)), Decision::Mirror);
        ep.metadata.labels = Some([("endpointslice.kubernetes.io/skip-mirror".to_owned(), "true".to_owned())].into());
        assert_eq!(decide(Some(&ep), Some(&manual)), Decision::NotMirrored);
    }
}
