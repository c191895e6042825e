//! The HTTP front: routing, request parsing, responses.
//!
//! [`ApiService`] is a `tower::Service` over `http::Request`s; hand it to
//! `kube::Client::new` for an in-process client, or let
//! [`ApiServer::serve`](crate::ApiServer::serve) put it on a socket.

mod discovery;
pub(crate) mod query;
mod table;
mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::object::{meta_str, store_key};
use crate::patch::PatchType;
use crate::registry::{DeleteOptions, WriteOptions};
use crate::resources::{ResourceId, ResourceInfo};
use crate::selector::{FieldSelector, JsonLabels, LabelSelector};
use crate::server::Shared;
use crate::store::StoredObject;
use crate::writelog::{WriteRecord, WriteVerb};
use query::Query;
use table::IncludeObject;

/// The body of every response: a full JSON document or a watch stream.
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// The server as a `tower::Service`. Cheap to clone; all clones serve the
/// same objects.
#[derive(Clone)]
pub struct ApiService {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ApiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiService").finish_non_exhaustive()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> tower::Service<Request<B>> for ApiService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(handle(shared, req).await) })
    }
}

fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn json_response(status: u16, body: impl Into<Bytes>) -> Response<ResponseBody> {
    respond(status, "application/json", body)
}

fn value_response(status: u16, v: &Value) -> Response<ResponseBody> {
    json_response(status, v.to_string())
}

/// A Status error as kube-apiserver sends it.
pub(crate) fn error_response(err: &ApiError) -> Response<ResponseBody> {
    let mut resp = json_response(err.code, err.to_bytes());
    if let Some(secs) = err.retry_after_seconds
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// A resource request, routed.
struct Target {
    res: ResourceId,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    watch_path: bool,
}

enum Route {
    Version,
    Api,
    Apis,
    Group(String),
    Resources(String, String),
    OpenApi(Option<String>),
    Health,
    Admin(Vec<String>),
    Resource(Target),
}

fn route(shared: &Shared, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(query::percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let table = &shared.store.table;
    let (group, version, rest): (&str, &str, &[&str]) = match s.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => return Ok(Route::Health),
        ["openapi", "v3"] => return Ok(Route::OpenApi(None)),
        ["openapi", "v3", rest @ ..] => return Ok(Route::OpenApi(Some(rest.join("/")))),
        ["ecm-admin", rest @ ..] => return Ok(Route::Admin(rest.iter().map(|x| (*x).to_owned()).collect())),
        ["api"] => return Ok(Route::Api),
        ["apis"] => return Ok(Route::Apis),
        ["api", v] => return Ok(Route::Resources(String::new(), (*v).to_owned())),
        ["apis", g] => return Ok(Route::Group((*g).to_owned())),
        ["apis", g, v] => return Ok(Route::Resources((*g).to_owned(), (*v).to_owned())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    let (watch_path, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && group.is_empty() && matches!(rest[2], "status" | "finalize"));
    let (namespace, rest) = if namespaced_path {
        (Some(rest[1].to_owned()), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some((*n).to_owned()), None),
        [p, n, sub] => (*p, Some((*n).to_owned()), Some((*sub).to_owned())),
        _ => return Err(ApiError::path_not_found()),
    };
    let res = table
        .by_path(group, version, plural)
        .ok_or_else(ApiError::path_not_found)?;
    let info = table.get(res);
    if namespace.is_some() && !info.namespaced {
        return Err(ApiError::path_not_found());
    }
    if info.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::path_not_found());
    }
    if let Some(sub) = &sub
        && !info.subresources.contains(sub)
    {
        return Err(ApiError::path_not_found());
    }
    Ok(Route::Resource(Target {
        res,
        namespace,
        name,
        subresource: sub,
        watch_path,
    }))
}

async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let q = Query::parse(parts.uri.query());
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let route = match route(&shared, parts.uri.path()) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let table = &shared.store.table;
    match route {
        Route::Version => value_response(200, &discovery::version(&shared.config.git_version)),
        Route::Health => respond(200, "text/plain; charset=utf-8", "ok"),
        Route::Api => {
            if discovery::wants_aggregated(&accept) {
                respond(
                    200,
                    discovery::AGGREGATED_CONTENT_TYPE,
                    discovery::aggregated(table, true).to_string(),
                )
            } else {
                value_response(200, &discovery::api_versions())
            }
        }
        Route::Apis => {
            if discovery::wants_aggregated(&accept) {
                respond(
                    200,
                    discovery::AGGREGATED_CONTENT_TYPE,
                    discovery::aggregated(table, false).to_string(),
                )
            } else {
                value_response(200, &discovery::api_group_list(table))
            }
        }
        Route::Group(g) => match discovery::api_group_doc(table, &g) {
            Some(doc) => value_response(200, &doc),
            None => error_response(&ApiError::path_not_found()),
        },
        Route::Resources(g, v) => match discovery::api_resource_list(table, &g, &v) {
            Some(doc) => value_response(200, &doc),
            None => error_response(&ApiError::path_not_found()),
        },
        Route::OpenApi(None) => value_response(200, &discovery::openapi_v3_index(table)),
        Route::OpenApi(Some(path)) => match discovery::openapi_v3_group_version(table, &path) {
            Some(doc) => value_response(200, &doc),
            None => error_response(&ApiError::path_not_found()),
        },
        Route::Admin(rest) => {
            let body = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return error_response(&ApiError::bad_request("unreadable body")),
            };
            admin(&shared, &parts.method, &rest, &body)
        }
        Route::Resource(target) => {
            let user_agent = parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let ctx = RequestContext {
                shared: &shared,
                target,
                q,
                accept,
                user_agent,
                content_type,
            };
            ctx.serve(parts.method, body).await
        }
    }
}

