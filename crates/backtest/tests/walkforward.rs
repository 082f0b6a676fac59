//! Walk-forward invariants: no look-ahead, windows scored against exactly the bars they
//! forecast, long-only never shorts, no trades means no return and no fees, fees only hurt.

mod common;

use chronos2_backtest::walkforward::{baselines, origins};
use chronos2_backtest::{backtest_series, BacktestOptions, SeriesBacktest, Timing};

use common::{model, options_sized, prices, series};

fn options() -> BacktestOptions {
    options_sized(64, 5, 30)
}

fn run(closes: Vec<f64>, options: &BacktestOptions) -> SeriesBacktest {
    let mut timing = Timing::default();
    backtest_series(&model(), &series(closes), "test", options, &mut |_, _| {}, &mut timing).unwrap()
}

#[test]
fn changing_bars_after_an_origin_never_changes_its_forecast() {
    let closes = prices(200);
    let base = run(closes.clone(), &options());
    let cut = base.windows[12].origin;
    let mut changed = closes;
    for v in &mut changed[cut..] {
        *v *= 3.0;
    }
    let after = run(changed, &options());
    for (a, b) in base.windows.iter().zip(&after.windows) {
        if a.origin <= cut {
            assert_eq!(a.median, b.median, "window at {} saw bars from {cut} on", a.origin);
            assert_eq!(a.quantiles, b.quantiles);
        }
    }
    assert_ne!(
        base.windows[20].median, after.windows[20].median,
        "later windows do see the change"
    );
}

#[test]
fn windows_are_scored_against_exactly_the_bars_they_forecast() {
    let closes = prices(150);
    let result = run(closes.clone(), &options());
    let origins = origins(150, &options()).unwrap();
    assert_eq!(origins.len(), 30);
    assert_eq!(
        *origins.last().unwrap(),
        150 - 5,
        "default origins: the last windows with a full horizon"
    );
    for w in &result.windows {
        assert_eq!(w.actual, closes[w.origin..w.origin + 5]);
        assert_eq!(w.last_close, closes[w.origin - 1]);
        let [naive, _, _] = baselines(&closes[w.origin - 64..w.origin], 5, 7);
        assert_eq!(w.naive, naive);
    }
}

#[test]
fn long_only_never_shorts() {
    let mut o = options();
    o.strategy.no_short = true;
    o.strategy.threshold = 0.0;
    let result = run(prices(150), &o);
    for s in &result.strategies {
        assert!(s.path.trades.iter().all(|t| t.direction == 1), "{} shorted", s.name);
    }
}

#[test]
fn no_trades_means_zero_return_and_zero_fees() {
    let mut o = options();
    o.strategy.threshold = 1e9;
    let result = run(prices(150), &o);
    let threshold = &result.strategies[0];
    assert_eq!(threshold.metrics.trades, 0);
    assert_eq!(threshold.metrics.total_return, 0.0);
    assert_eq!(threshold.metrics.total_costs, 0.0);
}

#[test]
fn higher_fees_never_raise_returns() {
    let mut previous = f64::INFINITY;
    for fee in [0.0, 5.0, 25.0, 100.0] {
        let mut o = options();
        o.strategy.sim.fee_bps = fee;
        let total = run(prices(150), &o).strategies[0].metrics.total_return;
        assert!(total <= previous);
        previous = total;
    }
}

#[test]
fn impossible_setups_are_clear_errors() {
    let mut o = options();
    o.windows = 500;
    let err = origins(150, &o).unwrap_err().to_string();
    assert!(err.contains("cannot hold 500 windows"), "{err}");
    o.windows = 3;
    o.strategy.trade_step = 9;
    let mut timing = Timing::default();
    let err = backtest_series(&model(), &series(prices(150)), "x", &o, &mut |_, _| {}, &mut timing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--trade-step"), "{err}");
    let mut o = options();
    o.strategy.interval = (0.25, 0.9);
    let err = backtest_series(&model(), &series(prices(150)), "x", &o, &mut |_, _| {}, &mut timing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("confidence interval"), "{err}");
}

#[test]
fn a_missing_close_in_the_scored_span_is_a_clear_error_and_gaps_in_context_are_fine() {
    let mut closes = prices(150);
    closes[140] = f64::NAN;
    let mut timing = Timing::default();
    let err = backtest_series(
        &model(),
        &series(closes.clone()),
        "x",
        &options(),
        &mut |_, _| {},
        &mut timing,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("close at bar 140") && err.contains("--first-origin"),
        "{err}"
    );
    // A gap before the first window's last context bar only reaches the model, which masks it.
    let mut closes = prices(150);
    closes[60] = f64::NAN;
    let result = run(closes, &options());
    assert!(result.model.mae.is_finite());
}

#[test]
fn a_dated_first_origin_is_the_first_bar_at_or_after_the_date() {
    use chronos2_backtest::walkforward::{first_bar_at_or_after, DatedOriginError};
    let bars = series(prices(5)).timestamps; // daily at 22:13:20 UTC from 2023-11-14
    assert_eq!(first_bar_at_or_after(&bars, "2023-11-16"), Ok(2));
    assert_eq!(first_bar_at_or_after(&bars, "2023-11-15T12:00:00"), Ok(1));
    assert_eq!(
        first_bar_at_or_after(&bars, "2024-01-01"),
        Err(DatedOriginError::AfterLastBar)
    );
    assert_eq!(first_bar_at_or_after(&bars, "soon"), Err(DatedOriginError::Unreadable));
}

/// The windows of a universe share model calls, and progress is reported after
/// each call.
#[test]
fn windows_of_several_series_share_model_calls() {
    use chronos2_backtest::run_backtest;
    use chronos2_data::{DataSource, LoadOptions};
    // Three symbols of 80 daily bars in one long file.
    let mut csv = String::from("date,symbol,close\n");
    for symbol in ["A", "B", "C"] {
        for (i, c) in prices(80).iter().enumerate() {
            csv.push_str(&format!("2024-{:02}-{:02},{symbol},{c}\n", 1 + i / 28, 1 + i % 28));
        }
    }
    let mut o = options_sized(32, 3, 3);
    o.batch_size = 8; // one row per window: 8 windows per call
    let mut calls = Vec::new();
    let run = run_backtest(
        &model(),
        "tiny",
        &[DataSource::Bundled {
            name: "u.csv",
            bytes: csv.as_bytes(),
        }],
        &LoadOptions::columns(&["close"]),
        &o,
        None,
        &mut |done, total| calls.push((done, total)),
    )
    .unwrap();
    assert_eq!(run.series.len(), 3);
    // 9 windows in calls of 8: two calls, not one or more per symbol.
    assert_eq!(run.timing.model_calls, 2);
    assert_eq!(calls, [(8, 9), (9, 9)]);
}
