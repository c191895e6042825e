//! Builders for the Pods and Services the controllers' tests are made of.
//!
//! Available to other crates with the `fixtures` feature. Every builder starts
//! from the smallest valid object and each call adds one thing, so a test
//! reads as the list of what matters to it.
//!
//! ```
//! use ecm_types::fixtures::{pod, service};
//! let svc = service("default", "web").selector([("app", "web")]).port("http", 80, 8080).build();
//! let p = pod("default", "web-0").labels([("app", "web")]).ip("10.0.0.1").ready(true).projection();
//! assert!(p.is_ready());
//! # let _ = svc;
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Pod, PodCondition, PodIP, PodSpec, PodStatus, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use crate::pod::PodProjection;

/// A fixed instant tests can build on: 2024-01-15T10:00:00Z plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_705_312_800 + seconds).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn label_map<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    labels.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// Starts a Pod named `name` in `namespace`, with uid `uid-<name>`,
/// resourceVersion `1`, one container `app`, phase `Running` and no IP.
pub fn pod(namespace: &str, name: &str) -> PodBuilder {
    PodBuilder {
        pod: Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                uid: Some(format!("uid-{name}")),
                resource_version: Some("1".to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".to_owned(),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".to_owned()),
                ..PodStatus::default()
            }),
        },
    }
}

/// Builds a [`Pod`]; see [`pod`].
#[derive(Clone, Debug)]
pub struct PodBuilder {
    pod: Pod,
}

impl PodBuilder {
    fn spec(&mut self) -> &mut PodSpec {
        self.pod.spec.get_or_insert_with(PodSpec::default)
    }

    fn status(&mut self) -> &mut PodStatus {
        self.pod.status.get_or_insert_with(PodStatus::default)
    }

    /// Sets the labels.
    pub fn labels<'a>(mut self, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.pod.metadata.labels = Some(label_map(labels));
        self
    }

    /// Sets the resourceVersion.
    pub fn resource_version(mut self, rv: &str) -> Self {
        self.pod.metadata.resource_version = Some(rv.to_owned());
        self
    }

    /// Sets the uid.
    pub fn uid(mut self, uid: &str) -> Self {
        self.pod.metadata.uid = Some(uid.to_owned());
        self
    }

    /// Gives the pod `ip` as `status.podIP` and only `status.podIPs` entry.
    pub fn ip(self, ip: &str) -> Self {
        self.ips(&[ip])
    }

    /// Sets `status.podIPs` (the first also becomes `status.podIP`).
    pub fn ips(mut self, ips: &[&str]) -> Self {
        let status = self.status();
        status.pod_ip = ips.first().map(|ip| (*ip).to_owned());
        status.pod_ips = Some(ips.iter().map(|ip| PodIP { ip: (*ip).to_owned() }).collect());
        self
    }

    /// Sets only `status.podIP`, leaving `status.podIPs` unset.
    pub fn legacy_pod_ip(mut self, ip: &str) -> Self {
        self.status().pod_ip = Some(ip.to_owned());
        self
    }

    /// Sets `status.phase`.
    pub fn phase(mut self, phase: &str) -> Self {
        self.status().phase = Some(phase.to_owned());
        self
    }

    /// Adds a `Ready` condition with status `True` or `False`, which last
    /// transitioned at [`at(0)`](at).
    pub fn ready(self, ready: bool) -> Self {
        self.ready_since(ready, at(0))
    }

    /// Adds a `Ready` condition with status `True` or `False`, which last
    /// transitioned at `since`.
    pub fn ready_since(mut self, ready: bool, since: Timestamp) -> Self {
        let condition = PodCondition {
            type_: "Ready".to_owned(),
            status: if ready { "True" } else { "False" }.to_owned(),
            last_transition_time: Some(Time(since)),
            ..PodCondition::default()
        };
        let conditions = self.status().conditions.get_or_insert_with(Vec::new);
        conditions.retain(|c| c.type_ != "Ready");
        conditions.push(condition);
        self
    }

    /// Marks the pod as being deleted.
    pub fn deleting(mut self) -> Self {
        self.pod.metadata.deletion_timestamp = Some(Time(at(3600)));
        self
    }

    /// Sets `spec.nodeName`.
    pub fn node(mut self, node: &str) -> Self {
        self.spec().node_name = Some(node.to_owned());
        self
    }

    /// Sets `spec.hostname`.
    pub fn hostname(mut self, hostname: &str) -> Self {
        self.spec().hostname = Some(hostname.to_owned());
        self
    }

    /// Sets `spec.subdomain`.
    pub fn subdomain(mut self, subdomain: &str) -> Self {
        self.spec().subdomain = Some(subdomain.to_owned());
        self
    }

    /// Adds a port to the first app container.
    pub fn container_port(mut self, name: &str, number: i32, protocol: &str) -> Self {
        let port = container_port(name, number, protocol);
        if let Some(container) = self.spec().containers.first_mut() {
            container.ports.get_or_insert_with(Vec::new).push(port);
        }
        self
    }

    /// Adds an app container with one port.
    pub fn extra_container_port(mut self, name: &str, number: i32, protocol: &str) -> Self {
        let index = self.spec().containers.len();
        self.spec().containers.push(Container {
            name: format!("app-{index}"),
            ports: Some(vec![container_port(name, number, protocol)]),
            ..Container::default()
        });
        self
    }

    /// Adds an init container with one port; with `sidecar` its
    /// `restartPolicy` is `Always` (a native sidecar).
    pub fn init_container_port(mut self, name: &str, number: i32, protocol: &str, sidecar: bool) -> Self {
        let init = self.spec().init_containers.get_or_insert_with(Vec::new);
        init.push(Container {
            name: format!("init-{}", init.len()),
            restart_policy: sidecar.then(|| "Always".to_owned()),
            ports: Some(vec![container_port(name, number, protocol)]),
            ..Container::default()
        });
        self
    }

    /// The built Pod.
    pub fn build(self) -> Pod {
        self.pod
    }

    /// The built Pod's projection.
    pub fn projection(self) -> PodProjection {
        PodProjection::from(self.pod)
    }
}

