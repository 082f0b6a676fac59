//! Fixtures shared by the backtest tests: the tiny model and synthetic daily series.

use std::path::Path;

use chronos2::Chronos2Model;
use chronos2_backtest::trading::{FillAt, SimConfig};
use chronos2_backtest::walkforward::LEVELS;
use chronos2_backtest::{BacktestOptions, StrategyOptions, Target};
use chronos2_data::{Calendar, Series};

/// The re-randomised tiny fixture model.
pub fn model() -> Chronos2Model {
    Chronos2Model::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../chronos2/tests/fixtures/reference/models/tiny-random"),
    )
    .unwrap()
}

/// A daily series of these closes.
pub fn series(closes: Vec<f64>) -> Series {
    Series {
        id: None,
        timestamps: (0..closes.len() as i64).map(|i| 1_700_000_000 + i * 86_400).collect(),
        columns: vec![("close".into(), closes)],
        calendar: Calendar {
            step: 86_400,
            weekdays_only: false,
        },
        filled: 0,
    }
}

/// `n` positive, trending, oscillating prices.
pub fn prices(n: usize) -> Vec<f64> {
    (0..n)
        .map(|t| 100.0 * (1.0 + 0.3 * (t as f64 * 0.21).sin() + 0.002 * t as f64))
        .collect()
}

/// Walk-forward options for the tests: these sizes, close alone, season 7, the threshold (0.1 %)
/// and confidence strategies, 10 + 5 bps costs.
pub fn options_sized(context: usize, horizon: usize, windows: usize) -> BacktestOptions {
    BacktestOptions {
        context,
        horizon,
        windows,
        step: 1,
        first_origin: None,
        season: Some(7),
        periods_per_year: None,
        target: Target::Column("close".into()),
        covariates: Vec::new(),
        future_covariates: Vec::new(),
        quantiles: LEVELS.to_vec(),
        batch_size: 8,
        strict: false,
        strategy: StrategyOptions {
            trade_step: 1,
            threshold: 0.001,
            interval: (0.1, 0.9),
            no_short: false,
            strategies: vec!["threshold".into(), "confidence".into()],
            sim: SimConfig {
                fraction: 1.0,
                fee_bps: 10.0,
                slippage_bps: 5.0,
                spread_bps: 0.0,
                hold: 1,
                initial_equity: 10_000.0,
                fill_at: FillAt::Close,
            },
        },
    }
}
