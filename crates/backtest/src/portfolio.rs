//! The portfolio of a universe: capital split across symbols by weight (equal by default),
//! each symbol traded with its own costs, one equity curve per strategy on the union of the
//! symbols' bar times.
//!
//! With weights `w_s` (summing to 1) and each symbol's equity path `E_s(t)` started from the
//! same initial capital `C`, the portfolio's value is `V(t) = Σ w_s · E_s(t)`: symbol `s`
//! trades `w_s · C` and compounds on it, with no rebalancing between symbols. Before its first
//! traded bar a symbol holds its cash (`E_s = C`), after its last it keeps its final equity.
//! Returns are `V(t) / V(t-1) - 1`; trades keep their own returns, with PnL and costs scaled by
//! `w_s`; exposure is the capital-weighted mean of the symbols' exposures; the year has the
//! most bars of any symbol's calendar.

use std::path::Path;

use serde::Serialize;

use crate::trading::{SimResult, Trade, TradingMetrics};
use crate::walkforward::SeriesBacktest;
use crate::BacktestError;

/// One strategy over the whole portfolio.
#[derive(Clone, Debug, Serialize)]
pub struct PortfolioStrategy {
    /// The strategy's name.
    pub name: String,
    /// Portfolio value after each time of [`Portfolio::times`].
    pub equity: Vec<f64>,
    /// Its metrics.
    pub metrics: TradingMetrics,
}

/// The portfolio of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Portfolio {
    /// Each symbol's weight (summing to 1), in series order.
    pub weights: Vec<(String, f64)>,
    /// The union of the symbols' traded bar times.
    pub times: Vec<i64>,
    /// Strategies that ran on every symbol, in the first symbol's order (buy and hold last).
    pub strategies: Vec<PortfolioStrategy>,
}

/// Reads a weights file: CSV lines `symbol,weight` (a header line whose weight is not a number
/// is skipped). Weights must be finite and non-negative, and each symbol appear once.
///
/// # Errors
/// [`BacktestError::Setup`] naming the file, the line and the fix.
pub fn read_weights(path: &Path) -> Result<Vec<(String, f64)>, BacktestError> {
    let text = std::fs::read_to_string(path).map_err(|source| BacktestError::Write {
        path: path.display().to_string(),
        source,
    })?;
    let mut weights: Vec<(String, f64)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |what: String| BacktestError::Setup(format!("{} line {}: {what}", path.display(), i + 1));
        if line.trim().is_empty() {
            continue;
        }
        let (symbol, weight) = line
            .rsplit_once(',')
            .ok_or_else(|| bad("expected `symbol,weight`".into()))?;
        let symbol = symbol.trim().trim_matches('"').to_string();
        let weight = match weight.trim().parse::<f64>() {
            Ok(w) => w,
            Err(_) if i == 0 => continue, // a header
            Err(_) => {
                return Err(bad(format!(
                    "cannot read the weight `{}`; expected a number",
                    weight.trim()
                )))
            }
        };
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(bad(format!(
                "the weight of `{symbol}` is {weight}; weights must be finite and non-negative"
            )));
        }
        if weights.iter().any(|(s, _)| *s == symbol) {
            return Err(bad(format!("`{symbol}` is listed twice; give each symbol one weight")));
        }
        weights.push((symbol, weight));
    }
    Ok(weights)
}

