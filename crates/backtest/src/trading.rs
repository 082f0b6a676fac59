//! The trading simulator and its performance metrics.
//!
//! Bars `0..N` have closes `c[i]` (and, where the data has them, opens, highs and lows). An
//! [`Order`] at origin `o` is decided at the close of bar `o - 1` (the last bar the forecast
//! saw). It enters at that close (`--fill-at close`) or at the open of bar `o`
//! (`--fill-at next-open`); an order with an entry limit instead fills only if bar `o` trades
//! through the limit (at the limit, or at the open when the bar opens beyond it), else it is
//! not filled. The position is held for `hold` bars and exits at the close of bar
//! `o + hold - 1`, or earlier at its take-profit price when a bar after the entry touches it
//! (at the take-profit, or at the open when the bar opens beyond it). Touched prices fill
//! exactly, with the same per-fill costs as any other fill (our assumption; real limit orders
//! may not fill on a mere touch).
//!
//! While held, each bar's strategy return is `fraction · direction · (p / p_prev - 1)` from the
//! entry price (first bar) or the previous close to the bar's close or exit price. Each fill
//! costs `fraction · (fee + slippage + spread / 2) / 10⁴`; a fill is skipped when the position
//! does not change (a trade exiting at a close into a same-side trade entering at that close
//! pays neither the exit nor the entry). Equity compounds bar by bar (the position is
//! rebalanced to `fraction` of equity each bar). An order that arrives while a position is
//! open is skipped (no pyramiding).
//!
//! Leverage is bounded: `fraction` is at most [`MAX_FRACTION`]. A bar that would take equity
//! to zero or below ends the simulation (bankruptcy): equity is 0 from then on, the return of
//! that bar is -100 %, the open trade closes there and no further trade opens.

use serde::{Serialize, Serializer};

/// A trading decision at one origin.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Order {
    /// The first bar the position is held over (the forecast's first step).
    pub origin: usize,
    /// +1 long, -1 short, 0 flat.
    pub direction: i8,
    /// Enter only at this price or better during bar `origin` (a limit order); `None` = at
    /// the market (the close before `origin`, or its open with `--fill-at next-open`).
    pub entry_limit: Option<f64>,
    /// Exit at this price when a bar after the entry touches it; `None` = at the close.
    pub take_profit: Option<f64>,
}

impl Order {
    /// A market order held to its last close.
    pub fn market(origin: usize, direction: i8) -> Self {
        Self {
            origin,
            direction,
            entry_limit: None,
            take_profit: None,
        }
    }
}

/// The bars a simulation trades on; `open`, `high` and `low` are needed only by orders with
/// limits or take-profits and by `--fill-at next-open`.
#[derive(Clone, Copy, Debug)]
pub struct Bars<'a> {
    /// Opens.
    pub open: Option<&'a [f64]>,
    /// Highs.
    pub high: Option<&'a [f64]>,
    /// Lows.
    pub low: Option<&'a [f64]>,
    /// Closes.
    pub close: &'a [f64],
}

impl<'a> Bars<'a> {
    /// Bars with closes only.
    pub fn closes(close: &'a [f64]) -> Self {
        Self {
            open: None,
            high: None,
            low: None,
            close,
        }
    }

    /// The same bars cut before bar `end` (what a decision at the close of `end - 1` may see).
    pub fn before(&self, end: usize) -> Self {
        let cut = |v: &'a [f64]| &v[..end.min(v.len())];
        Self {
            open: self.open.map(cut),
            high: self.high.map(cut),
            low: self.low.map(cut),
            close: cut(self.close),
        }
    }
}

/// Where market orders fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FillAt {
    /// At the close of the bar the decision was made on (the bar before the origin).
    Close,
    /// At the open of the origin bar.
    NextOpen,
}

impl FillAt {
    /// `close` or `next-open`; `None` for anything else (the caller names its flag).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "close" => Some(Self::Close),
            "next-open" => Some(Self::NextOpen),
            _ => None,
        }
    }
}

