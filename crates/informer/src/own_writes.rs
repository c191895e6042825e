//! Reusing the objects a process wrote instead of decoding the watch events
//! of its own writes.
//!
//! A controller that writes an object sees that write again on its watch a
//! moment later (the echo), and decoding the echo is most of what caching it
//! costs: every address, name and label of the object allocated again. The
//! writer already holds that object. [`OwnWrites`] keeps it, with the
//! metadata the API server answered with (resourceVersion, uid, ...), until
//! the watch delivers the object of that namespace, name and
//! resourceVersion; the informer's decoder then reads only the event's
//! `metadata` identity, finds the entry and returns the object kept, without
//! building the rest of the event (it is scanned, not decoded).
//!
//! The object reused is the one sent plus the answered metadata, which is
//! what the API server stored unless something between changed it: a
//! mutating admission webhook on the kind, or defaulting of a field the
//! writer left empty. Writers whose objects may be changed that way should
//! not record them (ecm: `--own-writes=decode`); [`OwnWrites::verifying`]
//! decodes every echo as well and compares, logging and counting a
//! difference (and using the decoded object), and panics on one in debug
//! builds, so test suites catch a writer that records what the server would
//! not store.
//!
//! The registry is shared by the writers and the informers of one cluster
//! connection ([`InformerFactory::with_own_writes`](crate::InformerFactory::with_own_writes)).
//! Informers consult it while they decode (a thread-local set around each
//! poll of their watch stream), only for kinds with entries, and only when
//! the decoder is serde_json's over a byte slice or string (kube's watch and
//! list decoding), whose objects can be scanned in place. An entry is
//! dropped when its echo arrives, when a newer resourceVersion of the
//! object is seen, or when the object is deleted; at most
//! [`MAX_ENTRIES`] are kept per kind.
//!
//! ```
//! use std::sync::Arc;
//! use ecm_informer::OwnWrites;
//! use k8s_openapi::api::core::v1::ConfigMap;
//!
//! let own = Arc::new(OwnWrites::new());
//! let mut written = ConfigMap::default();
//! written.metadata.namespace = Some("shop".into());
//! written.metadata.name = Some("settings".into());
//! // As the API server answered the write:
//! written.metadata.resource_version = Some("42".into());
//! own.record(written);
//! assert_eq!(own.len(), 1);
//! ```

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::Stream;
use kube::Resource;
use parking_lot::Mutex;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess};

use crate::key::{KeyRef, ObjectKey};
use crate::metrics::OWN_WRITE_MISMATCHES_TOTAL;

/// The most entries kept per kind. An entry whose echo never comes (its
/// informer filters it out, or the write's answer came after its echo) is
/// dropped by the next newer version of the object; past this many, all of
/// the kind's entries are dropped (they are only a saving).
pub const MAX_ENTRIES: usize = 65_536;

/// Objects written by this process, kept until the watch brings each write
/// back (see the [module](self)).
#[derive(Default)]
pub struct OwnWrites {
    verify: bool,
    kinds: Mutex<HashMap<TypeId, Kind>>,
    /// Echoes answered with a kept object.
    reused: AtomicU64,
}

/// The entries of one kind.
#[derive(Default)]
struct Kind {
    entries: hashbrown::HashMap<ObjectKey, Entry, std::hash::RandomState>,
}

/// One written object, type-erased.
struct Entry {
    resource_version: String,
    object: Box<dyn Any + Send>,
    /// Decodes an event's object and compares it with `object`
    /// ([`OwnWrites::verifying`]); `Err` carries the decoded object.
    check: fn(&dyn Any, &str) -> Result<(), CheckFailure>,
}

/// Why a reused object was not used.
enum CheckFailure {
    /// The event's object differs: the decoded one, and both for the log.
    Differs {
        decoded: Box<dyn Any + Send>,
        reused: String,
        decoded_text: String,
    },
    /// The event's object does not decode; decoding it again reports why.
    Undecodable,
}

impl fmt::Debug for OwnWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnWrites")
            .field("verify", &self.verify)
            .field("entries", &self.len())
            .field("reused", &self.reused())
            .finish_non_exhaustive()
    }
}

