use super::*;
use ecm_informer::Store;
use ecm_types::fixtures::{pod, service};

struct Fixture {
    pods: Store<PodProjection>,
    lister: Lister<PodProjection>,
    svc: Arc<Service>,
    key: ObjectKey,
    changes: ChangeTracker,
}

fn fixture() -> Fixture {
    let pods = Store::new();
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        pods.insert(Arc::new(pod("ns", name).labels([("app", app)]).projection()));
    }
    Fixture {
        lister: Lister::new(pods.clone()),
        pods,
        svc: Arc::new(service("ns", "web").selector([("app", "web")]).build()),
        key: ObjectKey::new("ns", "web"),
        changes: ChangeTracker::new(),
    }
}

impl Fixture {
    fn begin(&self) -> SyncScope {
        self.changes.begin(&self.key, &self.svc, &self.lister)
    }

    /// A full sync that succeeded.
    fn baseline(&self) {
        let scope = self.begin();
        assert!(scope.is_full());
        self.changes.succeeded(&self.key, &self.svc, &scope);
    }

    fn changed(&self) -> ChangedPods {
        match self.begin() {
            SyncScope::Changed(changed) => changed,
            SyncScope::Full { .. } => panic!("expected a changed-pods scope"),
        }
    }
}

fn names(changed: &ChangedPods) -> (Vec<&str>, Vec<&str>) {
    (
        changed.names.iter().map(String::as_str).collect(),
        changed.selected.iter().map(|p| p.name()).collect(),
    )
}

#[test]
fn without_a_good_sync_to_build_on_every_sync_is_full() {
    let f = fixture();
    f.changes.note_pod(&f.key, "a");
    assert!(f.begin().is_full(), "no baseline");
    assert!(f.begin().is_full(), "a full sync that did not succeed leaves none");
}

#[test]
fn after_a_good_sync_only_noted_pods_are_recomputed() {
    let f = fixture();
    f.baseline();
    assert!(f.changed().is_empty(), "nothing noted: nothing to recompute");
    f.changes.note_pod(&f.key, "a");
    f.changes.note_pod(&f.key, "c");
    f.changes.note_pod(&f.key, "gone");
    f.changes.note_pod(&ObjectKey::new("ns", "other"), "b");
    let changed = f.changed();
    assert_eq!(
        names(&changed),
        (vec!["a", "c", "gone"], vec!["a"]),
        "c is not selected, gone is not cached: both left the Service"
    );
    assert!(f.changed().is_empty(), "notes are taken once");
}

#[test]
fn a_change_to_the_service_or_its_objects_makes_the_next_sync_full() {
    let f = fixture();
    f.baseline();
    f.changes.note_pod(&f.key, "a");
    f.changes.note_service(&f.key);
    f.changes.note_pod(&f.key, "b");
    assert!(f.begin().is_full());
    assert!(f.changed().is_empty(), "the full sync kept its baseline");
}

#[test]
fn a_new_service_object_makes_the_next_sync_full() {
    let mut f = fixture();
    f.baseline();
    f.svc = Arc::new(service("ns", "web").selector([("app", "web")]).build());
    assert!(f.begin().is_full(), "a different object, even if equal");
}

#[test]
fn a_global_change_makes_every_next_sync_full_even_one_already_running() {
    let f = fixture();
    let scope = f.begin();
    f.changes.note_all();
    f.changes.succeeded(&f.key, &f.svc, &scope);
    assert!(f.begin().is_full(), "the baseline is from before the change");
    f.baseline();
    f.changes.note_all();
    assert!(f.begin().is_full());
}

#[test]
fn forgetting_a_service_makes_its_next_sync_full() {
    let f = fixture();
    f.baseline();
    f.changes.forget(&f.key);
    assert!(f.begin().is_full());
    f.baseline();
    f.changes.note_pod(&f.key, "a");
    f.changes.delete_service(&f.key);
    assert!(f.begin().is_full());
    f.changes.succeeded(&f.key, &f.svc, &SyncScope::Full { generation: 0 });
    assert!(f.changed().is_empty(), "the deleted Service's notes went with it");
}

#[test]
fn relabelled_pods_are_resolved_against_the_current_cache() {
    let f = fixture();
    f.baseline();
    f.pods
        .insert(Arc::new(pod("ns", "c").labels([("app", "web")]).projection()));
    f.changes.note_pod(&f.key, "c");
    assert_eq!(names(&f.changed()), (vec!["c"], vec!["c"]));
}

#[test]
fn the_version_left_behind_is_kept_until_the_baseline_goes() {
    let f = fixture();
    f.changes.record_version(&f.key, "1".into());
    assert_eq!(f.changes.version(&f.key), None, "nothing to attach it to");
    f.baseline();
    f.changes.record_version(&f.key, "7".into());
    assert_eq!(f.changes.version(&f.key).as_deref(), Some("7"));
    let scope = f.begin();
    f.changes.succeeded(&f.key, &f.svc, &scope);
    f.changes.record_version(&f.key, "8".into());
    assert_eq!(
        f.changes.version(&f.key).as_deref(),
        Some("8"),
        "a changed-pods sync moves it on"
    );
    f.changes.forget(&f.key);
    assert_eq!(f.changes.version(&f.key), None);
}
