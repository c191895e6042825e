//! Reading and writing EndpointSlice fields the same way on every Kubernetes
//! version k8s-openapi supports.
//!
//! k8s-openapi 0.29 types `EndpointSlice.endpoints` as a plain `Vec` up to
//! Kubernetes 1.35 and as an `Option<Vec>` from 1.36 on. Library crates do
//! not pick a version, so they read and write that field only through the
//! functions here. The other helpers name the two labels every controller
//! reads off a slice.

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

use crate::wellknown::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME};

k8s_openapi::k8s_if_ge_1_36! {
    /// The slice's endpoints (empty when the field is absent).
    pub fn endpoints(slice: &EndpointSlice) -> &[Endpoint] {
        slice.endpoints.as_deref().unwrap_or_default()
    }

    /// The slice's endpoints, for changing in place (an absent field becomes
    /// an empty list).
    pub fn endpoints_mut(slice: &mut EndpointSlice) -> &mut Vec<Endpoint> {
        slice.endpoints.get_or_insert_with(Vec::new)
    }

    /// Replaces the slice's endpoints. The field is always written, even
    /// when empty, as upstream writes `endpoints: []`.
    pub fn set_endpoints(slice: &mut EndpointSlice, endpoints: Vec<Endpoint>) {
        slice.endpoints = Some(endpoints);
    }

    /// Takes the slice's endpoints out, leaving an empty list.
    pub fn take_endpoints(slice: &mut EndpointSlice) -> Vec<Endpoint> {
        slice.endpoints.take().unwrap_or_default()
    }
}

k8s_openapi::k8s_if_le_1_35! {
    /// The slice's endpoints.
    pub fn endpoints(slice: &EndpointSlice) -> &[Endpoint] {
        &slice.endpoints
    }

    /// The slice's endpoints, for changing in place.
    pub fn endpoints_mut(slice: &mut EndpointSlice) -> &mut Vec<Endpoint> {
        &mut slice.endpoints
    }

    /// Replaces the slice's endpoints.
    pub fn set_endpoints(slice: &mut EndpointSlice, endpoints: Vec<Endpoint>) {
        slice.endpoints = endpoints;
    }

    /// Takes the slice's endpoints out, leaving an empty list.
    pub fn take_endpoints(slice: &mut EndpointSlice) -> Vec<Endpoint> {
        std::mem::take(&mut slice.endpoints)
    }
}

/// The slice's ports (empty when the field is absent; the API server returns
/// an empty list as absent).
pub fn ports(slice: &EndpointSlice) -> &[EndpointPort] {
    slice.ports.as_deref().unwrap_or_default()
}

/// The value of the slice's [`LABEL_SERVICE_NAME`] label, if set.
pub fn service_name(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()?
        .get(LABEL_SERVICE_NAME)
        .map(String::as_str)
}

/// The value of the slice's [`LABEL_MANAGED_BY`] label, if set.
pub fn managed_by(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()?
        .get(LABEL_MANAGED_BY)
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn endpoint(ip: &str) -> Endpoint {
        Endpoint {
            addresses: vec![ip.to_owned()],
            ..Endpoint::default()
        }
    }

    #[test]
    fn absent_endpoints_read_as_empty_and_set_endpoints_always_writes_the_field() {
        let mut slice = EndpointSlice::default();
        assert!(endpoints(&slice).is_empty());
        set_endpoints(&mut slice, Vec::new());
        let json = serde_json::to_value(&slice).unwrap();
        assert_eq!(json["endpoints"], serde_json::json!([]));
    }

    #[test]
    fn endpoints_can_be_changed_and_taken() {
        let mut slice = EndpointSlice::default();
        endpoints_mut(&mut slice).push(endpoint("10.0.0.1"));
        set_endpoints(&mut slice, vec![endpoint("10.0.0.2"), endpoint("10.0.0.3")]);
        assert_eq!(endpoints(&slice).len(), 2);
        assert_eq!(take_endpoints(&mut slice)[0].addresses, ["10.0.0.2"]);
        assert!(endpoints(&slice).is_empty());
    }

    #[test]
    fn labels_read_off_a_slice() {
        let mut slice = EndpointSlice::default();
        assert_eq!(service_name(&slice), None);
        assert_eq!(managed_by(&slice), None);
        assert!(ports(&slice).is_empty());
        slice.metadata.labels = Some(BTreeMap::from([
            (LABEL_SERVICE_NAME.to_owned(), "web".to_owned()),
            (LABEL_MANAGED_BY.to_owned(), "someone".to_owned()),
        ]));
        assert_eq!(service_name(&slice), Some("web"));
        assert_eq!(managed_by(&slice), Some("someone"));
    }
}
