//! The divergences shadow mode has seen: each difference between what ecm
//! would write and what exists, from the check that first saw it, through
//! its grace period, to the check that no longer sees it; with the metrics
//! and the JSON report derived from them.
//!
//! Invariants: `divergences` holds, per (controller, Service), exactly the
//! differences of the last check of that Service, each with the instant
//! from which its grace period runs: the later of the first check of the
//! uninterrupted run of checks that saw it and the last check that found
//! the Service's inputs changed (an event concerning it). An entry is
//! `reported` once its grace period is over, and is reported (logged and
//! counted) exactly once per run. `inputs` holds the fingerprint of each
//! Service's inputs at its last check; `compared` the Services each
//! controller's last check compared.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ecm_informer::ObjectKey;
use serde::Serialize;
use tokio::time::Instant;

use crate::compare::Difference;
use crate::controllers::ControllerName;

/// `ecm_shadow_services_compared{controller}`: Services (or mirrored
/// Endpoints) each controller's desired state was last compared for.
pub const SERVICES_COMPARED: &str = "ecm_shadow_services_compared";
/// `ecm_shadow_divergent_services{controller}`: Services with at least one
/// divergence past its grace period.
pub const DIVERGENT_SERVICES: &str = "ecm_shadow_divergent_services";
/// `ecm_shadow_divergences{controller,field}`: divergences past their grace
/// period now.
pub const DIVERGENCES: &str = "ecm_shadow_divergences";
/// `ecm_shadow_divergences_reported_total{controller,field}`: divergences
/// reported since start.
pub const DIVERGENCES_REPORTED: &str = "ecm_shadow_divergences_reported_total";
/// `ecm_shadow_checks_total`: Service checks made.
pub const CHECKS: &str = "ecm_shadow_checks_total";

/// Describes the shadow metrics to the recorder.
pub fn describe() {
    metrics::describe_gauge!(SERVICES_COMPARED, "Services compared by shadow mode, per controller");
    metrics::describe_gauge!(
        DIVERGENT_SERVICES,
        "Services whose desired objects differ from the existing ones past the grace period, per controller"
    );
    metrics::describe_gauge!(
        DIVERGENCES,
        "Current divergences past the grace period, per controller and field"
    );
    metrics::describe_counter!(DIVERGENCES_REPORTED, "Divergences reported, per controller and field");
    metrics::describe_counter!(CHECKS, "Service checks made by shadow mode");
}

#[derive(Clone, Debug)]
struct Entry {
    difference: Difference,
    since: Instant,
    reported: bool,
    reason: String,
}

/// One divergence, as `/shadow` and `ecm shadow --once` report it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Divergence {
    /// The controller whose output differs.
    pub controller: String,
    /// The Service (or mirrored Endpoints), `namespace/name`.
    pub service: String,
    /// The field that differs.
    pub field: String,
    /// What differs (an endpoint, a slice, the object).
    pub subject: String,
    /// What ecm would write.
    pub desired: String,
    /// What exists.
    pub actual: String,
    /// Why ecm wants its version (from `ecm explain`).
    pub reason: String,
    /// How long it has lasted, in seconds.
    pub age_seconds: u64,
}

/// The JSON report of `/shadow`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// The grace period, in seconds.
    pub grace_period_seconds: f64,
    /// Services compared, per controller.
    pub services_compared: BTreeMap<String, usize>,
    /// Services with divergences past the grace period, per controller.
    pub divergent_services: BTreeMap<String, usize>,
    /// Differences still within their grace period.
    pub pending: usize,
    /// Divergences past the grace period.
    pub divergences: Vec<Divergence>,
}

/// What one check changed, for logging.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Divergences reported by this check (past the grace period now).
    pub reported: Vec<Divergence>,
    /// Reported divergences that are gone.
    pub cleared: Vec<Divergence>,
    /// When to check again, if a difference is still within its grace period.
    pub recheck_after: Option<Duration>,
}

/// The divergences of every Service; shared by the workers.
#[derive(Debug)]
pub struct ShadowState {
    grace: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    divergences: BTreeMap<(ControllerName, ObjectKey), Vec<Entry>>,
    inputs: BTreeMap<ObjectKey, u64>,
    compared: BTreeMap<ControllerName, BTreeSet<ObjectKey>>,
}

fn divergence(controller: ControllerName, key: &ObjectKey, entry: &Entry, now: Instant) -> Divergence {
    let d = &entry.difference;
    Divergence {
        controller: controller.canonical().to_owned(),
        service: key.to_string(),
        field: d.field.to_owned(),
        subject: d.subject.clone(),
        desired: d.desired.clone(),
        actual: d.actual.clone(),
        reason: entry.reason.clone(),
        age_seconds: now.saturating_duration_since(entry.since).as_secs(),
    }
}