fn admin(shared: &Shared, method: &Method, rest: &[String], body: &[u8]) -> Response<ResponseBody> {
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method, rest.as_slice()) {
        (&Method::GET, ["faults"]) => match serde_json::to_string(&shared.faults.get()) {
            Ok(s) => json_response(200, s),
            Err(e) => error_response(&ApiError::internal(&e.to_string())),
        },
        (&Method::PUT | &Method::POST, ["faults"]) => {
            match crate::faults::FaultConfig::parse(&String::from_utf8_lossy(body)) {
                Ok(config) => {
                    shared.faults.set(config.clone());
                    json_response(200, serde_json::to_string(&config).unwrap_or_default())
                }
                Err(e) => error_response(&ApiError::bad_request(e.to_string())),
            }
        }
        (&Method::DELETE, ["faults"]) => {
            shared.faults.set(crate::faults::FaultConfig::default());
            json_response(200, "{}")
        }
        (&Method::POST, ["compact", resource]) => match shared.store.table.by_plural(resource) {
            Some(res) => {
                shared.store.compact(res);
                json_response(
                    200,
                    json!({"compacted": resource, "resourceVersion": shared.store.current_rv().to_string()})
                        .to_string(),
                )
            }
            None => error_response(&ApiError::path_not_found()),
        },
        (&Method::GET, ["writes"]) => {
            let writes: Vec<Value> = shared
                .write_log
                .snapshot()
                .iter()
                .map(|w| {
                    json!({"verb": w.verb.as_str(), "group": w.group, "resource": w.resource, "subresource": w.subresource,
                        "namespace": w.namespace, "name": w.name, "userAgent": w.user_agent,
                        "resourceVersion": w.resource_version.to_string()})
                })
                .collect();
            value_response(200, &Value::Array(writes))
        }
        _ => error_response(&ApiError::path_not_found()),
    }
}

struct RequestContext<'a> {
    shared: &'a Arc<Shared>,
    target: Target,
    q: Query,
    accept: String,
    user_agent: Option<String>,
    content_type: String,
}

