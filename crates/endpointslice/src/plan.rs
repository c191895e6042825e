//! The pure half of a reconcile: from a Service, its pods and its existing
//! slices, the exact writes to make (upstream's `Reconcile`,
//! `reconcileByAddressType` and the first step of `finalize`).
//!
//! [`plan`] reads its inputs and returns a [`Plan`]; it writes nothing and
//! changes no shared state — the topology cache is read through a
//! [`TopologySnapshot`] and the changes to make to it are part of the plan.
//! [`Reconciler::apply`](crate::Reconciler::apply) carries the plan out.
//!
//! For each address type of the Service (IPv4 before IPv6):
//!
//! 1. Existing slices not owned by the Service go to deletion; owned ones
//!    are grouped by their port list.
//! 2. Each desired port group is placed over its existing slices
//!    ([`place`]); owned groups no longer desired go to deletion.
//! 3. If the address type would end up with no slice, a placeholder (no
//!    ports, no endpoints) is wanted; an identical existing one is kept.
//! 4. Hints are set or removed (topology annotation, else
//!    `trafficDistribution`, else none).
//! 5. Slices to create take over the names of owned slices to delete of the
//!    same address type (the last create takes the first such delete),
//!    turning a create and a delete into one update.
//! 6. A Service being deleted gets no creates; every written slice gets the
//!    trigger-time annotation set or removed.
//!
//! Existing slices are considered in name order, so the plan does not depend
//! on the order a lister returns them in.

use std::collections::{BTreeMap, BTreeSet};

use ecm_controller::ChangedPods;
use ecm_informer::ObjectKey;
use ecm_types::port_map::PortMapKey;
use ecm_types::{IpFamily, PodProjection};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::jiff::Timestamp;

use crate::desired::{DesiredEndpoints, DesiredGroup, MissingNode, NodeLookup, address_types, desired_endpoints};
use crate::hints::trafficdist::{self, valid_traffic_distribution};
use crate::hints::{
    CacheChange, HintsEvent, SliceInfo, TOPOLOGY_AWARE_HINTS_DISABLED, TopologySnapshot, add_hints, hints_enabled,
    remove_hints_from_slices,
};
use crate::metrics::EfficiencyInfo;
use crate::placement::place;
use crate::slice::{matches_placeholder, new_slice, owned_by, set_trigger_time};

/// `topology` label value when the topology annotation enables hints.
pub(crate) const TOPOLOGY_AUTO: &str = "Auto";
/// `topology` label value otherwise.
pub(crate) const TOPOLOGY_DISABLED: &str = "Disabled";

/// What a plan is computed with besides the Service's own objects.
#[derive(Clone, Copy)]
pub struct PlanContext<'c> {
    /// `--max-endpoints-per-slice`.
    pub max_endpoints_per_slice: usize,
    /// The node cache, for zones and the missing-node rule.
    pub nodes: &'c dyn NodeLookup,
    /// The topology cache as seen by this Service.
    pub topology: &'c TopologySnapshot,
    /// The trigger time to annotate written slices with; `None` removes the
    /// annotation.
    pub trigger_time: Option<Timestamp>,
}

/// A change to make to the topology cache for the planned Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyChange {
    /// The address type, as the API spells it (possibly one the Service no
    /// longer has, such as `IP`).
    pub address_type: String,
    /// What to record or forget.
    pub change: CacheChange,
}

/// The writes and side effects for one address type.
#[derive(Clone, Debug, PartialEq)]
pub struct AddressTypePlan<'a> {
    /// The address type.
    pub family: IpFamily,
    /// Slices to create, in order.
    pub to_create: Vec<EndpointSlice>,
    /// Slices to update, in order. Recycled slices (a create taking over the
    /// name of a slice to delete) carry no resourceVersion: their update is
    /// unconditional.
    pub to_update: Vec<EndpointSlice>,
    /// Existing slices to delete, in order.
    pub to_delete: Vec<&'a EndpointSlice>,
    /// Creates dropped because the Service is being deleted.
    pub creates_withheld: usize,
    /// Pods left out because their node is unknown.
    pub missing_nodes: Vec<MissingNode>,
    /// Topology-hint events to record after the writes.
    pub events: Vec<HintsEvent>,
    /// Desired endpoints not yet in any slice.
    pub endpoints_added: usize,
    /// Endpoints dropped from existing slices.
    pub endpoints_removed: usize,
    /// The slice gauges' inputs, per port group.
    pub port_groups: BTreeMap<PortMapKey, EfficiencyInfo>,
    /// `topology` label of the slices-changed histogram.
    pub topology_label: &'static str,
    /// `traffic_distribution` label of the slices-changed histogram (empty
    /// when not used).
    pub traffic_distribution_label: String,
}

