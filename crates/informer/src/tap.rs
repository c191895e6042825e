//! The resourceVersion tap: the two facts `kube::runtime::watcher` keeps to
//! itself, recovered from the HTTP traffic it makes.
//!
//! The watcher tracks the list's `metadata.resourceVersion` and every
//! bookmark's resourceVersion internally, to resume its watches, but emits
//! neither. An informer must report them: after a relist in which the
//! newest change was a deletion, or after bookmarks for changes to other
//! resources, the objects alone do not tell which resourceVersion the cache
//! is at. So each informer gives the watcher a [`kube::Client`] wrapped in
//! this tap, which
//!
//! - reads `metadata.resourceVersion` off every list response (a side
//!   channel is safe here: the watcher emits the page's objects only after
//!   the whole response arrived, and the informer reads the value at the
//!   `InitDone` that ends the list);
//! - after every `BOOKMARK` line of a watch response, inserts an `ERROR`
//!   line carrying a `Status` with reason [`BOOKMARK_MARKER_REASON`] and the
//!   bookmark's resourceVersion as message. The watcher has already taken
//!   the bookmark's resourceVersion for its own resumption; it passes the
//!   marker on as a (non-410) watch error, in order with the events around
//!   it, and the informer turns it back into a bookmark before the backoff
//!   layer sees it. The watcher logs each marker at `debug` level.
//!
//! The tap also opens a tracing span around each list and watch request,
//! counts watch restarts, and can rewrite the collection path so that a
//! watcher built with `Api::all_with` serves a namespaced `Api`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;
use http::{Request, Response, Uri};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use kube::Client;
use kube::client::Body;
use parking_lot::Mutex;
use serde::Deserialize;
use tower::BoxError;
use tracing::Instrument;

use crate::metrics::InformerMetrics;

/// The `reason` of the marker `Status` the tap inserts after each bookmark.
pub(crate) const BOOKMARK_MARKER_REASON: &str = "EcmInformerBookmark";

type TapBody = UnsyncBoxBody<Bytes, BoxError>;

/// One informer's tap. Cheap to clone; clones share state.
#[derive(Clone)]
pub(crate) struct Tap {
    resource: Arc<str>,
    /// The resourceVersion of the latest list response, taken by the
    /// informer at `InitDone`.
    list_resource_version: Arc<Mutex<Option<String>>>,
    /// `(from, to)`: requests for path `from` are sent to `to`.
    rewrite: Option<Arc<(String, String)>>,
    /// Watch requests since the last list request.
    watches_since_list: Arc<AtomicU64>,
    metrics: InformerMetrics,
}

impl Tap {
    pub(crate) fn new(resource: Arc<str>, rewrite: Option<(String, String)>, metrics: InformerMetrics) -> Self {
        Self {
            resource,
            list_resource_version: Arc::default(),
            rewrite: rewrite.map(Arc::new),
            watches_since_list: Arc::default(),
            metrics,
        }
    }

    /// Forgets the recorded list resourceVersion (a new list starts).
    pub(crate) fn clear_list_resource_version(&self) {
        self.list_resource_version.lock().take();
    }

    /// The resourceVersion of the latest list response, if any since the
    /// last [`Tap::clear_list_resource_version`].
    pub(crate) fn take_list_resource_version(&self) -> Option<String> {
        self.list_resource_version.lock().take()
    }

