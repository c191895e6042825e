//! `Controller::sync` against hand-filled caches and mocked writers: the
//! exact writes and events of each situation.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use ecm_controller::{EventRecord, MockEventRecorder, MockObjectWriter, Runnable, WriteError, Writers};
use ecm_endpoints::{Config, Controller, Informers, SyncError};
use ecm_informer::{Informer, ObjectKey, Store};
use ecm_types::PodProjection;
use ecm_types::fixtures::{pod, service};
use k8s_openapi::api::core::v1::{Endpoints, Service};

/// Caches the test fills by hand, and what the mocks saw.
struct World {
    services: Store<Service>,
    pods: Store<PodProjection>,
    endpoints: Store<Endpoints>,
    writes: Arc<Mutex<Vec<(String, Endpoints)>>>,
    events: Arc<Mutex<Vec<EventRecord>>>,
}

impl World {
    fn new() -> Self {
        Self {
            services: Store::new(),
            pods: Store::new(),
            endpoints: Store::new(),
            writes: Arc::default(),
            events: Arc::default(),
        }
    }

    /// A controller whose writer answers with `answer` and records each call.
    fn controller(
        &self,
        answer: impl Fn(&str, &Endpoints) -> Result<Endpoints, WriteError> + Send + Sync + Clone + 'static,
    ) -> Controller {
        let mut writer = MockObjectWriter::<Endpoints>::new();
        let (log, reply) = (Arc::clone(&self.writes), answer.clone());
        writer.expect_create().returning(move |_, obj| {
            log.lock().unwrap().push(("create".into(), obj.clone()));
            reply("create", obj).map(|stored| stored.metadata)
        });
        let (log, reply) = (Arc::clone(&self.writes), answer.clone());
        writer.expect_update().returning(move |_, obj| {
            log.lock().unwrap().push(("update".into(), obj.clone()));
            reply("update", obj).map(|stored| stored.metadata)
        });
        let log = Arc::clone(&self.writes);
        writer.expect_delete().returning(move |ns, name| {
            let mut gone = Endpoints::default();
            gone.metadata.name = Some(name.to_owned());
            gone.metadata.namespace = Some(ns.to_owned());
            log.lock().unwrap().push(("delete".into(), gone));
            Ok(())
        });
        let mut recorder = MockEventRecorder::new();
        let events = Arc::clone(&self.events);
        recorder
            .expect_record()
            .returning(move |event| events.lock().unwrap().push(event));
        Controller::new(
            Config::default(),
            &Informers {
                services: Informer::detached(self.services.clone()),
                pods: Informer::detached(self.pods.clone()),
                endpoints: Informer::detached(self.endpoints.clone()),
            },
            Writers {
                objects: Arc::new(writer),
                events: Arc::new(recorder),
            },
        )
    }

    fn writes(&self) -> Vec<(String, Endpoints)> {
        self.writes.lock().unwrap().clone()
    }
}

/// Answers like the API server: the object back, with a new resourceVersion.
/// The `Result` matches the writer-callback signature the harness expects.
#[allow(clippy::unnecessary_wraps)]
fn stored(_verb: &str, obj: &Endpoints) -> Result<Endpoints, WriteError> {
    let mut obj = obj.clone();
    let rv: u64 = obj
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    obj.metadata.resource_version = Some((rv + 1).to_string());
    Ok(obj)
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new("ns", name)
}

fn web_service() -> Service {
    service("ns", "web")
        .labels([("app", "web")])
        .selector([("app", "web")])
        .port("http", 80, 8080)
        .build()
}

