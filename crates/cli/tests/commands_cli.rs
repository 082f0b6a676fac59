//! `backtest`, `bench`, `compare`, `inspect` and `init-random` end to end on the tiny fixture
//! model: they run on every shared data file, write what they promise, and refuse bad flags.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{chronos2, chronos2_in, repo, tiny_model};

#[test]
fn backtest_runs_on_every_shared_file_and_writes_its_report() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    let model = tiny_model();
    for file in files {
        let out = tempfile::tempdir().unwrap();
        let (ok, stdout, stderr) = chronos2(&[
            "backtest",
            "--model",
            &model,
            "--data",
            file.to_str().unwrap(),
            "--windows",
            "12",
            "--context",
            "100",
            "--horizon",
            "7",
            "--target",
            "ohlc",
            "--out",
            out.path().to_str().unwrap(),
        ]);
        assert!(ok, "{}: {stderr}", file.display());
        assert!(
            stdout.contains("buy_and_hold") && stdout.contains("seasonal_naive"),
            "{stdout}"
        );
        for name in ["report.json", "forecasts.csv", "trades.csv", "report.html"] {
            assert!(
                out.path().join(name).is_file(),
                "{} missing for {}",
                name,
                file.display()
            );
        }
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap()).unwrap();
        assert_eq!(report["series"][0]["windows"].as_array().unwrap().len(), 12);
        let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
        // Inline charts, nothing fetched from elsewhere.
        assert!(html.matches("<svg").count() >= 4, "charts missing");
        assert!(
            !html.contains("src=") && !html.contains("<link") && !html.contains("https://"),
            "not self-contained"
        );
    }
}

