//! The trading simulator and its performance metrics.
//!
//! Bars `0..N` have closes `c[i]`. A signal at origin `o` is decided at the close of bar
//! `o - 1` (the last bar the forecast saw), enters there, is held for `hold` bars and exits at
//! the close of bar `o + hold - 1`. While held, each bar's strategy return is
//! `fraction · direction · (c[i] / c[i-1] - 1)`; entering and exiting each cost
//! `fraction · (fee + slippage) / 10⁴`. Equity compounds bar by bar (the position is rebalanced
//! to `fraction` of equity each bar). A signal that arrives while a position is open is
//! skipped (no pyramiding).
//!
//! Leverage is bounded: `fraction` is at most [`MAX_FRACTION`]. A bar that would take equity
//! to zero or below ends the simulation (bankruptcy): equity is 0 from then on, the return of
//! that bar is -100 %, the open trade closes there and no further trade opens.

use serde::Serialize;

/// A trading decision at one origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    /// The first bar the position is held over (the forecast's first step).
    pub origin: usize,
    /// +1 long, -1 short, 0 flat.
    pub direction: i8,
}

/// Costs and sizing.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SimConfig {
    /// Position size as a fraction of equity.
    pub fraction: f64,
    /// Fee per side, basis points of the traded notional.
    pub fee_bps: f64,
    /// Slippage per side, basis points.
    pub slippage_bps: f64,
    /// Bars a position is held.
    pub hold: usize,
    /// Starting equity.
    pub initial_equity: f64,
}

/// Largest position size as a fraction of equity (10x leverage).
pub const MAX_FRACTION: f64 = 10.0;

/// Largest fee or slippage per side, basis points (10 %).
pub const MAX_COST_BPS: f64 = 1000.0;

impl SimConfig {
    /// Checks the settings: `fraction` in (0, [`MAX_FRACTION`]], fee and slippage in
    /// [0, [`MAX_COST_BPS`]] bps, `hold` at least 1, a positive initial equity; the message
    /// names the flag.
    ///
    /// # Errors
    /// A one-line message naming the flag, the value and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.fraction > 0.0 && self.fraction <= MAX_FRACTION) {
            return Err(format!(
                "--fraction must be in (0, {MAX_FRACTION}] (position size as a fraction of equity; {MAX_FRACTION} = 10x leverage), found {}",
                self.fraction
            ));
        }
        for (flag, value) in [("--fee-bps", self.fee_bps), ("--slippage-bps", self.slippage_bps)] {
            if !(0.0..=MAX_COST_BPS).contains(&value) {
                return Err(format!(
                    "{flag} must be between 0 and {MAX_COST_BPS} basis points per side, found {value}"
                ));
            }
        }
        if self.hold == 0 {
            return Err("positions must be held at least 1 bar".into());
        }
        if !(self.initial_equity.is_finite() && self.initial_equity > 0.0) {
            return Err(format!(
                "the initial equity must be a positive number, found {}",
                self.initial_equity
            ));
        }
        Ok(())
    }
}

/// One round trip.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Trade {
    /// Bar whose close is the entry (origin - 1).
    pub entry_bar: usize,
    /// Bar whose close is the exit.
    pub exit_bar: usize,
    /// +1 long, -1 short.
    pub direction: i8,
    /// Return on equity of the trade after costs (compounded over its bars).
    pub net_return: f64,
    /// Profit in equity units after costs.
    pub pnl: f64,
    /// Costs in equity units.
    pub costs: f64,
}

/// The path of a simulation over bars `start..end`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimResult {
    /// First bar of the span.
    pub start: usize,
    /// Equity after each bar of the span.
    pub equity: Vec<f64>,
    /// Per-bar strategy returns.
    pub returns: Vec<f64>,
    /// Bars with an open position.
    pub bars_in_market: usize,
    /// Round trips.
    pub trades: Vec<Trade>,
    /// Total costs paid.
    pub total_costs: f64,
    /// The bar at which equity reached zero and trading stopped, if it did.
    pub bankrupt_at: Option<usize>,
}

