//! Backtests the way traders run them. A universe in one run (several files, a
//! pattern, a long file), a portfolio, any target column, the seed system's strategies under
//! market rules, and the tear sheet (checked in headless Chromium where it is installed).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;
use common::{chronos2, tiny_model};

/// Daily OHLC bars of a deterministic wavy walk: `n` rows from 2024-01-01, `seed` varies it.
fn bars(n: usize, seed: f64) -> Vec<[f64; 4]> {
    (0..n)
        .map(|i| {
            let t = i as f64;
            let close = 100.0 * (1.0 + 0.2 * (t * 0.23 + seed).sin() + 0.001 * t);
            let open = close * (1.0 + 0.004 * (t * 1.7 + seed).cos());
            let high = open.max(close) * (1.0 + 0.006 + 0.003 * (t * 0.9).sin().abs());
            let low = open.min(close) * (1.0 - 0.006 - 0.003 * (t * 1.3).cos().abs());
            [open, high, low, close]
        })
        .collect()
}

/// The date of day `i` after 2024-01-01 (2024 is a leap year; at most 366 days).
fn date(i: usize) -> String {
    let days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (mut month, mut day) = (0, i);
    while day >= days[month] {
        day -= days[month];
        month += 1;
    }
    format!("2024-{:02}-{:02}", month + 1, day + 1)
}

/// Writes `timestamp,open,high,low,close` bars.
fn ohlc_file(path: &Path, n: usize, seed: f64) {
    let mut text = String::from("timestamp,open,high,low,close\n");
    for (i, [o, h, l, c]) in bars(n, seed).iter().enumerate() {
        text.push_str(&format!("{},{o},{h},{l},{c}\n", date(i)));
    }
    std::fs::write(path, text).unwrap();
}

/// A temporary folder holding `X.csv` (60 bars of [`ohlc_file`] from `seed`): the folder (kept
/// alive by the caller), the file's path, an output folder `out` in it, and the tiny model.
fn one_symbol(seed: f64) -> (tempfile::TempDir, String, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("X.csv");
    ohlc_file(&data, 60, seed);
    let out = dir.path().join("out");
    (dir, data.to_str().unwrap().to_string(), out, tiny_model())
}

fn run(args: &[&str]) -> (bool, String, String) {
    chronos2(args)
}

fn report(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

fn small<'a>(model: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "backtest",
        "--model",
        model,
        "--out",
        out,
        "--windows",
        "6",
        "--context",
        "32",
        "--horizon",
        "3",
    ]
}

#[test]
fn a_pattern_of_files_is_one_universe_with_a_portfolio() {
    let dir = tempfile::tempdir().unwrap();
    ohlc_file(&dir.path().join("AAA.csv"), 70, 0.0);
    ohlc_file(&dir.path().join("BBB.csv"), 70, 1.5);
    let pattern = dir.path().join("*.csv");
    let out = dir.path().join("out");
    let model = tiny_model();
    let mut args = small(&model, out.to_str().unwrap());
    args.extend(["--data", pattern.to_str().unwrap(), "--target", "ohlc"]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("2 symbols") && stdout.contains("portfolio: 2 symbols, equal weights"),
        "{stdout}"
    );
    let r = report(&out);
    let labels: Vec<&str> = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["AAA", "BBB"]);
    // Every strategy ran on OHLC, buy and hold last; the portfolio has the same ones.
    let names: Vec<&str> = r["series"][0]["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "threshold",
            "confidence",
            "simple",
            "all_signals",
            "entry_takeprofit",
            "highlow",
            "maxdiff",
            "buy_and_hold"
        ]
    );
    let portfolio = r["portfolio"]["strategies"].as_array().unwrap();
    assert_eq!(portfolio.len(), names.len());
    // Equal weights: the portfolio's buy-and-hold return is the mean of the two symbols'.
    let hold = |s: &Value| s["strategies"][7]["metrics"]["total_return"].as_f64().unwrap();
    let mean = (hold(&r["series"][0]) + hold(&r["series"][1])) / 2.0;
    let total = portfolio[7]["metrics"]["total_return"].as_f64().unwrap();
    assert!((total - mean).abs() < 1e-9, "{total} vs {mean}");
    // The summary table: one row per symbol.
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 3, "{summary}");
    assert!(
        summary.starts_with(
            "symbol,windows,MAE (steps 1-3),MASE,skill vs naive (MAE over steps 1-3),DM p (step 1),favours (DM at step 1),"
        ),
        "{summary}"
    );
}

