//! `ecm_informer::WithoutManagedFields`: every informer decodes watched
//! objects through it, skipping `metadata.managedFields` unread.
//!
//! Input, as text: the first byte picks the kind (`s` EndpointSlice, `e`
//! Endpoints, `v` Service, `n` Node, `p` the pod projection, any other byte:
//! one of them), the rest is the JSON of the object.
//!
//! Checks: no panic; whenever the full decode succeeds, decoding without
//! managedFields succeeds too and gives the same object as the full decode
//! followed by `strip_managed_fields` (for the pod projection, which never
//! reads managedFields: the same object). The other way round need not
//! hold: a malformed managedFields value fails the full decode and is
//! skipped unread.
#![no_main]

use ecm_informer::{WithoutManagedFields, strip_managed_fields};
use ecm_types::PodProjection;
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

/// Decodes `json` as `K` both ways; `expected` is what the full decode
/// should become (`strip_managed_fields`, or nothing for the projection).
fn check<K>(json: &[u8], expected: fn(K) -> K)
where
    K: DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let lean = serde_json::from_slice::<WithoutManagedFields<K>>(json);
    if let Ok(full) = serde_json::from_slice::<K>(json) {
        let lean = lean.expect("the full decode succeeded, the decode without managedFields failed");
        assert_eq!(lean.0, expected(full));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, json)) = data.split_first() else {
        return;
    };
    let kind = match kind {
        b's' => 0,
        b'e' => 1,
        b'v' => 2,
        b'n' => 3,
        b'p' => 4,
        other => other % 5,
    };
    match kind {
        0 => check::<EndpointSlice>(json, strip_managed_fields),
        1 => check::<Endpoints>(json, strip_managed_fields),
        2 => check::<Service>(json, strip_managed_fields),
        3 => check::<Node>(json, strip_managed_fields),
        _ => check::<PodProjection>(json, std::convert::identity),
    }
});