impl AddressTypePlan<'_> {
    /// Writes this address type makes, withheld creates included (what
    /// upstream's slices-changed histogram counts).
    pub fn slices_changed(&self) -> usize {
        self.to_create.len() + self.creates_withheld + self.to_update.len() + self.to_delete.len()
    }
}

/// Everything one reconcile of a Service does.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan<'a> {
    /// The Service.
    pub service: ObjectKey,
    /// One entry per address type of the Service, IPv4 first.
    pub address_types: Vec<AddressTypePlan<'a>>,
    /// Slices of address types the Service no longer has (including the
    /// legacy `IP` type), deleted last.
    pub unsupported: Vec<&'a EndpointSlice>,
    /// Changes to the topology cache, in order.
    pub topology_changes: Vec<TopologyChange>,
    /// The valid `trafficDistribution` in use, when the topology annotation
    /// does not override it.
    pub traffic_distribution: Option<String>,
}

impl Plan<'_> {
    /// Whether the plan writes nothing.
    pub fn is_noop(&self) -> bool {
        self.unsupported.is_empty()
            && self
                .address_types
                .iter()
                .all(|t| t.to_create.is_empty() && t.to_update.is_empty() && t.to_delete.is_empty())
    }

    /// Sets (or, with `None`, removes) the trigger-time annotation of every
    /// slice the plan writes.
    pub fn set_trigger_time(&mut self, trigger_time: Option<Timestamp>) {
        for address_type in &mut self.address_types {
            for slice in address_type
                .to_create
                .iter_mut()
                .chain(address_type.to_update.iter_mut())
            {
                set_trigger_time(slice, trigger_time);
            }
        }
    }

    /// The numbers of every port group of every address type.
    pub fn port_groups(&self) -> impl Iterator<Item = EfficiencyInfo> + '_ {
        self.address_types.iter().flat_map(|t| t.port_groups.values().copied())
    }
}

fn by_name<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Vec<&'a EndpointSlice> {
    let mut slices: Vec<_> = slices.into_iter().collect();
    slices.sort_by(|a, b| {
        (a.metadata.name.as_deref(), a.metadata.uid.as_deref())
            .cmp(&(b.metadata.name.as_deref(), b.metadata.uid.as_deref()))
    });
    slices
}

/// Computes the writes that bring `svc`'s slices in line with `pods`.
///
/// `pods` are the pods the Service's selector matches (the pod filter is
/// applied here); `existing` are the Service's slices managed by this
/// controller and not being deleted.
pub fn plan<'a, 'p>(
    ctx: &PlanContext<'_>,
    svc: &Service,
    pods: impl IntoIterator<Item = &'p PodProjection>,
    existing: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Plan<'a> {
    let desired = desired_endpoints(svc, pods, ctx.nodes);
    plan_with(ctx, svc, desired, existing, &Reading::All).0
}

/// Why a sync of changed pods only cannot be planned from them alone and
/// needs the full plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The Service has slices of an address type it no longer has.
    OtherAddressType,
    /// A changed pod's node is not in the cache.
    MissingNode,
    /// The Service uses topology hints or a traffic distribution, or still
    /// has hints to remove: their allocation reads every endpoint.
    Hints,
    /// A managed slice of the Service is not owned by it.
    ForeignSlice,
    /// A changed pod serves a port list no slice has yet.
    NewPortGroup,
    /// A port list is left with no endpoint: whether it still exists
    /// depends on pods without addresses of the type.
    EmptyPortGroup,
}

