//! `--device cpu|cuda[:N]` and `CHRONOS_DEVICE` on every command that runs the model.
//! Without the cargo feature `cuda` a GPU is refused in one line that says how to build one;
//! with it (and no GPU) the model falls back to the CPU with one warning.

use std::process::Command;

mod common;
use common::{chronos2, repo, tiny_model};

/// The model-running commands, each with the flags of a small run on the tiny model.
fn commands(model: &str, out: &str) -> Vec<Vec<String>> {
    let data = repo().join("data/BTCUSD.csv").display().to_string();
    let small = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        small(&["forecast", "--model", model, "--data", &data, "--horizon", "3"]),
        small(&[
            "backtest",
            "--model",
            model,
            "--data",
            &data,
            "--windows",
            "2",
            "--context",
            "40",
            "--out",
            out,
        ]),
        small(&[
            "bench",
            "--model",
            model,
            "--cases",
            "A",
            "--runs",
            "1",
            "--process-runs",
            "0",
        ]),
        small(&[
            "compare",
            "--model",
            model,
            "--data",
            &data,
            "--setups",
            "2x40x3",
            "--repeats",
            "1",
            "--process-runs",
            "0",
            "--out",
            out,
        ]),
        small(&["serve", "--model", model, "--port", "0"]),
    ]
}

#[test]
fn every_command_takes_the_device_flag_and_variable() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("out").display().to_string();
    for args in commands(&tiny_model(), &out) {
        let name = args[0].clone();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, stderr) = chronos2(&[&refs[..], &["--device", "tpu"]].concat());
        assert!(
            !ok && stderr.contains("--device=\"tpu\" is not a device"),
            "{name}: {stderr}"
        );
        if cfg!(feature = "cuda") {
            continue;
        }
        let (ok, _, stderr) = chronos2(&[&refs[..], &["--device", "cuda"]].concat());
        assert!(!ok, "{name} ran with --device cuda in a build without GPU support");
        let line = stderr.lines().find(|l| l.contains("cuda")).unwrap_or_default();
        assert!(line.contains("rebuild with `--features cuda`"), "{name}: {stderr}");
        let output = Command::new(env!("CARGO_BIN_EXE_chronos2"))
            .args(&refs)
            .env("CHRONOS_DEVICE", "cuda:1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("CHRONOS_DEVICE=\"cuda:1\""),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn the_cpu_device_forecasts_as_before() {
    let data = repo().join("data/BTCUSD.csv").display().to_string();
    let args = [
        "forecast",
        "--model",
        &tiny_model(),
        "--data",
        &data,
        "--horizon",
        "3",
        "--format",
        "csv",
    ];
    let (ok, plain, stderr) = chronos2(&args);
    assert!(ok, "{stderr}");
    let (ok, on_cpu, stderr) = chronos2(&[&args[..], &["--device", "cpu"]].concat());
    assert!(ok, "{stderr}");
    assert_eq!(plain, on_cpu);
}

/// With the feature and no usable GPU, the model answers on the CPU, saying why once.
#[cfg(feature = "cuda")]
#[test]
fn without_a_gpu_the_cuda_build_falls_back_with_one_warning() {
    if chronos2_engine::chronos2_cuda::missing_library().is_none() {
        eprintln!("skipped: this machine has the CUDA libraries (the GPU tests cover it)");
        return;
    }
    let data = repo().join("data/BTCUSD.csv").display().to_string();
    let args = [
        "forecast",
        "--model",
        &tiny_model(),
        "--data",
        &data,
        "--horizon",
        "3",
        "--format",
        "csv",
    ];
    let (ok, on_cpu, _) = chronos2(&args);
    assert!(ok);
    let (ok, on_gpu, stderr) = chronos2(&[&args[..], &["--device", "cuda"]].concat());
    assert!(ok, "{stderr}");
    assert_eq!(on_cpu, on_gpu);
    assert_eq!(stderr.matches("warning: GPU executor failed").count(), 1, "{stderr}");
}
