//! Hardening end to end: every listed bad input is a one-line error (exit 1,
//! never a panic's 101), nothing of the user's is overwritten, user text is escaped in HTML
//! and quoted in CSV, and a closed or full stderr never crashes the program.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::{chronos2, chronos2_in, repo, tiny_model};

/// The binary with `args`; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    run_with(args, &[])
}

/// The binary with `args` and environment `vars`; returns (exit code, stdout, stderr).
fn run_with(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_chronos2"))
        .args(args)
        .envs(vars.iter().copied())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts a clean refusal: exit 1 (2 for the argument parser's usage errors) and `needle`
/// in a one-line error.
fn refused(args: &[&str], needle: &str) {
    let (code, _, stderr) = run(args);
    assert!(
        code == 1 || code == 2,
        "{args:?} must fail with exit 1 or 2, not {code}: {stderr}"
    );
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_default();
    assert!(error.contains(needle), "{args:?}: expected `{needle}` in: {stderr}");
    assert_eq!(stderr.matches("error: ").count(), 1, "{stderr}");
}

/// Daily closes `first..first+n` as a CSV (`date,close`), with `edit` applied to the rows.
fn closes_csv(dir: &Path, name: &str, n: usize, edit: impl Fn(usize, f64) -> String) -> PathBuf {
    let mut text = String::from("date,close\n");
    for i in 0..n {
        let day = 19_723 + i as i64; // 2024-01-01
        let (y, m, d) = civil(day);
        text.push_str(&format!(
            "{y:04}-{m:02}-{d:02},{}\n",
            edit(i, 100.0 + (i as f64 * 0.3).sin() * 5.0)
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn plain(_: usize, v: f64) -> String {
    v.to_string()
}

fn backtest_args<'a>(model: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "backtest",
        "--model",
        model,
        "--data",
        data,
        "--windows",
        "4",
        "--context",
        "32",
        "--horizon",
        "3",
        "--out",
        out,
    ]
}

// 1. HTML injection and 2. CSV quoting.

#[test]
fn hostile_file_names_and_ids_are_escaped_in_html_and_quoted_in_csv() {
    let dir = tempfile::tempdir().unwrap();
    let id = "x<img src=x onerror=alert(1)>,\"y\"";
    let mut text = String::from("date,symbol,close\n");
    for i in 0..80 {
        let (y, m, d) = civil(19_723 + i);
        text.push_str(&format!(
            "{y:04}-{m:02}-{d:02},\"x<img src=x onerror=alert(1)>,\"\"y\"\"\",{}\n",
            100 + i % 7
        ));
    }
    let data = dir.path().join("<img src=x onerror=alert(1)>.csv");
    std::fs::write(&data, text).unwrap();
    let out = dir.path().join("out");
    let model = tiny_model();
    let mut args = backtest_args(&model, data.to_str().unwrap(), out.to_str().unwrap());
    args.extend(["--id-column", "symbol"]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("<img"), "unescaped user text in report.html");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    for (file, columns) in [("forecasts.csv", 21), ("trades.csv", 12)] {
        let mut reader = csv::Reader::from_path(out.join(file)).unwrap();
        for record in reader.records() {
            let record = record.unwrap();
            assert_eq!(record.len(), columns, "{file}");
            assert!(record[0].contains(id), "{file}: {:?}", &record[0]);
        }
    }
    let (code, stdout, stderr) = run(&[
        "forecast",
        "--model",
        &model,
        "--data",
        data.to_str().unwrap(),
        "--id-column",
        "symbol",
        "--horizon",
        "2",
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let mut reader = csv::Reader::from_reader(stdout.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| &r[0] == id && r.len() == 7), "{stdout}");
}

// 3. Non-finite and out-of-f32-range input.

#[test]
fn infinite_and_out_of_range_values_are_refused_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model();
    let out = dir.path().join("out");
    for (i, bad) in ["inf", "-inf", "1e308"].into_iter().enumerate() {
        let data = closes_csv(dir.path(), &format!("bad{i}.csv"), 80, |row, v| {
            if row == 70 {
                bad.to_string()
            } else {
                v.to_string()
            }
        });
        let data = data.to_str().unwrap();
        refused(&backtest_args(&model, data, out.to_str().unwrap()), "bar 70");
        refused(
            &["forecast", "--model", &model, "--data", data, "--horizon", "2"],
            "position 70 of 80",
        );
        refused(
            &[
                "forecast",
                "--model",
                &model,
                "--data",
                data,
                "--horizon",
                "2",
                "--mode",
                "compiled",
            ],
            "position 70 of 80",
        );
        refused(
            &[
                "bench",
                "--model",
                &model,
                "--data",
                data,
                "--modes",
                "compiled",
                "--duration",
                "1s",
                "--context",
                "32",
            ],
            "outside the model's range",
        );
    }
}

// 4. Upper bounds and 5. overflowing arithmetic.

#[test]
fn sizes_that_cannot_fit_are_refused_up_front() {
    let model = tiny_model();
    let data = repo().join("data/BTCUSD.csv");
    let data = data.to_str().unwrap();
    refused(
        &["forecast", "--model", &model, "--data", data, "--horizon", "1000000000"],
        "over the limit",
    );
    refused(
        &[
            "forecast",
            "--model",
            &model,
            "--data",
            data,
            "--mode",
            "compiled",
            "--warmup",
            "100000x512x16",
        ],
        "needs at least",
    );
    refused(
        &["forecast", "--model", &model, "--data", data, "--threads", "10000"],
        "--threads 10000",
    );
    refused(&["bench", "--model", &model, "--gemm-size", "100000"], "--gemm-size");
    let dir = tempfile::tempdir().unwrap();
    for (field, value, needle) in [
        ("d_model", "1000000000", "of weights"),
        ("num_layers", "1000000", "over the limit"),
    ] {
        let config = dir.path().join(format!("{field}.json"));
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(Path::new(&model).join("config.json")).unwrap()).unwrap();
        json[field] = value.parse::<u64>().unwrap().into();
        std::fs::write(&config, json.to_string()).unwrap();
        let out = dir.path().join(field);
        refused(
            &[
                "init-random",
                "--config",
                config.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            needle,
        );
        assert!(!out.exists());
    }
}

#[test]
fn numbers_near_two_to_the_64_are_errors_not_panics() {
    let model = tiny_model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    for (flag, value, needle) in [
        ("--windows", "9223372036854775809", "cannot hold"),
        ("--horizon", "18446744073709551615", "cannot hold"),
        ("--first-origin", "18446744073709551615", "do not fit"),
    ] {
        let mut args = vec!["backtest", "--model", &model, "--out", out, flag, value];
        if flag == "--windows" {
            args.extend(["--step", "2"]);
        }
        refused(&args, needle);
    }
    refused(
        &[
            "backtest",
            "--model",
            &model,
            "--out",
            out,
            "--mode",
            "compiled",
            "--warmup",
            "1x18446744073709551615x16",
        ],
        "too large",
    );
    refused(&["bench", "--model", &model, "--duration=-1s"], "--duration");
    refused(
        &["bench", "--model", &model, "--duration", "100000000000000000000s"],
        "--duration",
    );
    refused(
        &["bench", "--model", &model, "--duration", "2s", "--context", "0"],
        "--context",
    );
}

// 6. Writing to stderr.

#[test]
fn a_full_or_closed_stderr_never_panics() {
    let dev_full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    if let Ok(full) = dev_full {
        // An error (exit 1) and a success (exit 0) whose notes go to a full stderr.
        let status = Command::new(env!("CARGO_BIN_EXE_chronos2"))
            .args(["inspect", "--model", "/no/such/model"])
            .stderr(full.try_clone().unwrap())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1));
        let status = Command::new(env!("CARGO_BIN_EXE_chronos2"))
            .args(["inspect"])
            .stderr(full)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0));
    }
    // `2>&1 | head -1`: the reader goes away before the program writes its note (the
    // built-in model's notice) or its error.
    for (args, code) in [(vec!["inspect"], 0), (vec!["inspect", "--model", "/no/such/model"], 1)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chronos2"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{args:?} with a closed stderr");
    }
}

