//! End to end: vendor files through `chronos2 forecast` and `backtest`, the outputs
//! people load as they are (JSON `start`, CSV with the input's id column), and advice in an
//! error that, followed as written, makes the command work.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;
use common::{chronos2, repo, tiny_model};

fn vendor(name: &str) -> String {
    repo()
        .join("crates/data/tests/fixtures/vendors")
        .join(name)
        .display()
        .to_string()
}

/// `forecast --format json` of `file` with `extra` flags: the predictions, or the stderr.
fn forecast_json(file: &str, extra: &[&str]) -> Result<Vec<Value>, String> {
    let model = tiny_model();
    let mut args = vec![
        "forecast",
        "--model",
        &model,
        "--data",
        file,
        "--horizon",
        "2",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = chronos2(&args);
    if !ok {
        return Err(stderr);
    }
    let json: Value = serde_json::from_str(&stdout).unwrap();
    Ok(json["predictions"].as_array().unwrap().clone())
}

/// The flags an error suggests after "pass": the first backticked `--...` snippet, split as a
/// shell would.
fn advice(stderr: &str) -> Vec<String> {
    let start = stderr.find("pass `--").expect("the error gives advice") + 6;
    let snippet = &stderr[start..start + stderr[start..].find('`').unwrap()];
    let mut args = Vec::new();
    for (i, part) in snippet.split('\'').enumerate() {
        if i % 2 == 1 {
            args.push(part.to_string());
        } else {
            args.extend(part.split_whitespace().map(String::from));
        }
    }
    args
}

#[test]
fn each_vendor_file_forecasts_with_the_right_timestamps() {
    // (file, extra flags, first forecast timestamp, item_id)
    let cases: [(&str, &[&str], &str, &str); 6] = [
        (
            "binance-BTCUSDT-1h-header.csv",
            &[],
            "2024-01-01 06:00:00",
            "binance-BTCUSDT-1h-header",
        ),
        (
            "binance-BTCUSDT-1h-noheader.csv",
            &[],
            "2024-01-01 06:00:00",
            "binance-BTCUSDT-1h-noheader",
        ),
        (
            "binance-BTCUSDT-1d-2025-us.csv",
            &[],
            "2025-01-06",
            "binance-BTCUSDT-1d-2025-us",
        ),
        ("investing-BTCUSD.csv", &[], "2024-01-18", "investing-BTCUSD"),
        (
            "metatrader-EURUSD-H1.csv",
            &[],
            "2018-02-12 03:00:00",
            "metatrader-EURUSD-H1",
        ),
        ("yfinance-AAPL.csv", &["--target", "ohlc"], "2024-01-09", "AAPL"),
    ];
    for (file, extra, start, item_id) in cases {
        let predictions = forecast_json(&vendor(file), extra).unwrap_or_else(|e| panic!("{file}: {e}"));
        let p = &predictions[0];
        assert_eq!(p["timestamps"][0], start, "{file}");
        let iso = if start.len() == 10 {
            format!("{start}T00:00:00")
        } else {
            start.replacen(' ', "T", 1)
        };
        assert_eq!(p["start"], iso, "{file}");
        assert_eq!(p["item_id"], item_id, "{file}");
    }
}

#[test]
fn daylight_saving_keeps_the_zone_and_tz_converts() {
    let file = vendor("btc-1min-dst-berlin.csv");
    let p = &forecast_json(&file, &[]).unwrap()[0];
    assert_eq!(
        p["timestamps"],
        serde_json::json!(["2024-03-31 03:05:00+02:00", "2024-03-31 03:06:00+02:00"])
    );
    let p = &forecast_json(&file, &["--tz", "UTC"]).unwrap()[0];
    assert_eq!(p["start"], "2024-03-31T01:05:00+00:00");
    // Bars that end just before the change: a named zone moves the forecast's clock forward.
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&before, text.lines().take(6).collect::<Vec<_>>().join("\n")).unwrap();
    let p = &forecast_json(before.to_str().unwrap(), &["--tz", "Europe/Berlin"]).unwrap()[0];
    assert_eq!(
        p["timestamps"],
        serde_json::json!(["2024-03-31 03:00:00+02:00", "2024-03-31 03:01:00+02:00"])
    );
    let p = &forecast_json(before.to_str().unwrap(), &[]).unwrap()[0];
    assert_eq!(p["start"], "2024-03-31T02:00:00+01:00");
}

#[test]
fn ambiguous_dates_advice_works_as_written() {
    let file = vendor("investing-ambiguous-dates.csv");
    let err = forecast_json(&file, &[]).unwrap_err();
    let flags = advice(&err);
    assert_eq!(flags, ["--date-format", "%m/%d/%Y"], "{err}");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let p = &forecast_json(&file, &flags).unwrap()[0];
    assert_eq!(p["timestamps"][0], "2024-01-06");
}

