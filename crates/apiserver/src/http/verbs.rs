//! The resource verbs: get, list, watch, create, update, patch, delete and
//! deletecollection, with fault injection in front and the write log
//! behind.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use http::{HeaderValue, Method, Response, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::negotiate::{self, Input, Output};
use super::protobuf;
use super::query::{self, ListOptions, Query, WatchOptions};
use super::response::{ResponseBody, error_response, json_response, respond, value_response};
use super::table::{self, IncludeObject};
use super::watch;
use crate::error::ApiError;
use crate::field_validation::FieldValidation;
use crate::object::{meta_str, store_key};
use crate::patch::PatchType;
use crate::registry::{DeleteOptions, WriteOptions};
use crate::resources::{ResourceId, ResourceInfo, Strategy};
use crate::selector::JsonLabels;
use crate::state::Shared;
use crate::store::StoredObject;
use crate::writelog::{WriteRecord, WriteVerb};

/// A boxed error of a request body.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A resource request, routed.
pub(super) struct Target {
    pub(super) res: ResourceId,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
    pub(super) watch_path: bool,
}

/// One resource request being served: the routed target, its query and
/// the headers the verbs look at.
pub(super) struct RequestContext<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) target: Target,
    pub(super) q: Query,
    pub(super) accept: String,
    pub(super) user_agent: Option<String>,
    pub(super) content_type: String,
    /// The negotiated response encoding (set by `serve`).
    pub(super) output: Output,
}

