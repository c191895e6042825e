//! Chaos and failover harness: ecm-apiserver served over HTTP with seeded
//! faults, a seeded churn of pods, Services and nodes, the real `ecm`
//! binary as child processes, and an independent oracle of what every
//! Service's Endpoints and EndpointSlices must hold.

// Each test crate uses a part of this module.
#![allow(dead_code)]

pub(crate) mod fault_mix;
pub(crate) mod objects;
pub(crate) mod oracle;
pub(crate) mod process;
pub(crate) mod run;
pub(crate) mod world;
