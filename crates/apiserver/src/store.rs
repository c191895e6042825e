//! The object store: JSON objects per resource, one global resourceVersion,
//! a bounded event history per resource and watch fan-out.
//!
//! Everything that changes state goes through one lock, so resourceVersions
//! are handed out in commit order and a watch registered under the lock sees
//! every later event exactly once. Each stored object is kept both parsed
//! ([`Value`]) and serialized ([`Bytes`]); watch events are serialized once,
//! on first use, and shared by every watcher.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::error::ApiError;
use crate::object::{meta_str, metadata_mut, owner_refs};
use crate::resources::{ResourceId, ResourceInfo, ResourceTable};

/// An object as stored: parsed and serialized, with its resourceVersion.
#[derive(Debug, Clone)]
pub(crate) struct StoredObject {
    pub(crate) value: Arc<Value>,
    pub(crate) bytes: Bytes,
    pub(crate) rv: u64,
}

impl StoredObject {
    /// Sets `metadata.resourceVersion` to `rv` and serializes.
    pub(crate) fn new(mut value: Value, rv: u64) -> Self {
        metadata_mut(&mut value).insert("resourceVersion".into(), Value::String(rv.to_string()));
        let bytes = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Self {
            value: Arc::new(value),
            bytes,
            rv,
        }
    }
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventType {
    /// `ADDED`.
    Added,
    /// `MODIFIED`.
    Modified,
    /// `DELETED`.
    Deleted,
}

impl WatchEventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change of one object.
#[derive(Debug)]
pub(crate) struct WatchEvent {
    pub(crate) resource: ResourceId,
    pub(crate) rv: u64,
    pub(crate) kind: WatchEventType,
    pub(crate) key: String,
    pub(crate) object: StoredObject,
    pub(crate) prev: Option<StoredObject>,
    line: OnceLock<Bytes>,
}

/// Builds a watch line `{"type":...,"object":...}\n` around serialized object bytes.
pub(crate) fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(object.len() + 32);
    buf.put_slice(b"{\"type\":\"");
    buf.put_slice(kind.as_bytes());
    buf.put_slice(b"\",\"object\":");
    buf.put_slice(object);
    buf.put_slice(b"}\n");
    buf.freeze()
}

impl WatchEvent {
    /// The serialized watch line, built once and shared by all watchers.
    pub(crate) fn line(&self) -> &Bytes {
        self.line
            .get_or_init(|| event_line(self.kind.as_str(), &self.object.bytes))
    }
}

struct ResourceState {
    objects: BTreeMap<String, StoredObject>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Oldest resourceVersion a watch may resume from: every event after it is in `history`.
    floor: u64,
    last_event_rv: u64,
    tx: broadcast::Sender<Arc<WatchEvent>>,
}

/// Which events an internal listener wants (the others never wake it).
pub(crate) type ListenerFilter = fn(&ResourceInfo, &WatchEvent) -> bool;

struct Listener {
    tx: mpsc::UnboundedSender<Arc<WatchEvent>>,
    wants: ListenerFilter,
}

struct Inner {
    rv: u64,
    resources: Vec<ResourceState>,
    /// owner uid -> dependents (resource, key).
    dependents: HashMap<String, HashSet<(ResourceId, String)>>,
    listeners: Vec<Listener>,
}

/// An event that fell out of a history, dropped once the store lock is
/// released: it usually holds the last reference to the version an update
/// replaced, and freeing that object is the largest single cost of an update.
type Evicted = Option<Arc<WatchEvent>>;

/// What a commit does to an object.
#[derive(Debug)]
pub(crate) enum Change {
    /// Store this new state.
    Store(Value),
    /// Remove the object; this is its final state.
    Remove(Value),
    /// Nothing to do.
    Unchanged,
}

/// A commit failed because the object changed since it was read.
#[derive(Debug)]
pub(crate) struct Stale;

/// Result of a list.
pub(crate) struct ListPage {
    pub(crate) items: Vec<StoredObject>,
    pub(crate) rv: u64,
    /// Key of the last returned item when more items remain.
    pub(crate) continue_after: Option<String>,
    pub(crate) remaining: Option<u64>,
}

/// Where a watch starts.
pub(crate) struct WatchStart {
    /// Events in history after the requested resourceVersion.
    pub(crate) history: Vec<Arc<WatchEvent>>,
    /// Objects present now (when the watch starts with the current state).
    pub(crate) initial: Vec<StoredObject>,
    pub(crate) rx: broadcast::Receiver<Arc<WatchEvent>>,
    pub(crate) rv: u64,
}