impl OwnWrites {
    /// An empty registry whose entries are reused as they are.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry that decodes every echo as well and compares it
    /// with the object kept: a difference is logged, counted
    /// (`ecm_informer_own_write_mismatches_total`) and the decoded object is
    /// used; debug builds panic on it. For diagnosis and tests: it saves
    /// nothing.
    pub fn verifying() -> Self {
        Self {
            verify: true,
            ..Self::default()
        }
    }

    /// Whether echoes are decoded and compared ([`OwnWrites::verifying`]).
    pub fn is_verifying(&self) -> bool {
        self.verify
    }

    /// Keeps `object`, which the API server has just stored at its
    /// `metadata.resourceVersion`, for the informer of `K` to reuse when
    /// the watch brings that version. The object must be what a decode of
    /// the stored object gives, without `managedFields`: the object sent
    /// with the metadata the server answered. Objects without a name or
    /// resourceVersion are not kept.
    pub fn record<K>(&self, object: K)
    where
        K: Resource + DeserializeOwned + PartialEq + fmt::Debug + Send + 'static,
    {
        let meta = object.meta();
        let (Some(name), Some(rv)) = (meta.name.as_deref(), meta.resource_version.as_deref()) else {
            return;
        };
        let key = ObjectKey::new(meta.namespace.as_deref().unwrap_or_default(), name);
        let entry = Entry {
            resource_version: rv.to_owned(),
            object: Box::new(object),
            check: check::<K>,
        };
        let mut kinds = self.kinds.lock();
        let kind = kinds.entry(TypeId::of::<K>()).or_default();
        if kind.entries.len() >= MAX_ENTRIES && !kind.entries.contains_key(&key) {
            tracing::debug!(entries = kind.entries.len(), "too many own writes kept; dropping them");
            kind.entries.clear();
        }
        kind.entries.insert(key, entry);
    }

    /// The number of objects kept, over all kinds.
    pub fn len(&self) -> usize {
        self.kinds.lock().values().map(|k| k.entries.len()).sum()
    }

    /// How many watched objects were answered with a kept object instead
    /// of being decoded.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether objects of `K` are kept.
    fn expects<K: 'static>(&self) -> bool {
        self.kinds
            .lock()
            .get(&TypeId::of::<K>())
            .is_some_and(|kind| !kind.entries.is_empty())
    }

    /// The kept object of `K` that `raw` (an object's JSON) is the stored
    /// version of, if any; the entry is removed. An entry for the same
    /// object at an older resourceVersion is removed too.
    pub(crate) fn reuse<K: 'static>(&self, raw: &str) -> Option<K> {
        let identity = Identity::peek(raw)?;
        let entry = {
            let mut kinds = self.kinds.lock();
            let kind = kinds.get_mut(&TypeId::of::<K>())?;
            let key = KeyRef {
                namespace: identity.namespace.as_deref().unwrap_or_default(),
                name: identity.name.as_deref()?,
            };
            let event_rv = identity.resource_version.as_deref()?;
            let kept_rv = kind.entries.get(&key)?.resource_version.as_str();
            if kept_rv != event_rv {
                if is_newer(event_rv, kept_rv) {
                    kind.entries.remove(&key);
                }
                return None;
            }
            kind.entries.remove(&key)?
        };
        if self.verify {
            match (entry.check)(entry.object.as_ref(), raw) {
                Ok(()) => {}
                Err(CheckFailure::Differs {
                    decoded,
                    reused,
                    decoded_text,
                }) => {
                    report_mismatch(&reused, &decoded_text);
                    return decoded.downcast::<K>().ok().map(|decoded| *decoded);
                }
                Err(CheckFailure::Undecodable) => return None,
            }
        }
        let object = entry.object.downcast::<K>().ok().map(|object| *object);
        if object.is_some() {
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
        object
    }

    /// Forgets the kept object of `K` at `namespace`/`name` (the object was
    /// deleted).
    pub(crate) fn forget<K: 'static>(&self, namespace: &str, name: &str) {
        if let Some(kind) = self.kinds.lock().get_mut(&TypeId::of::<K>()) {
            kind.entries.remove(&KeyRef { namespace, name });
        }
    }
}

