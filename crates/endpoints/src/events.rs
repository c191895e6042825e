//! The events the Endpoints controller records, as upstream names them.

use ecm_controller::EventRecord;
use ecm_controller::events::object_reference;
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference};

/// The `source.component` of the controller's events.
pub const EVENT_SOURCE_COMPONENT: &str = "endpoint-controller";

/// Reason of the Warning recorded when a create fails.
pub(crate) const REASON_FAILED_TO_CREATE: &str = "FailedToCreateEndpoint";
/// Reason of the Warning recorded when an update fails.
pub(crate) const REASON_FAILED_TO_UPDATE: &str = "FailedToUpdateEndpoint";

/// The Warning for a failed create of `object`. Upstream's in-memory object
/// has no namespace yet, so its event names none and is recorded in
/// `default`.
pub(crate) fn failed_to_create(object: &Endpoints, service: &str, cause: &dyn std::fmt::Display) -> EventRecord {
    // Upstream's object has no namespace yet when its create fails.
    let regarding = ObjectReference {
        namespace: None,
        ..object_reference(object)
    };
    EventRecord::warning(
        regarding,
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
    let regarding = ObjectReference {
        namespace: Some(namespace.to_owned()),
        ..object_reference(object)
    };
    EventRecord::warning(
        regarding,
        REASON_FAILED_TO_UPDATE,
        format!("Failed to update endpoint {key}: {cause}"),
    )
}
