//! [`BaseConfig`]: the settings every controller has, embedded in each
//! controller's own `Config`, and [`Configure`], the setters that come with
//! it.

use std::time::Duration;

use ecm_workqueue::RetryPolicy;

/// How many workers a controller runs, how long it batches events, and how
/// often it retries a failing key. The defaults are kube-controller-manager's
/// for its endpoint controllers: 5 workers, no batching, 15 retries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BaseConfig {
    /// Concurrent syncs (`--concurrent-endpoint-syncs`,
    /// `--concurrent-service-endpoint-syncs`, … default 5).
    pub workers: usize,
    /// Delay before an event of a secondary resource is synced, so that a
    /// burst of them costs one sync (`--endpoint-updates-batch-period`, …
    /// default 0: no delay). Which events it applies to is each controller's
    /// choice.
    pub batch_period: Duration,
    /// Retries of a failing sync before its key is dropped (upstream: 15).
    pub max_retries: usize,
    /// Whether syncs after pod changes recompute only the changed pods
    /// (`--incremental-syncs`, default on; see [`crate::incremental`]).
    /// Controllers that have no incremental sync ignore it.
    pub incremental: IncrementalSyncs,
}

/// How a controller with incremental syncs uses them
/// (`--incremental-syncs on|off|verify`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IncrementalSyncs {
    /// A sync after pod changes only recomputes the changed pods, when the
    /// last sync can be built on; otherwise it recomputes everything.
    #[default]
    On,
    /// Every sync recomputes everything, as upstream does.
    Off,
    /// Incremental, and every incremental result is checked against a full
    /// recompute: a difference is logged as an error, counted in
    /// `ecm_incremental_sync_mismatches_total`, and the full result is
    /// written (in debug builds it panics). For tests and for diagnosis:
    /// it costs a full recompute per sync.
    Verify,
}

impl IncrementalSyncs {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Verify => "verify",
        }
    }

    /// Whether incremental syncs are used at all.
    pub fn enabled(self) -> bool {
        self != Self::Off
    }
}

impl std::fmt::Display for IncrementalSyncs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IncrementalSyncs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on" | "true" => Ok(Self::On),
            "off" | "false" => Ok(Self::Off),
            "verify" => Ok(Self::Verify),
            other => Err(format!("expected on, off or verify, not {other:?}")),
        }
    }
}

impl Default for BaseConfig {
    fn default() -> Self {
        Self {
            workers: 5,
            batch_period: Duration::ZERO,
            max_retries: 15,
            incremental: IncrementalSyncs::On,
        }
    }
}

impl BaseConfig {
    /// The retry policy of the workers: [`max_retries`](Self::max_retries).
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default().max_retries(self.max_retries)
    }
}

/// The chained setters of a `Config` that embeds a [`BaseConfig`]. Implement
/// [`base_mut`](Self::base_mut); the setters come free.
///
/// ```
/// use std::time::Duration;
/// use ecm_controller::{BaseConfig, Configure};
///
/// #[derive(Default)]
/// struct Config {
///     base: BaseConfig,
///     greeting: String,
/// }
///
/// impl Configure for Config {
///     fn base_mut(&mut self) -> &mut BaseConfig {
///         &mut self.base
///     }
/// }
///
/// let config = Config::default().workers(2).batch_period(Duration::from_secs(1));
/// assert_eq!((config.base.workers, config.base.max_retries), (2, 15));
/// ```
pub trait Configure: Sized {
    /// The embedded base settings.
    fn base_mut(&mut self) -> &mut BaseConfig;

    /// Sets [`BaseConfig::workers`].
    #[must_use]
    fn workers(mut self, workers: usize) -> Self {
        self.base_mut().workers = workers;
        self
    }

    /// Sets [`BaseConfig::batch_period`].
    #[must_use]
    fn batch_period(mut self, batch_period: Duration) -> Self {
        self.base_mut().batch_period = batch_period;
        self
    }

    /// Sets [`BaseConfig::max_retries`].
    #[must_use]
    fn max_retries(mut self, max_retries: usize) -> Self {
        self.base_mut().max_retries = max_retries;
        self
    }

    /// Sets [`BaseConfig::incremental`].
    #[must_use]
    fn incremental(mut self, incremental: IncrementalSyncs) -> Self {
        self.base_mut().incremental = incremental;
        self
    }
}

impl Configure for BaseConfig {
    fn base_mut(&mut self) -> &mut BaseConfig {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kube_controller_managers() {
        let config = BaseConfig::default();
        assert_eq!(
            (config.workers, config.batch_period, config.max_retries),
            (5, Duration::ZERO, 15)
        );
        assert_eq!(config.retry_policy().max_retries, 15);
    }

    #[test]
    fn incremental_syncs_parse_from_their_flag_values() {
        for mode in [IncrementalSyncs::On, IncrementalSyncs::Off, IncrementalSyncs::Verify] {
            assert_eq!(mode.as_str().parse(), Ok(mode));
        }
        assert!("sometimes".parse::<IncrementalSyncs>().is_err());
        assert_eq!(BaseConfig::default().incremental, IncrementalSyncs::On);
    }

    #[test]
    fn setters_change_one_field_each() {
        let config = BaseConfig::default()
            .workers(2)
            .batch_period(Duration::from_secs(1))
            .max_retries(3);
        assert_eq!(
            (config.workers, config.batch_period, config.max_retries),
            (2, Duration::from_secs(1), 3)
        );
    }
}
