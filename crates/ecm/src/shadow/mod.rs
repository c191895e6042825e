//! Shadow mode (`ecm shadow`): the three controllers' desired state,
//! computed exactly as in normal operation from live informers, compared
//! with the objects another controller (kube-controller-manager) wrote —
//! without writing anything: no Endpoints, EndpointSlices, Leases or events.
//!
//! Shadow mode does not run the controllers' syncs with a writer that
//! drops writes: their stale-cache guards (the EndpointSlice tracker, the
//! Endpoints expectations) wait for their own writes to come back through
//! the watch, which would never happen. It runs one controller of its own
//! on the shared runtime ([`ecm_controller::ControllerCore`], the shared
//! Service and pod handlers), whose sync asks each controller's `explain`
//! module what its sync's plan would leave over the existing objects
//! ([`crate::parity`]) and compares that semantically with what exists
//! ([`crate::compare`]).
//!
//! Pod, slice and Endpoints events queue their Service's check after a
//! fifth of the grace period, so that one change and the other
//! controller's writes in answer to it cost one check.
//!
//! A difference is reported (one log line, the metrics, `/shadow`) once it
//! has lasted the grace period since the last event concerning the Service
//! (a change to the Service, its pods, its slices or its Endpoints, seen as
//! a change of their resourceVersions between two checks): every such
//! event re-checks it and starts its grace period again, and a check that
//! no longer sees it ends it (the other controller caught up). A Service
//! with a difference inside its grace period is re-checked when the period
//! ends. Informer resyncs re-check every Service.

mod command;
mod reason;
mod runner;
mod state;

pub use command::{ShadowArgs, render, run};
pub use runner::{DEFAULT_GRACE_PERIOD, QUEUE_NAME, Shadow, ShadowConfig, routes};
pub use state::{
    CHECKS, DIVERGENCES, DIVERGENCES_REPORTED, DIVERGENT_SERVICES, Divergence, Report, SERVICES_COMPARED, ShadowState,
    describe,
};