// 7. Success after failure.

#[test]
fn compare_refuses_what_cannot_give_a_verdict_and_writes_nothing() {
    let model = tiny_model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    refused(
        &[
            "compare",
            "--model",
            &model,
            "--data",
            "/no/such.csv",
            "--setups",
            "5x64x7",
            "--repeats",
            "1",
            "--out",
            out_s,
        ],
        "no/such.csv",
    );
    for (flag, value, needle) in [
        ("--setups", "0x0x0", "at least 1"),
        ("--repeats", "0", "--repeats"),
        ("--min-success", "200", "--min-success"),
        ("--min-success", "NaN", "--min-success"),
        ("--min-speedup", "NaN", "--min-speedup"),
    ] {
        refused(&["compare", "--model", &model, flag, value, "--out", out_s], needle);
    }
    assert!(
        std::fs::read_dir(&out).map_or(true, |mut d| d.next().is_none()),
        "nothing written"
    );
    refused(&["bench", "--model", &model, "--horizon", "0"], "--horizon");
}

#[test]
fn compare_has_its_own_default_folder_and_lists_only_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = chronos2_in(
        dir.path(),
        &[
            "compare",
            "--model",
            &tiny_model(),
            "--setups",
            "4x32x3",
            "--repeats",
            "1",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(dir.path().join("compare-out/compare.md").is_file());
    assert!(
        !dir.path().join("backtest-out").exists(),
        "compare wrote into backtest's folder"
    );
    let wrote = stdout.lines().find(|l| l.starts_with("wrote ")).unwrap();
    for path in wrote["wrote ".len()..].split(", ") {
        assert!(dir.path().join(path).is_file(), "claims {path}");
    }
}

// 8. Forecasts from nothing.

#[test]
fn an_all_missing_or_empty_target_gets_no_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model();
    let data = closes_csv(dir.path(), "nan.csv", 40, |_, _| "NaN".into());
    refused(
        &[
            "forecast",
            "--model",
            &model,
            "--data",
            data.to_str().unwrap(),
            "--horizon",
            "2",
        ],
        "no observed value",
    );
    let data = closes_csv(dir.path(), "empty.csv", 40, |_, _| String::new());
    let (code, _, stderr) = run(&[
        "forecast",
        "--model",
        &model,
        "--data",
        data.to_str().unwrap(),
        "--horizon",
        "2",
    ]);
    assert_eq!(code, 1, "{stderr}");
}

