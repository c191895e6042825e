//! [`SliceManager`]: one controller's claim on EndpointSlices — the
//! `endpointslice.kubernetes.io/managed-by` value it writes, and an index of
//! its slices by owner on the shared slice informer.

use std::collections::BTreeMap;
use std::sync::Arc;

use ecm_informer::{Lister, ObjectKey, Selector, Store};
use ecm_types::endpoint_slice::{managed_by, service_name};
use ecm_types::wellknown::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Why a slice cannot be mapped to its owner.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("EndpointSlice missing kubernetes.io/service-name label")]
pub struct MissingServiceName(pub ObjectKey);

/// The key of a slice's owner: the slice's namespace and its
/// `kubernetes.io/service-name` label, which must be set and non-empty
/// (upstream's `ServiceControllerKey` and `endpointsControllerKey`).
pub fn owner_key(slice: &EndpointSlice) -> Result<ObjectKey, MissingServiceName> {
    match service_name(slice) {
        Some(name) if !name.is_empty() => Ok(ObjectKey::new(
            slice.metadata.namespace.as_deref().unwrap_or_default(),
            name,
        )),
        _ => Err(MissingServiceName(ObjectKey::of(slice))),
    }
}

/// The slices one controller manages, found by owner.
///
/// Each controller has its own index name, so the EndpointSlice and
/// mirroring controllers can share one slice informer.
///
/// ```
/// use ecm_controller::slices::SliceManager;
/// use ecm_informer::{Lister, ObjectKey, Store};
/// use k8s_openapi::api::discovery::v1::EndpointSlice;
///
/// const MANAGER: SliceManager = SliceManager::new("demo-controller", "demo-controller/owner");
/// let store: Store<EndpointSlice> = Store::new();
/// MANAGER.add_index(&store);
/// let lister = Lister::new(store);
/// assert!(MANAGER.list(&lister, &ObjectKey::new("ns", "web")).is_empty());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceManager {
    managed_by: &'static str,
    index: &'static str,
    skip_terminating: bool,
}

impl SliceManager {
    /// The slices labelled `managed-by: managed_by`, indexed under `index`.
    pub const fn new(managed_by: &'static str, index: &'static str) -> Self {
        Self {
            managed_by,
            index,
            skip_terminating: false,
        }
    }

    /// The same, but [`list`](Self::list) leaves out slices being deleted
    /// (the EndpointSlice controller does not reconcile against them).
    #[must_use]
    pub const fn skipping_terminating(mut self) -> Self {
        self.skip_terminating = true;
        self
    }

