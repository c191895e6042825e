//! Service rules shared by the controllers: selectors, headless and
//! ExternalName checks, ports and IP families.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

use crate::wellknown::{CLUSTER_IP_NONE, SERVICE_TYPE_EXTERNAL_NAME};

fn spec(service: &Service) -> Option<&ServiceSpec> {
    service.spec.as_ref()
}

/// The Service's `spec.selector`. `None` means the Service has no selector
/// and selects nothing (its endpoints are managed by someone else); an empty
/// map selects every pod of the namespace.
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    spec(service)?.selector.as_ref()
}

/// Whether a Service selector (a plain label map) selects a pod with `labels`:
/// every selector key must be present with the same value. An empty selector
/// selects everything. Matched by `ecm_labels::ValidatedSetSelector`, which
/// borrows the selector instead of copying it.
pub fn selector_matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    ecm_labels::ValidatedSetSelector::new(selector).matches(labels)
}

/// Whether the Service is of type `ExternalName` (such Services get no
/// endpoints, and existing ones are left alone).
pub fn is_external_name(service: &Service) -> bool {
    spec(service).and_then(|s| s.type_.as_deref()) == Some(SERVICE_TYPE_EXTERNAL_NAME)
}

/// Whether the Service has a cluster IP: `spec.clusterIP` is neither empty
/// nor `None` (upstream's `IsServiceIPSet`). Services without one are
/// headless for labelling purposes.
pub fn is_service_ip_set(service: &Service) -> bool {
    let cluster_ip = spec(service).and_then(|s| s.cluster_ip.as_deref()).unwrap_or_default();
    !cluster_ip.is_empty() && cluster_ip != CLUSTER_IP_NONE
}

/// Whether `spec.clusterIP` is exactly `None`.
pub fn is_headless(service: &Service) -> bool {
    spec(service).and_then(|s| s.cluster_ip.as_deref()) == Some(CLUSTER_IP_NONE)
}

/// `spec.publishNotReadyAddresses` (false when unset).
pub fn publish_not_ready_addresses(service: &Service) -> bool {
    spec(service)
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// `spec.ports` (empty when unset).
pub fn ports(service: &Service) -> &[ServicePort] {
    spec(service).and_then(|s| s.ports.as_deref()).unwrap_or_default()
}

/// `spec.ipFamilies` (empty when unset).
pub fn ip_families(service: &Service) -> &[String] {
    spec(service).and_then(|s| s.ip_families.as_deref()).unwrap_or_default()
}

/// `spec.clusterIP` (empty when unset).
pub fn cluster_ip(service: &Service) -> &str {
    spec(service).and_then(|s| s.cluster_ip.as_deref()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::service;

    #[test]
    fn service_shape_helpers() {
        assert!(!is_service_ip_set(&service("ns", "s").headless().build()));
        assert!(!is_service_ip_set(&service("ns", "s").cluster_ip("").build()));
        assert!(is_service_ip_set(&service("ns", "s").build()));
        assert!(is_headless(&service("ns", "s").headless().build()));
        assert!(is_external_name(&service("ns", "s").type_("ExternalName").build()));
        assert!(!publish_not_ready_addresses(&service("ns", "s").build()));
        assert!(publish_not_ready_addresses(
            &service("ns", "s").publish_not_ready(true).build()
        ));
    }
}