impl Fallback {
    /// A short name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OtherAddressType => "other_address_type",
            Self::MissingNode => "missing_node",
            Self::Hints => "hints",
            Self::ForeignSlice => "foreign_slice",
            Self::NewPortGroup => "new_port_group",
            Self::EmptyPortGroup => "empty_port_group",
        }
    }
}

/// [`plan`] for a Service of which only the pods in `changed` changed since
/// the plan that `existing` is the outcome of: the same plan, computed from
/// the changed pods' endpoints and the slices that hold them, so at a cost
/// proportional to the change rather than to the Service.
///
/// It relies on the existing slices holding exactly the endpoints a full
/// plan wants for every other pod — true after a successful sync when
/// neither the Service, its slices nor the nodes changed since (the
/// [`ChangeTracker`](ecm_controller::ChangeTracker) tells). Where the plan
/// depends on more than the changed pods it returns why, and the caller
/// plans in full.
pub fn plan_changed<'a>(
    ctx: &PlanContext<'_>,
    svc: &Service,
    changed: &ChangedPods,
    existing: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Result<Plan<'a>, Fallback> {
    let desired = desired_endpoints(svc, changed.selected.iter().map(AsRef::as_ref), ctx.nodes);
    if !desired.missing_nodes.is_empty() {
        return Err(Fallback::MissingNode);
    }
    match plan_with(ctx, svc, desired, existing, &Reading::Changed(&changed.names)) {
        (plan, None) => Ok(plan),
        (_, Some(fallback)) => Err(fallback),
    }
}

/// Which existing slices a plan reads endpoint by endpoint.
enum Reading<'s> {
    /// Every slice: the desired endpoints are all of the Service's.
    All,
    /// Only the endpoints of these pods: the desired endpoints are theirs
    /// alone, every other pod's endpoint is as desired.
    Changed(&'s BTreeSet<String>),
}

impl Reading<'_> {
    /// Whether the existing `endpoint` is vouched for as desired as it is:
    /// reading changed pods only, one of another pod.
    fn vouched(&self, endpoint: &Endpoint) -> bool {
        match self {
            Reading::All => false,
            Reading::Changed(names) => !endpoint
                .target_ref
                .as_ref()
                .and_then(|target| target.name.as_deref())
                .is_some_and(|name| names.contains(name)),
        }
    }

    fn is_changed(&self) -> bool {
        matches!(self, Reading::Changed(_))
    }
}

/// The plan from `desired`, read as `reading` says, and with
/// [`Reading::Changed`] the reason it cannot stand for the full plan, if
/// any.
fn plan_with<'a>(
    ctx: &PlanContext<'_>,
    svc: &Service,
    desired: DesiredEndpoints,
    existing: impl IntoIterator<Item = &'a EndpointSlice>,
    reading: &Reading<'_>,
) -> (Plan<'a>, Option<Fallback>) {
    let service = ObjectKey::of(svc);
    let families = address_types(svc);
    let mut hints_populated = ctx.topology.hints_populated;
    let mut topology_changes = Vec::new();
    let mut fallback = None;

    let mut unsupported = Vec::new();
    let mut existing_by_family: BTreeMap<IpFamily, Vec<&'a EndpointSlice>> = BTreeMap::new();
    for slice in by_name(existing) {
        if let Some(family) = IpFamily::from_api(&slice.address_type).filter(|f| families.contains(f)) {
            existing_by_family.entry(family).or_default().push(slice);
        } else {
            topology_changes.push(TopologyChange {
                address_type: slice.address_type.clone(),
                change: CacheChange::Remove,
            });
            hints_populated = false;
            unsupported.push(slice);
        }
    }
    if reading.is_changed() && !unsupported.is_empty() {
        fallback = Some(Fallback::OtherAddressType);
    }

    let mut address_types = Vec::new();
    for (family, groups) in desired.by_family {
        let existing = existing_by_family.remove(&family).unwrap_or_default();
        let input = AddressTypeInput {
            family,
            existing: &existing,
            groups,
            hints_populated,
            reading,
        };
        let (mut plan, change, cannot) = plan_address_type(ctx, svc, input);
        fallback = fallback.or(cannot);
        plan.missing_nodes.clone_from(&desired.missing_nodes);
        hints_populated = matches!(change, CacheChange::Set(_));
        topology_changes.push(TopologyChange {
            address_type: family.as_api().to_owned(),
            change,
        });
        address_types.push(plan);
    }

    let traffic_distribution = svc
        .spec
        .as_ref()
        .and_then(|s| s.traffic_distribution.as_deref())
        .filter(|td| valid_traffic_distribution(Some(td)) && !hints_enabled(svc.metadata.annotations.as_ref()))
        .map(str::to_owned);
    let mut plan = Plan {
        service,
        address_types,
        unsupported,
        topology_changes,
        traffic_distribution,
    };
    plan.set_trigger_time(ctx.trigger_time);
    (plan, fallback)
}

