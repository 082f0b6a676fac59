//! The compile cache from the command line: `--compile-cache prefer|never|only`,
//! `CHRONOS_COMPILE_CACHE`, `chronos2 cache list|clear`, and two processes warming one entry.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{chronos2, repo, tiny_model};

/// `chronos2 forecast` in compiled mode on the tiny checkpoint, the cache in `cache`.
fn forecast(cache: &Path, extra: &[&str], env: &[(&str, &str)]) -> Command {
    let data = repo().join("crates/forecast/tests/fixtures/pipeline/predict_df_plain_context.csv");
    let mut command = Command::new(env!("CARGO_BIN_EXE_chronos2"));
    command
        .env("CHRONOS2_CACHE_DIR", cache)
        .envs(env.iter().copied())
        .args(["forecast", "--model", &tiny_model(), "--data", data.to_str().unwrap()])
        .args([
            "--target",
            "target",
            "--horizon",
            "8",
            "--format",
            "json",
            "--mode",
            "compiled",
        ])
        .args(extra);
    command
}

fn run(mut command: Command) -> Output {
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn cache(dir: &Path, action: &str) -> String {
    let (ok, stdout, stderr) = chronos2(&["cache", action, "--dir", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    stdout
}

#[test]
fn policies_list_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let only = run(forecast(dir.path(), &["--compile-cache", "only"], &[]));
    assert!(!only.status.success());
    let err = text(&only.stderr);
    assert!(err.contains("--compile-cache only") && err.contains("prefer"), "{err}");

    let first = run(forecast(dir.path(), &[], &[]));
    assert!(first.status.success(), "{}", text(&first.stderr));
    let listed = cache(dir.path(), "list");
    assert!(
        listed.contains("(1 entry)")
            && listed.contains("model tiny-random")
            && listed.contains("float32")
            && listed.contains("  made ")
            && listed.contains(" s ago"),
        "{listed}"
    );
    assert!(listed.contains("model.safetensors"), "{listed}");

    // A hit gives the same bytes; the variable is the original system's name for the flag.
    let hit = run(forecast(dir.path(), &[], &[("CHRONOS_COMPILE_CACHE", "only")]));
    assert!(hit.status.success(), "{}", text(&hit.stderr));
    assert_eq!(hit.stdout, first.stdout);
    let never = run(forecast(
        dir.path(),
        &["--compile-cache", "never"],
        &[("CHRONOS_COMPILE_CACHE", "only")],
    ));
    assert_eq!(never.stdout, first.stdout);

    let bad = run(forecast(dir.path(), &["--compile-cache", "sometimes"], &[]));
    let err = text(&bad.stderr);
    assert!(!bad.status.success() && err.contains("prefer, never or only"), "{err}");

    // One model's entries: an unknown name is refused with the names there are.
    let dir_arg = dir.path().to_str().unwrap();
    let (ok, _, stderr) = chronos2(&["cache", "clear", "no-such-model", "--dir", dir_arg]);
    assert!(
        !ok && stderr.contains("no entry of model `no-such-model`") && stderr.contains("models there: tiny-random"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = chronos2(&["cache", "clear", "tiny-random", "--dir", dir_arg]);
    assert!(
        ok && stdout.contains("removed 1 entry of model tiny-random"),
        "{stdout}{stderr}"
    );
    assert!(cache(dir.path(), "list").contains("(0 entries)"));
    let again = run(forecast(dir.path(), &[], &[]));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(cache(dir.path(), "clear").contains("removed 1 entry ("));
    assert!(cache(dir.path(), "list").contains("(0 entries)"));
}

#[test]
fn two_processes_warming_one_entry_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut command = forecast(dir.path(), &["--dtype", "int8"], &[]);
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for output in &outputs {
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    assert_eq!(outputs[0].stdout, outputs[1].stdout);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "one entry, no temporary files");
    let hit = run(forecast(
        dir.path(),
        &["--dtype", "int8", "--compile-cache", "only"],
        &[],
    ));
    assert!(hit.status.success(), "{}", text(&hit.stderr));
    assert_eq!(hit.stdout, outputs[0].stdout);
}
