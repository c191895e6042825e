//! The numbers behind the slice gauges of the EndpointSlice and mirroring
//! controllers: how many endpoints each object wants, how many slices hold
//! them, and how many slices perfect packing would need.
//!
//! Upstream keeps one `metrics.Cache` per controller
//! (`pkg/controller/endpointslice/metrics` and
//! `pkg/controller/endpointslicemirroring/metrics`) with the same arithmetic;
//! here the arithmetic lives once, and each controller publishes the
//! [`SliceTotals`] under its own metric names.

use std::collections::HashMap;

use ecm_informer::ObjectKey;

/// The endpoints of one group (address type and port list) and the slices
/// holding them after a sync (upstream's `EfficiencyInfo`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EfficiencyInfo {
    /// Desired endpoints of the group.
    pub endpoints: usize,
    /// Slices of the group once the sync's writes are done.
    pub slices: usize,
}

/// Sums of [`EfficiencyInfo`] over groups, or over every object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SliceTotals {
    /// Slices that exist (the `num_endpoint_slices` gauge).
    pub slices: i64,
    /// Slices perfect packing would need (the `desired_endpoint_slices`
    /// gauge).
    pub desired_slices: i64,
    /// Desired endpoints (the `endpoints_desired` gauge).
    pub endpoints: i64,
}

impl SliceTotals {
    fn add(&mut self, other: SliceTotals, sign: i64) {
        self.slices += sign * other.slices;
        self.desired_slices += sign * other.desired_slices;
        self.endpoints += sign * other.endpoints;
    }
}

/// Per-object [`SliceTotals`] and their running sum. Not synchronised: the
/// controllers keep it behind their own lock, beside whatever else their
/// gauges need.
///
/// ```
/// use ecm_informer::ObjectKey;
/// use ecm_controller::slices::{EfficiencyInfo, SliceEfficiency};
///
/// let mut cache = SliceEfficiency::new(100);
/// let web = ObjectKey::new("default", "web");
/// let totals = cache.update(&web, [EfficiencyInfo { endpoints: 150, slices: 3 }]);
/// assert_eq!((totals.slices, totals.desired_slices, totals.endpoints), (3, 2, 150));
/// assert_eq!(cache.remove(&web), Default::default());
/// ```
#[derive(Debug)]
pub struct SliceEfficiency {
    max_endpoints_per_slice: usize,
    min_desired_slices: i64,
    by_object: HashMap<ObjectKey, SliceTotals>,
    totals: SliceTotals,
}

impl SliceEfficiency {
    /// An empty cache; desired slices are counted with
    /// `max_endpoints_per_slice` endpoints each (a zero counts as one).
    pub fn new(max_endpoints_per_slice: usize) -> Self {
        Self {
            max_endpoints_per_slice: max_endpoints_per_slice.max(1),
            min_desired_slices: 0,
            by_object: HashMap::new(),
            totals: SliceTotals::default(),
        }
    }

    /// Counts at least `slices` desired slices per object: the EndpointSlice
    /// controller's one, for the placeholder slice every Service has.
    #[must_use]
    pub fn min_desired_slices(mut self, slices: usize) -> Self {
        self.min_desired_slices = slices as i64;
        self
    }

    /// Replaces the numbers of `object` with those of its latest sync, one
    /// [`EfficiencyInfo`] per group; returns the new sum over every object.
    pub fn update(&mut self, object: &ObjectKey, groups: impl IntoIterator<Item = EfficiencyInfo>) -> SliceTotals {
        let mut current = SliceTotals::default();
        for group in groups {
            current.slices += group.slices as i64;
            current.desired_slices += group.endpoints.div_ceil(self.max_endpoints_per_slice) as i64;
            current.endpoints += group.endpoints as i64;
        }
        current.desired_slices = current.desired_slices.max(self.min_desired_slices);
        if let Some(previous) = self.by_object.insert(object.clone(), current) {
            self.totals.add(previous, -1);
        }
        self.totals.add(current, 1);
        self.totals
    }

    /// Forgets `object` (deleted, or no longer handled); returns the new sum.
    pub fn remove(&mut self, object: &ObjectKey) -> SliceTotals {
        if let Some(previous) = self.by_object.remove(object) {
            self.totals.add(previous, -1);
        }
        self.totals
    }

    /// The sum over every object.
    pub fn totals(&self) -> SliceTotals {
        self.totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(endpoints: usize, slices: usize) -> EfficiencyInfo {
        EfficiencyInfo { endpoints, slices }
    }

    fn totals(slices: i64, desired_slices: i64, endpoints: i64) -> SliceTotals {
        SliceTotals {
            slices,
            desired_slices,
            endpoints,
        }
    }

    #[test]
    fn sums_the_latest_sync_of_every_object() {
        let (a, b) = (ObjectKey::new("ns", "a"), ObjectKey::new("ns", "b"));
        let mut cache = SliceEfficiency::new(2);
        assert_eq!(cache.update(&a, [info(3, 1), info(1, 1)]), totals(2, 3, 4));
        assert_eq!(cache.update(&b, [info(4, 3)]), totals(5, 5, 8));
        assert_eq!(cache.update(&a, [info(2, 1)]), totals(4, 3, 6), "a replaced, not added");
        assert_eq!(cache.remove(&b), totals(1, 1, 2));
        assert_eq!(cache.remove(&b), totals(1, 1, 2), "removing twice changes nothing");
        assert_eq!(cache.remove(&a), SliceTotals::default());
        assert_eq!(cache.totals(), SliceTotals::default());
    }

    #[test]
    fn min_desired_slices_counts_the_placeholder() {
        let key = ObjectKey::new("ns", "empty");
        let mut plain = SliceEfficiency::new(100);
        assert_eq!(plain.update(&key, [info(0, 1)]), totals(1, 0, 0));
        let mut with_placeholder = SliceEfficiency::new(100).min_desired_slices(1);
        assert_eq!(with_placeholder.update(&key, [info(0, 1)]), totals(1, 1, 0));
        assert_eq!(with_placeholder.update(&key, []), totals(0, 1, 0));
        assert_eq!(with_placeholder.update(&key, [info(250, 3)]), totals(3, 3, 250));
    }

    #[test]
    fn a_zero_maximum_counts_as_one() {
        let mut cache = SliceEfficiency::new(0);
        assert_eq!(cache.update(&ObjectKey::new("ns", "a"), [info(3, 1)]), totals(1, 3, 3));
    }
}