#[test]
fn a_long_file_with_a_short_symbol_finishes_and_names_it_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("date,symbol,close\n");
    for (symbol, n) in [("LONG1", 60), ("TINY", 20), ("LONG2", 60)] {
        for (i, b) in bars(n, n as f64).iter().enumerate() {
            text.push_str(&format!("{},{symbol},{}\n", date(i), b[3]));
        }
    }
    let data = dir.path().join("universe.csv");
    std::fs::write(&data, text).unwrap();
    let out = dir.path().join("out");
    let model = tiny_model();
    let mut args = small(&model, out.to_str().unwrap());
    args[6] = "20"; // --windows
    args.extend(["--data", data.to_str().unwrap()]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("skipped TINY: 20 bars cannot hold 20 windows"),
        "{stdout}"
    );
    assert!(stderr.contains("skipped TINY"), "{stderr}");
    let r = report(&out);
    assert_eq!(r["series"].as_array().unwrap().len(), 2);
    assert_eq!(r["skipped"][0]["label"], "TINY");
    args.push("--strict");
    let (ok, _, stderr) = run(&args);
    assert!(!ok);
    assert!(stderr.contains("TINY: 20 bars cannot hold 20 windows"), "{stderr}");
}

#[test]
fn a_shortened_context_is_reported_per_symbol_and_refused_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let (full, short) = (dir.path().join("FULL.csv"), dir.path().join("SHORT.csv"));
    ohlc_file(&full, 80, 0.3);
    // 6 windows of horizon 3 need the last 8 bars: the first origin is bar 28 of 36, so the
    // first window has 28 bars of context of 32.
    ohlc_file(&short, 36, 0.9);
    let out = dir.path().join("out");
    let model = tiny_model();
    let mut args = small(&model, out.to_str().unwrap());
    args.extend(["--data", full.to_str().unwrap(), "--data", short.to_str().unwrap()]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let note = "note: SHORT: the first windows have only 28 bars of context, fewer than --context 32";
    assert!(
        stderr.contains(note) && !stderr.contains("FULL: the first windows"),
        "{stderr}"
    );
    assert!(
        stdout.contains("shortened context: SHORT: the first windows have 28 bars of context, fewer than --context 32")
            && !stdout.contains("shortened context: FULL"),
        "{stdout}"
    );
    // One symbol: its block's header line says so.
    let one = dir.path().join("one");
    let mut single = small(&model, one.to_str().unwrap());
    single.extend(["--data", short.to_str().unwrap()]);
    let (ok, stdout, stderr) = run(&single);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("| context from 28 bars (shortened: the series starts too late)"),
        "{stdout}"
    );
    let r = report(&out);
    let contexts: Vec<u64> = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["shortest_context"].as_u64().unwrap())
        .collect();
    assert_eq!(contexts, [32, 28]);
    args.push("--strict");
    let (ok, _, stderr) = run(&args);
    assert!(
        !ok && stderr.contains("SHORT: the first window has only 28 bars of context, fewer than --context 32"),
        "{stderr}"
    );
}

