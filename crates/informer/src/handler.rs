//! Event handlers: what an informer tells its subscribers.
//!
//! An [`EventHandler`] receives `on_add`, `on_update` and `on_delete` calls,
//! client-go's `ResourceEventHandler` with the typed delete of its newest
//! `TypedResourceEventHandler`: a delete always carries an object, the last
//! one the informer knew, and [`Deleted::final_state_unknown`] says whether
//! the delete was seen (a watch `DELETED` event) or inferred (the object was
//! missing from a relist). There is no tombstone type to unwrap.
//!
//! # Contract
//!
//! - The store and its indexes change **before** the handler is called, so a
//!   handler (or the worker it feeds) reading the cache sees a state at least
//!   as new as the notification.
//! - Each handler sees the notifications in the order the informer applied
//!   them. Handlers are called inline, on the informer's task, one after the
//!   other: **they must be cheap and must not block** — compute keys and
//!   enqueue them in a work queue, nothing more. They must not call
//!   [`Informer::add_event_handler`](crate::Informer::add_event_handler) or
//!   [`Informer::remove_event_handler`](crate::Informer::remove_event_handler)
//!   (that would deadlock), and must not panic (a panic stops the informer).
//! - Updates whose old and new objects have the same resourceVersion (the
//!   unchanged objects of a relist) are not delivered, except by a periodic
//!   resync when the informer has one
//!   ([`InformerConfig::resync_period`](crate::InformerConfig::resync_period)):
//!   then every cached object comes as an update with `old` and `new` the
//!   same, as client-go's resync does.
//! - A handler added after the informer started first receives an `on_add`
//!   flagged `is_initial_list` for every object already cached, with no real
//!   event interleaved.

use std::fmt;
use std::sync::Arc;

use kube::Resource;

use crate::key::ObjectKey;

/// Receives an informer's notifications. Every method has an empty default,
/// so implement only what you need.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::Mutex;
/// use ecm_informer::{Deleted, EventHandler, ObjectKey};
/// use k8s_openapi::api::core::v1::Service;
///
/// /// Collects the keys of every Service that changed.
/// struct Keys(Mutex<Vec<ObjectKey>>);
///
/// impl EventHandler<Service> for Keys {
///     fn on_add(&self, obj: &Arc<Service>, _is_initial_list: bool) {
///         self.0.lock().unwrap().push(ObjectKey::of(obj.as_ref()));
///     }
///     fn on_update(&self, _old: &Arc<Service>, new: &Arc<Service>) {
///         self.0.lock().unwrap().push(ObjectKey::of(new.as_ref()));
///     }
///     fn on_delete(&self, deleted: Deleted<Service>) {
///         self.0.lock().unwrap().push(deleted.key());
///     }
/// }
/// ```
pub trait EventHandler<S>: Send + Sync + 'static {
    /// An object appeared: from the initial list (`is_initial_list`), from
    /// a later relist or watch event, or as a synthetic add for a handler
    /// registered late (also flagged `is_initial_list`).
    fn on_add(&self, obj: &Arc<S>, is_initial_list: bool) {
        let _ = (obj, is_initial_list);
    }

    /// An object changed: `new` has a different resourceVersion than `old`.
    /// The two may have different UIDs if the object was deleted and
    /// re-created while the watch was down; compare UIDs if that matters.
    fn on_update(&self, old: &Arc<S>, new: &Arc<S>) {
        let _ = (old, new);
    }

    /// An object went away; see [`Deleted`].
    fn on_delete(&self, deleted: Deleted<S>) {
        let _ = deleted;
    }
}

impl<S, H: EventHandler<S> + ?Sized> EventHandler<S> for Arc<H> {
    fn on_add(&self, obj: &Arc<S>, is_initial_list: bool) {
        (**self).on_add(obj, is_initial_list);
    }

    fn on_update(&self, old: &Arc<S>, new: &Arc<S>) {
        (**self).on_update(old, new);
    }

    fn on_delete(&self, deleted: Deleted<S>) {
        (**self).on_delete(deleted);
    }
}

/// A deleted object, as handed to [`EventHandler::on_delete`].
///
/// `obj` is always present. For a delete seen on the watch
/// (`final_state_unknown == false`) it is the object as the API server sent
/// it in the `DELETED` event. For a delete inferred from a relist
/// (`final_state_unknown == true`, client-go's `DeletedFinalStateUnknown`)
/// it is the last state the informer had cached, which may be stale.
pub struct Deleted<S> {
    /// The last known state of the object.
    pub obj: Arc<S>,
    /// Whether the deletion was inferred because the object was missing from
    /// a relist, rather than observed.
    pub final_state_unknown: bool,
}

impl<S: Resource> Deleted<S> {
    /// The object's key.
    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(self.obj.as_ref())
    }
}

impl<S> Clone for Deleted<S> {
    fn clone(&self) -> Self {
        Self {
            obj: Arc::clone(&self.obj),
            final_state_unknown: self.final_state_unknown,
        }
    }
}

impl<S: Resource> fmt::Debug for Deleted<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deleted")
            .field("key", &self.key())
            .field("final_state_unknown", &self.final_state_unknown)
            .finish_non_exhaustive()
    }
}

