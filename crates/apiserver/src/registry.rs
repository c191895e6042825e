//! Registry operations: create, update, patch and delete with upstream
//! semantics (generateName, uid, timestamps, preconditions, optimistic
//! concurrency, strategies, validation, finalizers, graceful deletion).
//!
//! The HTTP layer, the garbage collector and the kubelet simulator all write
//! through here; only the HTTP layer records writes in the write log.

use std::cell::RefCell;
use std::sync::Arc;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::field_validation::FieldValidation;
use crate::object::{self, meta_str, metadata, metadata_mut, set_meta, store_key};
use crate::patch::{self, PatchError, PatchType};
use crate::resources::{ResourceId, ResourceInfo, Strategy};
use crate::store::{Change, Store, StoredObject};
use crate::strategy::{self, ClusterIpAllocator};
use crate::validation;

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOptions {
    /// Validate and prepare, but do not persist (`dryRun=All`).
    pub(crate) dry_run: bool,
    /// Skip validation (internal writers).
    pub(crate) skip_validation: bool,
    /// What a patch does with fields its kind does not have (creates and
    /// updates are checked before they reach the registry).
    pub(crate) field_validation: FieldValidation,
    /// The `fieldValidation` warnings of a patch, for the response.
    pub(crate) warnings: RefCell<Vec<String>>,
}

/// `DeleteOptions`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    pub(crate) grace_period_seconds: Option<i64>,
    pub(crate) propagation_policy: Option<String>,
    pub(crate) precondition_uid: Option<String>,
    pub(crate) precondition_rv: Option<String>,
    pub(crate) dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (fields absent are left as they are).
    pub(crate) fn merge_body(&mut self, body: &Value) {
        if let Some(g) = body.get("gracePeriodSeconds").and_then(Value::as_i64) {
            self.grace_period_seconds = Some(g);
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation_policy = Some(p.to_owned());
        }
        if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) && self.propagation_policy.is_none() {
            self.propagation_policy = Some("Orphan".into());
        }
        if let Some(p) = body.get("preconditions") {
            if let Some(uid) = p.get("uid").and_then(Value::as_str) {
                self.precondition_uid = Some(uid.to_owned());
            }
            if let Some(rv) = p.get("resourceVersion").and_then(Value::as_str) {
                self.precondition_rv = Some(rv.to_owned());
            }
        }
        if body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            self.dry_run = true;
        }
    }
}

/// Result of a delete.
#[derive(Debug, Clone)]
pub(crate) struct Deleted {
    pub(crate) object: StoredObject,
    /// False when the object still exists (finalizers, graceful deletion).
    pub(crate) removed: bool,
}

