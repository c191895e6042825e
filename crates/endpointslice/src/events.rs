//! The events this controller records, all about a Service (upstream's
//! reasons and messages, source component `endpoint-slice-controller`).

use ecm_controller::EventRecord;
use ecm_controller::events::object_reference;
use k8s_openapi::api::core::v1::Service;

use crate::hints::HintsEvent;

/// `source.component` of the controller's events.
pub const EVENT_SOURCE_COMPONENT: &str = "endpoint-slice-controller";

// Upstream's `FailedToListPods` and `FailedToListEndpointSlices` warnings
// are never recorded here: listing reads the informer cache, which cannot
// fail.
/// Warning: the reconcile failed.
pub(crate) const REASON_FAILED_TO_UPDATE_ENDPOINT_SLICES: &str = "FailedToUpdateEndpointSlices";

/// The `FailedToUpdateEndpointSlices` warning a failed sync records:
/// `Error updating Endpoint Slices for Service <ns>/<name>: <error>`.
pub(crate) fn failed_to_update(svc: &Service, error: &dyn std::error::Error) -> EventRecord {
    EventRecord::warning(
        object_reference(svc),
        REASON_FAILED_TO_UPDATE_ENDPOINT_SLICES,
        format!(
            "Error updating Endpoint Slices for Service {}/{}: {error}",
            svc.metadata.namespace.as_deref().unwrap_or_default(),
            svc.metadata.name.as_deref().unwrap_or_default()
        ),
    )
}

/// The event record of a topology-hints event about `svc`.
pub(crate) fn hints_event(svc: &Service, event: &HintsEvent) -> EventRecord {
    EventRecord {
        regarding: object_reference(svc),
        event_type: event.event_type,
        reason: event.reason.to_owned(),
        message: event.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecm_controller::EventType;
    use ecm_types::fixtures::service;

    #[test]
    fn failed_to_update_names_the_service_and_the_error() {
        let svc = service("prod", "web").build();
        let error = std::io::Error::other("boom");
        let event = failed_to_update(&svc, &error);
        assert_eq!(event.event_type, EventType::Warning);
        assert_eq!(event.reason, "FailedToUpdateEndpointSlices");
        assert_eq!(
            event.message,
            "Error updating Endpoint Slices for Service prod/web: boom"
        );
        assert_eq!(event.regarding.kind.as_deref(), Some("Service"));
        assert_eq!(event.regarding.uid.as_deref(), Some("uid-web"));
    }
}
