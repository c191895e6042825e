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
}

impl Default for BaseConfig {
    fn default() -> Self {
        Self {
            workers: 5,
            batch_period: Duration::ZERO,
            max_retries: 15,
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
