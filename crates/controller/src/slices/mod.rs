//! What the two controllers that write EndpointSlices share: their settings
//! ([`SliceConfig`]), who manages a
//! slice and the index of managed slices by owner ([`SliceManager`]), the
//! slice event handler guarded by the [`EndpointSliceTracker`]
//! ([`SliceHandler`]), the order of slice writes ([`write_slices`]) and the
//! arithmetic behind the slice gauges ([`SliceEfficiency`]).
//!
//! An *owner* is what a set of slices is written for: a Service (the
//! EndpointSlice controller) or an Endpoints object (the mirroring
//! controller). Both name it by the slice's namespace and its
//! `kubernetes.io/service-name` label, so one key type serves both.

mod config;
mod efficiency;
mod handler;
mod manager;
mod tracker;
mod writes;

pub use config::SliceConfig;
pub use efficiency::{EfficiencyInfo, SliceEfficiency, SliceTotals};
pub use handler::SliceHandler;
pub use manager::{MissingServiceName, SliceManager, owner_key};
pub use tracker::{EndpointSliceTracker, WriteHold};
pub use writes::{SliceWriteFailure, SliceWriter, SliceWrites, SlicesWritten, write_slices};