#[test]
fn annualisation_states_its_basis_and_the_flag_overrides_it() {
    let (_dir, data, out, model) = one_symbol(0.2);
    let mut args = small(&model, out.to_str().unwrap());
    args.extend(["--data", &data]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    // Daily bars every day of the week: 365 a year.
    assert!(
        stdout.contains("| 365 bars/year (365 days a year / 86400 s bars) |"),
        "{stdout}"
    );
    assert_eq!(
        report(&out)["series"][0]["annualised_by"],
        "365 days a year / 86400 s bars"
    );
    args.extend(["--periods-per-year", "252"]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("| 252 bars/year (--periods-per-year 252) |"),
        "{stdout}"
    );
    let last = args.len() - 1;
    args[last] = "0";
    let (ok, _, stderr) = run(&args);
    assert!(
        !ok && stderr.contains("--periods-per-year 0 must be a positive number"),
        "{stderr}"
    );
}

#[test]
fn a_yahoo_file_backtests_its_adjusted_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
    for (i, [o, h, l, c]) in bars(60, 0.3).iter().enumerate() {
        // Adjusted prices: 0.8 of the quoted ones (a dividend history).
        text.push_str(&format!("{},{o},{h},{l},{c},{},{}\n", date(i), 0.8 * c, 1000 + i));
    }
    let data = dir.path().join("YHOO.csv");
    std::fs::write(&data, text).unwrap();
    let out = dir.path().join("out");
    let model = tiny_model();
    let mut args = small(&model, out.to_str().unwrap());
    args.extend([
        "--data",
        data.to_str().unwrap(),
        "--target",
        "Adj Close",
        "--strategies",
        "simple,highlow",
    ]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("target Adj Close"), "{stdout}");
    // highlow needs high and low forecasts: reported, not run.
    assert!(
        stdout.contains("highlow: not run: needs high and low forecasts") && stdout.contains("--target ohlc"),
        "{stdout}"
    );
    let r = report(&out);
    let w = &r["series"][0]["windows"][0];
    let origin = w["origin"].as_u64().unwrap() as usize;
    let expected = 0.8 * bars(60, 0.3)[origin][3];
    assert!(
        (w["actual"][0].as_f64().unwrap() - expected).abs() < 1e-9,
        "scored against Adj Close"
    );
    // The naive forecast predicts no move: its direction hit rate is n/a (null), not 0.
    assert!(r["series"][0]["baselines"][0][1]["direction_hit_rate"].is_null());
    assert!(stdout.contains("n/a"), "{stdout}");
}

#[test]
fn csv_outputs_carry_times_prices_and_the_forecast_quantile_names() {
    let (_dir, data, out, model) = one_symbol(0.7);
    let mut args = small(&model, out.to_str().unwrap());
    args.extend(["--data", &data, "--target", "ohlc", "--quantiles", "0.1,0.5,0.9"]);
    let (ok, _, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let forecasts = std::fs::read_to_string(out.join("forecasts.csv")).unwrap();
    assert!(
        forecasts.starts_with(
            "series,origin_time,target_time,step,context_first_time,context_last_time,bar,actual,median,0.1,0.5,0.9,"
        ),
        "{forecasts}"
    );
    // Window 1: origin bar 52 of 60 (6 windows of horizon 3 end at the last bar), context
    // bars 20..=51: its first row.
    let first: Vec<&str> = forecasts.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(
        &first[1..7],
        [date(52), date(52), "1".into(), date(20), date(51), "52".into()]
    );
    let trades = std::fs::read_to_string(out.join("trades.csv")).unwrap();
    assert!(trades.starts_with("series,strategy,direction,entry_time,entry_price,exit_time,exit_price,"));
    let row: Vec<&str> = trades.lines().nth(1).expect("a trade").split(',').collect();
    assert!(row[3].starts_with("2024-") && row[5].starts_with("2024-"), "{row:?}");
    assert!(row[4].parse::<f64>().unwrap() > 0.0 && row[6].parse::<f64>().unwrap() > 0.0);
}

#[test]
fn tz_sets_the_zone_of_every_backtest_output() {
    let (dir, data, out, model) = one_symbol(0.7);
    let mut args = small(&model, out.to_str().unwrap());
    args.extend(["--data", &data, "--tz", "America/New_York"]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    // Midnight UTC is 19:00 the day before in New York (winter: UTC-5).
    let forecasts = std::fs::read_to_string(out.join("forecasts.csv")).unwrap();
    let first: Vec<&str> = forecasts.lines().nth(1).unwrap().split(',').collect();
    assert!(first[1].ends_with(" 19:00:00-05:00"), "{first:?}");
    let trades = std::fs::read_to_string(out.join("trades.csv")).unwrap();
    let trade: Vec<&str> = trades.lines().nth(1).expect("a trade").split(',').collect();
    assert!(
        trade[3].ends_with("-05:00") && trade[5].ends_with("-05:00"),
        "{trade:?}"
    );
    let portfolio = std::fs::read_to_string(out.join("portfolio.csv")).unwrap();
    assert!(
        portfolio
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .ends_with("-05:00"),
        "{portfolio}"
    );
    assert!(stdout.contains(" 19:00:00-05:00 .. "), "{stdout}");
    assert_eq!(report(&out)["time_zone"], "America/New_York");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("19:00:00-05:00"), "the tear sheet prints New York times");
    // Without --tz: UTC, as before.
    let plain = dir.path().join("plain");
    let (ok, _, stderr) = run(&small(&model, plain.to_str().unwrap())
        .into_iter()
        .chain(["--data", data.as_str()])
        .collect::<Vec<_>>());
    assert!(ok, "{stderr}");
    assert_eq!(report(&plain)["time_zone"], "UTC");
}

#[test]
fn weights_split_the_capital_and_bad_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("AAA.csv"), dir.path().join("BBB.csv"));
    ohlc_file(&a, 60, 0.0);
    ohlc_file(&b, 60, 2.0);
    let weights = dir.path().join("weights.csv");
    std::fs::write(&weights, "symbol,weight\nAAA,3\nBBB,1\n").unwrap();
    let out = dir.path().join("out");
    let model = tiny_model();
    let mut args = small(&model, out.to_str().unwrap());
    args.extend(["--data", a.to_str().unwrap(), "--data", b.to_str().unwrap()]);
    args.extend(["--weights", weights.to_str().unwrap()]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("weights from --weights"), "{stdout}");
    let r = report(&out);
    assert_eq!(r["portfolio"]["weights"][0][1], 0.75);
    let hold = |s: &Value| {
        s["strategies"].as_array().unwrap().last().unwrap()["metrics"]["total_return"]
            .as_f64()
            .unwrap()
    };
    let expected = 0.75 * hold(&r["series"][0]) + 0.25 * hold(&r["series"][1]);
    let total = r["portfolio"]["strategies"].as_array().unwrap().last().unwrap()["metrics"]["total_return"]
        .as_f64()
        .unwrap();
    assert!((total - expected).abs() < 1e-9, "{total} vs {expected}");
    std::fs::write(&weights, "AAA,1\nZZZ,1\n").unwrap();
    let (ok, _, stderr) = run(&args);
    assert!(!ok && stderr.contains("--weights names `ZZZ`"), "{stderr}");
}