/// Costs and sizing.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SimConfig {
    /// Position size as a fraction of equity.
    pub fraction: f64,
    /// Fee per fill, basis points of the traded notional.
    pub fee_bps: f64,
    /// Slippage per fill, basis points.
    pub slippage_bps: f64,
    /// Bid-ask spread, basis points; each fill pays half of it.
    pub spread_bps: f64,
    /// Bars a position is held.
    pub hold: usize,
    /// Starting equity.
    pub initial_equity: f64,
    /// Where market orders fill.
    pub fill_at: FillAt,
}

/// Largest position size as a fraction of equity (10x leverage).
pub const MAX_FRACTION: f64 = 10.0;

/// Largest fee, slippage or spread, basis points (10 %).
pub const MAX_COST_BPS: f64 = 1000.0;

impl SimConfig {
    /// Checks the settings: `fraction` in (0, [`MAX_FRACTION`]], fee, slippage and spread in
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
        for (flag, value) in [
            ("--fee-bps", self.fee_bps),
            ("--slippage-bps", self.slippage_bps),
            ("--spread-bps", self.spread_bps),
        ] {
            if !(0.0..=MAX_COST_BPS).contains(&value) {
                return Err(format!(
                    "{flag} must be between 0 and {MAX_COST_BPS} basis points, found {value}"
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

    /// The cost of one fill as a fraction of equity.
    pub fn cost_per_fill(&self) -> f64 {
        self.fraction * (self.fee_bps + self.slippage_bps + self.spread_bps / 2.0) / 1e4
    }
}

/// One round trip.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Trade {
    /// Bar of the entry fill: the bar before the origin (its close) for market orders filled
    /// at the close, else the origin bar (its open, or intrabar at a limit).
    pub entry_bar: usize,
    /// Entry price.
    pub entry_price: f64,
    /// Bar of the exit fill (its close, or intrabar at the take-profit).
    pub exit_bar: usize,
    /// Exit price.
    pub exit_price: f64,
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
    /// Orders with an entry limit that the bar never reached.
    pub unfilled: usize,
    /// Total costs paid.
    pub total_costs: f64,
    /// The bar at which equity reached zero and trading stopped, if it did.
    pub bankrupt_at: Option<usize>,
}

/// An open position.
struct Position {
    direction: i8,
    /// The origin bar (first bar held).
    first: usize,
    /// The last bar held unless the take-profit exits earlier.
    exit: usize,
    entry_bar: usize,
    entry_price: f64,
    /// Take-profit checks start on this bar (after the entry).
    take_profit_from: usize,
    take_profit: Option<f64>,
    equity_at_entry: f64,
    costs: f64,
}

fn value(column: Option<&[f64]>, bar: usize) -> Option<f64> {
    column.and_then(|c| c.get(bar).copied())
}

/// The entry fill of `order` at its origin `bar`, or `None` when its limit is not reached.
fn entry_fill(bars: &Bars<'_>, order: &Order, bar: usize, fill_at: FillAt) -> Option<(usize, f64)> {
    let open = value(bars.open, bar);
    match order.entry_limit {
        None => Some(match (fill_at, open) {
            (FillAt::NextOpen, Some(open)) => (bar, open),
            _ => (bar - 1, bars.close[bar - 1]),
        }),
        Some(limit) => {
            let (touched, better) = if order.direction > 0 {
                (
                    value(bars.low, bar).is_some_and(|l| l <= limit),
                    open.map_or(limit, |o| limit.min(o)),
                )
            } else {
                (
                    value(bars.high, bar).is_some_and(|h| h >= limit),
                    open.map_or(limit, |o| limit.max(o)),
                )
            };
            touched.then_some((bar, better))
        }
    }
}

/// The take-profit fill of `position` in `bar`, if the bar touches it.
fn take_profit_fill(bars: &Bars<'_>, position: &Position, bar: usize) -> Option<f64> {
    let target = position.take_profit.filter(|_| bar >= position.take_profit_from)?;
    let open = value(bars.open, bar);
    if position.direction > 0 {
        value(bars.high, bar)
            .filter(|&h| h >= target)
            .map(|_| open.map_or(target, |o| target.max(o)))
    } else {
        value(bars.low, bar)
            .filter(|&l| l <= target)
            .map(|_| open.map_or(target, |o| target.min(o)))
    }
}

/// Runs `orders` (sorted by origin) over the bars, for bars `start..end`.
pub fn simulate(bars: &Bars<'_>, orders: &[Order], start: usize, end: usize, config: &SimConfig) -> SimResult {
    let closes = bars.close;
    let start = start.max(1);
    let end = end.min(closes.len()).max(start);
    let cost_rate = config.cost_per_fill();
    let hold = config.hold.max(1);
    let mut equity = config.initial_equity;
    let mut path = Vec::with_capacity(end - start);
    let mut returns = Vec::with_capacity(end - start);
    // Reserve for the most trades the span can hold (virtual memory; untouched pages are free).
    let mut trades = Vec::with_capacity(orders.len().min((end - start) / hold + 1));
    let (mut next, mut total_costs, mut in_market, mut unfilled) = (0, 0.0, 0, 0);
    let mut bankrupt_at = None;
    let mut open: Option<Position> = None;
    // The side carried over from a trade that exited at the last close into a same-side order.
    let mut carried: Option<i8> = None;
    while next < orders.len() && orders[next].origin < start {
        next += 1;
    }
    for bar in start..end {
        let mut cost = 0.0;
        if open.is_none() {
            while next < orders.len() && orders[next].origin <= bar {
                let order = orders[next];
                next += 1;
                if order.origin != bar || order.direction == 0 || open.is_some() {
                    continue;
                }
                let Some((entry_bar, entry_price)) = entry_fill(bars, &order, bar, config.fill_at) else {
                    unfilled += 1;
                    continue;
                };
                let continued = carried == Some(order.direction) && entry_bar + 1 == bar;
                if !continued {
                    cost += cost_rate;
                }
                open = Some(Position {
                    direction: order.direction,
                    first: bar,
                    exit: bar + hold - 1,
                    entry_bar,
                    entry_price,
                    take_profit_from: if order.entry_limit.is_some() { bar + 1 } else { bar },
                    take_profit: order.take_profit,
                    equity_at_entry: equity,
                    costs: 0.0,
                });
            }
        } else {
            while next < orders.len() && orders[next].origin <= bar {
                next += 1; // skipped: a position is open
            }
        }
        carried = None;
        let mut r = -cost;
        let mut exit_price = None;
        if let Some(position) = &open {
            let from = if bar == position.first {
                position.entry_price
            } else {
                closes[bar - 1]
            };
            let take_profit = take_profit_fill(bars, position, bar);
            let price = take_profit.unwrap_or(closes[bar]);
            r += config.fraction * f64::from(position.direction) * (price / from - 1.0);
            if take_profit.is_some() || bar == position.exit || bar + 1 == end {
                // The position is unchanged when the next order keeps the side at this close.
                let keeps_side = take_profit.is_none()
                    && bar + 1 < end
                    && config.fill_at == FillAt::Close
                    && orders.get(next).is_some_and(|o| {
                        o.origin == bar + 1 && o.direction == position.direction && o.entry_limit.is_none()
                    });
                if keeps_side {
                    carried = Some(position.direction);
                } else {
                    r -= cost_rate;
                    cost += cost_rate;
                }
                exit_price = Some(price);
            }
            in_market += 1;
        }
        let bankrupt = bankrupt_at.is_none() && r <= -1.0;
        if bankrupt {
            // Equity cannot go below zero: everything is lost and trading stops here.
            r = -1.0;
            bankrupt_at = Some(bar);
            exit_price = exit_price.or(Some(closes[bar]));
            carried = None;
        }
        let before = equity;
        equity = if bankrupt_at.is_some() { 0.0 } else { equity * (1.0 + r) };
        total_costs += cost * before;
        returns.push(r);
        path.push(equity);
        if let Some(position) = open.as_mut() {
            position.costs += cost * before;
            if let Some(exit_price) = exit_price {
                trades.push(Trade {
                    entry_bar: position.entry_bar,
                    entry_price: position.entry_price,
                    exit_bar: bar,
                    exit_price,
                    direction: position.direction,
                    net_return: equity / position.equity_at_entry - 1.0,
                    pnl: equity - position.equity_at_entry,
                    costs: position.costs,
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
        unfilled,
        total_costs,
        bankrupt_at,
    }
}

/// Buy-and-hold over the same span: long `fraction` from the close before `start` to the
/// last bar, paying entry and exit costs once.
pub fn buy_and_hold(bars: &Bars<'_>, start: usize, end: usize, config: &SimConfig) -> SimResult {
    let start = start.max(1);
    let config = SimConfig {
        hold: end.saturating_sub(start).max(1),
        ..*config
    };
    simulate(bars, &[Order::market(start, 1)], start, end, &config)
}

/// Performance of a simulated path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TradingMetrics {
    /// `equity_end / equity_start - 1`.
    pub total_return: f64,
    /// Compound annual growth rate: `(1 + total)^(ppy / bars) - 1`.
    #[serde(serialize_with = "number_or_text")]
    pub cagr: f64,
    /// Annualised volatility: `std(r, ddof 1) · sqrt(ppy)`.
    pub annual_volatility: f64,
    /// `mean(r) / std(r) · sqrt(ppy)` (risk-free 0).
    pub sharpe: f64,
    /// `mean(r) / sqrt(mean(min(r, 0)²)) · sqrt(ppy)`.
    pub sortino: f64,
    /// `CAGR / max drawdown`.
    #[serde(serialize_with = "number_or_text")]
    pub calmar: f64,
    /// Largest fall from a running peak, as a positive fraction.
    pub max_drawdown: f64,
    /// Longest stretch of bars below a previous peak.
    pub max_drawdown_bars: usize,
    /// Round trips.
    pub trades: usize,
    /// Share of trades with a positive net return.
    pub win_rate: f64,
    /// `Σ gains / |Σ losses|` over trade PnL (infinite with no losing trade; `"inf"` in JSON).
    #[serde(serialize_with = "number_or_text")]
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

/// A number for JSON: finite values as numbers, infinities as the strings `"inf"` and
/// `"-inf"` (JSON has no infinity, and `null` would read as "missing"), NaN as `null`.
pub fn number_or_text<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    match *value {
        v if v.is_finite() => serializer.serialize_f64(v),
        v if v.is_nan() => serializer.serialize_none(),
        v if v > 0.0 => serializer.serialize_str("inf"),
        _ => serializer.serialize_str("-inf"),
    }
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
            spread_bps: 0.0,
            hold: 1,
            initial_equity: 10_000.0,
            fill_at: FillAt::Close,
        }
    }

    const CLOSES: [f64; 5] = [100.0, 110.0, 99.0, 99.0, 108.9];

    #[test]
    fn long_then_short_by_hand() {
        // Long over bar 1 (+10%), short over bar 2 (-10% move -> +10%), no fees:
        // equity 10000 -> 11000 -> 12100, flat over bars 3, 4.
        let signals = [Order::market(1, 1), Order::market(2, -1)];
        let r = simulate(&Bars::closes(&CLOSES), &signals, 1, 5, &config(0.0));
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
        let r = simulate(&Bars::closes(&CLOSES), &[Order::market(1, 1)], 1, 2, &config(10.0));
        assert!((r.equity[0] - 10_980.0).abs() < 1e-9);
        assert!((r.total_costs - 20.0).abs() < 1e-9);
    }

    #[test]
    fn no_trades_means_no_return_and_no_fees() {
        let r = simulate(&Bars::closes(&CLOSES), &[Order::market(2, 0)], 1, 5, &config(25.0));
        let m = TradingMetrics::of(&r, 10_000.0, 252.0);
        assert_eq!((m.total_return, m.total_costs, m.trades), (0.0, 0.0, 0));
    }

    #[test]
    fn higher_fees_never_raise_returns() {
        let signals: Vec<Order> = (1..5)
            .map(|o| Order::market(o, if o % 2 == 0 { 1 } else { -1 }))
            .collect();
        let mut previous = f64::INFINITY;
        for fee in [0.0, 1.0, 5.0, 20.0, 100.0] {
            let total = TradingMetrics::of(
                &simulate(&Bars::closes(&CLOSES), &signals, 1, 5, &config(fee)),
                10_000.0,
                252.0,
            )
            .total_return;
            assert!(total <= previous, "fee {fee}: {total} > {previous}");
            previous = total;
        }
    }

    #[test]
    fn holding_several_bars_skips_overlapping_signals() {
        let mut c = config(0.0);
        c.hold = 2;
        let signals = [Order::market(1, 1), Order::market(2, -1), Order::market(3, 1)];
        let r = simulate(&Bars::closes(&CLOSES), &signals, 1, 5, &c);
        // Long over bars 1-2 (110/100 then 99/110), the short at 2 is skipped, long over 3-4.
        assert_eq!(r.trades.len(), 2);
        assert_eq!((r.trades[0].entry_bar, r.trades[0].exit_bar), (0, 2));
        assert!((r.trades[0].net_return - (0.99 - 1.0)).abs() < 1e-12);
        assert!((r.trades[1].net_return - 0.1).abs() < 1e-12);
    }

    #[test]
    fn buy_and_hold_tracks_the_price() {
        let r = buy_and_hold(&Bars::closes(&CLOSES), 1, 5, &config(0.0));
        assert!((r.equity[3] / 10_000.0 - 1.089).abs() < 1e-12);
        assert_eq!(r.trades.len(), 1);
    }

    /// With 10x leverage a -20 % bar wipes the account out: equity stops at 0
    /// (-100 %) and never "recovers", and no trade opens afterwards.
    #[test]
    fn bankruptcy_stops_trading_at_minus_100_percent() {
        let closes = [100.0, 80.0, 160.0, 320.0];
        let mut c = config(0.0);
        c.fraction = MAX_FRACTION;
        let signals: Vec<Order> = (1..4).map(|o| Order::market(o, 1)).collect();
        let r = simulate(&Bars::closes(&closes), &signals, 1, 4, &c);
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

    /// Nonsense trading settings are refused, naming the flag.
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

    /// A same-side order at the close the last trade exits on keeps the position:
    /// neither the exit nor the entry is charged; a side change pays both.
    #[test]
    fn fees_are_charged_only_when_the_position_changes() {
        // Long, long, short over bars 1, 2, 3 at 10 bps: fills at bar 0 (entry), bar 2 (exit
        // long + enter short), bar 3 (exit short): four fills, not six.
        let orders = [Order::market(1, 1), Order::market(2, 1), Order::market(3, -1)];
        let r = simulate(&Bars::closes(&CLOSES), &orders, 1, 4, &config(10.0));
        // Bar 1: (1 - 0.001)(1.1); bar 2: (1 + 99/110 - 1)... computed step by step:
        let e1 = 10_000.0 * (1.0 - 0.001 + 0.1);
        let e2 = e1 * (1.0 + (99.0 / 110.0 - 1.0) - 0.001);
        let e3 = e2 * (1.0 - 0.001 - (99.0 / 99.0 - 1.0) - 0.001);
        assert!(
            (r.equity[0] - e1).abs() < 1e-9 && (r.equity[1] - e2).abs() < 1e-9,
            "{:?}",
            r.equity
        );
        assert!((r.equity[2] - e3).abs() < 1e-9, "{:?}", r.equity);
        assert_eq!(r.trades.len(), 3);
        // The first trade's exit and the second's entry were not charged.
        assert!((r.trades[0].costs - 10.0).abs() < 1e-9, "{:?}", r.trades[0]);
        assert!((r.trades[1].costs - 0.001 * e1).abs() < 1e-9, "{:?}", r.trades[1]);
    }

    /// A spread of 20 bps costs 10 bps per fill, on top of fees and slippage.
    #[test]
    fn the_spread_costs_half_per_fill() {
        let mut c = config(10.0);
        c.slippage_bps = 5.0;
        c.spread_bps = 20.0;
        // 25 bps per fill: 10000 · (1 - 0.0025 + 0.1 - 0.0025) = 10950.
        let r = simulate(&Bars::closes(&CLOSES), &[Order::market(1, 1)], 1, 2, &c);
        assert!((r.equity[0] - 10_950.0).abs() < 1e-9);
        assert!((c.cost_per_fill() - 0.0025).abs() < 1e-15);
    }

    // Bars with opens, highs and lows: bar 1 opens 102, high 112, low 101, closes 110;
    // bar 2 opens 111, high 111, low 97, closes 99.
    const OPEN: [f64; 3] = [100.0, 102.0, 111.0];
    const HIGH: [f64; 3] = [100.0, 112.0, 111.0];
    const LOW: [f64; 3] = [100.0, 101.0, 97.0];
    const OHLC_CLOSE: [f64; 3] = [100.0, 110.0, 99.0];

    fn ohlc() -> Bars<'static> {
        Bars {
            open: Some(&OPEN),
            high: Some(&HIGH),
            low: Some(&LOW),
            close: &OHLC_CLOSE,
        }
    }

    /// `--fill-at next-open` enters at the origin bar's open.
    #[test]
    fn next_open_fills_at_the_open() {
        let mut c = config(0.0);
        c.fill_at = FillAt::NextOpen;
        let r = simulate(&ohlc(), &[Order::market(1, 1)], 1, 2, &c);
        // 102 -> 110: +7.843 %.
        assert!((r.equity[0] / 10_000.0 - 110.0 / 102.0).abs() < 1e-12);
        assert_eq!((r.trades[0].entry_bar, r.trades[0].entry_price), (1, 102.0));
    }

    /// A take-profit exits at its price when the bar reaches it, at the open when
    /// the bar opens beyond it, and never on the entry bar of a limit entry.
    #[test]
    fn take_profit_fills_by_hand() {
        let c = config(0.0);
        let order = |tp: f64| Order {
            take_profit: Some(tp),
            ..Order::market(1, 1)
        };
        // Reached (high 112 >= 105): 100 -> 105.
        let r = simulate(&ohlc(), &[order(105.0)], 1, 2, &c);
        assert!((r.equity[0] - 10_500.0).abs() < 1e-9);
        assert_eq!((r.trades[0].exit_bar, r.trades[0].exit_price), (1, 105.0));
        // Opened beyond it (open 102 >= 101): filled at the open, 102.
        let r = simulate(&ohlc(), &[order(101.0)], 1, 2, &c);
        assert!((r.equity[0] - 10_200.0).abs() < 1e-9);
        // Not reached (113 > 112): the close, 110.
        let r = simulate(&ohlc(), &[order(113.0)], 1, 2, &c);
        assert!((r.equity[0] - 11_000.0).abs() < 1e-9);
        // A short's take-profit below: bar 2's low 97 reaches 98 (held from bar 1's close
        // 110 to 98 over bar 2): +10.909 %.
        let short = Order {
            take_profit: Some(98.0),
            ..Order::market(2, -1)
        };
        let r = simulate(&ohlc(), &[short], 2, 3, &c);
        assert!((r.equity[0] / 10_000.0 - (1.0 - (98.0 / 110.0 - 1.0))).abs() < 1e-12);
    }

    /// A limit entry fills at the limit (or a better open) only when the bar trades
    /// through it; an unfilled one is counted, not traded.
    #[test]
    fn limit_entries_by_hand() {
        let c = config(0.0);
        let buy = |limit: f64| Order {
            entry_limit: Some(limit),
            ..Order::market(1, 1)
        };
        // Low 101 <= 101.5: bought at 101.5, closed at 110.
        let r = simulate(&ohlc(), &[buy(101.5)], 1, 2, &c);
        assert!((r.equity[0] / 10_000.0 - 110.0 / 101.5).abs() < 1e-12);
        assert_eq!((r.trades[0].entry_bar, r.trades[0].entry_price), (1, 101.5));
        // Open 102 below the limit 103: bought at the open.
        let r = simulate(&ohlc(), &[buy(103.0)], 1, 2, &c);
        assert_eq!(r.trades[0].entry_price, 102.0);
        // Low 101 above 100.5: not filled.
        let r = simulate(&ohlc(), &[buy(100.5)], 1, 2, &c);
        assert_eq!((r.trades.len(), r.unfilled, r.equity[0]), (0, 1, 10_000.0));
    }

    /// `report.json` keeps an infinite profit factor as a string, not `null`.
    #[test]
    fn infinite_ratios_are_strings_in_json() {
        let r = simulate(&Bars::closes(&CLOSES), &[Order::market(1, 1)], 1, 2, &config(0.0));
        let m = TradingMetrics::of(&r, 10_000.0, 365.0);
        assert!(m.profit_factor.is_infinite());
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["profit_factor"], "inf");
        assert!(json["sharpe"].is_null(), "one return: NaN stays null");
    }
}