#[test]
fn backtest_without_data_uses_the_bundled_file_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = chronos2_in(
        dir.path(),
        &[
            "backtest",
            "--model",
            &tiny_model(),
            "--windows",
            "5",
            "--context",
            "64",
            "--out",
            "out",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains(" on bundled BTCUSD.csv: 5 windows"), "{stdout}");
    assert!(
        stdout.contains("\nBTCUSD | origins"),
        "series named after the file: {stdout}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap()).unwrap();
    assert_eq!(report["data"], "bundled BTCUSD.csv");
}

#[test]
fn format_values_are_checked_by_the_argument_parser() {
    for (command, valid) in [
        ("forecast", "table, csv, json"),
        ("bench", "table, json"),
        ("compare", "table, json, markdown"),
    ] {
        let (ok, _, stderr) = chronos2(&[command, "--format", "yaml"]);
        assert!(
            !ok && stderr.contains("invalid value 'yaml' for '--format <FORMAT>'")
                && stderr.contains(&format!("[possible values: {valid}]")),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn bench_reports_every_figure_as_json() {
    let (ok, stdout, stderr) = chronos2(&[
        "bench",
        "--model",
        &tiny_model(),
        "--cases",
        "A,D",
        "--runs",
        "3",
        "--warmup-calls",
        "1",
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["gemm_rate_gflops"].as_f64().unwrap() > 0.0);
    assert_eq!(report["modes"].as_array().unwrap().len(), 2);
    for mode in report["modes"].as_array().unwrap() {
        for case in mode["cases"].as_array().unwrap() {
            let r = &case["result"];
            assert_eq!(r["steady_ms"]["count"], 3);
            assert_eq!(r["plans_built_after_warmup"], 0);
            assert_eq!(r["errors"], 0);
        }
        // Start to first forecast as whole processes, compiled mode cold and warm.
        let process = &mode["start_to_first_forecast"];
        assert_eq!(process["warm"]["count"], 3, "{process}");
        assert!(process["warm"]["median"].as_f64().unwrap() > 0.0);
        assert_eq!(process["cold_ms"].is_number(), mode["mode"] == "compiled", "{process}");
    }
    assert!(report["machine"]["cpu"].is_string());
}

#[test]
fn bench_threads_setting_reaches_both_modes() {
    for threads in ["1", "3"] {
        let args = ["bench", "--model", &tiny_model(), "--cases", "A", "--runs", "2"];
        let (ok, stdout, stderr) = chronos2(
            &[
                &args[..],
                &["--warmup-calls", "1", "--threads", threads, "--format", "json"],
            ]
            .concat(),
        );
        assert!(ok, "{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["machine"]["threads"].to_string(), threads);
        for mode in report["modes"].as_array().unwrap() {
            assert_eq!(mode["threads"].to_string(), threads, "{}", mode["mode"]);
        }
    }
}

/// Each "N% of peak" or `>100%*` in `text` (the probes' figures), as (figure, line).
fn probe_figures(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (before, _) = line.split_once(" of peak")?;
            Some((before.split_whitespace().last()?.to_string(), line.to_string()))
        })
        .collect()
}

#[test]
fn bench_prints_peaks_and_every_precision_against_them() {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("bench.json");
    let (ok, stdout, stderr) = chronos2(&[
        "bench",
        "--model",
        "builtin",
        "--modes",
        "compiled",
        "--cases",
        "A",
        "--runs",
        "2",
        "--warmup-calls",
        "1",
        "--process-runs",
        "0",
        "--gemm-size",
        "256",
        "--out",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    // The start-up line names each kernel family's level.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("chronos2: kernels "))
        .unwrap_or_default();
    for family in ["gemm f32: ", ", bf16: ", ", int8: ", ", element-wise: "] {
        assert!(line.contains(family), "{family} missing: {stderr}");
    }
    assert!(stdout.contains("\npeaks (measured on "), "{stdout}");
    let probes = stdout.split("\nGEMM probes 256^3 ").nth(1).expect("the probes section");
    for family in ["f32", "bf16", "int8"] {
        assert!(
            probes
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{family} "))),
            "no {family} probe: {stdout}"
        );
    }
    // Every % of peak is at most 100, or flagged, with the note printed once.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mut flagged = false;
    for (figure, line) in probe_figures(&stdout) {
        match figure.strip_suffix('%').and_then(|f| f.parse::<f64>().ok()) {
            Some(pct) => assert!(pct <= 100.0, "{line}"),
            None => {
                assert_eq!(figure, ">100%*", "{line}");
                flagged = true;
            }
        }
    }
    assert_eq!(report["peaks"]["probes"].as_array().unwrap().len(), 3, "{report}");
    let case = &report["modes"][0]["cases"][0];
    let of_peak = &case["of_peak"];
    if of_peak.is_object() {
        let above = of_peak["above_peak"].as_bool().unwrap();
        assert_eq!(of_peak["pct_of_peak"].is_null(), above, "{of_peak}");
        assert!(above || of_peak["pct_of_peak"].as_f64().unwrap() <= 100.0, "{of_peak}");
        flagged |= above;
    }
    let peaks = report["peaks"]["peaks"].as_array().unwrap();
    assert!(peaks.iter().all(|p| p["rate"].as_f64().unwrap() > 0.0), "{peaks:?}");
    assert_eq!(
        stdout.matches("* above the measured peak").count(),
        usize::from(flagged),
        "{stdout}"
    );
    assert!(report["gemm_rate_gflops"].as_f64().unwrap() > 0.0);
    // What other processes took of the machine meanwhile, in the table and the JSON.
    if cfg!(target_os = "linux") {
        assert!(stdout.contains("\nmachine load: other processes took "), "{stdout}");
        let others = report["load"]["others_pct"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&others), "{report}");
    }
}

#[test]
fn bench_without_simd_says_so_in_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_chronos2"))
        .args([
            "bench",
            "--model",
            "builtin",
            "--modes",
            "eager",
            "--cases",
            "A",
            "--runs",
            "1",
            "--warmup-calls",
            "0",
            "--process-runs",
            "0",
            "--gemm-size",
            "64",
        ])
        .env("CHRONOS2_ISA", "scalar")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("SIMD")).collect();
    assert_eq!(
        lines,
        ["chronos2: no SIMD instruction set in use (CPU without AVX2+FMA, or CHRONOS2_ISA=scalar): scalar kernels, compiled mode will be slow"],
        "{stderr}"
    );
    assert!(!stderr.contains("chronos2: kernels "), "{stderr}");
    assert_eq!(stdout.matches("no peak (scalar kernels)").count(), 3, "{stdout}");
}

#[test]
fn compare_puts_float32_against_bfloat16() {
    let out = tempfile::tempdir().unwrap();
    let args = [
        "compare",
        "--model",
        &tiny_model(),
        "--dtypes",
        "float32,bfloat16",
        "--setups",
        "5x64x7",
    ];
    let rest = [
        "--repeats",
        "1",
        "--format",
        "json",
        "--out",
        out.path().to_str().unwrap(),
    ];
    let (ok, stdout, stderr) = chronos2(&[&args[..], &rest[..]].concat());
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("mode=compiled") && stderr.contains("dtype=bfloat16"),
        "{stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["labels"], serde_json::json!(["float32", "bfloat16"]));
    let setup = &report["setups"][0];
    // bf16 moves the forecasts, but not by much, and the verdict has every criterion.
    let relative = setup["max_forecast_difference_relative"].as_f64().unwrap();
    assert!(relative > 0.0 && relative < 0.05, "{relative}");
    assert_eq!(setup["verdict"]["criteria"].as_array().unwrap().len(), 4);
    let markdown = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(markdown.starts_with("## Float32 vs bfloat16: "), "{markdown}");
    // The reason in one line, naming the decision, the CPU and the model.
    let verdict = markdown
        .lines()
        .find(|l| l.starts_with("verdict: "))
        .expect("a verdict line");
    assert!(
        (verdict.starts_with("verdict: keep float32 on this CPU (GEMM kernels ")
            || verdict.starts_with("verdict: enable bfloat16: every criterion holds"))
            && verdict.contains(" for model "),
        "{verdict}"
    );
    if cfg!(target_os = "linux") {
        assert!(markdown.contains("\nmachine load: other processes took "), "{markdown}");
        assert!(report["load"]["others_pct"].as_f64().is_some(), "{report}");
    }
}

#[test]
fn compare_writes_a_verdict() {
    let out = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = chronos2(&[
        "compare",
        "--model",
        &tiny_model(),
        "--setups",
        "5x64x7",
        "--repeats",
        "2",
        "--format",
        "json",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let setup = &report["setups"][0];
    assert_eq!(setup["verdict"]["criteria"].as_array().unwrap().len(), 4);
    assert!(setup["max_forecast_difference_relative"].as_f64().unwrap() < 1e-5);
    // Each mode as a one-shot process, compiled with a cold and a warm cache.
    let [eager, compiled] = [&setup["whole_process"][0], &setup["whole_process"][1]];
    assert!(
        eager["cold_ms"].is_null() && compiled["cold_ms"].as_f64().unwrap() > 0.0,
        "{setup}"
    );
    assert_eq!(compiled["warm"]["count"], 3);
    let markdown = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(
        markdown.contains("| whole process, one-shot run, median of 3 (ms) |"),
        "{markdown}"
    );
    assert!(out.path().join("compare.md").is_file() && out.path().join("report.html").is_file());
}

#[test]
fn init_random_writes_a_loadable_checkpoint_and_inspect_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt");
    let (ok, stdout, stderr) = chronos2(&[
        "init-random",
        "--preset",
        "tiny",
        "--init",
        "rerandomized",
        "--dtype",
        "bf16",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("190048 parameters"), "{stdout}");
    let (ok, stdout, _) = chronos2(&["inspect", "--model", path.to_str().unwrap()]);
    assert!(ok && stdout.contains("bfloat16"), "{stdout}");
    let (ok, _, stderr) = chronos2(&["init-random", "--preset", "huge", "--out", path.to_str().unwrap()]);
    assert!(!ok && stderr.contains("unknown --preset `huge`"), "{stderr}");
}

#[test]
fn bad_settings_are_one_line_errors() {
    let data = repo().join("data/BTCUSD.csv");
    let (ok, _, stderr) = chronos2(&[
        "forecast",
        "--model",
        &tiny_model(),
        "--data",
        data.to_str().unwrap(),
        "--mode",
        "turbo",
    ]);
    assert!(!ok && stderr.contains("unknown --mode `turbo`"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_chronos2"))
        .args(["forecast", "--model", &tiny_model(), "--data", data.to_str().unwrap()])
        .env("TORCH_COMPILED", "sometimes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("TORCH_COMPILED=\"sometimes\""),
        "{stderr}"
    );
    let (ok, _, stderr) = chronos2(&["backtest", "--model", &tiny_model(), "--windows", "100000"]);
    assert!(!ok && stderr.contains("cannot hold 100000 windows"), "{stderr}");
}