/// Runs `signals` (sorted by origin) over the closes, for bars `start..end`.
pub fn simulate(closes: &[f64], signals: &[Signal], start: usize, end: usize, config: &SimConfig) -> SimResult {
    let start = start.max(1);
    let end = end.min(closes.len()).max(start);
    let cost_rate = config.fraction * (config.fee_bps + config.slippage_bps) / 1e4;
    let hold = config.hold.max(1);
    let mut equity = config.initial_equity;
    let mut path = Vec::with_capacity(end - start);
    let mut returns = Vec::with_capacity(end - start);
    // Reserve for the most trades the span can hold (virtual memory; untouched pages are free).
    let mut trades = Vec::with_capacity(signals.len().min((end - start) / hold + 1));
    let (mut next_signal, mut total_costs, mut in_market) = (0, 0.0, 0);
    let mut bankrupt_at = None;
    // Open position: (direction, first bar, exit bar, equity at entry, costs so far).
    let mut open: Option<(i8, usize, usize, f64, f64)> = None;
    while next_signal < signals.len() && signals[next_signal].origin < start {
        next_signal += 1;
    }
    for bar in start..end {
        let mut cost = 0.0;
        if open.is_none() {
            while next_signal < signals.len() && signals[next_signal].origin <= bar {
                let signal = signals[next_signal];
                next_signal += 1;
                if signal.origin == bar && signal.direction != 0 {
                    open = Some((signal.direction, bar, bar + hold - 1, equity, 0.0));
                    cost += cost_rate;
                }
            }
        } else {
            while next_signal < signals.len() && signals[next_signal].origin <= bar {
                next_signal += 1; // skipped: a position is open
            }
        }
        let mut r = -cost;
        if let Some((direction, _, exit, _, _)) = open {
            r += config.fraction * f64::from(direction) * (closes[bar] / closes[bar - 1] - 1.0);
            if bar == exit || bar + 1 == end {
                r -= cost_rate;
                cost += cost_rate;
            }
            in_market += 1;
        }
        let bankrupt = bankrupt_at.is_none() && r <= -1.0;
        if bankrupt {
            // Equity cannot go below zero: everything is lost and trading stops here.
            r = -1.0;
            bankrupt_at = Some(bar);
        }
        let before = equity;
        equity = if bankrupt_at.is_some() { 0.0 } else { equity * (1.0 + r) };
        total_costs += cost * before;
        returns.push(r);
        path.push(equity);
        if let Some((direction, first, exit, at_entry, costs)) = open.as_mut() {
            *costs += cost * before;
            if bar == *exit || bar + 1 == end || bankrupt {
                trades.push(Trade {
                    entry_bar: *first - 1,
                    exit_bar: bar,
                    direction: *direction,
                    net_return: equity / *at_entry - 1.0,
                    pnl: equity - *at_entry,
                    costs: *costs,
                });
                open = None;
            }
        }
        if bankrupt {
            // The rest of the span: no equity, no trades.
            path.resize(end - start, 0.0);
            returns.resize(end - start, 0.0);
            break;
        }
    }
    SimResult {
        start,
        equity: path,
        returns,
        bars_in_market: in_market,
        trades,
        total_costs,
        bankrupt_at,
    }
}

/// Buy-and-hold over the same span: long `fraction` from the close before `start` to the
/// last bar, paying entry and exit costs once.
pub fn buy_and_hold(closes: &[f64], start: usize, end: usize, config: &SimConfig) -> SimResult {
    let start = start.max(1);
    let config = SimConfig {
        hold: end.saturating_sub(start).max(1),
        ..*config
    };
    simulate(
        closes,
        &[Signal {
            origin: start,
            direction: 1,
        }],
        start,
        end,
        &config,
    )
}

