//! The events the Endpoints controller records, as upstream names them.

use ecm_controller::EventRecord;
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference};

/// The `source.component` of the controller's events.
pub const EVENT_SOURCE_COMPONENT: &str = "endpoint-controller";

/// Reason of the Warning recorded when a create fails.
pub(crate) const REASON_FAILED_TO_CREATE: &str = "FailedToCreateEndpoint";
/// Reason of the Warning recorded when an update fails.
pub(crate) const REASON_FAILED_TO_UPDATE: &str = "FailedToUpdateEndpoint";

/// A reference to an Endpoints object for an event.
fn endpoints_reference(object: &Endpoints, namespace: Option<&str>) -> ObjectReference {
    ObjectReference {
        kind: Some("Endpoints".to_owned()),
        api_version: Some("v1".to_owned()),
        name: object.metadata.name.clone(),
        namespace: namespace.map(str::to_owned),
        uid: object.metadata.uid.clone(),
        resource_version: object.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The Warning for a failed create of `object`. Upstream's in-memory object
/// has no namespace yet, so its event names none and is recorded in
/// `default`.
pub(crate) fn failed_to_create(object: &Endpoints, service: &str, cause: &dyn std::fmt::Display) -> EventRecord {
    EventRecord::warning(
        endpoints_reference(object, None),
        REASON_FAILED_TO_CREATE,
        format!("Failed to create endpoint for service {service}: {cause}"),
    )
}

/// The Warning for a failed update of `object` in `namespace`.
pub(crate) fn failed_to_update(
    object: &Endpoints,
    namespace: &str,
    key: &str,
    cause: &dyn std::fmt::Display,
) -> EventRecord {
    EventRecord::warning(
        endpoints_reference(object, Some(namespace)),
        REASON_FAILED_TO_UPDATE,
        format!("Failed to update endpoint {key}: {cause}"),
    )
}