// 9. Trading settings.

#[test]
fn trading_settings_are_checked() {
    let model = tiny_model();
    let dir = tempfile::tempdir().unwrap();
    let data = closes_csv(dir.path(), "ok.csv", 80, plain);
    let out = dir.path().join("out");
    let base = backtest_args(&model, data.to_str().unwrap(), out.to_str().unwrap());
    for (flag, value) in [
        ("--fee-bps", "NaN"),
        ("--fee-bps", "inf"),
        ("--fee-bps", "1000000"),
        ("--threshold", "NaN"),
        ("--threshold", "-0.5"),
        ("--season", "0"),
        ("--step", "0"),
        ("--fraction", "11"),
    ] {
        let mut args = base.clone();
        let pair = format!("{flag}={value}");
        args.push(&pair);
        refused(&args, flag);
    }
    let prices = closes_csv(dir.path(), "zero.csv", 80, |i, v| {
        if i == 78 {
            "0".into()
        } else {
            v.to_string()
        }
    });
    refused(
        &backtest_args(&model, prices.to_str().unwrap(), out.to_str().unwrap()),
        "positive prices",
    );
    // --context 10^9: bounded by the model and reported as used.
    let mut args = base.clone();
    let position = args.iter().position(|a| *a == "32").unwrap();
    args[position] = "1000000000";
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("--context 1000000000 is more than the model's context length"),
        "{stderr}"
    );
    assert!(!stdout.contains("context 1000000000"), "{stdout}");
}