#[test]
fn market_rule_flags_are_checked_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("X.csv");
    ohlc_file(&data, 60, 0.0);
    let out = dir.path().join("out");
    let model = tiny_model();
    for (extra, needle) in [
        (
            vec!["--fill-at", "next-open"],
            "--fill-at next-open needs the bars' opens; pass `--target ohlc`",
        ),
        (vec!["--fill-at", "noon"], "unknown --fill-at `noon`"),
        (vec!["--strategies", "simple,magic"], "unknown strategy `magic`"),
        (vec!["--spread-bps", "5000"], "--spread-bps must be between 0 and 1000"),
        (vec!["--target", "open,close"], "--target `open,close`"),
        (vec!["--quantiles", "0.2,0.8"], "--interval"),
    ] {
        let mut args = small(&model, out.to_str().unwrap());
        args.extend(["--data", data.to_str().unwrap()]);
        args.extend(extra.iter().copied());
        let (ok, _, stderr) = run(&args);
        assert!(!ok && stderr.contains(needle), "{extra:?}: {stderr}");
    }
    // --long-only is --no-short: no short trade, and a strategy kept flat by it says so.
    let mut args = small(&model, out.to_str().unwrap());
    args.extend([
        "--data",
        data.to_str().unwrap(),
        "--long-only",
        "--target",
        "ohlc",
        "--fill-at",
        "next-open",
    ]);
    args.extend(["--spread-bps", "4"]);
    let (ok, _, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let r = report(&out);
    assert_eq!(r["options"]["strategy"]["no_short"], true);
    assert_eq!(r["options"]["strategy"]["sim"]["fill_at"], "next-open");
    for s in r["series"][0]["strategies"].as_array().unwrap() {
        for t in s["path"]["trades"].as_array().unwrap() {
            assert_eq!(t["direction"], 1, "{} shorted", s["name"]);
        }
    }
}

