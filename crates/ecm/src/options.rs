//! The controllers' tuning options, with kube-controller-manager's flag
//! names, defaults and valid ranges.

use std::time::Duration;

use clap::Args;
use ecm_controller::{Configure, IncrementalSyncs};

use crate::duration::parse_duration;

/// Options of the three controllers, as kube-controller-manager flags.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ControllerOptions {
    /// Number of Endpoints syncs run concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrent_endpoint_syncs: u64,

    /// Delay before a pod change is synced into Endpoints, so that a burst of
    /// changes costs one write (0 = no delay).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub endpoint_updates_batch_period: Duration,

    /// Number of EndpointSlice syncs run concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub concurrent_service_endpoint_syncs: u64,

    /// Maximum number of endpoints in one EndpointSlice.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_endpoints_per_slice: u64,

    /// Delay before a pod or slice change is synced into EndpointSlices (0 = no delay).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub endpointslice_updates_batch_period: Duration,

    /// Number of mirroring syncs run concurrently.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub mirroring_concurrent_service_endpoint_syncs: u64,

    /// Maximum number of addresses mirrored per Endpoints subset.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub mirroring_max_endpoints_per_subset: u64,

    /// Delay before a slice change is synced by the mirroring controller (0 = no delay).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub mirroring_endpointslice_updates_batch_period: Duration,

    /// Whether a sync after pod changes recomputes only the changed pods (on),
    /// everything as upstream does (off), or both, checking that they agree
    /// (verify: for diagnosis, costs a full recompute per sync). ecm only.
    #[arg(
        long,
        env = "ECM_INCREMENTAL_SYNCS",
        default_value = "on",
        value_parser = parse_incremental_syncs
    )]
    pub incremental_syncs: IncrementalSyncs,
}

/// Parses an `--incremental-syncs` value.
pub fn parse_incremental_syncs(value: &str) -> Result<IncrementalSyncs, String> {
    value.parse()
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self {
            concurrent_endpoint_syncs: 5,
            endpoint_updates_batch_period: Duration::ZERO,
            concurrent_service_endpoint_syncs: 5,
            max_endpoints_per_slice: 100,
            endpointslice_updates_batch_period: Duration::ZERO,
            mirroring_concurrent_service_endpoint_syncs: 5,
            mirroring_max_endpoints_per_subset: 1000,
            mirroring_endpointslice_updates_batch_period: Duration::ZERO,
            incremental_syncs: IncrementalSyncs::On,
        }
    }
}

/// Why an option could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// No such option.
    #[error("unknown option {0:?}")]
    Unknown(String),
    /// The value has the wrong type or is out of range.
    #[error("option {name}: {reason}")]
    Invalid {
        /// The option as given.
        name: String,
        /// What is wrong with its value.
        reason: String,
    },
}

/// Lower-cases and drops `-` and `_`, so `max-endpoints-per-slice`,
/// `maxEndpointsPerSlice` and `MaxEndpointsPerSlice` all match.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

impl ControllerOptions {
    /// Sets one option by name (flag name or its camelCase form, as in
    /// conformance scenarios and kube-controller-manager's configuration
    /// file) from a JSON value: a number, or a duration string.
    pub fn set(&mut self, name: &str, value: &serde_json::Value) -> Result<(), OptionError> {
        let invalid = |reason: &str| OptionError::Invalid {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        let count = |min: u64, max: u64| -> Result<u64, OptionError> {
            let n = value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| invalid("expected a whole number"))?;
            if (min..=max).contains(&n) {
                Ok(n)
            } else {
                Err(invalid(&format!("must be between {min} and {max}")))
            }
        };
        let duration = || -> Result<Duration, OptionError> {
            match value {
                serde_json::Value::String(s) => parse_duration(s).map_err(|e| invalid(&e.to_string())),
                serde_json::Value::Number(n) if n.as_u64() == Some(0) => Ok(Duration::ZERO),
                _ => Err(invalid("expected a duration such as \"1s\"")),
            }
        };
        match normalize(name).as_str() {
            "concurrentendpointsyncs" => self.concurrent_endpoint_syncs = count(1, u64::MAX)?,
            "endpointupdatesbatchperiod" => self.endpoint_updates_batch_period = duration()?,
            "concurrentserviceendpointsyncs" => self.concurrent_service_endpoint_syncs = count(1, 50)?,
            "maxendpointsperslice" => self.max_endpoints_per_slice = count(1, 1000)?,
            "endpointsliceupdatesbatchperiod" => self.endpointslice_updates_batch_period = duration()?,
            "mirroringconcurrentserviceendpointsyncs" => {
                self.mirroring_concurrent_service_endpoint_syncs = count(1, 50)?;
            }
            "mirroringmaxendpointspersubset" => self.mirroring_max_endpoints_per_subset = count(1, 1000)?,
            "mirroringendpointsliceupdatesbatchperiod" => {
                self.mirroring_endpointslice_updates_batch_period = duration()?;
            }
            "incrementalsyncs" => {
                self.incremental_syncs = value
                    .as_str()
                    .ok_or_else(|| invalid("expected on, off or verify"))?
                    .parse()
                    .map_err(|e: String| invalid(&e))?;
            }
            _ => return Err(OptionError::Unknown(name.to_owned())),
        }
        Ok(())
    }

    /// The Endpoints controller's configuration.
    pub fn endpoints(&self) -> ecm_endpoints::Config {
        ecm_endpoints::Config::default()
            .workers(usize::try_from(self.concurrent_endpoint_syncs).unwrap_or(usize::MAX))
            .batch_period(self.endpoint_updates_batch_period)
            .incremental(self.incremental_syncs)
    }

    /// The EndpointSlice mirroring controller's configuration.
    pub fn mirroring(&self) -> ecm_mirroring::Config {
        ecm_mirroring::Config::default()
            .workers(usize::try_from(self.mirroring_concurrent_service_endpoint_syncs).unwrap_or(usize::MAX))
            .batch_period(self.mirroring_endpointslice_updates_batch_period)
            .max_endpoints_per_slice(usize::try_from(self.mirroring_max_endpoints_per_subset).unwrap_or(usize::MAX))
    }

    /// The EndpointSlice controller's configuration.
    pub fn endpointslice(&self) -> ecm_endpointslice::Config {
        ecm_endpointslice::Config::default()
            .workers(usize::try_from(self.concurrent_service_endpoint_syncs).unwrap_or(usize::MAX))
            .batch_period(self.endpointslice_updates_batch_period)
            .incremental(self.incremental_syncs)
            .max_endpoints_per_slice(usize::try_from(self.max_endpoints_per_slice).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_by_flag_or_camel_case_name() {
        let mut options = ControllerOptions::default();
        options.set("maxEndpointsPerSlice", &json!(250)).unwrap();
        options.set("endpoint-updates-batch-period", &json!("2s")).unwrap();
        options.set("ConcurrentEndpointSyncs", &json!("1")).unwrap();
        assert_eq!(options.max_endpoints_per_slice, 250);
        assert_eq!(options.endpoint_updates_batch_period, Duration::from_secs(2));
        assert_eq!(options.concurrent_endpoint_syncs, 1);
    }

    #[test]
    fn bad_options_are_refused() {
        let mut options = ControllerOptions::default();
        assert_eq!(
            options.set("maxPods", &json!(1)),
            Err(OptionError::Unknown("maxPods".into()))
        );
        assert!(options.set("maxEndpointsPerSlice", &json!(1001)).is_err());
        assert!(options.set("maxEndpointsPerSlice", &json!("many")).is_err());
        assert!(options.set("endpointUpdatesBatchPeriod", &json!("soon")).is_err());
    }
}
