//! Helpers shared by the CLI tests: paths and running the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The re-randomised tiny fixture checkpoint's directory.
pub fn tiny_model() -> String {
    repo()
        .join("crates/chronos2/tests/fixtures/reference/models/tiny-random")
        .display()
        .to_string()
}

/// Runs the binary; returns (success, stdout, stderr).
pub fn chronos2(args: &[&str]) -> (bool, String, String) {
    chronos2_in(Path::new("."), args)
}

/// Runs the binary in the working directory `dir`; returns (success, stdout, stderr).
pub fn chronos2_in(dir: &Path, args: &[&str]) -> (bool, String, String) {
    // Compiled mode's compile cache goes to the test build's scratch folder, never to the
    // home directory.
    let output = Command::new(env!("CARGO_BIN_EXE_chronos2"))
        .current_dir(dir)
        .env(
            "CHRONOS2_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("compile-cache"),
        )
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
