//! `cargo xtask e2e`: ecm installed by its Helm chart on a real cluster,
//! checked by the chart's `helm test`.
//!
//! `--cluster kind` builds the image, creates a kind cluster whose
//! kube-controller-manager has the three endpoint controllers disabled
//! (`deploy/kind/cluster.yaml`), loads the image, checks the controllers are
//! really off, installs the chart and runs `helm test`; on failure it exports
//! the cluster's logs to `<target>/e2e/logs`; it deletes the cluster unless
//! `--keep`. `--cluster kubeconfig` does the check, install and test on the
//! cluster of `--kubeconfig` (or `KUBECONFIG`) with an image the nodes can
//! already pull (`--image`).
//!
//! `--cluster embedded` needs only kubectl: it applies `examples/` to
//! `ecm run --embedded` and checks the Endpoints (the `kubectl_embedded`
//! test); no chart, since nothing runs images there.
//!
//! `--dry-run` prints the steps instead of running them. Without the tools a
//! step needs (docker, kind, helm, kubectl) it prints what is missing and
//! exits with [`SKIPPED`], the automake convention for "skipped".

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::chart::{CHART, on_path};
use crate::run::{cmd, display, run, target_dir};

/// The exit code of a run skipped for missing tools.
pub(crate) const SKIPPED: u8 = 77;

/// The kind cluster's name.
const KIND_CLUSTER: &str = "ecm-e2e";

/// The image tag built and loaded for kind runs.
const KIND_IMAGE: &str = "ecm:e2e";

/// Where the test runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cluster {
    /// A throwaway kind cluster.
    Kind,
    /// An existing cluster.
    Kubeconfig(PathBuf),
    /// `ecm run --embedded`: no chart (nothing runs images there); the
    /// examples applied with kubectl and their Endpoints checked.
    Embedded,
}

/// What `cargo xtask e2e` was asked to do.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) cluster: Cluster,
    /// `repository:tag` of the image to install (kind: the one built).
    pub(crate) image: String,
    /// Keep the kind cluster afterwards.
    pub(crate) keep: bool,
}

/// One step of a run.
#[derive(Debug)]
pub(crate) struct Step {
    /// What it is for, as printed before it runs.
    pub(crate) what: &'static str,
    pub(crate) command: Command,
    /// For checks: text the command's standard output must contain.
    pub(crate) expect_output: Option<&'static str>,
}

impl Step {
    fn new(what: &'static str, command: Command) -> Self {
        Self {
            what,
            command,
            expect_output: None,
        }
    }
}

/// A whole run: the steps, what to do if one fails, and the cleanup.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) tools: Vec<&'static str>,
    pub(crate) steps: Vec<Step>,
    pub(crate) on_failure: Vec<Step>,
    pub(crate) cleanup: Vec<Step>,
}

fn kubeconfig_path(options: &Options) -> PathBuf {
    match &options.cluster {
        Cluster::Kind | Cluster::Embedded => target_dir().join("e2e/kubeconfig"),
        Cluster::Kubeconfig(path) => path.clone(),
    }
}

