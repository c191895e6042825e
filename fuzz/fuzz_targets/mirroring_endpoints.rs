//! The mirroring controller's plan (`ecm_mirroring::plan`) for arbitrary,
//! user-written Endpoints, over the slices it mirrored for an earlier
//! version of them.
//!
//! Checks: no panic; every slice created or updated holds at most the
//! maximum of endpoints, each with one canonical address of the slice's
//! family; its ports are ports of the Endpoints; and when the API server
//! accepts the Endpoints, it accepts every slice mirrored from them.
#![no_main]

use arbitrary::Arbitrary;
use ecm_fuzz::{IpText, Name, PortNumber, Protocol, slice_problems, slice_validation_errors};
use ecm_mirroring::plan;
use ecm_types::repack::repack_subsets;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct InputAddress {
    ip: IpText,
    hostname: Option<Name>,
    node_name: Option<Name>,
}

#[derive(Arbitrary, Debug)]
struct InputPort {
    name: Option<Name>,
    port: PortNumber,
    protocol: Protocol,
    app_protocol: Option<Name>,
}

#[derive(Arbitrary, Debug)]
struct InputSubset {
    addresses: Option<Vec<InputAddress>>,
    not_ready: Option<Vec<InputAddress>>,
    ports: Option<Vec<InputPort>>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    earlier: Vec<InputSubset>,
    subsets: Vec<InputSubset>,
    labels: Vec<(Name, Name)>,
    max_endpoints: u8,
    deleting: bool,
}

fn addresses(input: Option<&Vec<InputAddress>>) -> Option<Vec<EndpointAddress>> {
    input.map(|list| {
        list.iter()
            .map(|a| EndpointAddress {
                ip: a.ip.text(),
                hostname: a.hostname.as_ref().map(Name::text),
                node_name: a.node_name.as_ref().map(Name::text),
                ..EndpointAddress::default()
            })
            .collect()
    })
}

fn endpoints(subsets: &[InputSubset], input: &Input) -> Endpoints {
    let mut ep = Endpoints {
        subsets: Some(
            subsets
                .iter()
                .map(|s| EndpointSubset {
                    addresses: addresses(s.addresses.as_ref()),
                    not_ready_addresses: addresses(s.not_ready.as_ref()),
                    ports: s.ports.as_ref().map(|ports| {
                        ports
                            .iter()
                            .map(|p| EndpointPort {
                                name: p.name.as_ref().map(Name::text),
                                port: p.port.get(),
                                protocol: p.protocol.api(),
                                app_protocol: p.app_protocol.as_ref().map(Name::text),
                            })
                            .collect()
                    }),
                })
                .collect(),
        ),
        ..Endpoints::default()
    };
    ep.metadata.name = Some("web".into());
    ep.metadata.namespace = Some("ns".into());
    ep.metadata.uid = Some("uid-1".into());
    ep.metadata.labels = Some(input.labels.iter().map(|(k, v)| (k.text(), v.text())).collect());
    ep
}

fuzz_target!(|input: Input| {
    let max = usize::from(input.max_endpoints % 16) + 1;
    let earlier = endpoints(&input.earlier, &input);
    let mut existing = plan(&earlier, [], max).to_create;
    for (i, slice) in existing.iter_mut().enumerate() {
        slice.metadata.name = Some(format!("web-{i}"));
        slice.metadata.generate_name = None;
    }

    let mut ep = endpoints(&input.subsets, &input);
    if input.deleting {
        ep.metadata.deletion_timestamp = serde_json::from_str("\"2026-01-01T00:00:00Z\"").ok();
    }
    let accepted = serde_json::to_value(&ep)
        .map(|v| ecm_apiserver::fuzzing::validate_create("endpoints", &v).is_empty())
        .unwrap_or(false);
    let out = plan(&ep, &existing, max);

    // Addresses are counted per repacked subset, as upstream counts them: an
    // address serving ports of different address sets is in several.
    let repacked = repack_subsets(ep.subsets.as_deref().unwrap_or_default());
    let total: usize = repacked
        .iter()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len) + s.not_ready_addresses.as_ref().map_or(0, Vec::len))
        .sum();
    assert!(
        out.invalid_addresses <= out.addresses_skipped && out.addresses_skipped <= total,
        "{} invalid, {} skipped of {total}",
        out.invalid_addresses,
        out.addresses_skipped
    );
    let input_ports: Vec<(String, i32, String)> = ep
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port,
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            )
        })
        .collect();
    for slice in out.to_create.iter().chain(&out.to_update) {
        let problems = slice_problems(slice, max);
        assert!(problems.is_empty(), "{problems:?} in {slice:?}");
        for port in slice.ports.iter().flatten() {
            let key = (
                port.name.clone().unwrap_or_default(),
                port.port.unwrap_or_default(),
                port.protocol.clone().unwrap_or_default(),
            );
            assert!(input_ports.contains(&key), "{port:?} is no port of the Endpoints");
        }
        if accepted {
            let errors = slice_validation_errors(slice);
            assert!(
                errors.is_empty(),
                "valid Endpoints mirrored into an invalid slice: {errors:?} {slice:?}"
            );
        }
    }
});