impl ShadowState {
    /// No divergences yet; differences count after `grace`.
    pub fn new(grace: Duration) -> Self {
        describe();
        Self {
            grace,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every
        // update is a whole-entry replacement.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The grace period.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Records the check of `key` at `now`: per controller, its
    /// differences (`None`: the controller leaves the Service alone), and
    /// `inputs`, a fingerprint of what they were computed from (the
    /// resourceVersions of the Service, its pods and its objects): when it
    /// differs from the last check's, an event concerned the Service and
    /// every grace period still running starts again. `reason` explains a
    /// difference about to be reported.
    pub fn observe(
        &self,
        key: &ObjectKey,
        found: BTreeMap<ControllerName, Option<Vec<Difference>>>,
        inputs: u64,
        now: Instant,
        mut reason: impl FnMut(ControllerName, &Difference) -> String,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let mut inner = self.lock();
        metrics::counter!(CHECKS).increment(1);
        let untouched = found.values().all(Option::is_none);
        let changed = if untouched {
            inner.inputs.remove(key);
            true
        } else {
            inner.inputs.insert(key.clone(), inputs) != Some(inputs)
        };
        for (controller, differences) in found {
            let compared = inner.compared.entry(controller).or_default();
            if differences.is_some() {
                compared.insert(key.clone());
            } else {
                compared.remove(key);
            }
            let slot = (controller, key.clone());
            let old = inner.divergences.remove(&slot).unwrap_or_default();
            let mut entries = Vec::new();
            for difference in differences.unwrap_or_default() {
                let entry = match old.iter().find(|e| e.difference == difference) {
                    Some(previous) if changed && !previous.reported => Entry {
                        since: now,
                        ..previous.clone()
                    },
                    Some(previous) => previous.clone(),
                    None => Entry {
                        difference,
                        since: now,
                        reported: false,
                        reason: String::new(),
                    },
                };
                entries.push(entry);
            }
            for gone in old.iter().filter(|e| e.reported) {
                if !entries.iter().any(|e| e.difference == gone.difference) {
                    outcome.cleared.push(divergence(controller, key, gone, now));
                }
            }
            for entry in &mut entries {
                let age = now.saturating_duration_since(entry.since);
                if entry.reported {
                    continue;
                }
                if age >= self.grace {
                    entry.reported = true;
                    entry.reason = reason(controller, &entry.difference);
                    metrics::counter!(DIVERGENCES_REPORTED, "controller" => controller.canonical(), "field" => entry.difference.field)
                        .increment(1);
                    outcome.reported.push(divergence(controller, key, entry, now));
                } else {
                    let left = self.grace.saturating_sub(age);
                    outcome.recheck_after = Some(outcome.recheck_after.map_or(left, |d| d.min(left)));
                }
            }
            if !entries.is_empty() {
                inner.divergences.insert(slot, entries);
            }
        }
        Self::publish(&inner);
        outcome
    }

    /// Sets the gauges from the state.
    fn publish(inner: &Inner) {
        for controller in ControllerName::ALL {
            let name = controller.canonical();
            let compared = inner.compared.get(&controller).map_or(0, BTreeSet::len);
            metrics::gauge!(SERVICES_COMPARED, "controller" => name).set(compared as f64);
            let mut divergent = 0;
            let mut by_field: BTreeMap<&'static str, usize> = BTreeMap::new();
            for ((c, _), entries) in &inner.divergences {
                if *c != controller {
                    continue;
                }
                let reported: Vec<&Entry> = entries.iter().filter(|e| e.reported).collect();
                if !reported.is_empty() {
                    divergent += 1;
                }
                for entry in reported {
                    *by_field.entry(entry.difference.field).or_default() += 1;
                }
            }
            metrics::gauge!(DIVERGENT_SERVICES, "controller" => name).set(f64::from(divergent));
            for field in FIELDS {
                let n = by_field.get(field).copied().unwrap_or(0);
                metrics::gauge!(DIVERGENCES, "controller" => name, "field" => *field).set(n as f64);
            }
        }
    }

    /// The current report.
    pub fn report(&self) -> Report {
        let inner = self.lock();
        let now = Instant::now();
        let mut report = Report {
            grace_period_seconds: self.grace.as_secs_f64(),
            services_compared: BTreeMap::new(),
            divergent_services: BTreeMap::new(),
            pending: 0,
            divergences: Vec::new(),
        };
        for (controller, keys) in &inner.compared {
            report
                .services_compared
                .insert(controller.canonical().to_owned(), keys.len());
        }
        for ((controller, key), entries) in &inner.divergences {
            let mut divergent = false;
            for entry in entries {
                if entry.reported {
                    divergent = true;
                    report.divergences.push(divergence(*controller, key, entry, now));
                } else {
                    report.pending += 1;
                }
            }
            if divergent {
                *report
                    .divergent_services
                    .entry(controller.canonical().to_owned())
                    .or_default() += 1;
            }
        }
        report
    }
}

/// Every field a difference may name (so that the gauges go back to 0).
const FIELDS: &[&str] = &[
    "object",
    "endpoints",
    "addresses",
    "conditions.ready",
    "conditions.serving",
    "conditions.terminating",
    "hostname",
    "nodeName",
    "zone",
    "hints",
    "targetRef",
    "ports",
    "labels",
    "annotations",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(field: &'static str) -> Difference {
        Difference {
            field,
            subject: "IPv4 endpoint 10.0.0.1 (pod a)".into(),
            desired: "true".into(),
            actual: "false".into(),
        }
    }

    fn found(d: Option<Vec<Difference>>) -> BTreeMap<ControllerName, Option<Vec<Difference>>> {
        BTreeMap::from([(ControllerName::EndpointSlice, d)])
    }

    #[test]
    fn a_difference_is_reported_once_after_the_grace_period_and_cleared_when_gone() {
        let state = ShadowState::new(Duration::from_secs(5));
        let key = ObjectKey::new("ns", "web");
        let t0 = Instant::now();
        let first = state.observe(&key, found(Some(vec![diff("conditions.ready")])), 1, t0, |_, _| {
            "r".into()
        });
        assert!(first.reported.is_empty());
        assert_eq!(first.recheck_after, Some(Duration::from_secs(5)));
        assert_eq!(state.report().pending, 1);

        let later = t0 + Duration::from_secs(5);
        let second = state.observe(&key, found(Some(vec![diff("conditions.ready")])), 1, later, |_, _| {
            "why".into()
        });
        assert_eq!(second.reported.len(), 1);
        assert_eq!(second.reported[0].reason, "why");
        assert_eq!(second.reported[0].service, "ns/web");
        let third = state.observe(&key, found(Some(vec![diff("conditions.ready")])), 2, later, |_, _| {
            "r".into()
        });
        assert!(third.reported.is_empty(), "reported once");
        assert_eq!(state.report().divergences.len(), 1);

        let cleared = state.observe(&key, found(Some(vec![])), 3, later, |_, _| "r".into());
        assert_eq!(cleared.cleared.len(), 1);
        assert!(state.report().divergences.is_empty());
    }

    #[test]
    fn a_difference_that_goes_away_within_the_grace_period_is_never_reported() {
        let state = ShadowState::new(Duration::from_secs(5));
        let key = ObjectKey::new("ns", "web");
        let t0 = Instant::now();
        state.observe(&key, found(Some(vec![diff("zone")])), 1, t0, |_, _| String::new());
        let gone = state.observe(&key, found(Some(vec![])), 1, t0 + Duration::from_secs(1), |_, _| {
            String::new()
        });
        assert!(gone.reported.is_empty() && gone.cleared.is_empty());
        let back = state.observe(
            &key,
            found(Some(vec![diff("zone")])),
            1,
            t0 + Duration::from_secs(5),
            |_, _| String::new(),
        );
        assert!(back.reported.is_empty(), "its grace period starts again");
        assert_eq!(state.report().services_compared["endpointslice-controller"], 1);
    }

    #[test]
    fn an_event_concerning_the_service_starts_the_grace_period_again() {
        let state = ShadowState::new(Duration::from_secs(5));
        let key = ObjectKey::new("ns", "web");
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        state.observe(&key, found(Some(vec![diff("hints")])), 1, t0, |_, _| String::new());
        let event = state.observe(&key, found(Some(vec![diff("hints")])), 2, at(4), |_, _| String::new());
        assert_eq!(
            event.recheck_after,
            Some(Duration::from_secs(5)),
            "the inputs changed at 4 s"
        );
        let early = state.observe(&key, found(Some(vec![diff("hints")])), 2, at(8), |_, _| String::new());
        assert!(early.reported.is_empty());
        let late = state.observe(&key, found(Some(vec![diff("hints")])), 2, at(9), |_, _| "r".into());
        assert_eq!(late.reported.len(), 1, "5 s after the last event");
        let after = state.observe(&key, found(Some(vec![diff("hints")])), 3, at(10), |_, _| String::new());
        assert!(
            after.reported.is_empty() && after.cleared.is_empty(),
            "reported once, still reported"
        );
        assert_eq!(state.report().divergences.len(), 1);
    }
}
