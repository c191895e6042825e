//! Recording Kubernetes events about the objects the controllers manage.
//!
//! Upstream's controllers record core/v1 Events through client-go's legacy
//! recorder: the event is named `<object>.<hex nanoseconds>`, lives in the
//! object's namespace (`default` when the object has none), and an event
//! identical to one already recorded by this process is not created again:
//! its `count` and `lastTimestamp` are bumped instead. [`KubeEventRecorder`]
//! does the same.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use parking_lot::{Mutex, MutexGuard};
use serde_json::json;

/// The severity of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened (`Normal`).
    Normal,
    /// Something went wrong or may need attention (`Warning`).
    Warning,
}

impl EventType {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// A reference to `object` for the `regarding` field of an event: its
/// kind, apiVersion, namespace, name, uid and resourceVersion (client-go's
/// `reference.GetReference`).
///
/// ```
/// use ecm_controller::events::object_reference;
/// use k8s_openapi::api::core::v1::Service;
///
/// let mut svc = Service::default();
/// svc.metadata.name = Some("web".into());
/// svc.metadata.namespace = Some("shop".into());
/// let reference = object_reference(&svc);
/// assert_eq!(reference.kind.as_deref(), Some("Service"));
/// assert_eq!(reference.api_version.as_deref(), Some("v1"));
/// assert_eq!(reference.namespace.as_deref(), Some("shop"));
/// ```
pub fn object_reference<K: kube::Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    let meta = object.meta();
    ObjectReference {
        kind: Some(K::kind(&()).into_owned()),
        api_version: Some(K::api_version(&()).into_owned()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// One event to record.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// The object the event is about.
    pub regarding: ObjectReference,
    /// Normal or Warning.
    pub event_type: EventType,
    /// A short CamelCase reason, such as `FailedToUpdateEndpoint`.
    pub reason: String,
    /// A human-readable message.
    pub message: String,
}

impl EventRecord {
    /// A Warning event about `regarding`.
    pub fn warning(regarding: ObjectReference, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            regarding,
            event_type: EventType::Warning,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A Normal event about `regarding`.
    pub fn normal(regarding: ObjectReference, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            regarding,
            event_type: EventType::Normal,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Records events. Recording never fails from the caller's point of view:
/// an event that cannot be written is logged and dropped, as upstream does.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventRecorder: Send + Sync {
    /// Records `event`.
    async fn record(&self, event: EventRecord);
}

/// An [`EventRecorder`] writing core/v1 Events through a `kube::Client`.
pub struct KubeEventRecorder {
    client: kube::Client,
    component: String,
    host: String,
    sequence: AtomicU64,
    /// Events this process already wrote, by what makes them identical, with
    /// the name and count of the stored event.
    recorded: Mutex<HashMap<EventIdentity, (String, i32)>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct EventIdentity {
    kind: String,
    namespace: String,
    name: String,
    uid: String,
    event_type: EventType,
    reason: String,
    message: String,
}

impl std::fmt::Debug for KubeEventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeEventRecorder")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

impl KubeEventRecorder {
    /// A recorder writing events with `source.component = component` (for
    /// instance `endpoint-controller`) and `source.host = host`.
    pub fn new(client: kube::Client, component: impl Into<String>, host: impl Into<String>) -> Self {
        Self {
            client,
            component: component.into(),
            host: host.into(),
            sequence: AtomicU64::new(0),
            recorded: Mutex::new(HashMap::new()),
        }
    }

    fn identity(event: &EventRecord) -> EventIdentity {
        let r = &event.regarding;
        EventIdentity {
            kind: r.kind.clone().unwrap_or_default(),
            namespace: r.namespace.clone().unwrap_or_default(),
            name: r.name.clone().unwrap_or_default(),
            uid: r.uid.clone().unwrap_or_default(),
            event_type: event.event_type,
            reason: event.reason.clone(),
            message: event.message.clone(),
        }
    }

    fn remembered(&self) -> MutexGuard<'_, HashMap<EventIdentity, (String, i32)>> {
        // The map only caches names and counts; a panic elsewhere cannot leave
        // it inconsistent.
        self.recorded.lock()
    }

    fn new_event(&self, event: &EventRecord, namespace: &str, now: Timestamp) -> Event {
        let object_name = event.regarding.name.clone().unwrap_or_default();
        // Upstream names events `<object>.<hex unix nanoseconds>`; the sequence
        // number keeps two events of one nanosecond apart.
        let nanos = now.as_nanosecond() as u128 + u128::from(self.sequence.fetch_add(1, Ordering::Relaxed));
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{object_name}.{nanos:x}")),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            involved_object: event.regarding.clone(),
            reason: Some(event.reason.clone()),
            message: Some(event.message.clone()),
            type_: Some(event.event_type.as_str().to_owned()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: Some(self.host.clone()),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(format!("{}-{}", self.component, self.host)),
            ..Event::default()
        }
    }
}

#[async_trait]
impl EventRecorder for KubeEventRecorder {
    async fn record(&self, event: EventRecord) {
        let namespace = match event.regarding.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns.to_owned(),
            _ => "default".to_owned(),
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let identity = Self::identity(&event);
        let now = Timestamp::now();
        let previous = self.remembered().get(&identity).cloned();
        if let Some((name, count)) = previous {
            let patch = json!({"count": count + 1, "lastTimestamp": Time(now)});
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    self.remembered().insert(identity, (name, count + 1));
                    return;
                }
                Err(err) => {
                    tracing::debug!(event = %name, error = %err, "could not update event, creating a new one");
                }
            }
        }
        let fresh = self.new_event(&event, &namespace, now);
        match api.create(&PostParams::default(), &fresh).await {
            Ok(stored) => {
                let name = stored.metadata.name.unwrap_or_default();
                self.remembered().insert(identity, (name, 1));
            }
            Err(err) => {
                tracing::warn!(
                    reason = %event.reason,
                    object = %identity.name,
                    error = %err,
                    "could not record event"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::tests::stub_client;

    fn pod_ref() -> ObjectReference {
        ObjectReference {
            kind: Some("Service".into()),
            namespace: Some("prod".into()),
            name: Some("web".into()),
            uid: Some("uid-web".into()),
            ..ObjectReference::default()
        }
    }

    #[tokio::test]
    async fn identical_events_are_counted_not_repeated() {
        let (client, log) = stub_client(|seen| (200, seen.body.clone()));
        let recorder = KubeEventRecorder::new(client, "endpoint-controller", "host-1");
        let event = EventRecord::warning(
            pod_ref(),
            "FailedToUpdateEndpoint",
            "Failed to update endpoint prod/web",
        );
        recorder.record(event.clone()).await;
        recorder.record(event).await;
        recorder
            .record(EventRecord::warning(
                pod_ref(),
                "FailedToUpdateEndpoint",
                "another message",
            ))
            .await;

        let log = log.lock().unwrap();
        let calls: Vec<_> = log.iter().map(|s| (s.method.as_str(), s.path.as_str())).collect();
        assert_eq!(calls[0], ("POST", "/api/v1/namespaces/prod/events"));
        assert_eq!(calls[1].0, "PATCH");
        assert!(calls[1].1.starts_with("/api/v1/namespaces/prod/events/web."));
        assert_eq!(calls[2], ("POST", "/api/v1/namespaces/prod/events"));
        let first = &log[0].body;
        assert_eq!(first["reason"], "FailedToUpdateEndpoint");
        assert_eq!(first["type"], "Warning");
        assert_eq!(first["count"], 1);
        assert_eq!(first["source"]["component"], "endpoint-controller");
        assert_eq!(first["involvedObject"]["name"], "web");
        assert_eq!(log[1].body["count"], 2);
    }

    #[tokio::test]
    async fn events_about_objects_without_namespace_go_to_default() {
        let (client, log) = stub_client(|seen| (200, seen.body.clone()));
        let recorder = KubeEventRecorder::new(client, "endpoint-controller", "h");
        let mut regarding = pod_ref();
        regarding.namespace = None;
        recorder.record(EventRecord::normal(regarding, "Reason", "msg")).await;
        assert_eq!(log.lock().unwrap()[0].path, "/api/v1/namespaces/default/events");
    }

    #[tokio::test]
    async fn a_failed_event_write_is_swallowed() {
        let (client, log) = stub_client(|_| {
            (
                500,
                serde_json::json!({"kind": "Status", "code": 500, "reason": "InternalError"}),
            )
        });
        let recorder = KubeEventRecorder::new(client, "c", "h");
        recorder.record(EventRecord::normal(pod_ref(), "Reason", "msg")).await;
        assert_eq!(log.lock().unwrap().len(), 1);
    }
}
