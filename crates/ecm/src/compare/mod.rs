//! Semantic comparison of endpoint objects: what a controller would write
//! against what exists, field by field, ignoring what carries no meaning
//! (slice names, how endpoints are packed into slices, resourceVersions,
//! trigger-time annotations). `ecm explain` prints these differences and
//! `ecm shadow` reports them as divergences.

mod difference;
mod endpoints;
mod slices;

pub use difference::Difference;
pub use endpoints::compare_endpoints;
pub use slices::compare_slices;
