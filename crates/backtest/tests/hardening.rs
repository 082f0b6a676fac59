//! Hardening: no panic, no silent garbage, nothing of the user's overwritten.
//! One test per case: HTML escaping, CSV quoting, atomic writes and the output-folder check,
//! overflow-safe origins, trading settings, non-positive and out-of-range prices, the context
//! bound.

mod common;

use chronos2_backtest::portfolio::{portfolio, weights_for};
use chronos2_backtest::report::{check_output_dir, write_outputs, OUTPUT_FILES};
use chronos2_backtest::tearsheet::html;
use chronos2_backtest::walkforward::origins;
use chronos2_backtest::{backtest_series, run_backtest, BacktestOptions, BacktestRun, Timing};
use chronos2_data::{DataSource, LoadOptions};

use common::{model, options_sized, prices, series};

const HOSTILE: &str = "<img src=x onerror=alert(1)>,\"q\"\nx";

fn options() -> BacktestOptions {
    options_sized(32, 3, 4)
}

fn backtest(closes: Vec<f64>, label: &str, options: &BacktestOptions) -> Result<BacktestRun, String> {
    let mut timing = Timing::default();
    let series = backtest_series(&model(), &series(closes), label, options, &mut |_, _| {}, &mut timing)
        .map_err(|e| e.to_string())?;
    let weights = weights_for(&[label], None).unwrap();
    let series = vec![series];
    Ok(BacktestRun {
        data: format!("{HOSTILE}.csv"),
        model: HOSTILE.into(),
        options: options.clone(),
        portfolio: portfolio(&series, weights, options.strategy.sim.initial_equity),
        series,
        skipped: Vec::new(),
        timing,
        data_notes: Vec::new(),
        zone: None,
    })
}

fn error(closes: Vec<f64>, options: &BacktestOptions) -> String {
    backtest(closes, "x", options).unwrap_err()
}

#[test]
fn user_text_is_escaped_everywhere_in_the_html_report() {
    let run = backtest(prices(80), HOSTILE, &options()).unwrap();
    let page = html(&run, "");
    assert!(!page.contains("<img"), "unescaped user text in the report");
    assert!(page.contains("<h2>&lt;img src=x onerror=alert(1)&gt;,&quot;q&quot;\nx</h2>"));
}

#[test]
fn csv_outputs_quote_ids_with_commas_quotes_and_newlines() {
    let run = backtest(prices(80), HOSTILE, &options()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_outputs(&run, dir.path(), "").unwrap();
    for (file, columns) in [("forecasts.csv", 21), ("trades.csv", 12), ("summary.csv", 11)] {
        let mut reader = csv::Reader::from_path(dir.path().join(file)).unwrap();
        assert_eq!(reader.headers().unwrap().len(), columns, "{file}");
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert!(!records.is_empty(), "{file} has rows");
        for record in records {
            assert_eq!(record.len(), columns, "{file}");
            assert_eq!(&record[0], HOSTILE, "{file}");
        }
    }
}

#[test]
fn outputs_are_replaced_whole_and_leave_no_temporary_files() {
    let run = backtest(prices(80), "s", &options()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.json"), "stale").unwrap();
    std::fs::write(dir.path().join("mine.txt"), "the user's").unwrap();
    write_outputs(&run, dir.path(), "").unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = OUTPUT_FILES.iter().map(|s| s.to_string()).collect();
    expected.push("mine.txt".into());
    expected.sort();
    assert_eq!(names, expected);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["series"][0]["label"], "s");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mine.txt")).unwrap(),
        "the user's"
    );
}

#[test]
fn an_unwritable_output_folder_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = check_output_dir(&file).unwrap_err().to_string();
    assert!(err.contains("a-file") && err.contains("not a folder"), "{err}");
    let err = check_output_dir(&file.join("below")).unwrap_err().to_string();
    assert!(err.contains("below"), "{err}");
    check_output_dir(&dir.path().join("new/nested")).unwrap();
    assert_eq!(std::fs::read_dir(dir.path().join("new/nested")).unwrap().count(), 0);
}

#[test]
fn huge_windows_steps_horizons_and_origins_never_wrap() {
    let mut o = options();
    o.windows = 9_223_372_036_854_775_809;
    o.step = 2;
    assert!(origins(150, &o).unwrap_err().to_string().contains("cannot hold"));
    let mut o = options();
    o.horizon = usize::MAX;
    assert!(origins(150, &o).is_err());
    let mut o = options();
    o.first_origin = Some(usize::MAX - 1);
    assert!(origins(150, &o).unwrap_err().to_string().contains("do not fit"));
    let mut o = options();
    o.horizon = 1_000_000_000;
    o.strategy.trade_step = 1;
    assert!(error(prices(80), &o).contains("cannot hold"));
}

