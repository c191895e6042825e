//! Watch streams: initial events, history replay, live fan-out, bookmarks,
//! selectors, timeouts and injected cuts.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::protobuf;
use super::response::ResponseBody;
use super::table::{self, IncludeObject};
use crate::error::ApiError;
use crate::resources::ResourceId;
use crate::selector::{FieldSelector, JsonLabels, LabelSelector};
use crate::state::Shared;
use crate::store::{StoredObject, WatchEvent, WatchEventType, event_line};

/// A watch request, parsed.
pub(crate) struct WatchRequest {
    pub(crate) res: ResourceId,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) resource_version: Option<String>,
    pub(crate) send_initial_events: Option<bool>,
    pub(crate) allow_bookmarks: bool,
    pub(crate) timeout: Duration,
    pub(crate) table: Option<IncludeObject>,
    /// Protobuf frames instead of JSON lines.
    pub(crate) protobuf: bool,
    pub(crate) cut_after_events: Option<u64>,
    pub(crate) cut_after: Option<Duration>,
}

struct Filter {
    shared: Arc<Shared>,
    res: ResourceId,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: Option<IncludeObject>,
    protobuf: bool,
}

/// One watch event in protobuf framing; an event that does not encode
/// becomes an ERROR event, as a Status, which always does.
fn protobuf_frame(kind: &str, obj: &Value) -> Bytes {
    protobuf::watch_frame(kind, obj).unwrap_or_else(|e| {
        let status = ApiError::internal(&format!("encoding a watch event as protobuf: {e}")).to_status();
        protobuf::watch_frame("ERROR", &status).unwrap_or_default()
    })
}

impl Filter {
    fn trivial(&self) -> bool {
        self.namespace.is_none()
            && self.labels.is_everything()
            && self.fields.is_empty()
            && self.table.is_none()
            && !self.protobuf
    }

    fn matches(&self, obj: &Value) -> bool {
        let info = self.shared.store.table.get(self.res);
        self.namespace
            .as_deref()
            .is_none_or(|ns| crate::object::meta_str(obj, "namespace") == ns)
            && self.labels.matches(&JsonLabels::of(obj))
            && self.fields.matches(info, obj)
    }

    fn line(&self, kind: WatchEventType, obj: &StoredObject) -> Bytes {
        if self.protobuf {
            return protobuf_frame(kind.as_str(), &obj.value);
        }
        match self.table {
            None => event_line(kind.as_str(), &obj.bytes),
            Some(include) => {
                let info = self.shared.store.table.get(self.res);
                let t = table::table(
                    info,
                    &[obj.value.as_ref()],
                    include,
                    &json!({"resourceVersion": obj.rv.to_string()}),
                );
                event_line(kind.as_str(), t.to_string().as_bytes())
            }
        }
    }

    /// The line this watcher sends for an event, if any (cacher semantics:
    /// an object leaving the selection is DELETED, entering it is ADDED).
    fn transform(&self, ev: &WatchEvent) -> Option<Bytes> {
        if self.trivial() {
            return Some(ev.line().clone());
        }
        let cur = ev.kind != WatchEventType::Deleted && self.matches(&ev.object.value);
        let old = ev.prev.as_ref().is_some_and(|p| self.matches(&p.value));
        let shared_line = || {
            if self.table.is_none() && !self.protobuf {
                ev.line().clone()
            } else {
                self.line(ev.kind, &ev.object)
            }
        };
        match ev.kind {
            WatchEventType::Added => cur.then(shared_line),
            WatchEventType::Deleted => (old || self.matches(&ev.object.value)).then(shared_line),
            WatchEventType::Modified => match (cur, old) {
                (true, true) => Some(shared_line()),
                (true, false) => Some(self.line(WatchEventType::Added, &ev.object)),
                (false, true) => {
                    let prev = ev.prev.as_ref()?;
                    let moved = StoredObject::new((*prev.value).clone(), ev.rv);
                    Some(self.line(WatchEventType::Deleted, &moved))
                }
                (false, false) => None,
            },
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let info = self.shared.store.table.get(self.res);
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta});
        if self.protobuf {
            return protobuf_frame("BOOKMARK", &obj);
        }
        event_line("BOOKMARK", obj.to_string().as_bytes())
    }
}

struct State {
    filter: Filter,
    queue: VecDeque<Bytes>,
    rx: tokio::sync::broadcast::Receiver<Arc<WatchEvent>>,
    shutdown: tokio::sync::watch::Receiver<u64>,
    deadline: Instant,
    bookmarks: Option<tokio::time::Interval>,
    last_rv: u64,
    sent_events: u64,
    cut_after_events: Option<u64>,
    done: bool,
}

