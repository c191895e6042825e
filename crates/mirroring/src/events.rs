//! The events this controller records, all Warnings about an Endpoints
//! object (upstream's `events.go`, source component
//! `endpoint-slice-mirroring-controller`). They repeat on every sync while
//! their condition lasts.

use ecm_controller::EventRecord;
use ecm_controller::events::object_reference;
use k8s_openapi::api::core::v1::Endpoints;

/// `source.component` of the controller's events.
pub const EVENT_SOURCE_COMPONENT: &str = "endpoint-slice-mirroring-controller";

/// Warning: some addresses have IPs that do not parse.
pub(crate) const REASON_INVALID_IP_ADDRESS: &str = "InvalidIPAddress";
/// Warning: some subsets hold more addresses than may be mirrored.
pub(crate) const REASON_TOO_MANY_ADDRESSES_TO_MIRROR: &str = "TooManyAddressesToMirror";

/// The events of one reconcile: `InvalidIPAddress` when `invalid` > 0, and
/// `TooManyAddressesToMirror` when `skipped` > `invalid` (its count is the
/// total skipped, invalid addresses included, as upstream words it).
pub(crate) fn skip_events(
    endpoints: &Endpoints,
    max_per_subset: usize,
    invalid: usize,
    skipped: usize,
) -> Vec<EventRecord> {
    let mut events = Vec::new();
    if invalid > 0 {
        events.push(EventRecord::warning(
            object_reference(endpoints),
            REASON_INVALID_IP_ADDRESS,
            format!("Skipped {invalid} invalid IP addresses when mirroring to EndpointSlices"),
        ));
    }
    if skipped > invalid {
        events.push(EventRecord::warning(
            object_reference(endpoints),
            REASON_TOO_MANY_ADDRESSES_TO_MIRROR,
            format!(
                "A max of {max_per_subset} addresses can be mirrored to EndpointSlices per Endpoints subset. \
                 {skipped} addresses were skipped"
            ),
        ));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::endpoints;
    use ecm_controller::EventType;

    #[test]
    fn events_as_upstream_words_them() {
        let ep = endpoints("foo", vec![]);
        assert!(skip_events(&ep, 1000, 0, 0).is_empty());
        let events = skip_events(&ep, 2, 1, 3);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].reason, "InvalidIPAddress");
        assert_eq!(
            events[0].message,
            "Skipped 1 invalid IP addresses when mirroring to EndpointSlices"
        );
        assert_eq!(events[1].reason, "TooManyAddressesToMirror");
        assert_eq!(
            events[1].message,
            "A max of 2 addresses can be mirrored to EndpointSlices per Endpoints subset. 3 addresses were skipped"
        );
        assert!(events.iter().all(|e| e.event_type == EventType::Warning));
        assert_eq!(events[0].regarding.kind.as_deref(), Some("Endpoints"));
        assert_eq!(events[0].regarding.uid.as_deref(), Some("uid-foo"));
        let only_invalid = skip_events(&ep, 2, 2, 2);
        assert_eq!(only_invalid.len(), 1, "skipped == invalid: no cap event");
    }
}