#[tokio::test]
async fn new_service_creates_its_endpoints() {
    let world = World::new();
    world.services.insert(Arc::new(web_service()));
    world.pods.insert(Arc::new(
        pod("ns", "web-0")
            .labels([("app", "web")])
            .ip("10.0.0.1")
            .ready(true)
            .projection(),
    ));
    world.pods.insert(Arc::new(
        pod("ns", "other")
            .labels([("app", "db")])
            .ip("10.0.0.2")
            .ready(true)
            .projection(),
    ));
    world.controller(stored).sync(&key("web")).await.unwrap();

    let writes = world.writes();
    assert_eq!(writes.len(), 1);
    let (verb, object) = &writes[0];
    assert_eq!(verb, "create");
    assert_eq!(object.metadata.name.as_deref(), Some("web"));
    let subsets = object.subsets.as_ref().unwrap();
    assert_eq!(subsets.len(), 1);
    let ips: Vec<_> = subsets[0].addresses.iter().flatten().map(|a| a.ip.as_str()).collect();
    assert_eq!(ips, ["10.0.0.1"]);
    let labels = object.metadata.labels.as_ref().unwrap();
    assert_eq!(
        labels.get("endpoints.kubernetes.io/managed-by").map(String::as_str),
        Some("endpoint-controller")
    );
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    let annotations = object.metadata.annotations.as_ref().unwrap();
    assert_eq!(
        annotations
            .get("endpoints.kubernetes.io/last-change-trigger-time")
            .map(String::as_str),
        Some("2024-01-15T10:00:00Z"),
        "the first sync stamps the Service's creation time"
    );
}

#[tokio::test]
async fn second_sync_of_an_unchanged_service_writes_nothing() {
    let world = World::new();
    world.services.insert(Arc::new(web_service()));
    world.pods.insert(Arc::new(
        pod("ns", "web-0")
            .labels([("app", "web")])
            .ip("10.0.0.1")
            .ready(true)
            .projection(),
    ));
    let controller = world.controller(stored);
    controller.sync(&key("web")).await.unwrap();
    let (_, created) = world.writes().remove(0);
    let mut in_cache = stored("create", &created).unwrap();
    in_cache.metadata.namespace = Some("ns".into());
    world.endpoints.insert(Arc::new(in_cache));
    controller.sync(&key("web")).await.unwrap();
    assert_eq!(world.writes().len(), 1, "no second write");
}

#[tokio::test]
async fn a_sync_before_the_cache_shows_our_create_is_retried_not_repeated() {
    let world = World::new();
    world.services.insert(Arc::new(web_service()));
    let controller = world.controller(stored);
    controller.sync(&key("web")).await.unwrap();
    let err = controller.sync(&key("web")).await.unwrap_err();
    assert!(matches!(err, SyncError::StaleCache(_)), "{err}");
    assert_eq!(world.writes().len(), 1);
}

#[tokio::test]
async fn a_sync_reading_the_version_we_replaced_is_retried() {
    let world = World::new();
    world.services.insert(Arc::new(web_service()));
    let mut old = Endpoints::default();
    old.metadata.name = Some("web".into());
    old.metadata.namespace = Some("ns".into());
    old.metadata.resource_version = Some("7".into());
    world.endpoints.insert(Arc::new(old));
    let controller = world.controller(stored);
    controller.sync(&key("web")).await.unwrap();
    assert_eq!(world.writes()[0].0, "update");
    assert_eq!(
        world.writes()[0].1.metadata.resource_version.as_deref(),
        Some("7"),
        "PUT carries the cached version"
    );
    assert!(matches!(
        controller.sync(&key("web")).await,
        Err(SyncError::StaleCache(_))
    ));
}

#[tokio::test]
async fn deleted_service_deletes_its_cached_endpoints() {
    let world = World::new();
    let mut orphan = Endpoints::default();
    orphan.metadata.name = Some("gone".into());
    orphan.metadata.namespace = Some("ns".into());
    orphan.metadata.resource_version = Some("3".into());
    world.endpoints.insert(Arc::new(orphan));
    let controller = world.controller(stored);
    controller.sync(&key("gone")).await.unwrap();
    controller.sync(&key("never-existed")).await.unwrap();
    let writes = world.writes();
    assert_eq!(writes.len(), 1, "nothing to delete for a key with no cached object");
    assert_eq!(
        (writes[0].0.as_str(), writes[0].1.metadata.name.as_deref()),
        ("delete", Some("gone"))
    );
}