/// Chromium, where it is installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The tear sheet in a real browser: every element of the report's specification is in the
/// rendered DOM (after the page's script ran).
#[test]
fn the_tear_sheet_renders_every_element_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: no chromium at /usr/bin/chromium (apt-get install -y chromium to run this test)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    ohlc_file(&dir.path().join("AAA.csv"), 70, 0.0);
    ohlc_file(&dir.path().join("BBB.csv"), 70, 1.0);
    let out = dir.path().join("out");
    let model = tiny_model();
    let pattern = dir.path().join("*.csv");
    let mut args = small(&model, out.to_str().unwrap());
    // A threshold no forecast reaches: that strategy has no trades to explain.
    args.extend([
        "--data",
        pattern.to_str().unwrap(),
        "--target",
        "ohlc",
        "--threshold",
        "0.9",
    ]);
    let (ok, _, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let profile = dir.path().join("profile");
    let dump = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dom = String::from_utf8_lossy(&dump.stdout);
    for (what, needle) in [
        ("the model's name on its row", format!("<td>{model}</td>").as_str()),
        ("axis titles", "class=\"axis-title x-axis\""),
        ("fill assumptions", "class=\"assumptions\">Fills:"),
        ("y axis units", "equity (currency units)"),
        ("price chart", "class=\"price-chart\""),
        ("entry markers", "class=\"entry-marker\""),
        ("exit markers", "class=\"exit-marker\""),
        ("P&L per trade", "class=\"trade-pnl\""),
        ("trade list", "class=\"trade-list sortable\""),
        ("trade dates", "<td>2024-03-"),
        ("portfolio equity vs buy and hold", "class=\"portfolio-equity\""),
        ("verdict per symbol", "class=\"verdict\">Diebold-Mariano"),
        ("zero trades explained", "threshold: no trades: no window met its rule"),
        ("small-sample warning", "class=\"sample-warning\""),
        ("sortable summary", "class=\"summary sortable\""),
        ("the sort script ran", "title=\"sort\""),
        ("naive direction n/a", "<td>n/a</td>"),
    ] {
        assert!(dom.contains(needle), "{what}: `{needle}` not in the rendered page");
    }
    assert_eq!(dom.matches("class=\"verdict\"").count(), 2, "one verdict per symbol");
}

#[test]
fn covariates_reach_the_model_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("date,close,promo\n");
    for (i, b) in bars(60, 0.9).iter().enumerate() {
        text.push_str(&format!("{},{},{}\n", date(i), b[3], (i % 5 == 0) as u8));
    }
    let data = dir.path().join("sales.csv");
    std::fs::write(&data, text).unwrap();
    let model = tiny_model();
    let medians = |extra: &[&str]| -> Value {
        let out = dir.path().join("out");
        let mut args = small(&model, out.to_str().unwrap());
        args.extend(["--data", data.to_str().unwrap()]);
        args.extend(extra.iter().copied());
        let (ok, _, stderr) = run(&args);
        assert!(ok, "{extra:?}: {stderr}");
        let r = report(&out);
        r["series"][0]["windows"][0]["median"].clone()
    };
    let alone = medians(&[]);
    let past = medians(&["--covariates", "promo"]);
    let future = medians(&["--covariates", "promo", "--future-covariates", "promo"]);
    assert_ne!(alone, past, "a past covariate changes the forecast");
    assert_ne!(past, future, "its known future values change it again");
    let out = dir.path().join("out");
    let mut args = small(&model, out.to_str().unwrap());
    args.extend([
        "--data",
        data.to_str().unwrap(),
        "--covariates",
        "promo",
        "--future-covariates",
        "price",
    ]);
    let (ok, _, stderr) = run(&args);
    assert!(
        !ok && stderr.contains("--future-covariates `price` is not among --covariates"),
        "{stderr}"
    );
    let mut args = small(&model, out.to_str().unwrap());
    args.extend(["--data", data.to_str().unwrap(), "--covariates", "weather"]);
    let (ok, _, stderr) = run(&args);
    assert!(!ok && stderr.contains("weather"), "{stderr}");
}

/// SIGINT or SIGTERM in a long backtest: one line saying so, exit code 128 + the signal, and
/// neither an empty output folder nor a half-written file left behind.
#[cfg(unix)]
#[test]
fn an_interrupted_backtest_says_so_and_leaves_no_empty_folder() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report");
        let child = Command::new(env!("CARGO_BIN_EXE_chronos2"))
            .args([
                "backtest",
                "--out",
                out.to_str().unwrap(),
                "--windows",
                "1500",
                "--context",
                "512",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The folder is made (and checked) before the run starts; interrupt the run then.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !out.exists() {
            assert!(std::time::Instant::now() < deadline, "the output folder never appeared");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "interrupted by SIG{signal}: stopped; nothing was written; the empty folder "
            )) && stderr.contains(" it had created removed"),
            "{stderr}"
        );
        assert!(!out.exists(), "the empty output folder is left");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing else is left"
        );
    }
}