/// Decrements the in-flight counter when a request ends.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn parse_selectors(info: &ResourceInfo, q: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels =
        LabelSelector::parse(q.get("labelSelector").unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields =
        FieldSelector::parse(q.get("fieldSelector").unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;
    fields
        .check_supported(info)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

/// Whether a successful DELETE answers with the object (`ReturnDeletedObject`).
fn returns_deleted_object(info: &ResourceInfo) -> bool {
    info.group.is_empty()
        && matches!(
            info.plural.as_str(),
            "pods" | "services" | "serviceaccounts" | "namespaces"
        )
}

impl RequestContext<'_> {
    fn info(&self) -> &ResourceInfo {
        self.shared.store.table.get(self.target.res)
    }

    fn verb(&self, method: &Method) -> &'static str {
        let t = &self.target;
        match *method {
            Method::GET if t.name.is_some() => "get",
            Method::GET if t.watch_path || self.q.flag("watch") == Some(true) => "watch",
            Method::GET => "list",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if t.name.is_some() => "delete",
            Method::DELETE => "deletecollection",
            _ => "unknown",
        }
    }

    async fn serve<B>(self, method: Method, body: B) -> Response<ResponseBody>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let verb = self.verb(&method);
        let plural = self.info().plural.clone();
        let decision = self.shared.faults.decide(&plural, verb);
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        if decision.compact {
            self.shared.store.compact(self.target.res);
        }
        if let Some((code, retry, message)) = &decision.error {
            return error_response(&self.injected_error(*code, *retry, message.as_deref()));
        }
        if verb == "watch" {
            return match self.watch(decision.cut_after_events, decision.cut_after) {
                Ok(resp) => resp,
                Err(e) => error_response(&e),
            };
        }
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(self.shared);
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return error_response(&ApiError::bad_request("unable to read the request body")),
        };
        let result = match verb {
            "get" => self.get(),
            "list" => self.list(),
            "create" if self.target.name.is_none() => self.create(&body),
            "update" if self.target.name.is_some() => self.update(&body),
            "patch" if self.target.name.is_some() => self.patch(&body),
            "delete" => self.delete(&body),
            "deletecollection" => self.delete_collection(&body),
            _ => Err(ApiError::method_not_supported(self.info(), verb)),
        };
        match result {
            Ok(resp) => resp,
            Err(e) => error_response(&e),
        }
    }

    fn injected_error(&self, code: u16, retry: Option<u32>, message: Option<&str>) -> ApiError {
        let info = self.info();
        let name = self.target.name.as_deref().unwrap_or("");
        let mut err = match code {
            409 => ApiError::conflict(info, name),
            429 => ApiError::too_many_requests(retry.unwrap_or(1)),
            500 => ApiError::internal("injected fault"),
            503 => ApiError::service_unavailable("the server is currently unable to handle the request"),
            404 => ApiError::not_found(info, name),
            410 => ApiError::expired("injected fault: resource version expired"),
            other => ApiError::new(other, "InternalError", "injected fault"),
        };
        if let Some(r) = retry {
            err.retry_after_seconds = Some(r);
        }
        if let Some(m) = message {
            m.clone_into(&mut err.message);
        }
        err
    }

    fn options(&self) -> WriteOptions {
        WriteOptions {
            dry_run: self.q.all("dryRun").any(|v| v == "All"),
            skip_validation: false,
        }
    }

    fn ns(&self) -> Option<&str> {
        self.target.namespace.as_deref()
    }

    fn record(&self, verb: WriteVerb, name: Option<String>, namespace: Option<String>, rv: u64, dry_run: bool) {
        let info = self.info();
        self.shared.write_log.push(WriteRecord {
            verb,
            group: info.group.clone(),
            resource: info.plural.clone(),
            subresource: self.target.subresource.clone(),
            namespace,
            name,
            user_agent: self.user_agent.clone(),
            resource_version: rv,
            dry_run,
        });
    }

    fn record_object(&self, verb: WriteVerb, obj: &StoredObject, dry_run: bool) {
        let ns = Some(meta_str(&obj.value, "namespace"))
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        self.record(verb, Some(meta_str(&obj.value, "name").to_owned()), ns, obj.rv, dry_run);
    }

    fn table_mode(&self) -> Option<IncludeObject> {
        table::wants_table(&self.accept).then(|| IncludeObject::parse(self.q.get("includeObject")))
    }

    fn parse_body(&self, body: &[u8]) -> Result<Value, ApiError> {
        if self.content_type.starts_with("application/vnd.kubernetes.protobuf")
            || self.content_type.starts_with("application/cbor")
        {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {:?})",
                    self.content_type
                ),
            ));
        }
        serde_json::from_slice(body)
            .or_else(|_| {
                std::str::from_utf8(body)
                    .map_err(|e| e.to_string())
                    .and_then(|t| serde_saphyr::from_str::<Value>(t).map_err(|e| e.to_string()))
            })
            .map_err(|e| ApiError::bad_request(format!("the body of the request was in an unknown format: {e}")))
    }

    fn get(&self) -> Result<Response<ResponseBody>, ApiError> {
        let info = self.info();
        let name = self.target.name.as_deref().unwrap_or("");
        let key = store_key(self.ns().filter(|_| info.namespaced), name);
        let obj = self
            .shared
            .store
            .get(self.target.res, &key)
            .ok_or_else(|| ApiError::not_found(info, name))?;
        if let Some(include) = self.table_mode() {
            let t = table::table(
                info,
                &[obj.value.as_ref()],
                include,
                &json!({"resourceVersion": obj.rv.to_string()}),
            );
            return Ok(value_response(200, &t));
        }
        Ok(json_response(200, obj.bytes))
    }

    fn list(&self) -> Result<Response<ResponseBody>, ApiError> {
        let info = self.info();
        let (labels, fields) = parse_selectors(info, &self.q)?;
        let limit = match self.q.get("limit") {
            Some(l) if !l.is_empty() => l
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?
                .max(0) as usize,
            _ => 0,
        };
        let rv = self.q.get("resourceVersion").filter(|r| !r.is_empty());
        let rvm = self.q.get("resourceVersionMatch").filter(|r| !r.is_empty());
        if rvm.is_some() && rv.is_none() {
            return Err(list_options_invalid(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        let current = self.shared.store.current_rv();
        let token = self.q.get("continue").filter(|c| !c.is_empty());
        let (at, after) = if let Some(token) = token {
            if rv.is_some_and(|r| r != "0") {
                return Err(list_options_invalid(
                    "resourceVersion",
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, key) = query::decode_continue(token).ok_or_else(|| {
                ApiError::bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
                )
            })?;
            (Some(rv), Some(key))
        } else {
            match (rv, rvm) {
                (None, _) => (None, None),
                (Some(r), m) => {
                    let n: u64 = r
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {r}")))?;
                    match m {
                        Some("Exact") if n == 0 => {
                            return Err(list_options_invalid(
                                "resourceVersionMatch",
                                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                            ));
                        }
                        Some("Exact") => {
                            if n > current {
                                return Err(ApiError::too_large_resource_version(n, current));
                            }
                            (Some(n), None)
                        }
                        Some("NotOlderThan") | None => {
                            if n > current {
                                return Err(ApiError::too_large_resource_version(n, current));
                            }
                            (None, None)
                        }
                        Some(other) => {
                            return Err(list_options_invalid(
                                "resourceVersionMatch",
                                &format!(
                                    "Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\", \"\""
                                ),
                            ));
                        }
                    }
                }
            }
        };
        let filter = |o: &StoredObject| labels.matches(&JsonLabels::of(&o.value)) && fields.matches(info, &o.value);
        let count_remaining = labels.is_everything() && fields.is_empty();
        let page = self
            .shared
            .store
            .list(self.target.res, self.ns(), at, after.as_deref(), limit, &filter, count_remaining)
            .map_err(|e| {
                if token.is_some() && e.code == 410 {
                    ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
                } else {
                    e
                }
            })?;
        let mut meta = json!({"resourceVersion": page.rv.to_string()});
        if let Some(key) = &page.continue_after {
            meta["continue"] = json!(query::encode_continue(page.rv, key));
            if let Some(n) = page.remaining {
                meta["remainingItemCount"] = json!(n);
            }
        }
        if let Some(include) = self.table_mode() {
            let objs: Vec<&Value> = page.items.iter().map(|o| o.value.as_ref()).collect();
            return Ok(value_response(200, &table::table(info, &objs, include, &meta)));
        }
        let head = format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
            info.list_kind(),
            info.api_version(),
            meta
        );
        let size: usize = page.items.iter().map(|o| o.bytes.len() + 1).sum::<usize>() + head.len() + 2;
        let mut buf = BytesMut::with_capacity(size);
        buf.put_slice(head.as_bytes());
        for (i, o) in page.items.iter().enumerate() {
            if i > 0 {
                buf.put_u8(b',');
            }
            buf.put_slice(&o.bytes);
        }
        buf.put_slice(b"]}");
        Ok(json_response(200, buf.freeze()))
    }

    fn watch(
        &self,
        cut_after_events: Option<u64>,
        cut_after: Option<Duration>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let info = self.info();
        let (labels, fields) = parse_selectors(info, &self.q)?;
        let send_initial_events = self.q.flag("sendInitialEvents");
        let allow_bookmarks = self.q.flag("allowWatchBookmarks") == Some(true);
        if send_initial_events.is_some() {
            let rvm = self.q.get("resourceVersionMatch").unwrap_or("");
            if rvm != "NotOlderThan" {
                return Err(list_options_invalid(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if send_initial_events == Some(true) && !allow_bookmarks {
                return Err(list_options_invalid(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
        }
        let timeout = match self.q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()) {
            Some(secs) if secs > 0 => Duration::from_secs(secs),
            _ => self.shared.config.watch_timeout,
        };
        let req = watch::WatchRequest {
            res: self.target.res,
            namespace: self.target.namespace.clone(),
            labels,
            fields,
            resource_version: self.q.get("resourceVersion").map(str::to_owned),
            send_initial_events,
            allow_bookmarks,
            timeout,
            table: self.table_mode(),
            cut_after_events,
            cut_after,
        };
        let body = watch::start(self.shared, req)?;
        let mut resp = Response::new(body);
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(resp)
    }

    fn create(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let obj = self.parse_body(body)?;
        let opts = self.options();
        let stored = self.shared.registry.create(self.target.res, self.ns(), obj, &opts)?;
        self.record_object(WriteVerb::Create, &stored, opts.dry_run);
        Ok(json_response(201, stored.bytes))
    }

    fn update(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let obj = self.parse_body(body)?;
        let opts = self.options();
        let name = self.target.name.as_deref().unwrap_or("");
        let (stored, created) = self.shared.registry.update(
            self.target.res,
            self.ns(),
            name,
            obj,
            &|| self.parse_body(body),
            self.target.subresource.as_deref(),
            &opts,
        )?;
        self.record_object(
            if created { WriteVerb::Create } else { WriteVerb::Update },
            &stored,
            opts.dry_run,
        );
        Ok(json_response(if created { 201 } else { 200 }, stored.bytes))
    }

    fn patch(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let kind = PatchType::from_content_type(&self.content_type)
            .ok_or_else(|| ApiError::unsupported_media_type(&self.content_type))?;
        let opts = self.options();
        let name = self.target.name.as_deref().unwrap_or("");
        let (stored, created) = self.shared.registry.patch(
            self.target.res,
            self.ns(),
            name,
            kind,
            body,
            self.target.subresource.as_deref(),
            &opts,
        )?;
        self.record_object(WriteVerb::Patch, &stored, opts.dry_run);
        Ok(json_response(if created { 201 } else { 200 }, stored.bytes))
    }

    fn delete_options(&self, body: &[u8]) -> Result<DeleteOptions, ApiError> {
        let mut opts = DeleteOptions {
            grace_period_seconds: self.q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()),
            propagation_policy: self.q.get("propagationPolicy").map(str::to_owned),
            dry_run: self.q.all("dryRun").any(|v| v == "All"),
            ..DeleteOptions::default()
        };
        if self.q.flag("orphanDependents") == Some(true) && opts.propagation_policy.is_none() {
            opts.propagation_policy = Some("Orphan".into());
        }
        if !body.is_empty() {
            let v = self.parse_body(body)?;
            opts.merge_body(&v);
        }
        if let Some(p) = &opts.propagation_policy
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{p}\""
            )));
        }
        Ok(opts)
    }

    fn delete(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let info = self.info();
        let opts = self.delete_options(body)?;
        let name = self.target.name.as_deref().unwrap_or("");
        let deleted = self.shared.registry.delete(self.target.res, self.ns(), name, &opts)?;
        self.record_object(WriteVerb::Delete, &deleted.object, opts.dry_run);
        if !deleted.removed {
            return Ok(json_response(202, deleted.object.bytes));
        }
        if returns_deleted_object(info) {
            return Ok(json_response(200, deleted.object.bytes));
        }
        let mut details = json!({"name": name, "kind": info.plural, "uid": meta_str(&deleted.object.value, "uid")});
        if !info.group.is_empty() {
            details["group"] = json!(info.group);
        }
        Ok(value_response(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
        ))
    }

    fn delete_collection(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let info = self.info();
        let (labels, fields) = parse_selectors(info, &self.q)?;
        let opts = self.delete_options(body)?;
        let filter = |o: &StoredObject| labels.matches(&JsonLabels::of(&o.value)) && fields.matches(info, &o.value);
        let page = self
            .shared
            .store
            .list(self.target.res, self.ns(), None, None, 0, &filter, false)?;
        let mut deleted = Vec::new();
        for obj in &page.items {
            let ns = Some(meta_str(&obj.value, "namespace")).filter(|n| !n.is_empty());
            match self
                .shared
                .registry
                .delete(self.target.res, ns, meta_str(&obj.value, "name"), &opts)
            {
                Ok(d) => deleted.push(d.object),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let rv = self.shared.store.current_rv();
        self.record(
            WriteVerb::DeleteCollection,
            None,
            self.target.namespace.clone(),
            rv,
            opts.dry_run,
        );
        let items: Vec<Value> = deleted.iter().map(|o| (*o.value).clone()).collect();
        Ok(value_response(
            200,
            &json!({"kind": info.list_kind(), "apiVersion": info.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        ))
    }
}

fn list_options_invalid(field: &str, detail: &str) -> ApiError {
    let mut err = ApiError::new(
        422,
        "Invalid",
        format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {detail}"),
    );
    err.group = Some("meta.k8s.io".into());
    err.kind = Some("ListOptions".into());
    err.causes = vec![crate::error::StatusCause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {detail}"),
        field: field.into(),
    }];
    err
}
