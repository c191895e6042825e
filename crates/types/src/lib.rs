//! Shared rules of the ecm endpoint controllers.
//!
//! The Endpoints, EndpointSlice and EndpointSlice-mirroring controllers agree
//! on many small rules: which pods become endpoints, how a pod's readiness,
//! IPs, ports and hostname turn into an endpoint, which Services a pod change
//! concerns, which labels and annotations mean what, and how to tell a real
//! change from a no-op. Upstream keeps these in `k8s.io/endpointslice/util`
//! and `pkg/api/v1/pod`; here they live once, in this crate, as pure
//! functions with table tests built from upstream's own test cases.
//!
//! Nothing here does I/O or keeps state between calls: the work queue,
//! informers, writers, trackers and other machinery the controllers share
//! live in `ecm-controller`.
//!
//! | module | holds |
//! |---|---|
//! | [`wellknown`] | label and annotation keys, managed-by values, limits |
//! | [`ip`] | [`IpFamily`] and pod-IP parsing |
//! | [`pod`] | [`PodProjection`], the compact cached pod, and the pod rules |
//! | [`ports`] | [`find_port`], target port resolution |
//! | [`service`] | Service shape: selector, headless, ExternalName, ports, IP families |
//! | [`repack`] | Endpoints subsets in upstream's `RepackSubsets` layout |
//! | [`equality`] | semantic equality used to skip no-op writes |
//! | [`endpoint_slice`] | EndpointSlice field access that works on every k8s-openapi version |
//! | [`endpoint_set`] | endpoint identity and [`endpoint_set::EndpointSet`] |
//! | [`port_map`] | [`port_map::PortMapKey`], the order-insensitive key of a slice's ports |
//! | `fixtures` (feature `fixtures`) | Pod and Service builders for tests |
//!
//! # Example
//!
//! Deciding whether, and how, a pod shows up for a Service port:
//!
//! ```
//! use ecm_types::{find_port, IpFamily, PodProjection};
//! use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodIP, PodSpec, PodStatus, ServicePort};
//! use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
//!
//! let pod = PodProjection::from(Pod {
//!     spec: Some(PodSpec {
//!         containers: vec![Container {
//!             name: "app".into(),
//!             ports: Some(vec![ContainerPort {
//!                 name: Some("http".into()),
//!                 container_port: 8080,
//!                 ..Default::default()
//!             }]),
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     }),
//!     status: Some(PodStatus {
//!         phase: Some("Running".into()),
//!         pod_ips: Some(vec![PodIP { ip: "10.0.0.7".into() }, PodIP { ip: "fd00::7".into() }]),
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! });
//! let port = ServicePort {
//!     port: 80,
//!     target_port: Some(IntOrString::String("http".into())),
//!     ..Default::default()
//! };
//! assert!(pod.should_be_endpoint(false));
//! assert!(!pod.is_ready());
//! assert_eq!(find_port(&pod, &port), Some(8080));
//! assert_eq!(pod.ips_of_family(IpFamily::V6).collect::<Vec<_>>(), ["fd00::7"]);
//! ```

pub mod endpoint_set;
pub mod endpoint_slice;
pub mod equality;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod ip;
pub mod pod;
pub mod port_map;
pub mod ports;
pub mod repack;
pub mod service;
pub mod wellknown;

pub use ip::IpFamily;
pub use pod::{PodChange, PodProjection};
pub use ports::find_port;
