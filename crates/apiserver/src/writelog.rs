//! The write log: every successful mutating HTTP request, in order.
//!
//! Internal actions (garbage collection, the kubelet simulator, namespace
//! cleanup, [`ApiServer::insert_object`](crate::ApiServer::insert_object))
//! are not recorded, so the log shows exactly what clients wrote.

use std::fmt;

use parking_lot::Mutex;

/// The verb of a recorded write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteVerb {
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl WriteVerb {
    /// The Kubernetes verb name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
        }
    }
}

impl fmt::Display for WriteVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One successful mutating request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    /// What was done.
    pub verb: WriteVerb,
    /// API group of the resource (empty for core).
    pub group: String,
    /// Resource plural, e.g. `endpointslices`.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: Option<String>,
    /// Namespace, for namespaced resources.
    pub namespace: Option<String>,
    /// Object name (the generated one for generateName creates); `None` for deletecollection.
    pub name: Option<String>,
    /// `User-Agent` of the request.
    pub user_agent: Option<String>,
    /// resourceVersion of the object after the write (the list's for deletecollection).
    pub resource_version: u64,
    /// Whether the request was a dry run (nothing stored).
    pub dry_run: bool,
}

/// The log.
#[derive(Debug, Default)]
pub(crate) struct WriteLog {
    records: Mutex<Vec<WriteRecord>>,
}

impl WriteLog {
    pub(crate) fn push(&self, record: WriteRecord) {
        self.records.lock().push(record);
    }

    pub(crate) fn snapshot(&self) -> Vec<WriteRecord> {
        self.records.lock().clone()
    }

    pub(crate) fn take(&self) -> Vec<WriteRecord> {
        std::mem::take(&mut *self.records.lock())
    }

    pub(crate) fn len(&self) -> usize {
        self.records.lock().len()
    }
}