/// The weights of `labels`: equal without `given`; else the given ones, normalised to sum 1.
///
/// # Errors
/// [`BacktestError::Setup`] when a symbol has no weight, a weight names no symbol of the run,
/// or the weights sum to 0.
pub fn weights_for(labels: &[&str], given: Option<&[(String, f64)]>) -> Result<Vec<(String, f64)>, BacktestError> {
    let Some(given) = given else {
        let w = 1.0 / labels.len().max(1) as f64;
        return Ok(labels.iter().map(|l| (l.to_string(), w)).collect());
    };
    if let Some((unknown, _)) = given.iter().find(|(s, _)| !labels.contains(&s.as_str())) {
        return Err(BacktestError::Setup(format!(
            "--weights names `{unknown}`, which is not a symbol of this run (symbols: {}); remove it or fix the name",
            labels.join(", ")
        )));
    }
    let raw: Vec<f64> = labels
        .iter()
        .map(|l| {
            given.iter().find(|(s, _)| s == l).map(|(_, w)| *w).ok_or_else(|| {
                BacktestError::Setup(format!(
                    "--weights gives no weight for `{l}`; give every symbol of the run a weight"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let total: f64 = raw.iter().sum();
    if total <= 0.0 {
        return Err(BacktestError::Setup(
            "--weights sum to 0; give some symbol a positive weight".into(),
        ));
    }
    Ok(labels
        .iter()
        .zip(raw)
        .map(|(l, w)| (l.to_string(), w / total))
        .collect())
}

/// One symbol's part of a portfolio.
pub struct Holding<'a> {
    /// The time of each point of the path's equity.
    pub times: Vec<i64>,
    /// The symbol's simulated path (from the full initial capital).
    pub path: &'a SimResult,
    /// Its weight.
    pub weight: f64,
    /// Its exposure (share of bars in the market).
    pub exposure: f64,
}

/// The union of the holdings' times and the portfolio's path on it (see the module doc).
pub fn combine(holdings: &[Holding<'_>], initial: f64) -> (Vec<i64>, SimResult) {
    let mut times: Vec<i64> = holdings.iter().flat_map(|h| h.times.iter().copied()).collect();
    times.sort_unstable();
    times.dedup();
    let mut value = vec![0.0; times.len()];
    let (mut trades, mut costs, mut exposure) = (Vec::<Trade>::new(), 0.0, 0.0);
    for h in holdings {
        // Walk the union timeline with the symbol's path, holding its last equity.
        let (mut k, mut held) = (0, initial);
        for (slot, &t) in value.iter_mut().zip(&times) {
            while k < h.path.equity.len() && h.times.get(k).is_some_and(|&tk| tk <= t) {
                held = h.path.equity[k];
                k += 1;
            }
            *slot += h.weight * held;
        }
        trades.extend(h.path.trades.iter().map(|t| Trade {
            pnl: h.weight * t.pnl,
            costs: h.weight * t.costs,
            ..*t
        }));
        costs += h.weight * h.path.total_costs;
        exposure += h.weight * h.exposure.max(0.0);
    }
    let returns = value
        .iter()
        .scan(initial, |previous, &v| {
            let r = if *previous > 0.0 { v / *previous - 1.0 } else { 0.0 };
            *previous = v;
            Some(r)
        })
        .collect();
    let path = SimResult {
        start: 0,
        bars_in_market: (exposure * times.len() as f64).round() as usize,
        equity: value,
        returns,
        trades,
        unfilled: 0,
        total_costs: costs,
        bankrupt_at: None,
    };
    (times, path)
}

/// The portfolio of `series` with `weights` (same order), from `initial` capital: every
/// strategy that ran on all of them.
pub fn portfolio(series: &[SeriesBacktest], weights: Vec<(String, f64)>, initial: f64) -> Portfolio {
    let ppy = series.iter().map(|s| s.periods_per_year).fold(f64::NAN, f64::max);
    let names: Vec<&str> = series
        .first()
        .map(|s| {
            s.strategies
                .iter()
                .map(|st| st.name.as_str())
                .filter(|name| series.iter().all(|s| s.strategies.iter().any(|st| st.name == *name)))
                .collect()
        })
        .unwrap_or_default();
    let mut times = Vec::new();
    let strategies = names
        .into_iter()
        .map(|name| {
            let holdings: Vec<Holding<'_>> = series
                .iter()
                .zip(&weights)
                .map(|(s, (_, weight))| {
                    let st = s.strategies.iter().find(|st| st.name == name).expect("filtered");
                    Holding {
                        times: (0..st.path.equity.len())
                            .map(|k| s.time_of(st.path.start + k).unwrap_or(i64::MAX))
                            .collect(),
                        path: &st.path,
                        weight: *weight,
                        exposure: st.metrics.exposure,
                    }
                })
                .collect();
            let (union, path) = combine(&holdings, initial);
            times = union;
            PortfolioStrategy {
                name: name.to_string(),
                metrics: TradingMetrics::of(&path, initial, ppy),
                equity: path.equity,
            }
        })
        .collect();
    Portfolio {
        weights,
        times,
        strategies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(equity: Vec<f64>, pnl: f64) -> SimResult {
        SimResult {
            start: 1,
            returns: vec![0.0; equity.len()],
            equity,
            bars_in_market: 2,
            trades: vec![Trade {
                entry_bar: 0,
                entry_price: 100.0,
                exit_bar: 2,
                exit_price: 110.0,
                direction: 1,
                net_return: pnl / 10_000.0,
                pnl,
                costs: 20.0,
            }],
            unfilled: 0,
            total_costs: 20.0,
            bankrupt_at: None,
        }
    }

    /// Two symbols on overlapping days, equal weights, 10,000 initial capital:
    /// A trades days 10, 20, 30 to 11,000, 12,100, 12,100; B trades days 20, 30, 40 to 9,000,
    /// 9,900, 9,900. On the union 10, 20, 30, 40 (B holds its cash on day 10, A keeps its
    /// final equity on day 40): V = 0.5·A + 0.5·B = 10,500, 10,550, 11,000, 11,000.
    #[test]
    fn two_symbols_by_hand() {
        let (a, b) = (
            path(vec![11_000.0, 12_100.0, 12_100.0], 2_100.0),
            path(vec![9_000.0, 9_900.0, 9_900.0], -100.0),
        );
        let holdings = [
            Holding {
                times: vec![10, 20, 30],
                path: &a,
                weight: 0.5,
                exposure: 2.0 / 3.0,
            },
            Holding {
                times: vec![20, 30, 40],
                path: &b,
                weight: 0.5,
                exposure: 1.0 / 3.0,
            },
        ];
        let (times, p) = combine(&holdings, 10_000.0);
        assert_eq!(times, [10, 20, 30, 40]);
        assert_eq!(p.equity, [10_500.0, 10_550.0, 11_000.0, 11_000.0]);
        let expected_returns = [0.05, 10_550.0 / 10_500.0 - 1.0, 11_000.0 / 10_550.0 - 1.0, 0.0];
        for (r, e) in p.returns.iter().zip(expected_returns) {
            assert!((r - e).abs() < 1e-15, "{r} vs {e}");
        }
        // Trades keep their returns; PnL and costs are the capital share's: 1,050 and -50.
        assert_eq!((p.trades[0].pnl, p.trades[1].pnl), (1_050.0, -50.0));
        assert_eq!(p.total_costs, 20.0);
        // Exposure 0.5 · 2/3 + 0.5 · 1/3 = 0.5 of 4 bars.
        assert_eq!(p.bars_in_market, 2);
        let m = TradingMetrics::of(&p, 10_000.0, 365.0);
        assert!((m.total_return - 0.1).abs() < 1e-12);
        // Peak 10,550 then 11,000: no drawdown.
        assert_eq!(m.max_drawdown, 0.0);
        assert_eq!((m.trades, m.win_rate), (2, 0.5));
    }

    #[test]
    fn weights_are_equal_by_default_normalised_and_checked() {
        assert_eq!(
            weights_for(&["A", "B"], None).unwrap(),
            [("A".to_string(), 0.5), ("B".to_string(), 0.5)]
        );
        let given = [("B".to_string(), 1.0), ("A".to_string(), 3.0)];
        assert_eq!(
            weights_for(&["A", "B"], Some(&given)).unwrap(),
            [("A".to_string(), 0.75), ("B".to_string(), 0.25)]
        );
        let err = weights_for(&["A", "C"], Some(&given)).unwrap_err().to_string();
        assert!(err.contains("`B`") && err.contains("not a symbol of this run"), "{err}");
        let err = weights_for(&["A", "B", "C"], Some(&given)).unwrap_err().to_string();
        assert!(err.contains("no weight for `C`"), "{err}");
    }

    #[test]
    fn weights_files_are_read_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.csv");
        std::fs::write(&file, "symbol,weight\nBTC,2\n\"A,B\",1\n").unwrap();
        assert_eq!(
            read_weights(&file).unwrap(),
            [("BTC".to_string(), 2.0), ("A,B".to_string(), 1.0)]
        );
        std::fs::write(&file, "BTC,2\nETH,lots\n").unwrap();
        let err = read_weights(&file).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("`lots`"), "{err}");
        std::fs::write(&file, "BTC,-1\n").unwrap();
        assert!(read_weights(&file).unwrap_err().to_string().contains("non-negative"));
    }
}