    /// The `managed-by` label value.
    pub const fn managed_by(&self) -> &'static str {
        self.managed_by
    }

    /// The name of the index by owner.
    pub const fn index_name(&self) -> &'static str {
        self.index
    }

    /// Whether this controller manages `slice`.
    pub fn manages(&self, slice: &EndpointSlice) -> bool {
        managed_by(slice) == Some(self.managed_by)
    }

    /// Whether one of two versions of a slice is managed by this controller
    /// and the other is not.
    pub fn manager_changed(&self, old: &EndpointSlice, new: &EndpointSlice) -> bool {
        self.manages(old) != self.manages(new)
    }

    /// The index values of `slice`: its owner's key when this controller
    /// manages it, nothing otherwise.
    pub fn index_values(&self, slice: &EndpointSlice) -> Vec<String> {
        if !self.manages(slice) {
            return Vec::new();
        }
        owner_key(slice).map_or_else(|_| Vec::new(), |key| vec![key.to_string()])
    }

    /// Registers the index on `store`. Registering twice (a second
    /// controller of the same kind on one informer) is harmless: the index
    /// function is the same.
    pub fn add_index(&self, store: &Store<EndpointSlice>) {
        let manager = *self;
        let _ = store.add_indexer(self.index, move |slice: &EndpointSlice| manager.index_values(slice));
    }

    /// The slices of `owner` this controller manages, sorted by name. Uses
    /// the index; a store without it is filtered by labels instead.
    pub fn list(&self, slices: &Lister<EndpointSlice>, owner: &ObjectKey) -> Vec<Arc<EndpointSlice>> {
        let managed = slices.store().by_index(self.index, owner.as_str()).unwrap_or_else(|_| {
            let labels: BTreeMap<String, String> = [
                (LABEL_SERVICE_NAME.to_owned(), owner.name().to_owned()),
                (LABEL_MANAGED_BY.to_owned(), self.managed_by.to_owned()),
            ]
            .into_iter()
            .collect();
            slices.list(owner.namespace(), &Selector::from_labels(&labels))
        });
        if !self.skip_terminating {
            return managed;
        }
        managed
            .into_iter()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    const MANAGER: SliceManager = SliceManager::new("a-controller", "a-controller/owner");

    fn slice(name: &str, service: Option<&str>, manager: &str) -> EndpointSlice {
        let mut labels = BTreeMap::from([(LABEL_MANAGED_BY.to_owned(), manager.to_owned())]);
        if let Some(service) = service {
            labels.insert(LABEL_SERVICE_NAME.to_owned(), service.to_owned());
        }
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some(name.into()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            ..EndpointSlice::default()
        }
    }

    #[test]
    fn owner_key_needs_a_non_empty_service_name() {
        assert_eq!(
            owner_key(&slice("s", Some("web"), "x")).unwrap(),
            ObjectKey::new("ns", "web")
        );
        assert_eq!(
            owner_key(&slice("s", Some(""), "x")),
            Err(MissingServiceName(ObjectKey::new("ns", "s")))
        );
        assert!(owner_key(&slice("s", None, "x")).is_err());
        assert_eq!(
            MissingServiceName(ObjectKey::new("ns", "s")).to_string(),
            "EndpointSlice missing kubernetes.io/service-name label"
        );
    }

    #[test]
    fn only_managed_slices_are_indexed_and_listed() {
        let store = Store::new();
        MANAGER.add_index(&store);
        MANAGER.add_index(&store);
        store.insert(Arc::new(slice("mine", Some("web"), "a-controller")));
        store.insert(Arc::new(slice("theirs", Some("web"), "b-controller")));
        store.insert(Arc::new(slice("orphan", None, "a-controller")));
        let lister = Lister::new(store);
        let names = |slices: Vec<Arc<EndpointSlice>>| -> Vec<String> {
            slices.iter().map(|s| s.metadata.name.clone().unwrap()).collect()
        };
        assert_eq!(names(MANAGER.list(&lister, &ObjectKey::new("ns", "web"))), ["mine"]);
        let unindexed = Lister::new(Store::new());
        unindexed
            .store()
            .insert(Arc::new(slice("mine", Some("web"), "a-controller")));
        unindexed
            .store()
            .insert(Arc::new(slice("theirs", Some("web"), "b-controller")));
        assert_eq!(
            names(MANAGER.list(&unindexed, &ObjectKey::new("ns", "web"))),
            ["mine"],
            "label fallback"
        );
    }

    #[test]
    fn terminating_slices_are_skipped_only_when_asked() {
        let store = Store::new();
        let skipping = MANAGER.skipping_terminating();
        skipping.add_index(&store);
        let mut going = slice("going", Some("web"), "a-controller");
        going.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        store.insert(Arc::new(going));
        let lister = Lister::new(store);
        let key = ObjectKey::new("ns", "web");
        assert!(skipping.list(&lister, &key).is_empty());
        assert_eq!(MANAGER.list(&lister, &key).len(), 1);
    }

    #[test]
    fn a_change_of_manager_is_seen_both_ways() {
        let (mine, theirs) = (slice("s", Some("web"), "a-controller"), slice("s", Some("web"), "b"));
        assert!(MANAGER.manager_changed(&mine, &theirs));
        assert!(MANAGER.manager_changed(&theirs, &mine));
        assert!(!MANAGER.manager_changed(&mine, &mine));
    }
}