#[tokio::test]
async fn external_name_and_selectorless_services_are_left_alone() {
    let world = World::new();
    world.services.insert(Arc::new(
        service("ns", "ext")
            .type_("ExternalName")
            .selector([("app", "x")])
            .build(),
    ));
    world
        .services
        .insert(Arc::new(service("ns", "manual").port("http", 80, 80).build()));
    let controller = world.controller(stored);
    controller.sync(&key("ext")).await.unwrap();
    controller.sync(&key("manual")).await.unwrap();
    assert!(world.writes().is_empty());
}

#[tokio::test]
async fn failed_update_records_a_warning_event_and_fails_the_sync() {
    let world = World::new();
    world.services.insert(Arc::new(web_service()));
    let mut old = Endpoints::default();
    old.metadata.name = Some("web".into());
    old.metadata.namespace = Some("ns".into());
    old.metadata.resource_version = Some("7".into());
    world.endpoints.insert(Arc::new(old));
    let controller = world.controller(|_, _| Err(WriteError::Conflict("the object has been modified".into())));
    let err = controller.sync(&key("web")).await.unwrap_err();
    assert!(matches!(err, SyncError::Write { verb: "update", .. }), "{err}");
    let events = world.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "FailedToUpdateEndpoint");
    assert!(
        events[0].message.starts_with("Failed to update endpoint ns/web: "),
        "{}",
        events[0].message
    );
    assert_eq!(events[0].regarding.namespace.as_deref(), Some("ns"));
}

#[tokio::test]
async fn failed_create_records_an_event_without_namespace() {
    let world = World::new();
    world.services.insert(Arc::new(web_service()));
    let controller = world.controller(|_, _| Err(WriteError::Invalid("bad".into())));
    assert!(controller.sync(&key("web")).await.is_err());
    let events = world.events.lock().unwrap().clone();
    assert_eq!(events[0].reason, "FailedToCreateEndpoint");
    assert_eq!(
        events[0].message,
        "Failed to create endpoint for service ns/web: invalid: bad"
    );
    assert_eq!(events[0].regarding.namespace, None);
}

#[tokio::test]
async fn create_in_a_terminating_namespace_is_dropped_quietly() {
    let world = World::new();
    world.services.insert(Arc::new(web_service()));
    let controller = world.controller(|_, _| Err(WriteError::NamespaceTerminating("ns is terminating".into())));
    controller.sync(&key("web")).await.unwrap();
    assert!(world.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn pod_with_an_invalid_ip_is_left_out() {
    let world = World::new();
    world.services.insert(Arc::new(web_service()));
    world.pods.insert(Arc::new(
        pod("ns", "bad")
            .labels([("app", "web")])
            .ip("10.0.0.300")
            .ready(true)
            .projection(),
    ));
    world.pods.insert(Arc::new(
        pod("ns", "good")
            .labels([("app", "web")])
            .ip("10.0.0.3")
            .ready(true)
            .projection(),
    ));
    world.controller(stored).sync(&key("web")).await.unwrap();
    let (_, created) = world.writes().remove(0);
    let ips: Vec<_> = created
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten())
        .map(|a| a.ip.clone())
        .collect();
    assert_eq!(ips, ["10.0.0.3"]);
}

#[tokio::test(start_paused = true)]
async fn a_sync_that_keeps_failing_is_retried_15_times_then_dropped() {
    let world = World::new();
    world.services.insert(Arc::new(web_service()));
    let attempts = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&attempts);
    let controller = world.controller(move |_, _| {
        *counter.lock().unwrap() += 1;
        Err(WriteError::Api {
            code: 500,
            reason: "InternalError".into(),
            message: "etcd is down".into(),
        })
    });
    controller.core().queue().add(key("web"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (controller, shutdown) = (controller.clone(), shutdown.clone());
        async move { controller.run(shutdown).await }
    });
    controller
        .core()
        .queue()
        .wait_until(|stats| {
            stats.processing == 0 && stats.queued == 0 && stats.waiting == 0 && *attempts.lock().unwrap() > 0
        })
        .await;
    assert_eq!(*attempts.lock().unwrap(), 16, "one try and 15 retries");
    assert_eq!(
        controller.core().queue().num_requeues(&key("web")),
        0,
        "dropped keys are forgotten"
    );
    shutdown.cancel();
    running.await.unwrap();
}