    /// A client that sends every request through `inner` and this tap.
    /// Must be called inside a Tokio runtime (the client spawns its buffer).
    pub(crate) fn wrap(&self, inner: Client) -> Client {
        let default_namespace = inner.default_namespace().to_owned();
        let tap = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let tap = tap.clone();
            let inner = inner.clone();
            async move { tap.call(&inner, request).await }
        });
        Client::new(service, default_namespace)
    }

    async fn call(&self, inner: &Client, mut request: Request<Body>) -> Result<Response<TapBody>, kube::Error> {
        self.rewrite_path(&mut request);
        let query = Query::parse(request.uri().query().unwrap_or_default());
        if query.watch {
            let restart = self.watches_since_list.fetch_add(1, Ordering::Relaxed) > 0;
            if restart {
                self.metrics.watch_restarts.increment(1);
            }
            let span = tracing::debug_span!(
                "watch",
                resource = %self.resource,
                resource_version = query.resource_version.as_deref().unwrap_or_default(),
                restart,
            );
            let response = inner.send(request).instrument(span).await?;
            if !response.status().is_success() {
                return Ok(response.map(box_body));
            }
            Ok(response.map(|body| StreamBody::new(BookmarkMarker::new(body.into_data_stream())).boxed_unsync()))
        } else {
            self.watches_since_list.store(0, Ordering::Relaxed);
            let span = tracing::debug_span!(
                "list",
                resource = %self.resource,
                continue_token = query.continue_token.is_some(),
                list_resource_version = tracing::field::Empty,
            );
            async {
                let response = inner.send(request).await?;
                if !response.status().is_success() {
                    return Ok(response.map(box_body));
                }
                let (parts, body) = response.into_parts();
                let bytes = body.collect_bytes().await?;
                if let Some(rv) = list_resource_version(&bytes) {
                    tracing::Span::current().record("list_resource_version", rv.as_str());
                    *self.list_resource_version.lock() = Some(rv);
                }
                Ok(Response::from_parts(
                    parts,
                    Full::new(bytes).map_err(|never| match never {}).boxed_unsync(),
                ))
            }
            .instrument(span)
            .await
        }
    }

    fn rewrite_path(&self, request: &mut Request<Body>) {
        let Some(rewrite) = &self.rewrite else { return };
        let (from, to) = (&rewrite.0, &rewrite.1);
        if request.uri().path() != from {
            return;
        }
        let rewritten = match request.uri().query() {
            Some(query) => format!("{to}?{query}"),
            None => to.clone(),
        };
        match Uri::try_from(rewritten) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(error) => tracing::warn!(%error, "cannot rewrite request path"),
        }
    }
}

/// A response body as the tap hands it back, with kube's own service error
/// unwrapped so that the error chain kube inspects (EOF detection) is the
/// original one.
fn box_body(body: Body) -> TapBody {
    body.map_err(unwrap_service_error).boxed_unsync()
}

fn unwrap_service_error(error: kube::Error) -> BoxError {
    match error {
        kube::Error::Service(inner) => inner,
        other => Box::new(other),
    }
}

/// The query parameters the tap cares about. Values are left URL-encoded:
/// they are only logged.
#[derive(Debug, Default)]
struct Query {
    watch: bool,
    resource_version: Option<String>,
    continue_token: Option<String>,
}

impl Query {
    fn parse(query: &str) -> Self {
        let mut parsed = Self::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "watch" => parsed.watch = matches!(value, "true" | "1"),
                "resourceVersion" => parsed.resource_version = Some(value.to_owned()),
                "continue" => parsed.continue_token = Some(value.to_owned()),
                _ => {}
            }
        }
        parsed
    }
}

#[derive(Deserialize)]
struct ListHead {
    #[serde(default)]
    metadata: ResourceVersionMeta,
}

#[derive(Deserialize, Default)]
struct ResourceVersionMeta {
    #[serde(default, rename = "resourceVersion")]
    resource_version: Option<String>,
}

/// `metadata.resourceVersion` of a list response; `items` is skipped
/// without being materialised.
fn list_resource_version(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ListHead>(body)
        .ok()?
        .metadata
        .resource_version
        .filter(|rv| !rv.is_empty())
}

#[derive(Deserialize)]
struct WatchLineHead {
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    object: Option<WatchLineObject>,
}

#[derive(Deserialize)]
struct WatchLineObject {
    #[serde(default)]
    metadata: ResourceVersionMeta,
}

/// The resourceVersion of a `BOOKMARK` watch line.
fn bookmark_resource_version(line: &[u8]) -> Option<String> {
    // Cheap pre-check (a vectorised substring search over every event);
    // only candidate lines are parsed.
    memchr::memmem::find(line, b"BOOKMARK")?;
    let head: WatchLineHead = serde_json::from_slice(line).ok()?;
    if head.type_ != "BOOKMARK" {
        return None;
    }
    head.object?.metadata.resource_version.filter(|rv| !rv.is_empty())
}

/// The line the tap inserts after a bookmark.
fn marker_line(resource_version: &str) -> Bytes {
    let marker = serde_json::json!({
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "reason": BOOKMARK_MARKER_REASON,
            "message": resource_version,
        }
    });
    let mut line = marker.to_string().into_bytes();
    line.push(b'\n');
    Bytes::from(line)
}