/// Splits `repository:tag` (the tag after the last `:` that follows the last
/// `/`, so registry ports survive).
fn split_image(image: &str) -> (&str, &str) {
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

/// The steps of a run, without running anything.
pub(crate) fn plan(options: &Options) -> Plan {
    if options.cluster == Cluster::Embedded {
        return Plan {
            tools: vec!["kubectl"],
            steps: vec![Step::new(
                "apply examples/ to `ecm run --embedded` with kubectl and check the Endpoints",
                cmd(
                    "cargo",
                    &[
                        "test",
                        "--package",
                        "ecm",
                        "--test",
                        "kubectl_embedded",
                        "--",
                        "--nocapture",
                    ],
                ),
            )],
            on_failure: Vec::new(),
            cleanup: Vec::new(),
        };
    }
    let kubeconfig = kubeconfig_path(options);
    let kubeconfig = kubeconfig.to_string_lossy().into_owned();
    let mut plan = Plan {
        tools: vec!["helm", "kubectl"],
        steps: Vec::new(),
        on_failure: Vec::new(),
        cleanup: Vec::new(),
    };
    if options.cluster == Cluster::Kind {
        plan.tools.splice(0..0, ["docker", "kind"]);
        plan.steps.push(Step::new(
            "build the image",
            cmd(
                "docker",
                // The chart is under test, not the binary's speed: the plain
                // release build, not the profile-guided one (three times longer).
                &[
                    "build",
                    "--file",
                    "deploy/Dockerfile",
                    "--build-arg",
                    "PGO=0",
                    "--tag",
                    &options.image,
                    ".",
                ],
            ),
        ));
        plan.steps.push(Step::new(
            "create the kind cluster",
            cmd(
                "kind",
                &[
                    "create",
                    "cluster",
                    "--name",
                    KIND_CLUSTER,
                    "--config",
                    "deploy/kind/cluster.yaml",
                    "--kubeconfig",
                    &kubeconfig,
                    "--wait",
                    "3m",
                ],
            ),
        ));
        plan.steps.push(Step::new(
            "load the image into the nodes",
            cmd(
                "kind",
                &["load", "docker-image", &options.image, "--name", KIND_CLUSTER],
            ),
        ));
        let logs = target_dir().join("e2e/logs");
        plan.on_failure.push(Step::new(
            "export the cluster's logs",
            cmd(
                "kind",
                &["export", "logs", &logs.to_string_lossy(), "--name", KIND_CLUSTER],
            ),
        ));
        if !options.keep {
            plan.cleanup.push(Step::new(
                "delete the kind cluster",
                cmd("kind", &["delete", "cluster", "--name", KIND_CLUSTER]),
            ));
        }
    }
    plan.steps.push(Step {
        what: "check that kube-controller-manager runs without the endpoint controllers",
        command: cmd(
            "kubectl",
            &[
                "--kubeconfig",
                &kubeconfig,
                "--namespace",
                "kube-system",
                "get",
                "pods",
                "--selector",
                "component=kube-controller-manager",
                "--output",
                "jsonpath={.items[*].spec.containers[*].command}",
            ],
        ),
        expect_output: Some("-endpoint,-endpointslice,-endpointslicemirroring"),
    });
    let (repository, tag) = split_image(&options.image);
    let mut install = cmd(
        "helm",
        &[
            "upgrade",
            "--install",
            "ecm",
            CHART,
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            "kube-system",
            "--values",
            &format!("{CHART}/ci/default-values.yaml"),
            "--set",
            &format!("image.repository={repository}"),
            "--set",
            &format!("image.tag={tag}"),
            "--wait",
            "--timeout",
            "5m",
        ],
    );
    if options.cluster != Cluster::Kind {
        // The nodes pull the image from a registry.
        install.args(["--set", "image.pullPolicy=IfNotPresent"]);
    }
    plan.steps.push(Step::new("install the chart", install));
    plan.steps.push(Step::new(
        "run the chart's test",
        cmd(
            "helm",
            &[
                "test",
                "ecm",
                "--kubeconfig",
                &kubeconfig,
                "--namespace",
                "kube-system",
                "--logs",
                "--timeout",
                "3m",
            ],
        ),
    ));
    plan
}

/// Prints the plan as the commands it would run.
pub(crate) fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    let section = |out: &mut String, title: &str, steps: &[Step]| {
        if steps.is_empty() {
            return;
        }
        let _ = writeln!(out, "# {title}");
        for step in steps {
            let _ = writeln!(out, "# {}\n{}", step.what, display(&step.command));
            if let Some(expected) = step.expect_output {
                let _ = writeln!(out, "#   (output must contain {expected:?})");
            }
        }
    };
    let _ = writeln!(out, "# needs: {}", plan.tools.join(", "));
    section(&mut out, "steps", &plan.steps);
    section(&mut out, "if a step fails", &plan.on_failure);
    section(&mut out, "afterwards", &plan.cleanup);
    out
}