#[test]
fn zero_settings_are_refused_not_reinterpreted() {
    for (flag, set) in [
        (
            "--step",
            (|o: &mut BacktestOptions| o.step = 0) as fn(&mut BacktestOptions),
        ),
        ("--season", |o| o.season = Some(0)),
        ("--context", |o| o.context = 0),
        ("--batch-size", |o| o.batch_size = 0),
    ] {
        let mut o = options();
        set(&mut o);
        let err = error(prices(80), &o);
        assert!(err.starts_with(flag) && err.contains("at least 1"), "{err}");
    }
}

#[test]
fn nonsense_trading_settings_are_refused() {
    for (flag, set) in [
        (
            "--threshold",
            (|o: &mut BacktestOptions| o.strategy.threshold = f64::NAN) as fn(&mut BacktestOptions),
        ),
        ("--threshold", |o| o.strategy.threshold = -0.01),
        ("--fee-bps", |o| o.strategy.sim.fee_bps = f64::INFINITY),
        ("--fee-bps", |o| o.strategy.sim.fee_bps = 1e6),
        ("--slippage-bps", |o| o.strategy.sim.slippage_bps = f64::NAN),
        ("--fraction", |o| o.strategy.sim.fraction = 11.0),
    ] {
        let mut o = options();
        set(&mut o);
        let err = error(prices(80), &o);
        assert!(err.starts_with(flag), "{flag}: {err}");
    }
}

#[test]
fn zero_or_negative_prices_are_not_traded() {
    let mut closes = prices(80);
    closes[78] = 0.0;
    let err = error(closes, &options());
    assert!(
        err.contains("close at bar 78") && err.contains("positive prices"),
        "{err}"
    );
    let mut closes = prices(80);
    closes[77] = -5.0;
    assert!(error(closes, &options()).contains("close at bar 77"));
}

#[test]
fn values_outside_the_model_range_are_refused_naming_the_bar() {
    for bad in [f64::INFINITY, f64::NEG_INFINITY, 1e308] {
        let mut closes = prices(80);
        closes[60] = bad;
        let err = error(closes, &options());
        assert!(
            err.contains("bar 60") && err.contains("outside the model's range"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn leverage_cannot_take_equity_below_zero() {
    // A crash of 50 % under 10x leverage: the long strategies go bankrupt, equity stays at 0.
    let mut closes = prices(80);
    for v in &mut closes[75..] {
        *v *= 0.5;
    }
    let mut o = options();
    o.strategy.sim.fraction = 10.0;
    let run = backtest(closes, "s", &o).unwrap();
    let hold = run.series[0]
        .strategies
        .iter()
        .find(|s| s.name == "buy_and_hold")
        .unwrap();
    assert_eq!(hold.metrics.total_return, -1.0);
    assert!(hold.path.bankrupt_at.is_some());
    for s in &run.series[0].strategies {
        assert!(s.path.equity.iter().all(|&e| e >= 0.0), "{} went negative", s.name);
    }
    let text = chronos2_backtest::report::summary(&run);
    assert!(text.contains("buy_and_hold: equity reached 0 at 2024-01-"), "{text}");
}

#[test]
fn a_context_beyond_the_model_is_bounded_and_reported_as_used() {
    let csv: String = std::iter::once("date,close\n".to_string())
        .chain(
            prices(80)
                .iter()
                .enumerate()
                .map(|(i, c)| format!("2024-{:02}-{:02},{c}\n", 1 + i / 28, 1 + i % 28)),
        )
        .collect();
    let mut o = options();
    o.context = 1_000_000_000;
    let model = model();
    let run = run_backtest(
        &model,
        "tiny",
        &[DataSource::Bundled {
            name: "x.csv",
            bytes: csv.as_bytes(),
        }],
        &LoadOptions::columns(&["close"]),
        &o,
        None,
        &mut |_, _| {},
    )
    .unwrap();
    let limit = chronos2::ForwardPass::config(&model).context_length;
    assert_eq!(run.options.context, limit);
    assert!(
        run.data_notes.iter().any(|n| n.contains("--context 1000000000")),
        "{:?}",
        run.data_notes
    );
}