/// Passes a watch body through unchanged, inserting a marker line after
/// each bookmark line.
struct BookmarkMarker<St> {
    inner: St,
    /// The start of a line whose end has not arrived yet.
    partial_line: Vec<u8>,
    /// Frames ready to be returned.
    ready: VecDeque<Bytes>,
}

impl<St> BookmarkMarker<St> {
    fn new(inner: St) -> Self {
        Self {
            inner,
            partial_line: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    fn process(&mut self, chunk: &Bytes) {
        // `emitted`: how much of the chunk is already queued; `line_start`:
        // where the current line starts within the chunk.
        let mut emitted = 0;
        let mut line_start = 0;
        for (newline, _) in chunk.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            let bookmark = if self.partial_line.is_empty() {
                bookmark_resource_version(&chunk[line_start..newline])
            } else {
                self.partial_line.extend_from_slice(&chunk[line_start..newline]);
                let line = std::mem::take(&mut self.partial_line);
                bookmark_resource_version(&line)
            };
            if let Some(rv) = bookmark {
                self.ready.push_back(chunk.slice(emitted..=newline));
                self.ready.push_back(marker_line(&rv));
                emitted = newline + 1;
            }
            line_start = newline + 1;
        }
        if emitted < chunk.len() {
            self.ready.push_back(chunk.slice(emitted..));
        }
        self.partial_line.extend_from_slice(&chunk[line_start..]);
    }
}

impl<St> Stream for BookmarkMarker<St>
where
    St: Stream<Item = Result<Bytes, kube::Error>> + Unpin,
{
    type Item = Result<Frame<Bytes>, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Err(error)) => return Poll::Ready(Some(Err(unwrap_service_error(error)))),
                Some(Ok(chunk)) => self.process(&chunk),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn bookmark(rv: &str) -> String {
        format!(
            r#"{{"type":"BOOKMARK","object":{{"kind":"Pod","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}"}}}}}}"#
        )
    }

    async fn run(chunks: Vec<&[u8]>) -> Vec<u8> {
        let input = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        let frames: Vec<_> = BookmarkMarker::new(input).collect().await;
        frames
            .into_iter()
            .flat_map(|f| f.unwrap().into_data().unwrap().to_vec())
            .collect()
    }

    #[tokio::test]
    async fn marker_should_follow_each_bookmark_line_even_when_split_across_chunks() {
        let added = r#"{"type":"ADDED","object":{"metadata":{"name":"BOOKMARK","resourceVersion":"5"}}}"#;
        let input = format!("{added}\n{}\n{added}\n", bookmark("7"));
        let expected = format!(
            "{added}\n{}\n{}{added}\n",
            bookmark("7"),
            String::from_utf8(marker_line("7").to_vec()).unwrap()
        );
        // Whole, and cut at every position.
        assert_eq!(run(vec![input.as_bytes()]).await, expected.as_bytes());
        for cut in 1..input.len() {
            let (a, b) = input.as_bytes().split_at(cut);
            assert_eq!(
                String::from_utf8(run(vec![a, b]).await).unwrap(),
                expected,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn marker_line_should_decode_as_a_non_gone_watch_error() {
        let event: kube::api::WatchEvent<k8s_openapi::api::core::v1::Pod> =
            serde_json::from_slice(&marker_line("42")).unwrap();
        let kube::api::WatchEvent::Error(status) = event else {
            panic!("not an error event")
        };
        assert_eq!(status.reason, BOOKMARK_MARKER_REASON);
        assert_eq!(status.message, "42");
        assert_ne!(status.code, 410);
    }

    #[test]
    fn list_resource_version_should_skip_items() {
        let body = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"12"},"items":[{"metadata":{"name":"a"}}]}"#;
        assert_eq!(list_resource_version(body).as_deref(), Some("12"));
        assert_eq!(list_resource_version(br#"{"items":[]}"#), None);
    }

    #[test]
    fn query_should_recognise_watches() {
        let q = Query::parse("watch=true&resourceVersion=10&allowWatchBookmarks=true");
        assert!(q.watch);
        assert_eq!(q.resource_version.as_deref(), Some("10"));
        assert!(!Query::parse("limit=500").watch);
    }
}