/// The store.
pub(crate) struct Store {
    inner: Mutex<Inner>,
    pub(crate) table: Arc<ResourceTable>,
    history_size: usize,
    namespaces: Option<ResourceId>,
}

const BROADCAST_CAPACITY: usize = 8192;

fn prefix_range(ns: Option<&str>) -> (Bound<String>, Bound<String>) {
    match ns {
        Some(ns) => (Bound::Included(format!("{ns}/")), Bound::Excluded(format!("{ns}0"))),
        None => (Bound::Unbounded, Bound::Unbounded),
    }
}

impl Store {
    pub(crate) fn new(table: Arc<ResourceTable>, history_size: usize) -> Self {
        let resources = (0..table.len())
            .map(|_| ResourceState {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                floor: 0,
                last_event_rv: 0,
                tx: broadcast::channel(BROADCAST_CAPACITY).0,
            })
            .collect();
        let namespaces = table.by_path("", "v1", "namespaces");
        Self {
            inner: Mutex::new(Inner {
                rv: 0,
                resources,
                dependents: HashMap::new(),
                listeners: Vec::new(),
            }),
            table,
            history_size: history_size.max(1),
            namespaces,
        }
    }

    /// The latest resourceVersion handed out.
    pub(crate) fn current_rv(&self) -> u64 {
        self.inner.lock().rv
    }

    /// The resourceVersion of the latest event of a resource.
    pub(crate) fn last_event_rv(&self, res: ResourceId) -> u64 {
        self.inner.lock().resources[res].last_event_rv
    }

