//! The training workload of `cargo xtask pgo`, shared by its two
//! profile-driven steps (the profile-guided build, [`crate::pgo`], and the
//! BOLT layout, [`crate::bolt`]): the scale bench (`ecm run` as a child
//! against ecm-apiserver: cold start, idle, pod churn, restart) at sizes
//! that are deliberately *not* the sizes `cargo xtask bench scale`
//! publishes, so every published figure is measured out of sample.

use std::path::Path;
use std::process::Command;

use crate::scale::Size;

/// The training runs: Services of 20 pods at 4 000 pods in one namespace
/// (twice the published churn rate), and 5-pod Services over six
/// namespaces. Neither is a published size.
pub(crate) const TRAINING: [Training; 2] = [
    Training {
        size: Size {
            services: 200,
            pods_per_service: 20,
            namespaces: 1,
        },
        churn_rate: 100,
    },
    Training {
        size: Size {
            services: 1_200,
            pods_per_service: 5,
            namespaces: 6,
        },
        churn_rate: 50,
    },
];

/// One training run of the scale bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Training {
    /// Services, pods per Service and namespaces.
    pub(crate) size: Size,
    /// Pod readiness changes per second during the churn phase.
    pub(crate) churn_rate: u32,
}

/// The scale bench run of one training size, spawning `ecm`.
pub(crate) fn training_command(bench: &Path, ecm: &Path, training: Training, results: &Path) -> Command {
    let mut command = crate::scale::command(bench, training.size, false, results);
    command
        .arg("--churn-rate")
        .arg(training.churn_rate.to_string())
        .arg("--ecm")
        .arg(ecm)
        .arg("--label")
        .arg(format!(
            "pgo-training {}x{}/{}ns",
            training.size.services, training.size.pods_per_service, training.size.namespaces
        ));
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::display;

    #[test]
    fn training_sizes_are_not_published_sizes() {
        for training in TRAINING {
            assert!(
                !crate::scale::SIZES.contains(&training.size),
                "{training:?} is a published size"
            );
        }
    }

    #[test]
    fn a_training_run_spawns_the_instrumented_binary() {
        let shown = display(&training_command(
            Path::new("/t/scale-1"),
            Path::new("/t/pgo/ecm"),
            TRAINING[0],
            Path::new("r.jsonl"),
        ));
        assert_eq!(
            shown,
            "/t/scale-1 --services 200 --pods-per-service 20 --namespaces 1 --results r.jsonl \
             --churn-rate 100 --ecm /t/pgo/ecm --label pgo-training 200x20/1ns"
        );
    }
}