/// Decrements the in-flight counter when a request ends.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
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

    /// Serves the request: faults first, then the verb.
    pub(super) async fn serve<B>(mut self, method: Method, body: B) -> Response<ResponseBody>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        self.output = match negotiate::output(&self.accept, self.protobuf()) {
            Ok(o) => o,
            Err(e) => return error_response(&e),
        };
        let verb = self.verb(&method);
        let plural = self.info().plural.clone();
        let decision = self.shared.faults.decide(&crate::faults::FaultRequest {
            resource: &plural,
            verb,
            user_agent: self.user_agent.as_deref(),
        });
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        if decision.compact {
            self.shared.store.compact(self.target.res);
        }
        if let Some((code, retry, message)) = &decision.error {
            return self.error(&self.injected_error(*code, *retry, message.as_deref()));
        }
        if verb == "watch" {
            return match self.watch(decision.cut_after_events, decision.cut_after) {
                Ok(resp) => resp,
                Err(e) => self.error(&e),
            };
        }
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(self.shared);
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return self.error(&ApiError::bad_request("unable to read the request body")),
        };
        let result = match verb {
            "create" if self.info().strategy == Strategy::Review && self.target.name.is_none() => self.review(&body),
            _ if self.info().strategy == Strategy::Review => Err(ApiError::method_not_supported(self.info(), verb)),
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
            Err(e) => self.error(&e),
        }
    }

    /// Whether the resource's kind has protobuf messages.
    fn protobuf(&self) -> bool {
        let info = self.info();
        protobuf::supports(&info.api_version(), &info.kind)
    }

    /// An error as a Status in the negotiated encoding.
    fn error(&self, err: &ApiError) -> Response<ResponseBody> {
        if self.output != Output::Protobuf {
            return error_response(err);
        }
        let mut resp = self.value(err.code, &err.to_status());
        if let Some(secs) = err.retry_after_seconds
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }

    /// A stored object in the negotiated encoding.
    fn object(&self, status: u16, obj: &StoredObject) -> Response<ResponseBody> {
        match self.output {
            Output::Protobuf => self.value(status, &obj.value),
            Output::Json | Output::Table => json_response(status, obj.bytes.clone()),
        }
    }

    /// An object (with apiVersion and kind) in the negotiated encoding.
    fn value(&self, status: u16, v: &Value) -> Response<ResponseBody> {
        if self.output != Output::Protobuf {
            return value_response(status, v);
        }
        match protobuf::encode(v) {
            Ok(bytes) => respond(status, protobuf::MEDIA_TYPE, bytes),
            Err(e) => error_response(&ApiError::internal(&format!("encoding the response as protobuf: {e}"))),
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
            ..WriteOptions::default()
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
        (self.output == Output::Table).then(|| IncludeObject::parse(self.q.get("includeObject")))
    }

    fn parse_body(&self, body: &[u8]) -> Result<Value, ApiError> {
        if negotiate::input(&self.content_type, self.protobuf())? == Input::Protobuf {
            return protobuf::decode(body).map_err(|e| match e {
                protobuf::CodecError::UnknownKind { .. } => ApiError::new(415, "UnsupportedMediaType", e.to_string()),
                other => ApiError::bad_request(format!("the body of the request could not be decoded: {other}")),
            });
        }
        serde_json::from_slice(body)
            .or_else(|_| {
                std::str::from_utf8(body)
                    .map_err(|e| e.to_string())
                    .and_then(|t| serde_saphyr::from_str::<Value>(t).map_err(|e| e.to_string()))
            })
            .map_err(|e| ApiError::bad_request(format!("the body of the request was in an unknown format: {e}")))
    }

    /// A TokenReview or SubjectAccessReview: answered, not stored.
    fn review(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let review = self.parse_body(body)?;
        let answer = self.shared.auth.read().review(self.info(), review)?;
        Ok(value_response(201, &answer))
    }

    fn is_scale(&self) -> bool {
        self.target.subresource.as_deref() == Some("scale")
    }

    fn get(&self) -> Result<Response<ResponseBody>, ApiError> {
        let info = self.info();
        let name = self.target.name.as_deref().unwrap_or("");
        if self.is_scale() {
            let scale = crate::scale::get(&self.shared.registry, self.target.res, self.ns(), name)?;
            return Ok(self.value(200, &scale));
        }
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
        Ok(self.object(200, &obj))
    }

    fn list(&self) -> Result<Response<ResponseBody>, ApiError> {
        let info = self.info();
        let ListOptions {
            labels,
            fields,
            limit,
            at,
            after,
        } = ListOptions::parse(info, &self.q, || self.shared.store.current_rv())?;
        let filter = |o: &StoredObject| labels.matches(&JsonLabels::of(&o.value)) && fields.matches(info, &o.value);
        let count_remaining = labels.is_everything() && fields.is_empty();
        let page = self
            .shared
            .store
            .list(self.target.res, self.ns(), at, after.as_deref(), limit, &filter, count_remaining)
            .map_err(|e| {
                if after.is_some() && e.code == 410 {
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
        if self.output == Output::Protobuf {
            let items: Vec<&Value> = page.items.iter().map(|o| o.value.as_ref()).collect();
            let list =
                json!({"kind": info.list_kind(), "apiVersion": info.api_version(), "metadata": meta, "items": items});
            return Ok(self.value(200, &list));
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
        let WatchOptions {
            labels,
            fields,
            resource_version,
            send_initial_events,
            allow_bookmarks,
            timeout,
        } = WatchOptions::parse(self.info(), &self.q, self.shared.config.watch_timeout)?;
        let req = watch::WatchRequest {
            res: self.target.res,
            namespace: self.target.namespace.clone(),
            labels,
            fields,
            resource_version,
            send_initial_events,
            allow_bookmarks,
            timeout,
            table: self.table_mode(),
            protobuf: self.output == Output::Protobuf,
            cut_after_events,
            cut_after,
        };
        let body = watch::start(self.shared, req)?;
        let mut resp = Response::new(body);
        let content_type = if self.output == Output::Protobuf {
            protobuf::WATCH_MEDIA_TYPE
        } else {
            "application/json"
        };
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Ok(resp)
    }

    fn create(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let obj = self.parse_body(body)?;
        let warnings = self.unknown_field_warnings(&obj)?;
        let opts = self.options();
        let stored = self.shared.registry.create(self.target.res, self.ns(), obj, &opts)?;
        self.record_object(WriteVerb::Create, &stored, opts.dry_run);
        Ok(with_warnings(self.object(201, &stored), &warnings))
    }

    /// Applies `fieldValidation` to a create or update body (of the main
    /// resource; subresources other than `status` are not objects of the
    /// kind): the warnings to send, or the `Strict` error.
    fn unknown_field_warnings(&self, obj: &Value) -> Result<Vec<String>, ApiError> {
        let options = if self.target.name.is_some() {
            "UpdateOptions"
        } else {
            "CreateOptions"
        };
        let validation = FieldValidation::parse(self.q.get("fieldValidation"), options)?;
        if self.target.subresource.as_deref().is_some_and(|s| s != "status") {
            return Ok(Vec::new());
        }
        let info = self.info();
        validation.check(&info.api_version(), &info.kind, obj)
    }

    fn update(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let obj = self.parse_body(body)?;
        let warnings = self.unknown_field_warnings(&obj)?;
        let opts = self.options();
        let name = self.target.name.as_deref().unwrap_or("");
        if self.is_scale() {
            let stored = crate::scale::update(&self.shared.registry, self.target.res, self.ns(), name, &obj, &opts)?;
            self.record_object(WriteVerb::Update, &stored, opts.dry_run);
            return Ok(self.value(200, &crate::scale::scale_of(&stored.value)));
        }
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
        Ok(with_warnings(
            self.object(if created { 201 } else { 200 }, &stored),
            &warnings,
        ))
    }

    fn patch(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let kind = PatchType::from_content_type(&self.content_type)
            .ok_or_else(|| ApiError::unsupported_media_type(&self.content_type))?;
        let opts = WriteOptions {
            field_validation: FieldValidation::parse(self.q.get("fieldValidation"), "PatchOptions")?,
            ..self.options()
        };
        let name = self.target.name.as_deref().unwrap_or("");
        if self.is_scale() {
            let stored = crate::scale::patch(
                &self.shared.registry,
                self.target.res,
                self.ns(),
                name,
                kind,
                body,
                &opts,
            )?;
            self.record_object(WriteVerb::Patch, &stored, opts.dry_run);
            return Ok(self.value(200, &crate::scale::scale_of(&stored.value)));
        }
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
        let warnings = opts.warnings.take();
        Ok(with_warnings(
            self.object(if created { 201 } else { 200 }, &stored),
            &warnings,
        ))
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
            return Ok(self.object(202, &deleted.object));
        }
        if returns_deleted_object(info) {
            return Ok(self.object(200, &deleted.object));
        }
        let mut details = json!({"name": name, "kind": info.plural, "uid": meta_str(&deleted.object.value, "uid")});
        if !info.group.is_empty() {
            details["group"] = json!(info.group);
        }
        Ok(self.value(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
        ))
    }

    fn delete_collection(&self, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
        let info = self.info();
        let (labels, fields) = query::parse_selectors(info, &self.q)?;
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
        Ok(self.value(
            200,
            &json!({"kind": info.list_kind(), "apiVersion": info.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        ))
    }
}

/// Adds one `Warning: 299 - "<text>"` header per warning (RFC 7234's
/// format, as kube-apiserver sends them and kubectl prints them).
fn with_warnings(mut resp: Response<ResponseBody>, warnings: &[String]) -> Response<ResponseBody> {
    for warning in warnings {
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            resp.headers_mut().append(header::WARNING, value);
        }
    }
    resp
}
