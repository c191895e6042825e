//! `cargo xtask chart`: checks of the Helm chart in `deploy/helm/ecm`.
//!
//! First helm and kubectl are installed (`cargo xtask tools`) and put first
//! on `PATH`. Then `crates/ecm/tests/chart.rs`, which renders the chart with
//! `helm template` for the defaults and every `ci/*.yaml`, and checks the
//! objects field by field against k8s-openapi's types, the arguments against
//! `ecm run`, the RBAC against upstream's roles and the selectors against
//! the pods. Then, with helm: `helm lint --strict` and `helm template` with
//! the default values and every `ci/*.yaml`, the rendered manifests written
//! to `<target>/chart/`, and the chart's guard against replicas without
//! leader election. Where the tools cannot be installed and helm is not on
//! `PATH`, only the checks that need no helm run.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run::{cmd, display, repo_root, run, target_dir};
use crate::tools::{path_or_warn, with_path};

/// The chart, relative to the repository root.
pub(crate) const CHART: &str = "deploy/helm/ecm";

/// Whether `program` is an executable on `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The values files to lint and render with: none (the defaults), then
/// every `ci/*.yaml` in name order.
fn values_sets(chart: &Path) -> Result<Vec<Option<PathBuf>>> {
    let mut files: Vec<PathBuf> = fs::read_dir(chart.join("ci"))
        .with_context(|| format!("cannot list {}/ci", chart.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    Ok(std::iter::once(None).chain(files.into_iter().map(Some)).collect())
}

/// `helm lint` and `helm template` for one values set, with `path` as
/// `PATH` when given.
fn helm_commands(values: Option<&Path>, path: Option<&OsString>) -> (Command, Command) {
    let mut lint = with_path(cmd("helm", &["lint", "--strict", CHART]), path);
    let mut template = with_path(
        cmd("helm", &["template", "ecm", CHART, "--namespace", "kube-system"]),
        path,
    );
    if let Some(values) = values {
        lint.arg("--values").arg(values);
        template.arg("--values").arg(values);
    }
    (lint, template)
}

/// Runs the checks.
pub(crate) fn chart() -> Result<()> {
    let path = path_or_warn();
    run(with_path(
        cmd("cargo", &["test", "--package", "ecm", "--test", "chart"]),
        path.as_ref(),
    ))?;
    if path.is_none() && !on_path("helm") {
        eprintln!("chart: helm is neither installed nor on PATH; only the checks that need no helm ran");
        return Ok(());
    }
    let chart = repo_root().join(CHART);
    let out_dir = target_dir().join("chart");
    fs::create_dir_all(&out_dir)?;
    for values in values_sets(&chart)? {
        let (lint, mut template) = helm_commands(values.as_deref(), path.as_ref());
        run(lint)?;
        eprintln!("+ {}", display(&template));
        let output = template.output().context("could not run helm template")?;
        if !output.status.success() {
            bail!("helm template failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let name = values
            .as_deref()
            .and_then(Path::file_stem)
            .map_or_else(|| "defaults".to_owned(), |s| s.to_string_lossy().into_owned());
        let file = out_dir.join(format!("{name}.yaml"));
        fs::write(&file, &output.stdout)?;
        eprintln!("chart: rendered {}", file.display());
    }
    let (_, mut unsafe_replicas) = helm_commands(None, path.as_ref());
    unsafe_replicas.args(["--set", "leaderElection.enabled=false", "--set", "replicaCount=2"]);
    let refused = unsafe_replicas.output().context("could not run helm template")?;
    if refused.status.success() {
        bail!("the chart rendered 2 replicas without leader election; it must refuse");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_commands_lint_strictly_and_render_into_kube_system() {
        let (lint, template) = helm_commands(Some(Path::new("deploy/helm/ecm/ci/default-values.yaml")), None);
        assert_eq!(
            display(&lint),
            "helm lint --strict deploy/helm/ecm --values deploy/helm/ecm/ci/default-values.yaml"
        );
        assert_eq!(
            display(&template),
            "helm template ecm deploy/helm/ecm --namespace kube-system --values deploy/helm/ecm/ci/default-values.yaml"
        );
    }

    #[test]
    fn values_sets_are_the_defaults_then_every_ci_file() {
        let sets = values_sets(&repo_root().join(CHART)).expect("the chart has ci values");
        assert_eq!(sets[0], None);
        let names: Vec<String> = sets[1..]
            .iter()
            .map(|p| {
                p.as_ref()
                    .and_then(|p| p.file_name())
                    .expect("a file")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["default-values.yaml", "single-replica-values.yaml"]);
    }
}