fn run_step(step: Step) -> Result<()> {
    let Some(expected) = step.expect_output else {
        eprintln!("e2e: {}", step.what);
        return run(step.command);
    };
    eprintln!("e2e: {}", step.what);
    let mut command = step.command;
    let shown = display(&command);
    eprintln!("+ {shown}");
    let output = command.output().with_context(|| format!("could not start `{shown}`"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !stdout.contains(expected) {
        bail!("{}: `{shown}` printed {stdout:?}, which lacks {expected:?}", step.what);
    }
    Ok(())
}

/// Whether `docker info` succeeds: a client without an engine cannot build.
fn docker_engine_reachable() -> bool {
    cmd("docker", &["info"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs (or, with `dry_run`, prints) the end-to-end test. `Ok(false)`: skipped
/// for missing tools.
pub(crate) fn e2e(options: &Options, dry_run: bool) -> Result<bool> {
    let plan = plan(options);
    if dry_run {
        print!("{}", describe(&plan));
        return Ok(true);
    }
    let missing: Vec<&str> = plan.tools.iter().copied().filter(|tool| !on_path(tool)).collect();
    if !missing.is_empty() {
        eprintln!(
            "e2e: skipped: {} not on PATH (`cargo xtask e2e --dry-run` shows the steps)",
            missing.join(", ")
        );
        return Ok(false);
    }
    if plan.tools.contains(&"docker") && !docker_engine_reachable() {
        eprintln!("e2e: skipped: the docker engine is not reachable (`docker info` failed)");
        return Ok(false);
    }
    let Plan {
        steps,
        on_failure,
        cleanup,
        ..
    } = plan;
    let mut outcome = Ok(());
    for step in steps {
        if let Err(err) = run_step(step) {
            outcome = Err(err);
            break;
        }
    }
    if outcome.is_err() {
        for step in on_failure {
            if let Err(err) = run_step(step) {
                eprintln!("e2e: {err:#}");
            }
        }
    }
    for step in cleanup {
        if let Err(err) = run_step(step) {
            eprintln!("e2e: {err:#}");
        }
    }
    outcome.map(|()| true)
}

/// The default image of a run: the one built for kind.
pub(crate) fn default_image() -> &'static str {
    KIND_IMAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(keep: bool) -> Options {
        Options {
            cluster: Cluster::Kind,
            image: KIND_IMAGE.to_owned(),
            keep,
        }
    }

    fn commands(steps: &[Step]) -> Vec<String> {
        steps.iter().map(|s| display(&s.command)).collect()
    }

    #[test]
    fn kind_runs_build_create_load_check_install_test_then_delete() {
        let plan = plan(&kind(false));
        assert_eq!(plan.tools, ["docker", "kind", "helm", "kubectl"]);
        let steps = commands(&plan.steps);
        let programs: Vec<&str> = steps.iter().map(|c| c.split(' ').next().unwrap_or_default()).collect();
        assert_eq!(programs, ["docker", "kind", "kind", "kubectl", "helm", "helm"]);
        assert_eq!(
            steps[0],
            "docker build --file deploy/Dockerfile --build-arg PGO=0 --tag ecm:e2e ."
        );
        assert!(
            steps[1].starts_with("kind create cluster --name ecm-e2e --config deploy/kind/cluster.yaml --kubeconfig ")
        );
        assert_eq!(steps[2], "kind load docker-image ecm:e2e --name ecm-e2e");
        assert!(steps[4].contains("upgrade --install ecm deploy/helm/ecm"));
        assert!(steps[4].contains("--set image.repository=ecm --set image.tag=e2e --wait"));
        assert!(!steps[4].contains("pullPolicy"), "kind runs keep the ci values' Never");
        assert!(steps[5].starts_with("helm test ecm"));
        assert_eq!(
            plan.steps[3].expect_output,
            Some("-endpoint,-endpointslice,-endpointslicemirroring")
        );
        assert_eq!(commands(&plan.cleanup), ["kind delete cluster --name ecm-e2e"]);
        assert!(commands(&plan.on_failure)[0].starts_with("kind export logs "));
    }

    #[test]
    fn keep_leaves_the_cluster() {
        assert!(plan(&kind(true)).cleanup.is_empty());
    }

    #[test]
    fn kubeconfig_runs_check_install_and_test_only() {
        let plan = plan(&Options {
            cluster: Cluster::Kubeconfig(PathBuf::from("/tmp/kc")),
            image: "registry.example:5000/team/ecm:1.2".to_owned(),
            keep: false,
        });
        assert_eq!(plan.tools, ["helm", "kubectl"]);
        let steps = commands(&plan.steps);
        assert_eq!(steps.len(), 3);
        assert!(steps.iter().all(|s| s.contains("--kubeconfig /tmp/kc")));
        assert!(
            steps[1].contains("--set image.repository=registry.example:5000/team/ecm --set image.tag=1.2"),
            "{}",
            steps[1]
        );
        assert!(steps[1].contains("image.pullPolicy=IfNotPresent"));
        assert!(plan.cleanup.is_empty() && plan.on_failure.is_empty());
    }

    #[test]
    fn embedded_runs_the_kubectl_test_only() {
        let plan = plan(&Options {
            cluster: Cluster::Embedded,
            image: KIND_IMAGE.to_owned(),
            keep: false,
        });
        assert_eq!(plan.tools, ["kubectl"]);
        assert_eq!(
            commands(&plan.steps),
            ["cargo test --package ecm --test kubectl_embedded -- --nocapture"]
        );
        assert!(plan.cleanup.is_empty() && plan.on_failure.is_empty());
    }

    #[test]
    fn images_split_at_the_tag_not_the_registry_port() {
        assert_eq!(split_image("ecm:e2e"), ("ecm", "e2e"));
        assert_eq!(split_image("localhost:5000/ecm"), ("localhost:5000/ecm", "latest"));
        assert_eq!(split_image("localhost:5000/ecm:v1"), ("localhost:5000/ecm", "v1"));
    }

    #[test]
    fn dry_run_describes_every_step() {
        let text = describe(&plan(&kind(false)));
        assert!(text.starts_with("# needs: docker, kind, helm, kubectl\n"));
        for needle in [
            "# build the image\ndocker build",
            "# if a step fails\n",
            "# afterwards\n# delete the kind cluster\nkind delete cluster --name ecm-e2e",
            "(output must contain \"-endpoint,-endpointslice,-endpointslicemirroring\")",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }
}
