//! Builders and a fake EndpointSlice API shared by the unit tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ecm_controller::{EventRecord, EventRecorder, ObjectWriter, WriteError};
use ecm_types::endpoint_slice::set_endpoints;
use ecm_types::wellknown::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY_MIRRORING_CONTROLLER};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Service, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// An Endpoints address with just an IP.
pub(crate) fn addr(ip: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.to_owned(),
        ..EndpointAddress::default()
    }
}

/// An Endpoints address with hostname and node.
pub(crate) fn addr_on(ip: &str, hostname: &str, node: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.to_owned(),
        hostname: Some(hostname.to_owned()),
        node_name: Some(node.to_owned()),
        ..EndpointAddress::default()
    }
}

/// An Endpoints address targeting pod `pod` (uid `uid-<pod>`) in `ns`.
pub(crate) fn addr_pod(ip: &str, pod: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.to_owned(),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_owned()),
            namespace: Some("ns".to_owned()),
            name: Some(pod.to_owned()),
            uid: Some(format!("uid-{pod}")),
            ..ObjectReference::default()
        }),
        ..EndpointAddress::default()
    }
}

/// An Endpoints port.
pub(crate) fn port(name: &str, number: i32, protocol: &str) -> EndpointPort {
    EndpointPort {
        name: Some(name.to_owned()),
        port: number,
        protocol: Some(protocol.to_owned()),
        app_protocol: None,
    }
}

/// The EndpointSlice form of [`port`].
pub(crate) fn slice_port(name: &str, number: i32, protocol: &str) -> discovery::EndpointPort {
    discovery::EndpointPort {
        name: Some(name.to_owned()),
        port: Some(number),
        protocol: Some(protocol.to_owned()),
        app_protocol: None,
    }
}

/// A subset.
pub(crate) fn subset(
    ready: Vec<EndpointAddress>,
    not_ready: Vec<EndpointAddress>,
    ports: Vec<EndpointPort>,
) -> EndpointSubset {
    EndpointSubset {
        addresses: (!ready.is_empty()).then_some(ready),
        not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
        ports: (!ports.is_empty()).then_some(ports),
    }
}

/// Endpoints `ns/<name>` with uid `uid-<name>` and `subsets`.
pub(crate) fn endpoints(name: &str, subsets: Vec<EndpointSubset>) -> Endpoints {
    Endpoints {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("ns".to_owned()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("1".to_owned()),
            ..ObjectMeta::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    }
}

/// A selector-less Service `ns/<name>`.
pub(crate) fn service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("ns".to_owned()),
            uid: Some(format!("svc-uid-{name}")),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec::default()),
        status: None,
    }
}

/// [`service`] with a selector.
pub(crate) fn service_with_selector(name: &str, selector: &[(&str, &str)]) -> Service {
    let mut svc = service(name);
    if let Some(spec) = svc.spec.as_mut() {
        spec.selector = Some(
            selector
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
    }
    svc
}

/// A mirrored endpoint as the controller writes it.
pub(crate) fn slice_endpoint(ip: &str, ready: bool) -> discovery::Endpoint {
    discovery::Endpoint {
        addresses: vec![ip.to_owned()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..EndpointConditions::default()
        }),
        ..discovery::Endpoint::default()
    }
}

/// A stored slice `name` mirrored from `ep` by this controller (labels,
/// owner reference, uid `uid-<name>`, generation 1).
pub(crate) fn mirrored_slice(
    ep: &Endpoints,
    name: &str,
    address_type: &str,
    ports: Vec<discovery::EndpointPort>,
    endpoints: Vec<discovery::Endpoint>,
) -> EndpointSlice {
    let ep_name = ep.metadata.name.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = ep.metadata.labels.clone().unwrap_or_default();
    labels.insert(LABEL_SERVICE_NAME.to_owned(), ep_name.clone());
    labels.insert(LABEL_MANAGED_BY.to_owned(), MANAGED_BY_MIRRORING_CONTROLLER.to_owned());
    let mut slice = EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("ns".to_owned()),
            uid: Some(format!("uid-{name}")),
            generation: Some(1),
            resource_version: Some("5".to_owned()),
            labels: Some(labels),
            annotations: Some(BTreeMap::new()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_owned(),
                kind: "Endpoints".to_owned(),
                name: ep_name,
                uid: ep.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        address_type: address_type.to_owned(),
        ports: Some(ports),
        ..EndpointSlice::default()
    };
    set_endpoints(&mut slice, endpoints);
    slice
}

/// A write verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Create,
    Update,
    Delete,
}

/// One write the fake API received.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) verb: Verb,
    /// The slice name (for creates: the name the fake gave it).
    pub(crate) name: String,
    /// The object sent (creates and updates).
    pub(crate) sent: Option<EndpointSlice>,
}

/// A fake EndpointSlice API: records every call, names created slices
/// `<generateName><n>`, bumps generations, and fails calls on request.
#[derive(Default)]
pub(crate) struct FakeApi {
    calls: Mutex<Vec<Call>>,
    faults: Mutex<Vec<(Verb, WriteError)>>,
}

impl FakeApi {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes the next call of `verb` fail with `error`.
    pub(crate) fn fail_next(&self, verb: Verb, error: WriteError) {
        self.faults.lock().unwrap().push((verb, error));
    }

    /// Every call so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The verbs and names of every call so far.
    pub(crate) fn summary(&self) -> Vec<(Verb, String)> {
        self.calls().into_iter().map(|c| (c.verb, c.name)).collect()
    }

    fn record(&self, verb: Verb, name: String, sent: Option<EndpointSlice>) -> Result<(), WriteError> {
        let mut faults = self.faults.lock().unwrap();
        if let Some(i) = faults.iter().position(|(v, _)| *v == verb) {
            return Err(faults.remove(i).1);
        }
        self.calls.lock().unwrap().push(Call { verb, name, sent });
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter<EndpointSlice> for FakeApi {
    async fn create(&self, _namespace: &str, object: &EndpointSlice) -> Result<ObjectMeta, WriteError> {
        let n = self.calls.lock().unwrap().len();
        let mut stored = object.clone();
        let name = format!("{}{n}", object.metadata.generate_name.as_deref().unwrap_or_default());
        self.record(Verb::Create, name.clone(), Some(object.clone()))?;
        stored.metadata.name = Some(name.clone());
        stored.metadata.uid = Some(format!("uid-{name}"));
        stored.metadata.generation = Some(1);
        Ok(stored.metadata)
    }

    async fn update(&self, _namespace: &str, object: &EndpointSlice) -> Result<ObjectMeta, WriteError> {
        let name = object.metadata.name.clone().unwrap_or_default();
        self.record(Verb::Update, name.clone(), Some(object.clone()))?;
        let mut stored = object.clone();
        stored.metadata.uid = Some(format!("uid-{name}"));
        stored.metadata.generation = Some(2);
        Ok(stored.metadata)
    }

    async fn delete(&self, _namespace: &str, name: &str) -> Result<(), WriteError> {
        self.record(Verb::Delete, name.to_owned(), None)
    }
}

/// An event recorder keeping what it was given.
#[derive(Default)]
pub(crate) struct Events(Mutex<Vec<EventRecord>>);

impl Events {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// (reason, message) of every event so far.
    pub(crate) fn recorded(&self) -> Vec<(String, String)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.reason.clone(), e.message.clone()))
            .collect()
    }
}

#[async_trait]
impl EventRecorder for Events {
    async fn record(&self, event: EventRecord) {
        self.0.lock().unwrap().push(event);
    }
}
