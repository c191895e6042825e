//! The `kube::Client` writer against a stub API server, and the mock.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ObjectMeta;
use kube::client::Body;
use serde_json::{Value, json};

use super::*;

/// One request the stub saw.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// A `kube::Client` whose every request is answered by `reply` and logged.
pub(crate) fn stub_client(
    reply: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static,
) -> (kube::Client, Arc<Mutex<Vec<Seen>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen_log = log.clone();
    let reply = Arc::new(reply);
    let service = tower::service_fn(move |req: Request<Body>| {
        let log = seen_log.clone();
        let reply = reply.clone();
        async move {
            let method = req.method().to_string();
            let path = req.uri().path().to_owned();
            let bytes = req.into_body().collect().await?.to_bytes();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let seen = Seen { method, path, body };
            let (code, answer) = reply(&seen);
            log.lock().unwrap().push(seen);
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(Bytes::from(serde_json::to_vec(&answer).unwrap())))
                .unwrap();
            Ok::<_, kube::Error>(response)
        }
    });
    (kube::Client::new(service, "default"), log)
}

fn status(code: u16, reason: &str, causes: &[&str]) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
        "message": format!("{reason} happened"),
        "details": {"causes": causes.iter().map(|c| json!({"reason": c})).collect::<Vec<_>>()},
    })
}

fn endpoints(name: &str, rv: Option<&str>) -> Endpoints {
    Endpoints {
        metadata: ObjectMeta {
            name: Some(name.into()),
            resource_version: rv.map(Into::into),
            ..ObjectMeta::default()
        },
        ..Endpoints::default()
    }
}

#[tokio::test]
async fn kube_writer_posts_puts_and_deletes() {
    let (client, log) = stub_client(|seen| {
        if seen.method == "DELETE" {
            return (200, status(200, "", &[]));
        }
        let mut stored = seen.body.clone();
        stored["metadata"]["resourceVersion"] = json!("42");
        (200, stored)
    });
    let writer = KubeWriter::new(client);
    let created = ObjectWriter::<Endpoints>::create(&writer, "prod", &endpoints("web", None))
        .await
        .unwrap();
    assert_eq!(created.resource_version.as_deref(), Some("42"));
    ObjectWriter::<Endpoints>::update(&writer, "prod", &endpoints("web", Some("41")))
        .await
        .unwrap();
    ObjectWriter::<Endpoints>::delete(&writer, "prod", "web").await.unwrap();
    let slice = EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some("web-".into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        ..EndpointSlice::default()
    };
    ObjectWriter::<EndpointSlice>::create(&writer, "prod", &slice)
        .await
        .unwrap();

    let log = log.lock().unwrap();
    let calls: Vec<_> = log.iter().map(|s| (s.method.as_str(), s.path.as_str())).collect();
    assert_eq!(
        calls,
        [
            ("POST", "/api/v1/namespaces/prod/endpoints"),
            ("PUT", "/api/v1/namespaces/prod/endpoints/web"),
            ("DELETE", "/api/v1/namespaces/prod/endpoints/web"),
            ("POST", "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices"),
        ]
    );
    assert_eq!(
        log[1].body["metadata"]["resourceVersion"], "41",
        "update carries the cached resourceVersion"
    );
    assert_eq!(log[3].body["metadata"]["generateName"], "web-");
}

#[tokio::test]
async fn kube_writer_returns_the_server_s_metadata() {
    let (client, _log) = stub_client(|seen| {
        let mut stored = seen.body.clone();
        stored["metadata"]["name"] = json!("web-x7k2p");
        stored["metadata"]["uid"] = json!("u-1");
        stored["metadata"]["resourceVersion"] = json!("7");
        stored["metadata"]["generation"] = json!(1);
        stored["metadata"]["creationTimestamp"] = json!("2026-12-07T04:00:00Z");
        stored["metadata"]["managedFields"] = json!([{"manager": "ecm", "operation": "Update"}]);
        stored["metadata"]["labels"] = json!({"kubernetes.io/service-name": "web"});
        stored["metadata"]["annotations"] = json!({"added-by": "a-webhook"});
        // A field the server defaulted: skipped, never built.
        stored["ports"] = json!([{"port": 80, "protocol": "TCP"}]);
        (201, stored)
    });
    let sent = EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some("web-".into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        ..EndpointSlice::default()
    };
    let created = ObjectWriter::<EndpointSlice>::create(&KubeWriter::new(client), "prod", &sent)
        .await
        .unwrap();
    assert_eq!(created.name.as_deref(), Some("web-x7k2p"));
    assert_eq!(created.uid.as_deref(), Some("u-1"));
    assert_eq!(created.resource_version.as_deref(), Some("7"));
    assert_eq!(created.generation, Some(1));
    assert_eq!(created.generate_name.as_deref(), Some("web-"));
    assert!(created.creation_timestamp.is_some());
    assert_eq!(created.managed_fields, None, "managedFields are not decoded");
    assert_eq!(
        created.labels,
        Some([("kubernetes.io/service-name".to_owned(), "web".to_owned())].into()),
        "the slice tracker finds the Service by its label"
    );
    assert_eq!(created.annotations, None, "only the fields callers read are decoded");
}