    /// Receives every committed event that `wants` accepts, in order,
    /// without loss (GC, kubelet).
    pub(crate) fn subscribe_all(&self, wants: ListenerFilter) -> mpsc::UnboundedReceiver<Arc<WatchEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.lock().listeners.push(Listener { tx, wants });
        rx
    }

    pub(crate) fn get(&self, res: ResourceId, key: &str) -> Option<StoredObject> {
        self.inner.lock().resources[res].objects.get(key).cloned()
    }

    /// Dependents (by owner uid) currently stored.
    pub(crate) fn dependents(&self, uid: &str) -> Vec<(ResourceId, String)> {
        let inner = self.inner.lock();
        let mut deps: Vec<_> = inner
            .dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        deps.sort();
        deps
    }

    /// Keys of objects of a resource in a namespace (all when `None`).
    pub(crate) fn keys(&self, res: ResourceId, ns: Option<&str>) -> Vec<String> {
        let inner = self.inner.lock();
        inner.resources[res]
            .objects
            .range(prefix_range(ns))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Namespace existence: `Ok(true)` when it exists and is not terminating.
    fn namespace_state(inner: &Inner, ns_res: Option<ResourceId>, ns: &str) -> Option<bool> {
        let ns_res = ns_res?;
        inner.resources[ns_res]
            .objects
            .get(ns)
            .map(|o| !crate::object::is_deleting(&o.value))
    }

    /// Whether a namespace exists (`Some(terminating?)`).
    pub(crate) fn namespace_exists(&self, ns: &str) -> Option<bool> {
        let inner = self.inner.lock();
        Self::namespace_state(&inner, self.namespaces, ns).map(|active| !active)
    }

    fn emit(
        &self,
        inner: &mut Inner,
        res: ResourceId,
        kind: WatchEventType,
        key: String,
        object: StoredObject,
        prev: Option<StoredObject>,
    ) -> Evicted {
        let event = Arc::new(WatchEvent {
            resource: res,
            rv: object.rv,
            kind,
            key,
            object,
            prev,
            line: OnceLock::new(),
        });
        let state = &mut inner.resources[res];
        state.last_event_rv = event.rv;
        state.history.push_back(event.clone());
        let mut evicted = None;
        while state.history.len() > self.history_size {
            if let Some(old) = state.history.pop_front() {
                state.floor = old.rv;
                evicted = Some(old);
            }
        }
        if state.tx.receiver_count() > 0 {
            let _ = state.tx.send(event.clone());
        }
        if !inner.listeners.is_empty() {
            let info = self.table.get(res);
            inner
                .listeners
                .retain(|l| !(l.wants)(info, &event) || l.tx.send(event.clone()).is_ok());
        }
        evicted
    }

    fn index_owners(inner: &mut Inner, res: ResourceId, key: &str, old: Option<&Value>, new: Option<&Value>) {
        let uids = |v: Option<&Value>| -> Vec<String> {
            v.map(owner_refs)
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.uid)
                .collect()
        };
        let (old_uids, new_uids) = (uids(old), uids(new));
        if old_uids == new_uids {
            return;
        }
        for uid in &old_uids {
            if let Some(set) = inner.dependents.get_mut(uid) {
                set.remove(&(res, key.to_owned()));
                if set.is_empty() {
                    inner.dependents.remove(uid);
                }
            }
        }
        for uid in new_uids {
            inner.dependents.entry(uid).or_default().insert((res, key.to_owned()));
        }
    }

    /// Creates an object. Checks the namespace when `check_namespace`.
    pub(crate) fn create(
        &self,
        res: ResourceId,
        key: String,
        value: Value,
        check_namespace: bool,
        dry_run: bool,
    ) -> Result<StoredObject, ApiError> {
        let info = self.table.get(res);
        let mut inner = self.inner.lock();
        if check_namespace && info.namespaced {
            let ns = meta_str(&value, "namespace");
            match Self::namespace_state(&inner, self.namespaces, ns) {
                None => {
                    if let Some(ns_res) = self.namespaces {
                        return Err(ApiError::not_found(self.table.get(ns_res), ns));
                    }
                }
                Some(false) => {
                    let mut err = ApiError::forbidden(
                        info,
                        meta_str(&value, "name"),
                        &format!("unable to create new content in namespace {ns} because it is being terminated"),
                    );
                    err.causes = vec![crate::error::StatusCause {
                        reason: "NamespaceTerminating".into(),
                        message: format!("namespace {ns} is being terminated"),
                        field: "metadata.namespace".into(),
                    }];
                    return Err(err);
                }
                Some(true) => {}
            }
        }
        if inner.resources[res].objects.contains_key(&key) {
            return Err(ApiError::already_exists(info, meta_str(&value, "name")));
        }
        if dry_run {
            return Ok(StoredObject::new(value, inner.rv));
        }
        inner.rv += 1;
        let stored = StoredObject::new(value, inner.rv);
        Self::index_owners(&mut inner, res, &key, None, Some(&stored.value));
        inner.resources[res].objects.insert(key.clone(), stored.clone());
        let evicted = self.emit(&mut inner, res, WatchEventType::Added, key, stored.clone(), None);
        drop(inner);
        drop(evicted);
        Ok(stored)
    }

    /// Commits a change derived from the object at resourceVersion `expected`.
    /// Returns `Err(Stale)` when the object changed (or vanished) meanwhile.
    /// `Ok(None)` when the object was removed.
    pub(crate) fn commit(
        &self,
        res: ResourceId,
        key: &str,
        expected: u64,
        change: Change,
        dry_run: bool,
    ) -> Result<StoredObject, Stale> {
        let mut inner = self.inner.lock();
        let Some(current) = inner.resources[res].objects.get(key).cloned() else {
            return Err(Stale);
        };
        if current.rv != expected {
            return Err(Stale);
        }
        match change {
            Change::Unchanged => Ok(current),
            Change::Store(value) => {
                if dry_run {
                    return Ok(StoredObject::new(value, current.rv));
                }
                inner.rv += 1;
                let stored = StoredObject::new(value, inner.rv);
                Self::index_owners(&mut inner, res, key, Some(&current.value), Some(&stored.value));
                inner.resources[res].objects.insert(key.to_owned(), stored.clone());
                let evicted = self.emit(
                    &mut inner,
                    res,
                    WatchEventType::Modified,
                    key.to_owned(),
                    stored.clone(),
                    Some(current),
                );
                drop(inner);
                drop(evicted);
                Ok(stored)
            }
            Change::Remove(value) => {
                if dry_run {
                    return Ok(StoredObject::new(value, current.rv));
                }
                inner.rv += 1;
                let stored = StoredObject::new(value, inner.rv);
                Self::index_owners(&mut inner, res, key, Some(&current.value), None);
                inner.resources[res].objects.remove(key);
                let evicted = self.emit(
                    &mut inner,
                    res,
                    WatchEventType::Deleted,
                    key.to_owned(),
                    stored.clone(),
                    Some(current),
                );
                drop(inner);
                drop(evicted);
                Ok(stored)
            }
        }
    }

    /// Stores an object exactly as given (resourceVersion aside), replacing any.
    pub(crate) fn put_raw(&self, res: ResourceId, key: String, value: Value) -> StoredObject {
        let mut inner = self.inner.lock();
        inner.rv += 1;
        let stored = StoredObject::new(value, inner.rv);
        let prev = inner.resources[res].objects.insert(key.clone(), stored.clone());
        Self::index_owners(
            &mut inner,
            res,
            &key,
            prev.as_ref().map(|p| p.value.as_ref()),
            Some(&stored.value),
        );
        let kind = if prev.is_some() {
            WatchEventType::Modified
        } else {
            WatchEventType::Added
        };
        let evicted = self.emit(&mut inner, res, kind, key, stored.clone(), prev);
        drop(inner);
        drop(evicted);
        stored
    }

    /// Forgets the event history of a resource: the next watch resumed from
    /// an older resourceVersion gets 410 Gone.
    pub(crate) fn compact(&self, res: ResourceId) {
        let mut inner = self.inner.lock();
        let rv = inner.rv;
        let state = &mut inner.resources[res];
        state.history.clear();
        state.floor = rv;
    }

    /// Lists objects of `res` in `ns` (all namespaces when `None`) at
    /// resourceVersion `at` (latest when `None`), after key `after`, at most
    /// `limit` (0 = all) matching `filter`.
    #[allow(clippy::too_many_arguments)] // the parameters of a list request, one to one
    pub(crate) fn list(
        &self,
        res: ResourceId,
        ns: Option<&str>,
        at: Option<u64>,
        after: Option<&str>,
        limit: usize,
        filter: &dyn Fn(&StoredObject) -> bool,
        count_remaining: bool,
    ) -> Result<ListPage, ApiError> {
        let inner = self.inner.lock();
        let state = &inner.resources[res];
        let snapshot;
        let (objects, rv) = match at {
            Some(at) if at < state.last_event_rv => {
                if at < state.floor {
                    return Err(ApiError::expired(
                        "The resourceVersion for the provided list is too old.",
                    ));
                }
                let mut objects = state.objects.clone();
                for ev in state.history.iter().rev().take_while(|e| e.rv > at) {
                    match (&ev.kind, &ev.prev) {
                        (WatchEventType::Added, _) => {
                            objects.remove(&ev.key);
                        }
                        (_, Some(prev)) => {
                            objects.insert(ev.key.clone(), prev.clone());
                        }
                        (_, None) => {}
                    }
                }
                snapshot = objects;
                (&snapshot, at)
            }
            Some(at) => (&state.objects, at),
            None => (&state.objects, inner.rv),
        };
        let (lo, hi) = prefix_range(ns);
        let lo = match after {
            Some(after) => Bound::Excluded(after.to_owned()),
            None => lo,
        };
        let mut items = Vec::new();
        let mut continue_after = None;
        let mut remaining = None;
        let mut last_key: Option<&String> = None;
        let mut iter = objects.range((lo, hi));
        while let Some((key, obj)) = iter.next() {
            if !filter(obj) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                // One more matching item exists: the page is full.
                if count_remaining {
                    remaining = Some(1 + iter.filter(|(_, o)| filter(o)).count() as u64);
                }
                continue_after = last_key.cloned();
                break;
            }
            items.push(obj.clone());
            last_key = Some(key);
        }
        Ok(ListPage {
            items,
            rv,
            continue_after,
            remaining,
        })
    }

    /// Registers a watch. With `from = Some(rv)` the watch replays history
    /// after `rv` (410 Expired when compacted); with `None` it starts with
    /// the current objects.
    pub(crate) fn watch(&self, res: ResourceId, from: Option<u64>) -> Result<WatchStart, ApiError> {
        let inner = self.inner.lock();
        let state = &inner.resources[res];
        let rx = state.tx.subscribe();
        match from {
            Some(rv) => {
                if rv < state.floor {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        state.floor
                    )));
                }
                if rv > inner.rv {
                    return Err(ApiError::too_large_resource_version(rv, inner.rv));
                }
                let start = state.history.partition_point(|e| e.rv <= rv);
                let history = state.history.iter().skip(start).cloned().collect();
                Ok(WatchStart {
                    history,
                    initial: Vec::new(),
                    rx,
                    rv: inner.rv,
                })
            }
            None => Ok(WatchStart {
                history: Vec::new(),
                initial: state.objects.values().cloned().collect(),
                rx,
                rv: inner.rv,
            }),
        }
    }
}