// 10. Files lost.

#[test]
fn outputs_are_checked_before_the_run_and_never_clobber_the_users_files() {
    let model = tiny_model();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "mine").unwrap();
    let data = closes_csv(dir.path(), "ok.csv", 80, plain);
    refused(
        &backtest_args(&model, data.to_str().unwrap(), file.to_str().unwrap()),
        "not a folder",
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    // init-random never replaces a checkpoint (or writes into a full folder) without --force.
    let ckpt = dir.path().join("ckpt");
    let ckpt_s = ckpt.to_str().unwrap();
    assert_eq!(run(&["init-random", "--preset", "tiny", "--out", ckpt_s]).0, 0);
    let before = std::fs::read(ckpt.join("model.safetensors")).unwrap();
    refused(
        &["init-random", "--preset", "tiny", "--seed", "1", "--out", ckpt_s],
        "--force",
    );
    assert_eq!(std::fs::read(ckpt.join("model.safetensors")).unwrap(), before);
    refused(&["init-random", "--preset", "tiny", "--out", "/"], "not empty");
    let (code, _, stderr) = run(&[
        "init-random",
        "--preset",
        "tiny",
        "--seed",
        "1",
        "--force",
        "--out",
        ckpt_s,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_ne!(std::fs::read(ckpt.join("model.safetensors")).unwrap(), before);
}

// 11. Config and weights sanity.

#[test]
fn inspect_finds_non_finite_weights_and_bad_configs() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let ckpt_s = ckpt.to_str().unwrap();
    assert_eq!(run(&["init-random", "--preset", "tiny", "--out", ckpt_s]).0, 0);
    let (code, stdout, _) = run(&["inspect", "--model", ckpt_s]);
    assert!(code == 0 && stdout.contains("all finite"), "{stdout}");
    let weights = ckpt.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let at = 8 + n + 12;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&weights, bytes).unwrap();
    refused(&["inspect", "--model", ckpt_s], "not finite");
    let config = ckpt.join("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    json["rope_theta"] = (-1.0).into();
    std::fs::write(&config, json.to_string()).unwrap();
    refused(&["inspect", "--model", ckpt_s], "rope_theta");
}

// 12. Smaller ones.

#[test]
fn smaller_cases() {
    let model = tiny_model();
    let data = repo().join("data/BTCUSD.csv");
    let data = data.to_str().unwrap();
    // A relative path to an existing file is not a Hugging Face id.
    let (ok, _, stderr) = chronos2_in(&repo(), &["inspect", "--model", "data/BTCUSD.csv"]);
    assert!(!ok && stderr.contains("is a file, not a checkpoint folder"), "{stderr}");
    // OS errors are printed once.
    let (code, _, stderr) = run(&["forecast", "--model", &model, "--data", "/no/such/file.csv"]);
    assert_eq!(code, 1);
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
    // TORCH_COMPILED= (empty) is unset.
    let (code, _, stderr) = run_with(
        &["forecast", "--model", &model, "--data", data, "--horizon", "2"],
        &[("TORCH_COMPILED", "")],
    );
    assert!(code == 0 && stderr.contains("mode=eager"), "{stderr}");
    // Duplicate quantile levels.
    refused(
        &["forecast", "--model", &model, "--data", data, "--quantiles", "0.5,0.5"],
        "given twice",
    );
    let _ = chronos2(&["--version"]);
}