#[tokio::test]
async fn kube_writer_reports_an_answer_that_is_not_a_status() {
    let service = tower::service_fn(|_req: Request<Body>| async {
        let response = Response::builder()
            .status(503)
            .header("content-type", "text/plain")
            .body(Body::from(Bytes::from_static(b"upstream connect error\n")))
            .unwrap();
        Ok::<_, kube::Error>(response)
    });
    let writer = KubeWriter::new(kube::Client::new(service, "default"));
    let err = ObjectWriter::<Endpoints>::update(&writer, "ns", &endpoints("e", Some("1")))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        WriteError::Api {
            code: 503,
            reason: "Failed to parse error data".into(),
            message: "upstream connect error".into(),
        }
    );
}

#[tokio::test]
async fn kube_writer_reports_an_undecodable_answer_as_transport() {
    let (client, _) = stub_client(|_| (200, json!("not an object")));
    let err = ObjectWriter::<Endpoints>::update(&KubeWriter::new(client), "ns", &endpoints("e", Some("1")))
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn kube_writer_classifies_api_errors() {
    let cases = [
        (status(404, "NotFound", &[]), "not found"),
        (status(409, "AlreadyExists", &[]), "already exists"),
        (status(409, "Conflict", &[]), "conflict"),
        (
            status(403, "Forbidden", &["NamespaceTerminating"]),
            "namespace terminating",
        ),
        (status(403, "Forbidden", &[]), "api"),
        (status(422, "Invalid", &["FieldValueInvalid"]), "invalid"),
        (status(429, "TooManyRequests", &[]), "api"),
    ];
    for (answer, want) in cases {
        let code = answer["code"].as_u64().unwrap() as u16;
        let reply = answer.clone();
        let (client, _) = stub_client(move |_| (code, reply.clone()));
        let err = ObjectWriter::<Endpoints>::create(&KubeWriter::new(client), "ns", &endpoints("e", None))
            .await
            .unwrap_err();
        let got = match err {
            WriteError::NotFound(_) => "not found",
            WriteError::AlreadyExists(_) => "already exists",
            WriteError::Conflict(_) => "conflict",
            WriteError::NamespaceTerminating(_) => "namespace terminating",
            WriteError::Invalid(_) => "invalid",
            WriteError::Api { .. } => "api",
            WriteError::Transport(_) => "transport",
        };
        assert_eq!(got, want, "{answer}");
    }
}

#[tokio::test]
async fn the_mock_stands_in_for_a_writer() {
    let mut mock = MockObjectWriter::<Endpoints>::new();
    mock.expect_delete()
        .withf(|ns, name| ns == "prod" && name == "web")
        .times(1)
        .returning(|_, _| Err(WriteError::NotFound("gone".into())));
    let writer: Box<dyn ObjectWriter<Endpoints>> = Box::new(mock);
    assert!(writer.delete("prod", "web").await.unwrap_err().is_not_found());
}

/// The slice tracker recognises the echo of a slice written through
/// `KubeWriter`: the writer's answer must carry what the tracker keys its
/// expectations by (the service-name label, the uid and the generation),
/// or every write would queue its Service again.
#[tokio::test]
async fn the_tracker_recognises_the_echo_of_a_slice_written_through_kube_writer() {
    use crate::slices::{EndpointSliceTracker, SliceWrites, write_slices};
    use ecm_informer::ObjectKey;

    let (client, _) = stub_client(|seen| {
        let mut stored = seen.body.clone();
        stored["metadata"]["name"] = json!("web-abcde");
        stored["metadata"]["uid"] = json!("uid-1");
        stored["metadata"]["resourceVersion"] = json!("9");
        stored["metadata"]["generation"] = json!(1);
        (201, stored)
    });
    let writer = KubeWriter::new(client);
    let tracker = EndpointSliceTracker::new();
    let owner = ObjectKey::new("prod", "web");
    let slice = EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some("web-".into()),
            namespace: Some("prod".into()),
            labels: Some([("kubernetes.io/service-name".to_owned(), "web".to_owned())].into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        ..EndpointSlice::default()
    };
    let writes = SliceWrites {
        owner: &owner,
        to_create: std::slice::from_ref(&slice),
        to_update: &[],
        to_delete: &[],
    };
    write_slices(&writer, &tracker, writes, |_| {}).await.unwrap();

    let mut echo = slice.clone();
    echo.metadata.name = Some("web-abcde".into());
    echo.metadata.uid = Some("uid-1".into());
    echo.metadata.resource_version = Some("9".into());
    echo.metadata.generation = Some(1);
    assert!(!tracker.should_sync(&echo), "the controller's own write queues nothing");
    echo.metadata.generation = Some(2);
    assert!(tracker.should_sync(&echo), "someone else's change does");
}