/// The slices of `existing` that are neither updated nor deleted
/// (upstream's `unchangedSlices`, by name).
fn unchanged<'a>(
    existing: &[&'a EndpointSlice],
    to_update: &[EndpointSlice],
    to_delete: &[&EndpointSlice],
) -> Vec<&'a EndpointSlice> {
    let changed: BTreeSet<&str> = to_update
        .iter()
        .map(|s| s.metadata.name.as_deref().unwrap_or_default())
        .chain(to_delete.iter().map(|s| s.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    existing
        .iter()
        .copied()
        .filter(|s| !changed.contains(s.metadata.name.as_deref().unwrap_or_default()))
        .collect()
}

/// What [`plan_address_type`] plans from.
struct AddressTypeInput<'a, 'e, 'r> {
    family: IpFamily,
    /// The existing slices of the address type, by name.
    existing: &'e [&'a EndpointSlice],
    /// The desired port groups.
    groups: BTreeMap<PortMapKey, DesiredGroup>,
    hints_populated: bool,
    reading: &'r Reading<'r>,
}

/// Plans one address type. Returns the plan, the topology-cache change and,
/// reading changed pods only, why that does not give the full plan.
fn plan_address_type<'a>(
    ctx: &PlanContext<'_>,
    svc: &Service,
    input: AddressTypeInput<'a, '_, '_>,
) -> (AddressTypePlan<'a>, CacheChange, Option<Fallback>) {
    let AddressTypeInput {
        family,
        existing,
        mut groups,
        hints_populated,
        reading,
    } = input;
    let mut fallback = None;
    let mut to_create = Vec::new();
    let mut to_update = Vec::new();
    let mut to_delete = Vec::new();
    let mut owned: BTreeMap<PortMapKey, Vec<&'a EndpointSlice>> = BTreeMap::new();
    for &slice in existing {
        if owned_by(slice, svc) {
            owned
                .entry(PortMapKey::of(slice.ports.as_deref()))
                .or_default()
                .push(slice);
        } else {
            to_delete.push(slice);
        }
    }

    if reading.is_changed() {
        if !to_delete.is_empty() {
            fallback = Some(Fallback::ForeignSlice);
        }
        if groups.keys().any(|key| !owned.contains_key(key)) {
            fallback = Some(Fallback::NewPortGroup);
        }
        // Every port group with slices is read, changed pods in it or not:
        // the others are as the last plan left them.
        for key in owned.keys() {
            groups.entry(key.clone()).or_default();
        }
    }

    let mut port_groups = BTreeMap::new();
    let (mut endpoints_added, mut endpoints_removed) = (0, 0);
    let desired_keys: BTreeSet<PortMapKey> = groups.keys().cloned().collect();
    for (key, group) in groups {
        let group_existing = owned.get(&key).map(Vec::as_slice).unwrap_or_default();
        let placement = place(
            svc,
            family,
            &group.ports,
            group_existing,
            group.endpoints,
            ctx.max_endpoints_per_slice,
            &|endpoint| reading.vouched(endpoint),
        );
        let endpoints = placement.endpoint_count();
        if reading.is_changed() && endpoints == 0 {
            fallback = Some(Fallback::EmptyPortGroup);
        }
        let slices = group_existing.len() + placement.to_create.len() - placement.to_delete.len();
        // A group of pods without an address of this type has neither
        // endpoints nor slices: nothing to count.
        if endpoints > 0 || slices > 0 {
            port_groups.insert(key, EfficiencyInfo { endpoints, slices });
        }
        endpoints_added += placement.added;
        endpoints_removed += placement.removed;
        to_create.extend(placement.to_create);
        to_update.extend(placement.to_update);
        to_delete.extend(placement.to_delete);
    }
    for (key, slices) in &owned {
        if !desired_keys.contains(key) {
            to_delete.extend(slices);
        }
    }

    if existing.len() == to_delete.len() && to_create.is_empty() {
        if reading.is_changed() {
            fallback = Some(Fallback::EmptyPortGroup);
        }
        let placeholder = new_slice(svc, family, &[]);
        if let [only] = to_delete.as_slice()
            && matches_placeholder(only, &placeholder)
        {
            to_delete.clear();
        } else {
            to_create.push(placeholder);
        }
        port_groups.insert(
            PortMapKey::default(),
            EfficiencyInfo {
                endpoints: 0,
                slices: 1,
            },
        );
    }

    let address_type = family.as_api();
    let annotations = svc.metadata.annotations.as_ref();
    let traffic_distribution = svc.spec.as_ref().and_then(|s| s.traffic_distribution.as_deref());
    let topology_enabled = hints_enabled(annotations);
    let use_traffic_distribution = valid_traffic_distribution(traffic_distribution) && !topology_enabled;
    if reading.is_changed() && (topology_enabled || use_traffic_distribution || hints_populated) {
        fallback = Some(Fallback::Hints);
    }
    let mut si = SliceInfo {
        unchanged: unchanged(existing, &to_update, &to_delete),
        to_create,
        to_update,
    };
    let mut events = Vec::new();
    let change = if topology_enabled {
        let snapshot = TopologySnapshot {
            ratios: ctx.topology.ratios.clone(),
            hints_populated,
        };
        let outcome = add_hints(&snapshot, address_type, si);
        si = outcome.slices;
        events = outcome.events;
        outcome.change
    } else {
        if hints_populated {
            tracing::info!(address_type, "topology annotation changed, removing hints");
            events.push(HintsEvent::disabled(TOPOLOGY_AWARE_HINTS_DISABLED, address_type));
        }
        if !use_traffic_distribution {
            remove_hints_from_slices(&mut si);
        }
        CacheChange::Remove
    };
    if use_traffic_distribution {
        si = trafficdist::reconcile_hints(traffic_distribution, si);
    }
    let SliceInfo {
        mut to_create,
        mut to_update,
        ..
    } = si;

    recycle(svc, &mut to_create, &mut to_update, &mut to_delete);

    let creates_withheld = if svc.metadata.deletion_timestamp.is_some() {
        std::mem::take(&mut to_create).len()
    } else {
        0
    };
    let plan = AddressTypePlan {
        family,
        to_create,
        to_update,
        to_delete,
        creates_withheld,
        missing_nodes: Vec::new(),
        events,
        endpoints_added,
        endpoints_removed,
        port_groups,
        topology_label: if topology_enabled {
            TOPOLOGY_AUTO
        } else {
            TOPOLOGY_DISABLED
        },
        traffic_distribution_label: traffic_distribution
            .filter(|_| use_traffic_distribution)
            .unwrap_or_default()
            .to_owned(),
    };
    (plan, change, fallback)
}

/// Turns creates into updates of slices that would otherwise be deleted
/// (upstream's first step of `finalize`): walking the deletes in order,
/// each owned slice of the same address type lends its name to the last
/// slice to create. The recycled slice is the new object with only the name
/// borrowed — no resourceVersion, uid or annotations of the old one.
fn recycle(
    svc: &Service,
    to_create: &mut Vec<EndpointSlice>,
    to_update: &mut Vec<EndpointSlice>,
    to_delete: &mut Vec<&EndpointSlice>,
) {
    let mut i = 0;
    while i < to_delete.len() {
        let Some(last) = to_create.last() else {
            break;
        };
        let doomed = to_delete[i];
        if doomed.address_type == last.address_type && owned_by(doomed, svc) {
            if let Some(mut slice) = to_create.pop() {
                slice.metadata.name.clone_from(&doomed.metadata.name);
                to_update.push(slice);
            }
            to_delete.remove(i);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod changed_tests;
#[cfg(test)]
mod tests;
