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
//! The crate also defines the narrow write interfaces the controllers use
//! ([`ObjectWriter`], [`EventRecorder`]) with their `kube::Client`
//! implementations and, behind the `mock` feature, `mockall` mocks.
//!
//! | module | holds |
//! |---|---|
//! | [`wellknown`] | label and annotation keys, managed-by values, limits |
//! | [`key`] | [`ObjectKey`], the `namespace/name` key |
//! | [`ip`] | [`IpFamily`] and pod-IP parsing |
//! | [`pod`] | [`PodProjection`], the compact cached pod, and the pod rules |
//! | [`ports`] | [`find_port`], target port resolution |
//! | [`service`] | selector matching and which Services a pod event concerns |
//! | [`trigger_time`] | [`TriggerTimeTracker`] for the last-change-trigger-time annotation |
//! | [`repack`] | Endpoints subsets in upstream's `RepackSubsets` layout |
//! | [`equality`] | semantic equality used to skip no-op writes |
//! | [`endpoint_slice`] | EndpointSlice field access that works on every k8s-openapi version |
//! | [`endpoint_set`] | endpoint identity and [`endpoint_set::EndpointSet`] |
//! | [`port_map`] | [`port_map::PortMapKey`], the order-insensitive key of a slice's ports |
//! | [`slice_tracker`] | [`slice_tracker::EndpointSliceTracker`], expected generations of written slices |
//! | [`slice_writes`] | planned EndpointSlice writes carried out in upstream's order |
//! | [`slice_efficiency`] | the numbers behind the slice gauges (upstream's metrics `Cache`) |
//! | [`outcome`] | [`WriteOperation`] and [`SyncResult`], the label values of the sync and write counters |
//! | [`writers`] | [`ObjectWriter`], [`KubeWriter`], [`WriteError`] |
//! | [`events`] | [`EventRecorder`], [`KubeEventRecorder`] |
//! | `fixtures` (feature `mock`) | Pod and Service builders for tests |
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
pub mod events;
#[cfg(any(test, feature = "mock"))]
pub mod fixtures;
pub mod ip;
pub mod key;
pub mod outcome;
pub mod pod;
pub mod port_map;
pub mod ports;
pub mod repack;
pub mod service;
pub mod slice_efficiency;
pub mod slice_tracker;
pub mod slice_writes;
pub mod trigger_time;
pub mod wellknown;
pub mod writers;

pub use events::{EventRecord, EventRecorder, EventType, KubeEventRecorder};
pub use ip::IpFamily;
pub use key::{KeyError, ObjectKey};
pub use outcome::{SyncResult, WriteOperation};
pub use pod::{PodChange, PodProjection};
pub use ports::find_port;
pub use service::{PodServiceQuery, services_for_pod_event};
pub use trigger_time::TriggerTimeTracker;
pub use writers::{KubeWriter, ObjectWriter, WriteError};

#[cfg(any(test, feature = "mock"))]
pub use events::MockEventRecorder;
#[cfg(any(test, feature = "mock"))]
pub use writers::MockObjectWriter;
