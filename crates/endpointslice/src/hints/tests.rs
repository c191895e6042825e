//! `hintsEnabled` and `RemoveHintsFromSlices`.

use super::*;
use crate::test_support::{endpoint_at, hinted, not_ready, slice_of};
use ecm_controller::EventType;
use ecm_types::endpoint_slice::endpoints;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn hints_enabled_by_either_annotation_with_the_old_one_winning() {
    let cases = [
        ("no annotations", None, false),
        ("empty", Some(annotations(&[])), false),
        (
            "topology-mode Auto",
            Some(annotations(&[(ANNOTATION_TOPOLOGY_MODE, "Auto")])),
            true,
        ),
        (
            "topology-mode auto",
            Some(annotations(&[(ANNOTATION_TOPOLOGY_MODE, "auto")])),
            true,
        ),
        (
            "topology-mode AUTO",
            Some(annotations(&[(ANNOTATION_TOPOLOGY_MODE, "AUTO")])),
            false,
        ),
        (
            "topology-mode PreferZone",
            Some(annotations(&[(ANNOTATION_TOPOLOGY_MODE, "PreferZone")])),
            false,
        ),
        (
            "old annotation auto",
            Some(annotations(&[(ANNOTATION_TOPOLOGY_AWARE_HINTS, "auto")])),
            true,
        ),
        (
            "old annotation disabled overrides topology-mode Auto",
            Some(annotations(&[
                (ANNOTATION_TOPOLOGY_AWARE_HINTS, "disabled"),
                (ANNOTATION_TOPOLOGY_MODE, "Auto"),
            ])),
            false,
        ),
        (
            "old annotation empty overrides topology-mode Auto",
            Some(annotations(&[
                (ANNOTATION_TOPOLOGY_AWARE_HINTS, ""),
                (ANNOTATION_TOPOLOGY_MODE, "Auto"),
            ])),
            false,
        ),
        (
            "old annotation Auto, topology-mode disabled",
            Some(annotations(&[
                (ANNOTATION_TOPOLOGY_AWARE_HINTS, "Auto"),
                (ANNOTATION_TOPOLOGY_MODE, "disabled"),
            ])),
            true,
        ),
    ];
    for (name, annotations, want) in cases {
        assert_eq!(hints_enabled(annotations.as_ref()), want, "{name}");
    }
}

#[test]
fn remove_hints_clears_writable_slices_and_moves_only_hinted_unchanged_ones() {
    let hinted_unchanged = slice_of(
        "hinted",
        vec![
            endpoint_at("a", "10.0.0.1", Some("zone-a"), None),
            not_ready(hinted(
                endpoint_at("b", "10.0.0.2", Some("zone-a"), None),
                &["zone-b"],
                &[],
            )),
        ],
    );
    let plain_unchanged = slice_of("plain", vec![endpoint_at("c", "10.0.0.3", Some("zone-a"), None)]);
    let mut si = SliceInfo {
        to_create: vec![slice_of(
            "",
            vec![hinted(
                endpoint_at("d", "10.0.0.4", Some("zone-a"), None),
                &["zone-a"],
                &[],
            )],
        )],
        to_update: vec![slice_of(
            "updated",
            vec![not_ready(hinted(
                endpoint_at("e", "10.0.0.5", None, Some("n")),
                &[],
                &["n"],
            ))],
        )],
        unchanged: vec![&hinted_unchanged, &plain_unchanged],
    };
    remove_hints_from_slices(&mut si);
    assert_eq!(si.unchanged, [&plain_unchanged]);
    let updated: Vec<_> = si.to_update.iter().map(|s| s.metadata.name.clone().unwrap()).collect();
    assert_eq!(updated, ["updated", "hinted"]);
    for slice in si.to_create.iter().chain(&si.to_update) {
        assert!(
            endpoints(slice).iter().all(|e| e.hints.is_none()),
            "{:?}",
            slice.metadata.name
        );
    }
    assert!(
        endpoints(&hinted_unchanged)[1].hints.is_some(),
        "the cached slice itself is not modified"
    );
}

#[test]
fn event_messages_carry_the_address_type() {
    assert_eq!(
        HintsEvent::enabled("IPv4"),
        HintsEvent {
            event_type: EventType::Normal,
            reason: "TopologyAwareHintsEnabled",
            message: "Topology Aware Hints has been enabled, addressType: IPv4".to_owned(),
        }
    );
    assert_eq!(
        HintsEvent::disabled(TOPOLOGY_AWARE_HINTS_DISABLED, "IPv6").message,
        "Topology Aware Hints has been disabled, addressType: IPv6"
    );
}
