//! Target port resolution (`ecm_types::find_port`) with arbitrary pods and
//! Service ports, and the EndpointSlices the EndpointSlice controller
//! computes from them (`ecm_endpointslice::explain::desired_slices`).
//!
//! Checks: no panic; a numeric target port is used as is, a missing, zero
//! or empty one means the Service port, a named one resolves to the first
//! container port of that name and protocol (app containers, then native
//! sidecars) or to nothing; the slices hold at most the maximum of
//! endpoints, each with one canonical address of the slice's family, and
//! each slice port is what its Service port resolves to.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use ecm_endpointslice::TopologySnapshot;
use ecm_endpointslice::explain::desired_slices;
use ecm_fuzz::{IpText, Name, PortNumber, Protocol, slice_problems, slice_validation_errors};
use ecm_types::{PodProjection, find_port};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Node, Pod, PodCondition, PodIP, PodSpec, PodStatus, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct InputPort {
    name: Option<Name>,
    number: PortNumber,
    protocol: Protocol,
}

#[derive(Arbitrary, Debug)]
struct InputContainer {
    ports: Vec<InputPort>,
    /// For init containers: `restartPolicy: Always` (a native sidecar).
    sidecar: bool,
}

#[derive(Arbitrary, Debug)]
enum Target {
    Unset,
    Number(PortNumber),
    Zero,
    Name(Name),
}

#[derive(Arbitrary, Debug)]
struct InputServicePort {
    name: Option<Name>,
    port: PortNumber,
    target: Target,
    protocol: Protocol,
}

#[derive(Arbitrary, Debug)]
struct Input {
    containers: Vec<InputContainer>,
    init_containers: Vec<InputContainer>,
    ips: Vec<IpText>,
    ready: bool,
    service_ports: Vec<InputServicePort>,
    ip_families: Vec<Name>,
    max_endpoints: u8,
}

fn container(index: usize, input: &InputContainer, init: bool) -> Container {
    Container {
        name: format!("c{index}"),
        ports: Some(
            input
                .ports
                .iter()
                .map(|p| ContainerPort {
                    name: p.name.as_ref().map(Name::text),
                    container_port: p.number.get(),
                    protocol: p.protocol.api(),
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        restart_policy: (init && input.sidecar).then(|| "Always".to_owned()),
        ..Container::default()
    }
}

/// The expected `find_port`, from the pod spec: the first named port of
/// app containers, then of sidecars.
fn expected_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
    match &port.target_port {
        Some(IntOrString::Int(n)) if *n != 0 => Some(*n),
        Some(IntOrString::String(name)) if !name.is_empty() => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.clone().unwrap_or_else(|| "TCP".into()) == protocol
                })
                .map(|p| p.container_port)
        }
        _ => Some(port.port),
    }
}

fuzz_target!(|input: Input| {
    let labels = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
    let mut pod = Pod {
        spec: Some(PodSpec {
            containers: input
                .containers
                .iter()
                .enumerate()
                .map(|(i, c)| container(i, c, false))
                .collect(),
            init_containers: Some(
                input
                    .init_containers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| container(i, c, true))
                    .collect(),
            ),
            node_name: Some("node-1".into()),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: input.ips.first().map(IpText::text),
            pod_ips: Some(input.ips.iter().map(|ip| PodIP { ip: ip.text() }).collect()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if input.ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
        ..Pod::default()
    };
    pod.metadata.name = Some("web-0".into());
    pod.metadata.namespace = Some("ns".into());
    pod.metadata.labels = Some(labels.clone());

    let ports: Vec<ServicePort> = input
        .service_ports
        .iter()
        .map(|p| ServicePort {
            name: p.name.as_ref().map(Name::text),
            port: p.port.get(),
            target_port: match &p.target {
                Target::Unset => None,
                Target::Zero => Some(IntOrString::Int(0)),
                Target::Number(n) => Some(IntOrString::Int(n.get())),
                Target::Name(name) => Some(IntOrString::String(name.text())),
            },
            protocol: p.protocol.api(),
            ..ServicePort::default()
        })
        .collect();

    let projection = PodProjection::from(pod.clone());
    let mut resolved = BTreeMap::new();
    for port in &ports {
        let found = find_port(&projection, port);
        assert_eq!(found, expected_port(&pod, port), "{port:?}");
        resolved.insert(port.name.clone().unwrap_or_default(), found);
    }

    let mut svc = Service {
        spec: Some(ServiceSpec {
            selector: Some(labels),
            ports: Some(ports),
            ip_families: (!input.ip_families.is_empty()).then(|| input.ip_families.iter().map(Name::text).collect()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    svc.metadata.name = Some("web".into());
    svc.metadata.namespace = Some("ns".into());
    svc.metadata.uid = Some("uid-1".into());

    let max = usize::from(input.max_endpoints % 8) + 1;
    let node = |name: &str| {
        let mut node = Node::default();
        node.metadata.name = Some(name.to_owned());
        Some(std::sync::Arc::new(node))
    };
    let desired = desired_slices(&svc, [&projection], [], &node, &TopologySnapshot::default(), max);
    for slice in &desired.slices {
        let problems = slice_problems(slice, max);
        assert!(problems.is_empty(), "{problems:?} in {slice:?}");
        for port in slice.ports.iter().flatten() {
            let name = port.name.clone().unwrap_or_default();
            // Two Service ports may share a name (invalid, but not checked
            // here): the slice port is one of theirs.
            if let Some(Some(number)) = resolved.get(&name) {
                let same_name = svc.spec.iter().flat_map(|s| s.ports.iter().flatten());
                let numbers: Vec<Option<i32>> = same_name
                    .filter(|p| p.name.clone().unwrap_or_default() == name)
                    .map(|p| find_port(&projection, p))
                    .collect();
                assert!(numbers.contains(&port.port) || port.port == Some(*number), "{port:?}");
            }
        }
        let _ = slice_validation_errors(slice);
    }
});