/// Performance of a simulated path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TradingMetrics {
    /// `equity_end / equity_start - 1`.
    pub total_return: f64,
    /// Compound annual growth rate: `(1 + total)^(ppy / bars) - 1`.
    pub cagr: f64,
    /// Annualised volatility: `std(r, ddof 1) · sqrt(ppy)`.
    pub annual_volatility: f64,
    /// `mean(r) / std(r) · sqrt(ppy)` (risk-free 0).
    pub sharpe: f64,
    /// `mean(r) / sqrt(mean(min(r, 0)²)) · sqrt(ppy)`.
    pub sortino: f64,
    /// `CAGR / max drawdown`.
    pub calmar: f64,
    /// Largest fall from a running peak, as a positive fraction.
    pub max_drawdown: f64,
    /// Longest stretch of bars below a previous peak.
    pub max_drawdown_bars: usize,
    /// Round trips.
    pub trades: usize,
    /// Share of trades with a positive net return.
    pub win_rate: f64,
    /// `Σ gains / |Σ losses|` over trade PnL (infinite with no losing trade).
    pub profit_factor: f64,
    /// Mean net return per trade.
    pub expectancy: f64,
    /// Mean PnL per trade in equity units.
    pub average_trade_pnl: f64,
    /// Share of bars with an open position.
    pub exposure: f64,
    /// Costs paid in equity units.
    pub total_costs: f64,
    /// Bars per year used for annualising.
    pub periods_per_year: f64,
}

