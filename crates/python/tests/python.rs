//! Runs the Python package's tests (`crates/python/tests/test_*.py`) from `cargo test`.
//!
//! Sets up, once and then reused: a virtualenv in `target/python-venv` with numpy, pandas,
//! pytest, maturin and Ray (`ray[data]`, for `chronos2.ray`) from PyPI; the package built by
//! `maturin develop` and the `chronos2` CLI (the backtest and forecast tests compare with it),
//! both in `target/python-build` so that the nested cargo never waits for the lock of the
//! build running this test. Then runs pytest and fails with its output. Skips, with one line,
//! only where `python3` is missing.
//!
//! The Ray tests (`test_ray*.py`) run in a second pytest, inside a network namespace of their
//! own where loopback is the only interface (`unshare -n`): Ray binds its services to the
//! machine's interface address even when told 127.0.0.1. Where a namespace cannot be made
//! (not root, no `unshare`), they are skipped with one line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Python packages the tests need (Ray pinned: a version with CPython 3.9-3.13 wheels).
const PACKAGES: [&str; 5] = ["numpy", "pandas", "pytest", "maturin", "ray[data]==2.60.0"];

/// The Ray tests (in `crates/python/tests`), run in their own network namespace.
const RAY_TESTS: &str = "test_ray*.py";

/// Runs `sh -c SCRIPT sh ARGS...` in a new network namespace with loopback up: `"$@"` in the
/// script is ARGS.
fn in_private_network(script: &str) -> Command {
    let mut command = Command::new("unshare");
    command.args(["-n", "sh", "-c", &format!("ip link set lo up && {script}"), "sh"]);
    command
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from)
}

/// Runs `command`; panics with its output when it fails.
fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The virtualenv's interpreter, creating the venv and installing the packages if needed.
fn venv(python: &str) -> PathBuf {
    let dir = target_dir().join("python-venv");
    let bin = dir.join("bin");
    let interpreter = bin.join("python");
    if !interpreter.exists() {
        run(
            Command::new(python).args(["-m", "venv"]).arg(&dir),
            "creating the test virtualenv",
        );
    }
    let imports = "import numpy, pandas, pytest, maturin, ray.data";
    let ready = Command::new(&interpreter)
        .args(["-c", imports])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        run(
            Command::new(&interpreter)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .args(PACKAGES),
            "installing the Python test packages from PyPI",
        );
    }
    interpreter
}

#[test]
fn python_package_tests() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if Command::new(&python).arg("--version").output().is_err() {
        eprintln!("skipped: `{python}` is not installed, so the Python package cannot be tested");
        return;
    }
    let interpreter = venv(&python);
    let venv_dir = interpreter.parent().and_then(Path::parent).expect("venv/bin/python");
    let build_dir = target_dir().join("python-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        Command::new(&cargo)
            .args(["build", "--quiet", "-p", "chronos2-cli"])
            .current_dir(repo())
            .env("CARGO_TARGET_DIR", &build_dir),
        "building the chronos2 CLI",
    );
    run(
        Command::new(venv_dir.join("bin/maturin"))
            .args(["develop", "--quiet", "-m", "crates/python/Cargo.toml"])
            .current_dir(repo())
            .env("VIRTUAL_ENV", venv_dir)
            .env("CARGO", &cargo)
            .env("CARGO_TARGET_DIR", &build_dir),
        "building the Python package (maturin develop)",
    );
    let pytest = |command: &mut Command, files: &[&str]| {
        command
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .args(files)
            .current_dir(repo())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("CHRONOS2_CLI", build_dir.join("debug/chronos2"))
            .env_remove("CHRONOS2_MODEL");
        let output = command.output().expect("pytest starts");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "the Python tests failed:\n{text}");
        eprintln!("{}", text.lines().last().unwrap_or_default());
    };
    let ignore_ray = format!("--ignore-glob=*/{RAY_TESTS}");
    pytest(&mut Command::new(&interpreter), &["crates/python/tests", &ignore_ray]);
    if !in_private_network("true").output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped the Ray tests: `unshare -n` cannot make a network namespace here (needs root and `ip`)");
        return;
    }
    // The shell expands the glob: `exec python -m pytest ... crates/python/tests/test_ray*.py`.
    let mut ray = in_private_network(&format!("exec \"$@\" crates/python/tests/{RAY_TESTS}"));
    pytest(ray.arg(&interpreter), &[]);
}