#[test]
fn a_headerless_file_advice_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.csv");
    std::fs::write(
        &path,
        "2024-01-01,1.5,2\n2024-01-02,1.25,3\n2024-01-03,1.75,4\n2024-01-04,1.5,5\n",
    )
    .unwrap();
    let file = path.display().to_string();
    let err = forecast_json(&file, &[]).unwrap_err();
    let flags = advice(&err);
    assert_eq!(flags, ["--no-header", "--columns", "timestamp,close,col3"], "{err}");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let p = &forecast_json(&file, &flags).unwrap()[0];
    assert_eq!(p["start"], "2024-01-05T00:00:00");
}

#[test]
fn the_date_column_alone_gets_advice_that_joins_the_time() {
    let file = vendor("metatrader-EURUSD-H1.csv");
    let err = forecast_json(&file, &["--timestamp-column", "DATE"]).unwrap_err();
    assert!(!err.contains("--keep-last"), "{err}");
    let flags = advice(&err);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    assert_eq!(flags, ["--timestamp-column", "DATE,TIME"]);
    assert_eq!(forecast_json(&file, &flags).unwrap()[0]["start"], "2018-02-12T03:00:00");
}

#[test]
fn standard_input_and_several_files() {
    let model = tiny_model();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronos2"))
        .args([
            "forecast",
            "--model",
            &model,
            "--data",
            "-",
            "--horizon",
            "1",
            "--format",
            "json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read(vendor("yfinance-AAPL.csv")).unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["predictions"][0]["item_id"], "AAPL");
    let two = forecast_json(
        &vendor("yfinance-AAPL.csv"),
        &["--data", &vendor("investing-BTCUSD.csv")],
    )
    .unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[1]["item_id"], "investing-BTCUSD");
}

#[test]
fn csv_output_quotes_ids_and_names_the_id_column_as_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("long.csv");
    let mut text = String::from("Symbol,Date,Close\n");
    for (id, base) in [("BRK,B", 400.25), ("AAPL", 180.5)] {
        for day in 1..=5 {
            text.push_str(&format!("\"{id}\",2024-01-0{day},{}\n", base + day as f64 * 0.25));
        }
    }
    std::fs::write(&path, text).unwrap();
    let model = tiny_model();
    let (ok, stdout, stderr) = chronos2(&[
        "forecast",
        "--model",
        &model,
        "--data",
        path.to_str().unwrap(),
        "--horizon",
        "1",
        "--format",
        "csv",
    ]);
    assert!(ok, "{stderr}");
    let mut reader = csv::Reader::from_reader(stdout.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        ["Symbol", "target_name", "timestamp", "mean", "0.1", "0.5", "0.9"]
    );
    let ids: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(ids, ["BRK,B", "AAPL"]);
    // The table uses the same names and the data's precision (two decimals).
    let (ok, table, _) = chronos2(&[
        "forecast",
        "--model",
        &model,
        "--data",
        path.to_str().unwrap(),
        "--horizon",
        "1",
    ]);
    assert!(ok);
    let line = table.lines().find(|l| l.starts_with("2024-01-06")).unwrap();
    let first = line.split_whitespace().nth(1).unwrap();
    assert_eq!(first.split('.').nth(1).map(str::len), Some(2), "{table}");
    assert!(table.contains("mean") && table.contains("0.1"), "{table}");
}

#[test]
fn backtest_reads_the_same_vendor_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = tiny_model();
    let (ok, stdout, stderr) = chronos2(&[
        "backtest",
        "--model",
        &model,
        "--data",
        &vendor("metatrader-EURUSD-H1.csv"),
        "--windows",
        "2",
        "--context",
        "4",
        "--horizon",
        "1",
        "--season",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("metatrader-EURUSD-H1"), "{stdout}");
}

/// A missing close inside the scored span is refused with flags that fix it; each,
/// followed as written, makes the backtest run.
#[test]
fn a_missing_close_in_the_scored_span_advice_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.csv");
    let mut text = String::from("Date,Close\n");
    for day in 1..=20 {
        let close = if day == 18 {
            "null".to_string()
        } else {
            format!("{}", 100.0 + day as f64)
        };
        text.push_str(&format!("2024-01-{day:02},{close}\n"));
    }
    std::fs::write(&path, text).unwrap();
    let model = tiny_model();
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "backtest",
            "--model",
            &model,
            "--data",
            path.to_str().unwrap(),
            "--windows",
            "4",
            "--context",
            "8",
            "--horizon",
            "1",
            "--season",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        chronos2(&args)
    };
    let (ok, _, err) = run(&[]);
    assert!(!ok && err.contains("is missing"), "{err}");
    for flag in ["--fill forward", "--drop-missing"] {
        assert!(err.contains(&format!("`{flag}`")), "{err}");
        let args: Vec<&str> = flag.split(' ').collect();
        let (ok, _, stderr) = run(&args);
        assert!(ok, "{flag}: {stderr}");
    }
}