impl Drop for State {
    fn drop(&mut self) {
        self.filter.shared.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

impl State {
    fn push(&mut self, ev: &WatchEvent) {
        self.last_rv = self.last_rv.max(ev.rv);
        if let Some(line) = self.filter.transform(ev) {
            self.queue.push_back(line);
            self.sent_events += 1;
            if self.cut_after_events.is_some_and(|n| self.sent_events >= n) {
                self.done = true;
            }
        }
    }

    fn bookmark(&mut self) {
        // Every event committed up to `rv` is already in the channel: drain
        // it first, so the bookmark never runs ahead of a queued event.
        let rv = self.filter.shared.store.current_rv();
        while !self.done {
            match self.rx.try_recv() {
                Ok(ev) => self.push(&ev),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
                Err(_) => {
                    self.done = true;
                    return;
                }
            }
        }
        if self.done {
            return;
        }
        self.last_rv = self.last_rv.max(rv);
        let line = self.filter.bookmark(self.last_rv, false);
        self.queue.push_back(line);
    }
}

async fn next(mut st: State) -> Option<(Result<Frame<Bytes>, Infallible>, State)> {
    loop {
        if let Some(line) = st.queue.pop_front() {
            return Some((Ok(Frame::data(line)), st));
        }
        if st.done {
            return None;
        }
        let bookmark_tick = async {
            match st.bookmarks.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            received = st.rx.recv() => match received {
                Ok(ev) => st.push(&ev),
                Err(RecvError::Lagged(_) | RecvError::Closed) => st.done = true,
            },
            () = tokio::time::sleep_until(st.deadline) => st.done = true,
            () = bookmark_tick => st.bookmark(),
            _ = st.shutdown.changed() => st.done = true,
        }
    }
}

/// The body of a watch response, or the error to answer instead.
pub(crate) fn start(shared: &Arc<Shared>, req: WatchRequest) -> Result<ResponseBody, ApiError> {
    use http_body_util::BodyExt;
    let rv = req.resource_version.as_deref().unwrap_or("");
    let initial =
        req.send_initial_events == Some(true) || (rv.is_empty() && req.send_initial_events != Some(false)) || rv == "0";
    let from = if initial {
        None
    } else if rv.is_empty() {
        Some(shared.store.current_rv())
    } else {
        Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        )
    };
    let start = match shared.store.watch(req.res, from) {
        Ok(start) => start,
        Err(err) => {
            // The watch cache answers a watch it cannot serve (too old, too
            // new) with 200 and a single ERROR event, then closes.
            let line = if req.protobuf {
                protobuf_frame("ERROR", &err.to_status())
            } else {
                event_line("ERROR", &err.to_bytes())
            };
            let stream = futures::stream::iter([Ok::<_, Infallible>(Frame::data(line))]);
            return Ok(http_body_util::StreamBody::new(stream).boxed_unsync());
        }
    };
    let filter = Filter {
        shared: shared.clone(),
        res: req.res,
        namespace: req.namespace,
        labels: req.labels,
        fields: req.fields,
        table: req.table,
        protobuf: req.protobuf,
    };
    let mut queue = VecDeque::new();
    for obj in &start.initial {
        if filter.matches(&obj.value) {
            queue.push_back(filter.line(WatchEventType::Added, obj));
        }
    }
    if req.send_initial_events == Some(true) {
        queue.push_back(filter.bookmark(start.rv, true));
    }
    let now = Instant::now();
    let mut deadline = now + req.timeout;
    if let Some(cut) = req.cut_after {
        deadline = deadline.min(now + cut);
    }
    let bookmarks = req.allow_bookmarks.then(|| {
        let period = shared.config.bookmark_interval.max(Duration::from_millis(10));
        tokio::time::interval_at(now + period, period)
    });
    let mut state = State {
        filter,
        queue,
        rx: start.rx,
        shutdown: shared.shutdown.subscribe(),
        deadline,
        bookmarks,
        last_rv: start.rv,
        sent_events: 0,
        cut_after_events: req.cut_after_events,
        done: false,
    };
    // Counted once subscribed to `close_watches`; `Drop` uncounts it.
    shared.open_watches.fetch_add(1, Ordering::SeqCst);
    for ev in &start.history {
        state.push(ev);
        if state.done {
            break;
        }
    }
    if state.cut_after_events == Some(0) {
        state.done = true;
    }
    let stream = futures::stream::unfold(state, next);
    Ok(http_body_util::StreamBody::new(stream).boxed_unsync())
}