/// The registry.
pub(crate) struct Registry {
    pub(crate) store: Arc<Store>,
    ips: ClusterIpAllocator,
    rng: Mutex<StdRng>,
    /// Pods bound to a node are deleted gracefully (a kubelet finishes them).
    pub(crate) graceful_pods: bool,
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn patch_error(info: &ResourceInfo, name: &str, err: PatchError) -> ApiError {
    match err {
        PatchError::Malformed(m) => ApiError::bad_request(m),
        PatchError::Unprocessable(m) => {
            let mut e = ApiError::new(422, "Invalid", m);
            e.name = Some(name.to_owned());
            e.kind = Some(info.kind.clone());
            e
        }
    }
}

impl Registry {
    pub(crate) fn new(store: Arc<Store>, seed: u64, graceful_pods: bool) -> Self {
        Self {
            store,
            ips: ClusterIpAllocator::default(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            graceful_pods,
        }
    }

    pub(crate) fn info(&self, res: ResourceId) -> &ResourceInfo {
        self.store.table.get(res)
    }

    fn generate_name(&self, prefix: &str) -> String {
        let prefix = if prefix.len() > 58 { &prefix[..58] } else { prefix };
        let mut rng = self.rng.lock();
        let suffix: String = (0..5)
            .map(|_| NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char)
            .collect();
        format!("{prefix}{suffix}")
    }

    pub(crate) fn new_uid(&self) -> String {
        let bytes: [u8; 16] = self.rng.lock().random();
        uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
    }

    /// Checks the body's apiVersion/kind and sets them.
    fn check_type(info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
        let Value::Object(map) = obj else {
            return Err(ApiError::bad_request("the body of the request must be a JSON object"));
        };
        let want_av = info.api_version();
        if let Some(kind) = map.get("kind").and_then(Value::as_str)
            && !kind.is_empty()
            && kind != info.kind
        {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): {kind}",
                info.kind
            )));
        }
        if let Some(av) = map.get("apiVersion").and_then(Value::as_str)
            && !av.is_empty()
            && av != want_av
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
        map.insert("apiVersion".into(), json!(want_av));
        map.insert("kind".into(), json!(info.kind));
        Ok(())
    }

    fn check_namespace(info: &ResourceInfo, obj: &mut Value, ns: Option<&str>) -> Result<(), ApiError> {
        if info.namespaced {
            let ns = ns.unwrap_or("");
            let body_ns = meta_str(obj, "namespace");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            metadata_mut(obj).insert("namespace".into(), json!(ns));
        } else {
            metadata_mut(obj).remove("namespace");
        }
        Ok(())
    }

    /// Creates an object (POST).
    pub(crate) fn create(
        &self,
        res: ResourceId,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<StoredObject, ApiError> {
        let info = self.info(res);
        Self::check_type(info, &mut obj)?;
        Self::check_namespace(info, &mut obj, ns)?;
        if !meta_str(&obj, "resourceVersion").is_empty() {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let generate = meta_str(&obj, "name").is_empty() && !meta_str(&obj, "generateName").is_empty();
        {
            let meta = metadata_mut(&mut obj);
            for key in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
                "managedFields",
                "generation",
            ] {
                meta.remove(key);
            }
            meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
        }
        let uid = self.new_uid();
        set_meta(&mut obj, "uid", Some(json!(uid)));
        strategy::prepare_for_create(info, &mut obj, &self.ips);
        let mut attempt = 0;
        loop {
            let mut candidate = if generate {
                obj.clone()
            } else {
                std::mem::take(&mut obj)
            };
            if generate {
                let name = self.generate_name(meta_str(&obj, "generateName"));
                set_meta(&mut candidate, "name", Some(json!(name)));
                if info.strategy == Strategy::Namespace
                    && let Some(Value::Object(l)) = metadata_mut(&mut candidate).get_mut("labels")
                {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
            }
            if !opts.skip_validation {
                let errs = validation::validate_create(info, &candidate);
                if !errs.is_empty() {
                    return Err(ApiError::invalid(
                        info,
                        meta_str(&candidate, "name"),
                        validation::causes(&errs),
                    ));
                }
            }
            let key = store_key(ns.filter(|_| info.namespaced), meta_str(&candidate, "name"));
            attempt += 1;
            match self.store.create(res, key, candidate, true, opts.dry_run) {
                // A generated name that is taken is generated again, as upstream does.
                Err(e) if generate && e.reason == "AlreadyExists" && attempt < 8 => {}
                other => return other,
            }
        }
    }

    /// Runs `f` on the current object until its change commits without a
    /// concurrent modification in between (`GuaranteedUpdate`).
    pub(crate) fn guaranteed_update(
        &self,
        res: ResourceId,
        key: &str,
        name: &str,
        dry_run: bool,
        mut f: impl FnMut(&StoredObject) -> Result<Change, ApiError>,
    ) -> Result<StoredObject, ApiError> {
        loop {
            let Some(current) = self.store.get(res, key) else {
                return Err(ApiError::not_found(self.info(res), name));
            };
            let change = f(&current)?;
            if let Ok(stored) = self.store.commit(res, key, current.rv, change, dry_run) {
                return Ok(stored);
            }
        }
    }

    /// Turns a proposed new state into a change: preconditions, system
    /// fields, strategy, finalizer handling, no-op detection, validation.
    fn prepare_update(
        &self,
        res: ResourceId,
        current: &StoredObject,
        mut new: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Change, ApiError> {
        let info = self.info(res);
        let old = current.value.as_ref();
        let name = meta_str(old, "name").to_owned();
        let given_rv = meta_str(&new, "resourceVersion").to_owned();
        if !given_rv.is_empty() && given_rv != current.rv.to_string() {
            return Err(ApiError::conflict(info, &name));
        }
        let given_uid = meta_str(&new, "uid").to_owned();
        if !given_uid.is_empty() && given_uid != meta_str(old, "uid") {
            return Err(ApiError::conflict_with(
                info,
                &name,
                &format!(
                    "Precondition failed: UID in precondition: {given_uid}, UID in object meta: {}",
                    meta_str(old, "uid")
                ),
            ));
        }
        if subresource == Some("status") {
            strategy::prepare_for_status_update(&mut new, old);
        } else {
            let old_meta = metadata(old);
            let meta = metadata_mut(&mut new);
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                match old_meta.and_then(|m| m.get(key)) {
                    Some(v) => meta.insert(key.into(), v.clone()),
                    None => meta.remove(key),
                };
            }
            meta.remove("selfLink");
            strategy::prepare_for_update(info, &mut new, old);
            if object::is_deleting(old) {
                let old_fin = object::finalizers(old);
                if let Some(added) = object::finalizers(&new).into_iter().find(|f| !old_fin.contains(f)) {
                    return Err(ApiError::invalid(
                        info,
                        &name,
                        vec![validation::FieldError::forbidden(
                            "metadata.finalizers",
                            format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{added:?}}}"),
                        )
                        .to_cause()],
                    ));
                }
            }
        }
        set_meta(&mut new, "resourceVersion", Some(json!(current.rv.to_string())));
        if new == *old {
            return Ok(Change::Unchanged);
        }
        if !opts.skip_validation {
            let errs = validation::validate_update(info, &new, old);
            if !errs.is_empty() {
                return Err(ApiError::invalid(info, &name, validation::causes(&errs)));
            }
        }
        if object::is_deleting(&new) && object::finalizers(&new).is_empty() && !Self::waits_for_graceful_end(info, &new)
        {
            return Ok(Change::Remove(new));
        }
        Ok(Change::Store(new))
    }

    /// A gracefully deleted pod stays until its kubelet deletes it with grace 0.
    fn waits_for_graceful_end(info: &ResourceInfo, obj: &Value) -> bool {
        info.strategy == Strategy::Pod
            && metadata(obj)
                .and_then(|m| m.get("deletionGracePeriodSeconds"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
    }

    /// Checks and completes the body of an update: type, namespace, name.
    fn normalize_update(info: &ResourceInfo, obj: &mut Value, ns: Option<&str>, name: &str) -> Result<(), ApiError> {
        Self::check_type(info, obj)?;
        Self::check_namespace(info, obj, ns)?;
        let body_name = meta_str(obj, "name");
        if body_name.is_empty() {
            set_meta(obj, "name", Some(json!(name)));
        } else if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        Ok(())
    }

    /// Replaces an object (PUT), or its status. Returns whether it was created.
    ///
    /// `reparse` gives the body afresh, as `obj` was, for the rare retry after
    /// a concurrent write: the first attempt consumes `obj` instead of a copy.
    #[allow(clippy::too_many_arguments)] // mirrors the request's parts one to one
    pub(crate) fn update(
        &self,
        res: ResourceId,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        reparse: &dyn Fn() -> Result<Value, ApiError>,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<(StoredObject, bool), ApiError> {
        let info = self.info(res);
        Self::normalize_update(info, &mut obj, ns, name)?;
        let key = store_key(ns.filter(|_| info.namespaced), name);
        let given_rv = !meta_str(&obj, "resourceVersion").is_empty();
        if info.strategy == Strategy::Endpoints && subresource.is_none() && self.store.get(res, &key).is_none() {
            if given_rv {
                return Err(ApiError::not_found(info, name));
            }
            match self.create(res, ns, obj.clone(), opts) {
                Ok(created) => return Ok((created, true)),
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
        let mut first = Some(obj);
        let stored = self.guaranteed_update(res, &key, name, opts.dry_run, |current| {
            let body = match first.take() {
                Some(body) => body,
                // A retry: the object changed since the body was checked
                // against it, so a body naming a resourceVersion conflicts
                // (what prepare_update answers first).
                None if given_rv => return Err(ApiError::conflict(info, meta_str(&current.value, "name"))),
                None => {
                    let mut body = reparse()?;
                    Self::normalize_update(info, &mut body, ns, name)?;
                    body
                }
            };
            self.prepare_update(res, current, body, subresource, opts)
        })?;
        Ok((stored, false))
    }

    /// Patches an object or its status.
    #[allow(clippy::too_many_arguments)] // mirrors the request's parts one to one
    pub(crate) fn patch(
        &self,
        res: ResourceId,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        body: &[u8],
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<(StoredObject, bool), ApiError> {
        let info = self.info(res);
        let patch = patch::parse_patch(kind, body).map_err(|e| patch_error(info, name, e))?;
        let key = store_key(ns.filter(|_| info.namespaced), name);
        let checked = subresource.is_none_or(|s| s == "status");
        if kind == PatchType::Apply && self.store.get(res, &key).is_none() && subresource.is_none() {
            let mut obj = patch.clone();
            set_meta(&mut obj, "name", Some(json!(name)));
            *opts.warnings.borrow_mut() = opts.field_validation.check(&info.api_version(), &info.kind, &obj)?;
            match self.create(res, ns, obj, opts) {
                Ok(created) => return Ok((created, true)),
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
        let stored = self.guaranteed_update(res, &key, name, opts.dry_run, |current| {
            let mut new = patch::apply(kind, &current.value, &patch).map_err(|e| patch_error(info, name, e))?;
            Self::check_type(info, &mut new)?;
            if checked {
                *opts.warnings.borrow_mut() =
                    opts.field_validation
                        .check_patched(&info.api_version(), &info.kind, &current.value, &new)?;
            }
            if meta_str(&new, "name") != name || (info.namespaced && meta_str(&new, "namespace") != ns.unwrap_or("")) {
                return Err(ApiError::bad_request(
                    "metadata.name and metadata.namespace cannot be changed by a patch",
                ));
            }
            self.prepare_update(res, current, new, subresource, opts)
        })?;
        Ok((stored, false))
    }

    /// Deletes an object, honouring finalizers, propagation policy and
    /// graceful pod deletion.
    pub(crate) fn delete(
        &self,
        res: ResourceId,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let info = self.info(res);
        let key = store_key(ns.filter(|_| info.namespaced), name);
        let mut removed = false;
        let object = self.guaranteed_update(res, &key, name, opts.dry_run, |current| {
            let old = current.value.as_ref();
            if let Some(uid) = &opts.precondition_uid
                && uid != meta_str(old, "uid")
            {
                return Err(ApiError::conflict_with(
                    info,
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta_str(old, "uid")),
                ));
            }
            if let Some(rv) = &opts.precondition_rv
                && *rv != current.rv.to_string()
            {
                return Err(ApiError::conflict_with(
                    info,
                    name,
                    &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", current.rv),
                ));
            }
            let mut new = old.clone();
            let now = object::now_rfc3339();
            if info.strategy == Strategy::Namespace {
                removed = false;
                if object::is_deleting(old) {
                    return Ok(Change::Unchanged);
                }
                set_meta(&mut new, "deletionTimestamp", Some(json!(now)));
                set_meta(&mut new, "deletionGracePeriodSeconds", Some(json!(0)));
                new["status"] = json!({"phase": "Terminating"});
                return Ok(Change::Store(new));
            }
            let bound = old.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
            if info.strategy == Strategy::Pod && self.graceful_pods && bound {
                let default_grace = old.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30);
                let grace = opts.grace_period_seconds.unwrap_or(default_grace).max(0);
                let terminal = matches!(old.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"));
                if grace > 0 && !terminal {
                    if object::is_deleting(old) {
                        removed = false;
                        return Ok(Change::Unchanged);
                    }
                    let at = jiff::Timestamp::now()
                        .checked_add(jiff::SignedDuration::from_secs(grace))
                        .unwrap_or_else(|_| jiff::Timestamp::now());
                    set_meta(&mut new, "deletionTimestamp", Some(json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())));
                    set_meta(&mut new, "deletionGracePeriodSeconds", Some(json!(grace)));
                    removed = false;
                    return Ok(Change::Store(new));
                }
                set_meta(&mut new, "deletionGracePeriodSeconds", Some(json!(0)));
            }
            let mut finalizers = object::finalizers(old);
            let policy_finalizer = match opts.propagation_policy.as_deref() {
                Some("Orphan") => Some("orphan"),
                Some("Foreground") => Some("foregroundDeletion"),
                _ => None,
            };
            if let Some(f) = policy_finalizer
                && !object::is_deleting(old)
                && !finalizers.iter().any(|x| x == f)
            {
                finalizers.push(f.to_owned());
                set_meta(&mut new, "finalizers", Some(json!(finalizers)));
            }
            if finalizers.is_empty() {
                removed = true;
                return Ok(Change::Remove(new));
            }
            removed = false;
            if object::is_deleting(old) && new == *old {
                return Ok(Change::Unchanged);
            }
            if !object::is_deleting(old) {
                set_meta(&mut new, "deletionTimestamp", Some(json!(now)));
                set_meta(&mut new, "deletionGracePeriodSeconds", Some(json!(0)));
            }
            Ok(Change::Store(new))
        })?;
        Ok(Deleted { object, removed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{ResourceTable, builtin_resources};

    fn registry() -> (Registry, ResourceId, ResourceId) {
        let table = Arc::new(ResourceTable::new(builtin_resources()));
        let pods = table.by_path("", "v1", "pods").unwrap();
        let nss = table.by_path("", "v1", "namespaces").unwrap();
        let store = Arc::new(Store::new(table, 100));
        let reg = Registry::new(store, 1, false);
        reg.create(
            nss,
            None,
            json!({"metadata": {"name": "default"}}),
            &WriteOptions::default(),
        )
        .unwrap();
        (reg, pods, nss)
    }

    #[test]
    fn generate_name_and_conflicts() {
        let (reg, pods, _) = registry();
        let opts = WriteOptions::default();
        let a = reg
            .create(
                pods,
                Some("default"),
                json!({"metadata": {"generateName": "web-"}}),
                &opts,
            )
            .unwrap();
        let name = meta_str(&a.value, "name").to_owned();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        let mut stale = (*a.value).clone();
        stale["metadata"]["labels"] = json!({"x": "1"});
        let reparse = || Ok(stale.clone());
        reg.update(pods, Some("default"), &name, stale.clone(), &reparse, None, &opts)
            .unwrap();
        let err = reg
            .update(pods, Some("default"), &name, stale.clone(), &reparse, None, &opts)
            .unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
        let err = reg
            .create(pods, Some("default"), json!({"metadata": {"name": name}}), &opts)
            .unwrap_err();
        assert_eq!(err.reason, "AlreadyExists");
        let err = reg
            .create(pods, Some("nope"), json!({"metadata": {"name": "x"}}), &opts)
            .unwrap_err();
        assert_eq!(err.message, "namespaces \"nope\" not found");
    }

    #[test]
    fn finalizers_hold_deletion_until_removed() {
        let (reg, pods, _) = registry();
        let opts = WriteOptions::default();
        reg.create(
            pods,
            Some("default"),
            json!({"metadata": {"name": "p", "finalizers": ["x.io/y"]}}),
            &opts,
        )
        .unwrap();
        let d = reg
            .delete(pods, Some("default"), "p", &DeleteOptions::default())
            .unwrap();
        assert!(!d.removed);
        assert!(object::is_deleting(&d.object.value));
        let (patched, _) = reg
            .patch(
                pods,
                Some("default"),
                "p",
                PatchType::Merge,
                br#"{"metadata":{"finalizers":null}}"#,
                None,
                &opts,
            )
            .unwrap();
        assert!(reg.store.get(pods, "default/p").is_none(), "{:?}", patched.value);
    }
}
