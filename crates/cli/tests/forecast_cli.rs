//! `chronos2 forecast` end to end: reference parity of its JSON, every shared data file, and
//! one clear line for every kind of bad input.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{chronos2, repo, tiny_model};

fn pipeline_fixture(name: &str) -> PathBuf {
    repo().join("crates/forecast/tests/fixtures/pipeline").join(name)
}

fn forecast(data: &Path, extra: &[&str]) -> (bool, String, String) {
    let model = tiny_model();
    let mut args = vec!["forecast", "--model", &model, "--data", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    chronos2(&args)
}

/// Runs `forecast --format json` with `extra` flags and checks it against a recorded
/// `predict_df` output within 1e-5 * max(1, max |ref|).
fn assert_matches_predict_df(expected: &str, data: &str, extra: &[&str]) {
    let mut args = vec![
        "--target",
        "target",
        "--horizon",
        "8",
        "--quantiles",
        "0.1,0.5,0.9",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = forecast(&pipeline_fixture(data), &args);
    assert!(ok, "{stderr}");
    let actual: Value = serde_json::from_str(&stdout).unwrap();
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(pipeline_fixture(expected)).unwrap()).unwrap();
    let rows = expected["rows"].as_array().unwrap();
    let predictions = actual["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    let scale = rows
        .iter()
        .fold(1.0f64, |m, r| m.max(r["predictions"].as_f64().unwrap().abs()));
    let mut worst = 0.0f64;
    for (i, row) in rows.iter().enumerate() {
        let (item, step) = (i / 8, i % 8);
        let p = &predictions[item];
        assert_eq!(p["item_id"], row["item_id"]);
        assert_eq!(p["target_name"], row["target_name"]);
        assert_eq!(p["timestamps"][step], row["timestamp"]);
        for (ours, theirs) in [("mean", "predictions"), ("0.1", "0.1"), ("0.5", "0.5"), ("0.9", "0.9")] {
            let diff = (p[ours][step].as_f64().unwrap() - row[theirs].as_f64().unwrap()).abs();
            worst = worst.max(diff);
        }
    }
    assert!(worst <= 1e-5 * scale, "worst |rust - predict_df| = {worst}");
}

#[test]
fn json_output_equals_reference_predict_df() {
    assert_matches_predict_df("predict_df_plain.json", "predict_df_plain_context.csv", &[]);
}

#[test]
fn json_output_with_file_covariates_equals_reference_predict_df() {
    let future = pipeline_fixture("predict_df_future.csv");
    assert_matches_predict_df(
        "predict_df.json",
        "predict_df_context.csv",
        &[
            "--covariates",
            "promo,volume",
            "--future-data",
            future.to_str().unwrap(),
            "--future-covariates",
            "promo",
        ],
    );
}

#[test]
fn a_one_bar_forecast_says_bar_in_the_singular() {
    let (ok, stdout, stderr) = forecast(&repo().join("data/BTCUSD.csv"), &["--horizon", "1"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(" · next 1 bar\n"), "{stdout}");
    let (ok, stdout, stderr) = forecast(&repo().join("data/BTCUSD.csv"), &["--horizon", "2"]);
    assert!(ok && stdout.contains(" · next 2 bars\n"), "{stdout}{stderr}");
}

#[test]
fn forecasts_every_shared_data_file() {
    let shared = repo().join("data");
    let entries = std::fs::read_dir(&shared).unwrap();
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    assert!(files.len() >= 7);
    for file in files {
        let (ok, stdout, stderr) = forecast(
            &file,
            &[
                "--target",
                "ohlc",
                "--horizon",
                "5",
                "--context",
                "256",
                "--format",
                "csv",
            ],
        );
        assert!(ok, "{}: {stderr}", file.display());
        // Header + 4 targets x 5 steps.
        assert_eq!(stdout.lines().count(), 21, "{}", file.display());
        assert!(stdout
            .lines()
            .skip(1)
            .all(|l| l.split(',').skip(3).all(|v| v.parse::<f32>().unwrap().is_finite())));
    }
}

/// Writes `text` to a temporary CSV and runs a forecast on it; returns stderr (must fail).
fn failure(text: Option<&str>, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.csv");
    if let Some(text) = text {
        std::fs::write(&path, text).unwrap();
    }
    let (ok, stdout, stderr) = forecast(&path, extra);
    assert!(!ok, "expected a failure, got {stdout}");
    // One error line; besides it only the start-up lines naming the resolved settings and the
    // kernels' instruction sets.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with("error: ")
            || l.starts_with("chronos2: mode=")
            || l.starts_with("chronos2: kernels ")),
        "{stderr}"
    );
    errors[0].to_string()
}

const GOOD: &str = "Date,Close\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n2024-01-04,4\n";

#[test]
fn bad_input_gives_one_clear_line() {
    let msg = failure(Some(GOOD), &["--target", "volume"]);
    assert!(msg.contains("column `volume` not found (found: Date, Close)"), "{msg}");
    let msg = failure(Some("Date,Close\n2024-01-01,1\n2024-01-02,x\n2024-01-03,3\n"), &[]);
    assert!(msg.contains("line 3, column `Close`: `x` is not a number"), "{msg}");
    let msg = failure(Some("Date,Close\n2024-01-01,1\n2024-01-02,2\n"), &[]);
    assert!(msg.contains("at least 3"), "{msg}");
    let msg = failure(Some(GOOD), &["--quantiles", "0.1;0.9"]);
    assert!(msg.contains("cannot read quantile level `0.1;0.9`"), "{msg}");
    let msg = failure(Some(GOOD), &["--horizon", "0"]);
    assert!(msg.contains("--horizon must be at least 1"), "{msg}");
    let msg = failure(None, &[]);
    assert!(msg.contains("bars.csv") && msg.contains("No such file"), "{msg}");
    let msg = failure(Some(GOOD), &["--covariates", "volume"]);
    assert!(msg.contains("column `volume` not found"), "{msg}");
    let msg = failure(Some(GOOD), &["--future-covariates", "close"]);
    assert!(msg.contains("must also be a covariate"), "{msg}");
    let dir = tempfile::tempdir().unwrap();
    let future = dir.path().join("future.csv");
    std::fs::write(&future, "Date,Close\n2024-01-06,1\n2024-01-07,2\n2024-01-08,3\n").unwrap();
    let msg = failure(
        Some(GOOD),
        &[
            "--covariates",
            "close",
            "--target",
            "close",
            "--future-data",
            future.to_str().unwrap(),
            "--future-covariates",
            "close",
            "--horizon",
            "3",
        ],
    );
    assert!(
        msg.contains("needs exactly 3 rows at the forecast timestamps 2024-01-05"),
        "{msg}"
    );
}
