//! `ecm explain service NAME`: why each pod is, or is not, an endpoint of a
//! Service, what the controllers would write for it, and how that differs
//! from what exists.
//!
//! Nothing here decides anything of its own: the desired objects are what the
//! controllers' plans leave over the existing objects ([`crate::parity`]), the per-pod
//! verdicts ask the rules those plans apply (`PodProjection`'s rules,
//! `find_port`, the Endpoints controller's address) and read membership and
//! conditions back from the desired objects, the hint reasons are the
//! events the plan records, and the mirroring verdict is the mirroring
//! sync's own decision function.

mod command;
mod load;
mod pods;
mod render;
mod report;

pub use command::{ExplainArgs, ExplainCommand, Output, limits, report, run};
pub use load::{load, load_scenario};
pub use pods::{EndpointsVerdict, PodVerdict, PortResolution, SliceEndpoint, SliceVerdict};
pub use render::table;
pub use report::{HintNote, Mirroring, Objects, Report, Request, explain};
