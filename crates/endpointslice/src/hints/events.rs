//! The events about a Service's hints: upstream's reasons and messages.

use ecm_controller::EventType;

/// Reason of the Normal event emitted when topology aware hints start being
/// set for a Service.
pub(crate) const REASON_HINTS_ENABLED: &str = "TopologyAwareHintsEnabled";
/// Reason of the Warning events explaining why topology aware hints are not
/// (or no longer) set.
pub(crate) const REASON_HINTS_DISABLED: &str = "TopologyAwareHintsDisabled";

/// Event message: a ready endpoint has no zone.
pub(crate) const NO_ZONE_SPECIFIED: &str = "One or more endpoints do not have a zone specified";
/// Event message: allocation left every zone without hints.
pub(crate) const NO_ALLOCATED_HINTS_FOR_ZONES: &str = "No hints allocated for zones";
/// Event message: hints were enabled.
pub(crate) const TOPOLOGY_AWARE_HINTS_ENABLED: &str = "Topology Aware Hints has been enabled";
/// Event message: hints were disabled (the annotation was removed or changed).
pub(crate) const TOPOLOGY_AWARE_HINTS_DISABLED: &str = "Topology Aware Hints has been disabled";
/// Event message: some node lacks a zone or allocatable CPU, or fewer than
/// two zones have ready nodes.
pub(crate) const INSUFFICIENT_NODE_INFO: &str =
    "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes";
/// Event message: the zone ratios are known but cover a single zone.
pub(crate) const NODES_READY_IN_ONE_ZONE_ONLY: &str = "Nodes only ready in one zone";
/// Event message prefix: fewer ready endpoints than zones.
pub(crate) const INSUFFICIENT_NUMBER_OF_ENDPOINTS: &str = "Insufficient number of endpoints";
/// Event message prefix: the zones' minimum shares add up to more than the
/// endpoints there are.
pub(crate) const MIN_ALLOCATION_EXCEEDS_OVERLOAD_THRESHOLD: &str =
    "Unable to allocate minimum required endpoints to each zone without exceeding overload threshold";

/// Appends the address type to an event message, as upstream's
/// `FormatWithAddressType` does: `"<message>, addressType: IPv4"`.
pub(crate) fn with_address_type(message: &str, address_type: &str) -> String {
    format!("{message}, addressType: {address_type}")
}

/// An event about a Service's hints, to be recorded once the slices are
/// written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintsEvent {
    /// Normal or Warning.
    pub event_type: EventType,
    /// `TopologyAwareHintsEnabled` or `TopologyAwareHintsDisabled`.
    pub reason: &'static str,
    /// The full message, address type included.
    pub message: String,
}

impl HintsEvent {
    /// A `TopologyAwareHintsDisabled` warning with `message` for
    /// `address_type`.
    pub fn disabled(message: &str, address_type: &str) -> Self {
        Self {
            event_type: EventType::Warning,
            reason: REASON_HINTS_DISABLED,
            message: with_address_type(message, address_type),
        }
    }

    /// The `TopologyAwareHintsEnabled` event for `address_type`.
    pub fn enabled(address_type: &str) -> Self {
        Self {
            event_type: EventType::Normal,
            reason: REASON_HINTS_ENABLED,
            message: with_address_type(TOPOLOGY_AWARE_HINTS_ENABLED, address_type),
        }
    }
}