/// One notification, as an enum: what [`handler_fn`] closures receive, and
/// what the informer queues internally between applying a change and
/// delivering it.
pub enum Notification<S> {
    /// See [`EventHandler::on_add`].
    Add {
        /// The new object.
        obj: Arc<S>,
        /// Whether it belongs to the initial list (or is a synthetic add for
        /// a late handler).
        is_initial_list: bool,
    },
    /// See [`EventHandler::on_update`].
    Update {
        /// The cached object before the change.
        old: Arc<S>,
        /// The object after the change.
        new: Arc<S>,
    },
    /// See [`EventHandler::on_delete`].
    Delete(Deleted<S>),
}

impl<S> Clone for Notification<S> {
    fn clone(&self) -> Self {
        match self {
            Self::Add { obj, is_initial_list } => Self::Add {
                obj: Arc::clone(obj),
                is_initial_list: *is_initial_list,
            },
            Self::Update { old, new } => Self::Update {
                old: Arc::clone(old),
                new: Arc::clone(new),
            },
            Self::Delete(deleted) => Self::Delete(deleted.clone()),
        }
    }
}

impl<S: Resource> fmt::Debug for Notification<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Add { obj, is_initial_list } => f
                .debug_struct("Add")
                .field("key", &ObjectKey::of(obj.as_ref()))
                .field("is_initial_list", is_initial_list)
                .finish(),
            Self::Update { old, new } => f
                .debug_struct("Update")
                .field("key", &ObjectKey::of(new.as_ref()))
                .field("old_resource_version", &old.meta().resource_version)
                .field("new_resource_version", &new.meta().resource_version)
                .finish(),
            Self::Delete(deleted) => deleted.fmt(f),
        }
    }
}

impl<S> Notification<S> {
    /// Calls the matching method of `handler`.
    pub fn deliver_to(&self, handler: &(impl EventHandler<S> + ?Sized)) {
        match self {
            Self::Add { obj, is_initial_list } => handler.on_add(obj, *is_initial_list),
            Self::Update { old, new } => handler.on_update(old, new),
            Self::Delete(deleted) => handler.on_delete(deleted.clone()),
        }
    }

    /// The object before and after the change: `(None, Some(obj))` for an
    /// add, `(Some(old), Some(new))` for an update, `(Some(last_known), None)`
    /// for a delete. The shape of upstream's "old/new projection" helpers,
    /// handy for handlers that treat all three events as one change.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ecm_informer::{Deleted, Notification};
    /// use k8s_openapi::api::core::v1::Pod;
    ///
    /// let pod = Arc::new(Pod::default());
    /// let gone = Notification::Delete(Deleted { obj: Arc::clone(&pod), final_state_unknown: true });
    /// assert!(matches!(gone.before_after(), (Some(_), None)));
    /// let added = Notification::Add { obj: pod, is_initial_list: false };
    /// assert!(matches!(added.before_after(), (None, Some(_))));
    /// ```
    pub fn before_after(&self) -> (Option<&Arc<S>>, Option<&Arc<S>>) {
        match self {
            Self::Add { obj, .. } => (None, Some(obj)),
            Self::Update { old, new } => (Some(old), Some(new)),
            Self::Delete(deleted) => (Some(&deleted.obj), None),
        }
    }

    /// The object the notification is about (the new one for an update).
    pub fn object(&self) -> &Arc<S> {
        match self {
            Self::Add { obj, .. } | Self::Update { new: obj, .. } => obj,
            Self::Delete(deleted) => &deleted.obj,
        }
    }
}

/// An [`EventHandler`] made of one closure taking a [`Notification`].
///
/// ```
/// use ecm_informer::{handler_fn, Notification};
/// use k8s_openapi::api::core::v1::Pod;
///
/// let handler = handler_fn(|n: Notification<Pod>| {
///     if let Notification::Delete(deleted) = n {
///         tracing::debug!(key = %deleted.key(), inferred = deleted.final_state_unknown, "pod gone");
///     }
/// });
/// # let _ = handler;
/// ```
pub fn handler_fn<S, F>(f: F) -> FnHandler<F>
where
    F: Fn(Notification<S>) + Send + Sync + 'static,
{
    FnHandler(f)
}

/// The handler built by [`handler_fn`].
pub struct FnHandler<F>(F);

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHandler")
    }
}

impl<S, F> EventHandler<S> for FnHandler<F>
where
    S: 'static,
    F: Fn(Notification<S>) + Send + Sync + 'static,
{
    fn on_add(&self, obj: &Arc<S>, is_initial_list: bool) {
        (self.0)(Notification::Add {
            obj: Arc::clone(obj),
            is_initial_list,
        });
    }

    fn on_update(&self, old: &Arc<S>, new: &Arc<S>) {
        (self.0)(Notification::Update {
            old: Arc::clone(old),
            new: Arc::clone(new),
        });
    }

    fn on_delete(&self, deleted: Deleted<S>) {
        (self.0)(Notification::Delete(deleted));
    }
}
