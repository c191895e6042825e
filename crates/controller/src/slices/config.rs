//! [`SliceConfig`]: the settings of a controller that writes EndpointSlices.

use crate::config::{BaseConfig, Configure};

/// The base settings and the most endpoints one slice may hold,
/// `DEFAULT_MAX` unless set: kube-controller-manager's
/// `--max-endpoints-per-slice` (100) for the EndpointSlice controller,
/// `--mirroring-max-endpoints-per-subset` (1000) for the mirroring
/// controller. Set through [`Configure`] and
/// [`max_endpoints_per_slice`](Self::max_endpoints_per_slice).
///
/// ```
/// use ecm_controller::Configure;
/// use ecm_controller::slices::SliceConfig;
///
/// let config = SliceConfig::<100>::default().workers(2).max_endpoints_per_slice(50);
/// assert_eq!((config.base.workers, config.max_endpoints_per_slice), (2, 50));
/// assert_eq!(SliceConfig::<1000>::default().max_endpoints_per_slice, 1000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SliceConfig<const DEFAULT_MAX: usize> {
    /// Workers, batch period, retries.
    pub base: BaseConfig,
    /// Most endpoints in one slice (valid 1 to 1000).
    pub max_endpoints_per_slice: usize,
}

impl<const DEFAULT_MAX: usize> Default for SliceConfig<DEFAULT_MAX> {
    fn default() -> Self {
        Self {
            base: BaseConfig::default(),
            max_endpoints_per_slice: DEFAULT_MAX,
        }
    }
}

impl<const DEFAULT_MAX: usize> Configure for SliceConfig<DEFAULT_MAX> {
    fn base_mut(&mut self) -> &mut BaseConfig {
        &mut self.base
    }
}

impl<const DEFAULT_MAX: usize> SliceConfig<DEFAULT_MAX> {
    /// Sets [`max_endpoints_per_slice`](Self::max_endpoints_per_slice).
    #[must_use]
    pub fn max_endpoints_per_slice(mut self, max: usize) -> Self {
        self.max_endpoints_per_slice = max;
        self
    }
}