/// Whether resourceVersion `a` is newer than `b`. resourceVersions are
/// opaque to clients; kube-apiserver's are integers, compared as such here
/// only to drop entries early. Anything else is never newer.
fn is_newer(a: &str, b: &str) -> bool {
    matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(a), Ok(b)) if a > b)
}

/// Logs and counts an echo that differs from the object kept; panics in
/// debug builds.
fn report_mismatch(reused: &str, decoded: &str) {
    tracing::error!(
        reused,
        decoded,
        "the watch brought back an own write that differs from what was written; using the decoded object \
         (a mutating webhook or defaulting on this kind? run with --own-writes=decode)"
    );
    metrics::counter!(OWN_WRITE_MISMATCHES_TOTAL).increment(1);
    debug_assert!(
        false,
        "own write differs from its echo:\nreused:  {reused}\ndecoded: {decoded}"
    );
}

/// Decodes `raw` as `K` (without managedFields, and without reusing) and
/// compares it with `reused`.
fn check<K>(reused: &dyn Any, raw: &str) -> Result<(), CheckFailure>
where
    K: DeserializeOwned + PartialEq + fmt::Debug + Send + 'static,
{
    let decoded: K = with_scope(None, || serde_json::from_str::<crate::WithoutManagedFields<K>>(raw))
        .map_err(|_| CheckFailure::Undecodable)?
        .0;
    let Some(reused) = reused.downcast_ref::<K>() else {
        return Err(CheckFailure::Undecodable);
    };
    if decoded == *reused {
        return Ok(());
    }
    Err(CheckFailure::Differs {
        reused: format!("{reused:?}"),
        decoded_text: format!("{decoded:?}"),
        decoded: Box::new(decoded),
    })
}

/// The identity of an object in its JSON: `metadata`'s name, namespace and
/// resourceVersion, borrowed where the JSON has no escapes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    resource_version: Option<Cow<'a, str>>,
}

impl<'a> Identity<'a> {
    /// Reads `raw` up to the end of its `metadata` (which the API server
    /// writes before the object's content) and no further.
    fn peek(raw: &'a str) -> Option<Self> {
        let mut found = None;
        let mut json = serde_json::Deserializer::from_str(raw);
        // Stopping inside the object makes serde_json object to the unread
        // rest, which is the point: the error is ignored when found.
        let _ = de::Deserializer::deserialize_map(&mut json, UntilMetadata(&mut found));
        found
    }
}

/// Visits an object's keys until `metadata` and reads its identity.
struct UntilMetadata<'s, 'a>(&'s mut Option<Identity<'a>>);

impl<'de: 'a, 'a> de::Visitor<'de> for UntilMetadata<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "metadata" {
                *self.0 = Some(map.next_value()?);
                return Ok(());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

thread_local! {
    /// The registry of the informer decoding on this thread, if any.
    static CURRENT: RefCell<Option<Arc<OwnWrites>>> = const { RefCell::new(None) };
}

/// Runs `f` with `own` as the registry decoders on this thread consult.
pub(crate) fn with_scope<R>(own: Option<Arc<OwnWrites>>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|current| current.replace(own));
    let result = f();
    CURRENT.with(|current| *current.borrow_mut() = previous);
    result
}

/// The registry in scope, when it keeps objects of `K`.
pub(crate) fn expecting<K: 'static>() -> Option<Arc<OwnWrites>> {
    CURRENT.with(|current| current.borrow().as_ref().filter(|own| own.expects::<K>()).cloned())
}

/// A stream polled with a registry in scope ([`with_scope`]): the watch
/// stream of an informer whose decoder may reuse own writes.
pub(crate) struct Scoped<S> {
    inner: S,
    own: Arc<OwnWrites>,
}

impl<S> Scoped<S> {
    pub(crate) fn new(inner: S, own: Arc<OwnWrites>) -> Self {
        Self { inner, own }
    }
}

impl<S: Stream + Unpin> Stream for Scoped<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let own = Arc::clone(&self.own);
        with_scope(Some(own), || Pin::new(&mut self.inner).poll_next(cx))
    }
}

#[cfg(test)]
mod tests;
