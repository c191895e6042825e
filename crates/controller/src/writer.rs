//! The narrow write interfaces the controllers use, and their `kube::Client`
//! implementations.
//!
//! Controllers never write through a raw client: every create, update and
//! delete of Endpoints and EndpointSlices goes through [`ObjectWriter`], and
//! every event through [`EventRecorder`]. Tests replace
//! them with the `mockall` mocks (`MockObjectWriter`, `MockEventRecorder`,
//! available to other crates with the `mock` feature) and assert the exact calls.
//!
//! Updates are PUTs carrying the cached resourceVersion, like upstream: the
//! controllers' RBAC roles grant no `patch` on their objects, and optimistic
//! concurrency turns a stale cache into a 409 Conflict that is retried.
//!
//! [`KubeWriter`] decodes only the part of the `metadata` of its answer to
//! a create or update that the controllers read back
//! ([`ObjectWriter::create`] lists the fields), straight from the body's
//! bytes, and stops reading at the end of `metadata`: the object's content
//! and the `managedFields` a real API server adds are never built, and
//! the content, which follows `metadata`, is not even scanned.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use http_body_util::BodyExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::client::Body;
use kube::core::Request;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::events::EventRecorder;

/// Why a write failed, classified the way the controllers branch on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The object does not exist (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The object already exists (409 `AlreadyExists`).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The resourceVersion sent is stale (409 `Conflict`).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The namespace is being deleted, so nothing new may be created in it
    /// (403 with the `NamespaceTerminating` cause).
    #[error("namespace is terminating: {0}")]
    NamespaceTerminating(String),
    /// The API server rejected the object as invalid (422).
    #[error("invalid: {0}")]
    Invalid(String),
    /// Any other API error, with its HTTP code and reason.
    #[error("{reason} ({code}): {message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// The Status reason, such as `TooManyRequests`.
        reason: String,
        /// The Status message.
        message: String,
    },
    /// The request never got an API answer (connection, timeout, decoding).
    #[error("request failed: {0}")]
    Transport(String),
}

impl WriteError {
    /// Whether the error is a 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// Whether the error is a 409 Conflict on a stale resourceVersion.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }
}

impl From<kube::Error> for WriteError {
    fn from(err: kube::Error) -> Self {
        let kube::Error::Api(status) = err else {
            return Self::Transport(err.to_string());
        };
        let message = status.message.clone();
        let has_cause = |cause: &str| {
            status
                .details
                .as_ref()
                .is_some_and(|d| d.causes.iter().any(|c| c.reason == cause))
        };
        match (status.code, status.reason.as_str()) {
            (404, _) => Self::NotFound(message),
            (409, "AlreadyExists") => Self::AlreadyExists(message),
            (409, "Conflict") => Self::Conflict(message),
            (403, _) if has_cause("NamespaceTerminating") => Self::NamespaceTerminating(message),
            (422, _) => Self::Invalid(message),
            (code, reason) => Self::Api {
                code,
                reason: reason.to_owned(),
                message,
            },
        }
    }
}

/// Creates, updates and deletes namespaced objects of one kind.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ObjectWriter<K: Send + Sync + 'static>: Send + Sync {
    /// Creates `object` in `namespace` (POST) and returns the metadata the
    /// server assigned or stored: `name`, `generateName`, `namespace`,
    /// `uid`, `resourceVersion`, `generation`, `creationTimestamp`,
    /// `deletionTimestamp` and `labels` (which name a slice's Service for
    /// the [`EndpointSliceTracker`](crate::slices::EndpointSliceTracker));
    /// other fields are left empty.
    /// `metadata.generateName` is honoured.
    async fn create(&self, namespace: &str, object: &K) -> Result<ObjectMeta, WriteError>;

    /// Replaces `object` in `namespace` (PUT) and returns the metadata the
    /// server assigned, as [`create`](Self::create) does. The object's
    /// resourceVersion must be the one it was read at, or the server answers
    /// Conflict.
    async fn update(&self, namespace: &str, object: &K) -> Result<ObjectMeta, WriteError>;

    /// Deletes the object `name` in `namespace`.
    async fn delete(&self, namespace: &str, name: &str) -> Result<(), WriteError>;
}

/// What a controller writes through: one kind of object, and events.
pub struct Writers<K> {
    /// Creates, updates and deletes the controller's objects.
    pub objects: Arc<dyn ObjectWriter<K>>,
    /// Records events.
    pub events: Arc<dyn EventRecorder>,
}

impl<K> Clone for Writers<K> {
    fn clone(&self) -> Self {
        Self {
            objects: Arc::clone(&self.objects),
            events: Arc::clone(&self.events),
        }
    }
}

/// An [`ObjectWriter`] talking to the API server through a `kube::Client`.
#[derive(Clone)]
pub struct KubeWriter {
    client: kube::Client,
}

impl KubeWriter {
    /// A writer using `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl KubeWriter {
    /// Sends a create or replace request and returns the assigned metadata
    /// of the server's answer, decoded from its bytes.
    async fn send_for_metadata(&self, request: http::Request<Vec<u8>>) -> Result<ObjectMeta, WriteError> {
        let response = self.client.send(request.map(Body::from)).await?;
        let code = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if code.is_client_error() || code.is_server_error() {
            return Err(answer::api_error(code.as_u16(), &body).into());
        }
        let assigned = answer::assigned_metadata(&body).map_err(kube::Error::SerdeError)?;
        Ok(assigned.into())
    }
}

/// The room a request body starts with: an EndpointSlice of ten endpoints
/// or an Endpoints object of ten addresses is 1.5–3 KB of JSON, which
/// `serde_json::to_vec` (128 bytes, doubled as it fills) reaches after
/// four or five reallocations and copies.
const BODY_CAPACITY: usize = 4096;

/// `object` as a JSON request body.
fn body_of<K: Serialize>(object: &K) -> Result<Vec<u8>, kube::Error> {
    let mut body = Vec::with_capacity(BODY_CAPACITY);
    serde_json::to_writer(&mut body, object).map_err(kube::Error::SerdeError)?;
    Ok(body)
}

impl Debug for KubeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeWriter").finish_non_exhaustive()
    }
}

#[async_trait]
impl<K> ObjectWriter<K> for KubeWriter
where
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    async fn create(&self, namespace: &str, object: &K) -> Result<ObjectMeta, WriteError> {
        let body = body_of(object)?;
        let request = Request::new(K::url_path(&(), Some(namespace)))
            .create(&PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        self.send_for_metadata(request).await
    }

    async fn update(&self, namespace: &str, object: &K) -> Result<ObjectMeta, WriteError> {
        let name = object.meta().name.as_deref().unwrap_or_default();
        let body = body_of(object)?;
        let request = Request::new(K::url_path(&(), Some(namespace)))
            .replace(name, &PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        self.send_for_metadata(request).await
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), WriteError> {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        api.delete(name, &DeleteParams::default()).await?;
        Ok(())
    }
}

mod answer;

#[cfg(test)]
pub(crate) mod tests;