/// Sample standard deviation (ddof 1).
pub fn std_dev(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return f64::NAN;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

/// Sharpe ratio of per-period returns: `mean / std(ddof 1) · sqrt(ppy)`; NaN if std is 0.
pub fn sharpe(returns: &[f64], periods_per_year: f64) -> f64 {
    let std = std_dev(returns);
    if std.is_nan() || std <= 0.0 {
        return f64::NAN;
    }
    returns.iter().sum::<f64>() / returns.len() as f64 / std * periods_per_year.sqrt()
}

/// Sortino ratio: `mean / sqrt(mean(min(r,0)²)) · sqrt(ppy)`; NaN without downside.
pub fn sortino(returns: &[f64], periods_per_year: f64) -> f64 {
    if returns.is_empty() {
        return f64::NAN;
    }
    let n = returns.len() as f64;
    let downside = (returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
    if downside == 0.0 {
        return f64::NAN;
    }
    returns.iter().sum::<f64>() / n / downside * periods_per_year.sqrt()
}

/// Maximum drawdown (positive fraction) and its longest duration in bars, of an equity path
/// that starts from `initial`.
pub fn max_drawdown(initial: f64, equity: &[f64]) -> (f64, usize) {
    let (mut peak, mut worst, mut longest, mut since_peak) = (initial, 0.0f64, 0usize, 0usize);
    for &e in equity {
        if e >= peak {
            peak = e;
            since_peak = 0;
        } else {
            since_peak += 1;
            worst = worst.max(1.0 - e / peak);
            longest = longest.max(since_peak);
        }
    }
    (worst, longest)
}

impl TradingMetrics {
    /// Metrics of a simulation; `periods_per_year` annualises. One pass over the returns and
    /// one over the trades.
    pub fn of(result: &SimResult, initial_equity: f64, periods_per_year: f64) -> Self {
        let bars = result.returns.len();
        let n = bars as f64;
        let final_equity = result.equity.last().copied().unwrap_or(initial_equity);
        let total_return = final_equity / initial_equity - 1.0;
        let cagr = if bars == 0 {
            f64::NAN
        } else {
            (1.0 + total_return).powf(periods_per_year / n) - 1.0
        };
        let (max_dd, dd_bars) = max_drawdown(initial_equity, &result.equity);
        // Returns: sum, sum of squares about a running mean (Welford), downside squares.
        let (mut mean, mut m2, mut downside) = (0.0f64, 0.0f64, 0.0f64);
        for (i, &r) in result.returns.iter().enumerate() {
            let delta = r - mean;
            mean += delta / (i + 1) as f64;
            m2 += delta * (r - mean);
            downside += r.min(0.0).powi(2);
        }
        let std = if bars > 1 { (m2 / (n - 1.0)).sqrt() } else { f64::NAN };
        let annual = periods_per_year.sqrt();
        let downside_dev = if bars > 0 { (downside / n).sqrt() } else { f64::NAN };
        // Trades.
        let (mut wins, mut gains, mut losses, mut sum_return, mut sum_pnl) = (0usize, 0.0, 0.0, 0.0, 0.0);
        for t in &result.trades {
            wins += usize::from(t.net_return > 0.0);
            gains += t.pnl.max(0.0);
            losses += (-t.pnl).max(0.0);
            sum_return += t.net_return;
            sum_pnl += t.pnl;
        }
        let trades = result.trades.len();
        let per_trade = |sum: f64| if trades == 0 { f64::NAN } else { sum / trades as f64 };
        Self {
            total_return,
            cagr,
            annual_volatility: std * annual,
            sharpe: if std > 0.0 { mean / std * annual } else { f64::NAN },
            sortino: if downside_dev > 0.0 {
                mean / downside_dev * annual
            } else {
                f64::NAN
            },
            calmar: if max_dd > 0.0 { cagr / max_dd } else { f64::NAN },
            max_drawdown: max_dd,
            max_drawdown_bars: dd_bars,
            trades,
            win_rate: per_trade(wins as f64),
            profit_factor: if losses > 0.0 {
                gains / losses
            } else if gains > 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            },
            expectancy: per_trade(sum_return),
            average_trade_pnl: per_trade(sum_pnl),
            exposure: if bars == 0 {
                f64::NAN
            } else {
                result.bars_in_market as f64 / n
            },
            total_costs: result.total_costs,
            periods_per_year,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(fee_bps: f64) -> SimConfig {
        SimConfig {
            fraction: 1.0,
            fee_bps,
            slippage_bps: 0.0,
            hold: 1,
            initial_equity: 10_000.0,
        }
    }

    const CLOSES: [f64; 5] = [100.0, 110.0, 99.0, 99.0, 108.9];

    #[test]
    fn long_then_short_by_hand() {
        // Long over bar 1 (+10%), short over bar 2 (-10% move -> +10%), no fees:
        // equity 10000 -> 11000 -> 12100, flat over bars 3, 4.
        let signals = [
            Signal {
                origin: 1,
                direction: 1,
            },
            Signal {
                origin: 2,
                direction: -1,
            },
        ];
        let r = simulate(&CLOSES, &signals, 1, 5, &config(0.0));
        assert_eq!(r.equity.len(), 4);
        assert!((r.equity[0] - 11_000.0).abs() < 1e-9);
        assert!((r.equity[1] - 12_100.0).abs() < 1e-9);
        assert!((r.equity[3] - 12_100.0).abs() < 1e-9);
        assert_eq!(r.trades.len(), 2);
        assert_eq!(
            (r.trades[1].entry_bar, r.trades[1].exit_bar, r.trades[1].direction),
            (1, 2, -1)
        );
        let m = TradingMetrics::of(&r, 10_000.0, 365.0);
        assert!((m.total_return - 0.21).abs() < 1e-12);
        assert_eq!((m.trades, m.win_rate, m.exposure), (2, 1.0, 0.5));
        assert!(m.profit_factor.is_infinite());
    }

    #[test]
    fn fees_by_hand() {
        // 10 bps per side, one long over bar 1: 10000·(1 - 0.001 + 0.1 - 0.001) = 10980.
        let r = simulate(
            &CLOSES,
            &[Signal {
                origin: 1,
                direction: 1,
            }],
            1,
            2,
            &config(10.0),
        );
        assert!((r.equity[0] - 10_980.0).abs() < 1e-9);
        assert!((r.total_costs - 20.0).abs() < 1e-9);
    }

    #[test]
    fn no_trades_means_no_return_and_no_fees() {
        let r = simulate(
            &CLOSES,
            &[Signal {
                origin: 2,
                direction: 0,
            }],
            1,
            5,
            &config(25.0),
        );
        let m = TradingMetrics::of(&r, 10_000.0, 252.0);
        assert_eq!((m.total_return, m.total_costs, m.trades), (0.0, 0.0, 0));
    }

    #[test]
    fn higher_fees_never_raise_returns() {
        let signals: Vec<Signal> = (1..5)
            .map(|o| Signal {
                origin: o,
                direction: if o % 2 == 0 { 1 } else { -1 },
            })
            .collect();
        let mut previous = f64::INFINITY;
        for fee in [0.0, 1.0, 5.0, 20.0, 100.0] {
            let total =
                TradingMetrics::of(&simulate(&CLOSES, &signals, 1, 5, &config(fee)), 10_000.0, 252.0).total_return;
            assert!(total <= previous, "fee {fee}: {total} > {previous}");
            previous = total;
        }
    }

    #[test]
    fn holding_several_bars_skips_overlapping_signals() {
        let mut c = config(0.0);
        c.hold = 2;
        let signals = [
            Signal {
                origin: 1,
                direction: 1,
            },
            Signal {
                origin: 2,
                direction: -1,
            },
            Signal {
                origin: 3,
                direction: 1,
            },
        ];
        let r = simulate(&CLOSES, &signals, 1, 5, &c);
        // Long over bars 1-2 (110/100 then 99/110), the short at 2 is skipped, long over 3-4.
        assert_eq!(r.trades.len(), 2);
        assert_eq!((r.trades[0].entry_bar, r.trades[0].exit_bar), (0, 2));
        assert!((r.trades[0].net_return - (0.99 - 1.0)).abs() < 1e-12);
        assert!((r.trades[1].net_return - 0.1).abs() < 1e-12);
    }

    #[test]
    fn buy_and_hold_tracks_the_price() {
        let r = buy_and_hold(&CLOSES, 1, 5, &config(0.0));
        assert!((r.equity[3] / 10_000.0 - 1.089).abs() < 1e-12);
        assert_eq!(r.trades.len(), 1);
    }

    /// Issue 17: with 10x leverage a -20 % bar wipes the account out: equity stops at 0
    /// (-100 %) and never "recovers", and no trade opens afterwards.
    #[test]
    fn bankruptcy_stops_trading_at_minus_100_percent() {
        let closes = [100.0, 80.0, 160.0, 320.0];
        let mut c = config(0.0);
        c.fraction = MAX_FRACTION;
        let signals: Vec<Signal> = (1..4)
            .map(|o| Signal {
                origin: o,
                direction: 1,
            })
            .collect();
        let r = simulate(&closes, &signals, 1, 4, &c);
        // Bar 1: 10 · (80/100 - 1) = -2 <= -1: bankrupt at bar 1.
        assert_eq!(r.bankrupt_at, Some(1));
        assert_eq!(r.equity, [0.0, 0.0, 0.0]);
        assert_eq!(r.returns, [-1.0, 0.0, 0.0]);
        assert_eq!(r.trades.len(), 1);
        assert_eq!(r.trades[0].net_return, -1.0);
        let m = TradingMetrics::of(&r, 10_000.0, 365.0);
        assert_eq!(m.total_return, -1.0);
        assert_eq!(m.max_drawdown, 1.0);
    }

    /// Issue 17: nonsense trading settings are refused, naming the flag.
    #[test]
    fn settings_out_of_range_are_refused() {
        let mut bad = Vec::new();
        for (fraction, fee, slippage) in [
            (f64::NAN, 10.0, 5.0),
            (0.0, 10.0, 5.0),
            (10.5, 10.0, 5.0),
            (1.0, f64::NAN, 5.0),
            (1.0, f64::INFINITY, 5.0),
            (1.0, 1e6, 5.0),
            (1.0, -1.0, 5.0),
            (1.0, 10.0, f64::NAN),
        ] {
            let c = SimConfig {
                fraction,
                fee_bps: fee,
                slippage_bps: slippage,
                ..config(0.0)
            };
            bad.push(c.validate().unwrap_err());
        }
        assert!(
            bad[0].starts_with("--fraction") && bad[2].contains("10x leverage"),
            "{bad:?}"
        );
        assert!(bad[3..7].iter().all(|m| m.starts_with("--fee-bps")), "{bad:?}");
        assert!(bad[7].starts_with("--slippage-bps"), "{bad:?}");
        assert!(config(10.0).validate().is_ok());
    }

    #[test]
    fn ratio_metrics_by_hand() {
        // returns [0.1, -0.1, 0.2]: mean 0.0667, std(ddof1) = 0.152753, Sharpe (ppy 1) = 0.43644.
        let returns = [0.1, -0.1, 0.2];
        assert!((sharpe(&returns, 1.0) - 0.436_435_780_471_985).abs() < 1e-12);
        // downside sqrt(0.01/3) = 0.057735: Sortino = 0.0666.../0.057735 = 1.154700538.
        assert!((sortino(&returns, 1.0) - 1.154_700_538_379_251_7).abs() < 1e-12);
        // Equity 100 -> 120 -> 90 -> 95 -> 130: drawdown 25% over 2 bars.
        let (dd, bars) = max_drawdown(100.0, &[120.0, 90.0, 95.0, 130.0]);
        assert!((dd - 0.25).abs() < 1e-12);
        assert_eq!(bars, 2);
    }
}
