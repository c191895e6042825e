//! What a sync did, as the label values of the controllers' counters: the
//! `operation` of a write (`*_changes`) and the `result` of a sync
//! (`*_syncs`). The metric names stay in each controller's `metrics` module;
//! the label values are the same everywhere, so they live here once.
//!
//! [`WriteOperation::counter`] and [`SyncResult::counter`] find those
//! counters through label sets fixed at compile time: one is counted on
//! every sync and every write, and the `counter!` macro with a label value
//! that is not a literal builds (and the Prometheus exporter then copies) a
//! label list on every call.

use metrics::{Counter, Key, Label, Level, Metadata};

/// The metadata of the counters found here, as `counter!` would give them.
static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The counter `name` with the static `labels`, from the current recorder
/// (the thread's local recorder first, as `counter!`).
pub(crate) fn static_counter(name: &'static str, labels: &'static [Label]) -> Counter {
    let key = Key::from_static_labels(name, labels);
    metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA))
}

/// A successful write to the API, the `operation` label of the controllers'
/// `changes` counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteOperation {
    /// An object was created.
    Create,
    /// An object was updated.
    Update,
    /// An object was deleted.
    Delete,
}

impl WriteOperation {
    /// The label value: `create`, `update` or `delete`.
    ///
    /// ```
    /// assert_eq!(ecm_controller::WriteOperation::Update.label(), "update");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    /// The counter `name{operation="<label>"}` (a controller's `changes`
    /// counter), found without allocating.
    pub fn counter(self, name: &'static str) -> Counter {
        static LABELS: [[Label; 1]; 3] = [
            [Label::from_static_parts("operation", "create")],
            [Label::from_static_parts("operation", "update")],
            [Label::from_static_parts("operation", "delete")],
        ];
        let labels = match self {
            Self::Create => &LABELS[0],
            Self::Update => &LABELS[1],
            Self::Delete => &LABELS[2],
        };
        static_counter(name, labels)
    }
}

/// The outcome of one sync, the `result` label of the controllers' `syncs`
/// counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncResult {
    /// The sync finished.
    Success,
    /// The cache lagged behind the controller's own writes; retried.
    Stale,
    /// The sync failed; retried.
    Error,
}

impl SyncResult {
    /// The label value: `success`, `stale` or `error`.
    ///
    /// ```
    /// assert_eq!(ecm_controller::SyncResult::Stale.label(), "stale");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Stale => "stale",
            Self::Error => "error",
        }
    }

    /// The counter `name{result="<label>"}` (a controller's `syncs`
    /// counter), found without allocating.
    pub fn counter(self, name: &'static str) -> Counter {
        static LABELS: [[Label; 1]; 3] = [
            [Label::from_static_parts("result", "success")],
            [Label::from_static_parts("result", "stale")],
            [Label::from_static_parts("result", "error")],
        ];
        let labels = match self {
            Self::Success => &LABELS[0],
            Self::Stale => &LABELS[1],
            Self::Error => &LABELS[2],
        };
        static_counter(name, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// `(name, labels, value)` of every counter recorded by `f`.
    fn counted(f: impl FnOnce()) -> Vec<(String, Vec<(String, String)>, u64)> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, f);
        let mut got: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| {
                let DebugValue::Counter(n) = value else { return None };
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                Some((key.name().to_owned(), labels, n))
            })
            .collect();
        got.sort();
        got
    }

    fn label(key: &str, value: &str) -> Vec<(String, String)> {
        vec![(key.to_owned(), value.to_owned())]
    }

    #[test]
    fn counters_carry_the_label_values() {
        let got = counted(|| {
            for result in [
                SyncResult::Success,
                SyncResult::Stale,
                SyncResult::Error,
                SyncResult::Success,
            ] {
                result.counter("syncs").increment(1);
            }
            for operation in [WriteOperation::Create, WriteOperation::Update, WriteOperation::Delete] {
                operation.counter("changes").increment(2);
            }
        });
        assert_eq!(
            got,
            [
                (
                    "changes".to_owned(),
                    label("operation", WriteOperation::Create.label()),
                    2
                ),
                (
                    "changes".to_owned(),
                    label("operation", WriteOperation::Delete.label()),
                    2
                ),
                (
                    "changes".to_owned(),
                    label("operation", WriteOperation::Update.label()),
                    2
                ),
                ("syncs".to_owned(), label("result", SyncResult::Error.label()), 1),
                ("syncs".to_owned(), label("result", SyncResult::Stale.label()), 1),
                ("syncs".to_owned(), label("result", SyncResult::Success.label()), 2),
            ]
        );
    }
}
