//! The `ecm` binary's building blocks: command line, client, the set of
//! controllers, leader election, health and metrics endpoints (metrics over
//! HTTPS with delegated authentication and authorization), embedded mode,
//! `simulate`, `explain` and shadow mode. `src/main.rs` only calls
//! [`cli::main`]; the library exists so that integration tests can drive the
//! same code.
//!
//! ```text
//! ecm run [--kubeconfig FILE] [flags]   run the controllers against a cluster
//! ecm run --embedded                    ...or against an in-memory API server
//! ecm simulate -f SCENARIO.yaml         run a conformance scenario, print the result
//! ecm explain service NAME [-n NS]      why each pod is or is not an endpoint
//! ecm shadow [--once]                   compare what ecm would write with what exists
//! ecm version
//! ```

pub mod cli;
pub mod client;
pub mod compare;
pub mod controller_set;
pub mod controllers;
pub mod duration;
pub mod embedded;
pub mod explain;
pub mod health;
pub mod leader;
pub mod listen;
pub mod logging;
pub mod options;
pub mod parity;
pub mod runtime;
pub mod scenario;
pub mod secure;
pub mod shadow;
pub mod signals;
pub mod simulate;
pub mod throttle;