fn container_port(name: &str, number: i32, protocol: &str) -> ContainerPort {
    ContainerPort {
        name: (!name.is_empty()).then(|| name.to_owned()),
        container_port: number,
        protocol: Some(protocol.to_owned()),
        ..ContainerPort::default()
    }
}

/// Starts a ClusterIP Service named `name` in `namespace`, with uid
/// `uid-<name>`, cluster IP `10.96.0.10`, family IPv4, created at
/// [`at(0)`](at), no selector and no ports.
pub fn service(namespace: &str, name: &str) -> ServiceBuilder {
    ServiceBuilder {
        service: Service {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                uid: Some(format!("uid-{name}")),
                resource_version: Some("1".to_owned()),
                creation_timestamp: Some(Time(at(0))),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".to_owned()),
                cluster_ip: Some("10.96.0.10".to_owned()),
                ip_families: Some(vec!["IPv4".to_owned()]),
                ..ServiceSpec::default()
            }),
            status: None,
        },
    }
}

/// Builds a [`Service`]; see [`service`].
#[derive(Clone, Debug)]
pub struct ServiceBuilder {
    service: Service,
}

impl ServiceBuilder {
    fn spec(&mut self) -> &mut ServiceSpec {
        self.service.spec.get_or_insert_with(ServiceSpec::default)
    }

    /// Sets the selector.
    pub fn selector<'a>(mut self, selector: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.spec().selector = Some(label_map(selector));
        self
    }

    /// Sets the labels.
    pub fn labels<'a>(mut self, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.service.metadata.labels = Some(label_map(labels));
        self
    }

    /// Sets the creation time.
    pub fn created(mut self, at: Timestamp) -> Self {
        self.service.metadata.creation_timestamp = Some(Time(at));
        self
    }

    /// Adds a TCP port with a numeric target port.
    pub fn port(self, name: &str, port: i32, target: i32) -> Self {
        self.port_full(name, port, IntOrString::Int(target), "TCP")
    }

    /// Adds a TCP port with a named target port.
    pub fn named_port(self, name: &str, port: i32, target: &str) -> Self {
        self.port_full(name, port, IntOrString::String(target.to_owned()), "TCP")
    }

    /// Adds a port with every field given.
    pub fn port_full(mut self, name: &str, port: i32, target: IntOrString, protocol: &str) -> Self {
        self.spec().ports.get_or_insert_with(Vec::new).push(ServicePort {
            name: (!name.is_empty()).then(|| name.to_owned()),
            port,
            target_port: Some(target),
            protocol: Some(protocol.to_owned()),
            ..ServicePort::default()
        });
        self
    }

    /// Sets `appProtocol` on the port added last (does nothing when there is
    /// no port yet).
    pub fn app_protocol(mut self, app_protocol: &str) -> Self {
        if let Some(port) = self.spec().ports.as_mut().and_then(|ports| ports.last_mut()) {
            port.app_protocol = Some(app_protocol.to_owned());
        }
        self
    }

    /// Makes the Service headless (`clusterIP: None`).
    pub fn headless(mut self) -> Self {
        self.spec().cluster_ip = Some("None".to_owned());
        self
    }

    /// Sets `spec.clusterIP`.
    pub fn cluster_ip(mut self, ip: &str) -> Self {
        self.spec().cluster_ip = Some(ip.to_owned());
        self
    }

    /// Sets `spec.ipFamilies` (empty: unset).
    pub fn ip_families(mut self, families: &[&str]) -> Self {
        self.spec().ip_families = (!families.is_empty()).then(|| families.iter().map(|f| (*f).to_owned()).collect());
        self
    }

    /// Sets `spec.publishNotReadyAddresses`.
    pub fn publish_not_ready(mut self, publish: bool) -> Self {
        self.spec().publish_not_ready_addresses = Some(publish);
        self
    }

    /// Sets `spec.type`.
    pub fn type_(mut self, type_: &str) -> Self {
        self.spec().type_ = Some(type_.to_owned());
        self
    }

    /// The built Service.
    pub fn build(self) -> Service {
        self.service
    }
}
