//! ecm-apiserver's request decoding, step by step
//! (`ecm_apiserver::fuzzing`): query parameters of lists and watches
//! (label and field selectors, resourceVersion and resourceVersionMatch,
//! limit and continue, watch parameters), continue tokens, patch bodies of
//! every patch type applied to a stored object, and the validation of what
//! a body decodes to.
//!
//! Input, as text: the first byte picks the step, the second the resource
//! (`p`ods, `s`ervices, `e`ndpointslices, e`n`dpoints, or any byte: one of
//! them; the patched object), the rest is the query string or the body:
//! - `q`: a query string, decoded for a list and a watch;
//! - `c`: a continue token's key, encoded and decoded again;
//! - `j`, `m`, `s`, `a`: a JSON, merge, strategic merge or apply patch
//!   applied to a Pod, Service, EndpointSlice or Endpoints; the result is
//!   validated;
//! - `v`: a JSON or YAML body, validated as an object of the resource.
//!
//! Checks: no panic; continue tokens decode to what was encoded; a list
//! that succeeds had a valid limit.
#![no_main]

use ecm_apiserver::fuzzing::{continue_round_trip, decode_query, patch, validate_create};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const RESOURCES: [&str; 4] = ["pods", "services", "endpointslices", "endpoints"];

fn stored(resource: &str) -> Value {
    match resource {
        "pods" => json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"podIPs": [{"ip": "10.0.0.1"}], "conditions": [{"type": "Ready", "status": "True"}]}
        }),
        "services" => json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }),
        "endpointslices" => json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "namespace": "ns", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }),
        _ => json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "ns"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080}]}]
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let [step, which, rest @ ..] = data else { return };
    let resource = match which {
        b'p' => "pods",
        b's' => "services",
        b'e' => "endpointslices",
        b'n' => "endpoints",
        other => RESOURCES[usize::from(*other) % RESOURCES.len()],
    };
    let text = String::from_utf8_lossy(rest);
    let content_type = match step {
        b'q' => {
            let outcome = decode_query(resource, &text, u64::from(*which));
            if let Ok(limit) = outcome.list {
                assert!(limit <= i64::MAX as usize);
            }
            return;
        }
        b'c' => {
            let rv = u64::from(*which);
            assert_eq!(continue_round_trip(rv, &text), Some((rv, text.into_owned())));
            return;
        }
        b'v' => {
            let body = serde_json::from_slice::<Value>(rest).ok();
            if let Some(body) = body {
                let _ = validate_create(resource, &body);
            }
            return;
        }
        b'j' => "application/json-patch+json",
        b'm' => "application/merge-patch+json",
        b's' => "application/strategic-merge-patch+json",
        b'a' => "application/apply-patch+yaml",
        _ => return,
    };
    if let Some(Ok(patched)) = patch(content_type, &stored(resource), rest) {
        let _ = validate_create(resource, &patched);
    }
});
