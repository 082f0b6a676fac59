//! Trading strategies: one small [`Strategy`] trait and the seed system's set.
//!
//! A strategy turns what the forecast says at one origin (an [`Outlook`], in prices; moves are
//! returns relative to the last close) into an [`Order`]. It is decided at the close of the
//! bar before the origin and may look only at bars before the origin ([`Past`] holds exactly
//! those), so no strategy can see the bars it trades. `--no-short` is applied to every
//! strategy's orders afterwards ([`no_short`]).
//!
//! | name | rule |
//! |---|---|
//! | `threshold` | long when the predicted close move > +threshold, short when < -threshold |
//! | `confidence` | long when the interval's lower bound is above the last close, short when its upper bound is below |
//! | `simple` | long when the predicted close move > 0, short when < 0 |
//! | `all_signals` | long when the predicted close, high and low moves are all > 0, short when all < 0 |
//! | `entry_takeprofit` | side from the close move; a long exits at the predicted high when a bar reaches it, a short at the predicted low, else at the close |
//! | `highlow` | close move > 0: buy at the predicted low if the bar reaches it; < 0: short at the predicted high if reached; exit at the close |
//! | `maxdiff` | toward the larger of the predicted high and low moves (none when low >= high), take-profit at a multiple of that move tuned on earlier windows only |
//!
//! The predicted high (low) is the highest (lowest) median forecast high (low) over the held
//! bars; with one traded step it is that bar's. A take-profit on the losing side of the entry
//! (a long whose predicted high is below the last close) is dropped: the trade exits at the
//! close.

use crate::trading::{simulate, Bars, Order, SimConfig};

/// What the forecast says at one origin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outlook {
    /// The origin (first bar traded).
    pub origin: usize,
    /// The close of the bar before the origin (the last the forecast saw).
    pub last_close: f64,
    /// Median forecast close at the traded step.
    pub close: f64,
    /// Highest median forecast high over the held bars (joint OHLC forecasts only).
    pub high: Option<f64>,
    /// Lowest median forecast low over the held bars (joint OHLC forecasts only).
    pub low: Option<f64>,
    /// The confidence interval's forecast close at the traded step, (lower, upper).
    pub interval: (f64, f64),
}

impl Outlook {
    /// A price as a move from the last close.
    pub fn move_of(&self, price: f64) -> f64 {
        price / self.last_close - 1.0
    }

    /// The predicted close move.
    pub fn close_move(&self) -> f64 {
        self.move_of(self.close)
    }
}

/// What a decision at an origin may look at: the bars before it, the earlier outlooks and
/// the simulation settings.
#[derive(Clone, Copy, Debug)]
pub struct Past<'a> {
    /// Bars before the origin.
    pub bars: Bars<'a>,
    /// Outlooks of earlier origins, in origin order.
    pub outlooks: &'a [Outlook],
    /// Sizing, costs and holding period.
    pub sim: &'a SimConfig,
}

/// A trading rule over forecasts.
pub trait Strategy: Send + Sync {
    /// Its name in flags and reports.
    fn name(&self) -> &'static str;
    /// The rule in one line, for reports (and for explaining a run without trades).
    fn rule(&self) -> String;
    /// Whether it needs high and low forecasts (a joint OHLC forecast).
    fn needs_high_low(&self) -> bool {
        false
    }
    /// The order at `now.origin`.
    fn order(&self, now: &Outlook, past: &Past<'_>) -> Order;
}

/// Every strategy's name, in report order.
pub const NAMES: [&str; 7] = [
    "threshold",
    "confidence",
    "simple",
    "all_signals",
    "entry_takeprofit",
    "highlow",
    "maxdiff",
];

/// The sign of `x` beyond `threshold`: +1, -1 or 0.
fn side(x: f64, threshold: f64) -> i8 {
    if x > threshold {
        1
    } else if x < -threshold {
        -1
    } else {
        0
    }
}

/// Long above `+threshold` predicted close move, short below `-threshold`.
pub struct Threshold {
    /// The predicted return needed to trade (e.g. 0.005).
    pub threshold: f64,
}

impl Strategy for Threshold {
    fn name(&self) -> &'static str {
        "threshold"
    }
    fn rule(&self) -> String {
        format!(
            "long when the predicted close move is above +{0}%, short below -{0}%",
            100.0 * self.threshold
        )
    }
    fn order(&self, now: &Outlook, _: &Past<'_>) -> Order {
        Order::market(now.origin, side(now.close_move(), self.threshold))
    }
}

/// Long when the whole interval is above the last close, short when it is below.
pub struct Confidence;

impl Strategy for Confidence {
    fn name(&self) -> &'static str {
        "confidence"
    }
    fn rule(&self) -> String {
        "long when the interval's lower bound is above the last close, short when its upper bound is below".into()
    }
    fn order(&self, now: &Outlook, _: &Past<'_>) -> Order {
        let (lo, hi) = (now.move_of(now.interval.0), now.move_of(now.interval.1));
        let direction = if lo > 0.0 {
            1
        } else if hi < 0.0 {
            -1
        } else {
            0
        };
        Order::market(now.origin, direction)
    }
}

/// The sign of the predicted close move.
pub struct Simple;

impl Strategy for Simple {
    fn name(&self) -> &'static str {
        "simple"
    }
    fn rule(&self) -> String {
        "long when the predicted close move is positive, short when negative".into()
    }
    fn order(&self, now: &Outlook, _: &Past<'_>) -> Order {
        Order::market(now.origin, side(now.close_move(), 0.0))
    }
}

/// The predicted high and low of an outlook (strategies that need them run on joint OHLC
/// forecasts only; NaN otherwise, which never trades).
fn high_low(now: &Outlook) -> (f64, f64) {
    (now.high.unwrap_or(f64::NAN), now.low.unwrap_or(f64::NAN))
}

/// Close, high and low moves agree.
pub struct AllSignals;

impl Strategy for AllSignals {
    fn name(&self) -> &'static str {
        "all_signals"
    }
    fn rule(&self) -> String {
        "long when the predicted close, high and low moves are all positive, short when all negative".into()
    }
    fn needs_high_low(&self) -> bool {
        true
    }
    fn order(&self, now: &Outlook, _: &Past<'_>) -> Order {
        let (high, low) = high_low(now);
        let moves = [now.close_move(), now.move_of(high), now.move_of(low)];
        let direction = if moves.iter().all(|&m| m > 0.0) {
            1
        } else if moves.iter().all(|&m| m < 0.0) {
            -1
        } else {
            0
        };
        Order::market(now.origin, direction)
    }
}

/// A take-profit at `target` for a position of `direction` entered near `last_close`, or none
/// when the target is on the losing side.
fn profitable_target(direction: i8, last_close: f64, target: f64) -> Option<f64> {
    let gain = f64::from(direction) * (target - last_close);
    (gain > 0.0).then_some(target)
}

/// Side from the close move, exit at the predicted high (long) or low (short) when touched.
pub struct EntryTakeProfit;

impl Strategy for EntryTakeProfit {
    fn name(&self) -> &'static str {
        "entry_takeprofit"
    }
    fn rule(&self) -> String {
        "side from the predicted close move; a long exits at the predicted high when a bar reaches it, a short at the predicted low, else at the close".into()
    }
    fn needs_high_low(&self) -> bool {
        true
    }
    fn order(&self, now: &Outlook, _: &Past<'_>) -> Order {
        let (high, low) = high_low(now);
        let direction = side(now.close_move(), 0.0);
        let target = if direction > 0 { high } else { low };
        Order {
            take_profit: profitable_target(direction, now.last_close, target),
            ..Order::market(now.origin, direction)
        }
    }
}

/// Buy at the predicted low (sell short at the predicted high) when the bar reaches it.
pub struct HighLow;

impl Strategy for HighLow {
    fn name(&self) -> &'static str {
        "highlow"
    }
    fn rule(&self) -> String {
        "predicted close move up: buy at the predicted low if the bar reaches it; down: short at the predicted high if reached; exit at the close".into()
    }
    fn needs_high_low(&self) -> bool {
        true
    }
    fn order(&self, now: &Outlook, _: &Past<'_>) -> Order {
        let (high, low) = high_low(now);
        let direction = side(now.close_move(), 0.0);
        let limit = if direction > 0 { low } else { high };
        Order {
            entry_limit: (direction != 0 && limit.is_finite()).then_some(limit),
            ..Order::market(now.origin, if limit.is_finite() { direction } else { 0 })
        }
    }
}

/// Take-profit multiples `maxdiff` chooses from.
pub const MAXDIFF_MULTIPLIERS: [f64; 4] = [0.25, 0.5, 0.75, 1.0];

/// Earlier windows `maxdiff` tunes its multiple on (the most recent ones that have ended).
pub const MAXDIFF_LOOKBACK: usize = 50;

/// Toward the larger predicted move, take-profit at a tuned multiple of it.
pub struct MaxDiff;

impl MaxDiff {
    /// The order with take-profit multiple `m` (none when the predicted low is not below the
    /// predicted high).
    fn order_with(now: &Outlook, m: f64) -> Order {
        let (high, low) = high_low(now);
        // Also none when either is missing (NaN).
        if low.partial_cmp(&high) != Some(std::cmp::Ordering::Less) {
            return Order::market(now.origin, 0);
        }
        let (up, down) = (now.move_of(high), now.move_of(low));
        let (direction, toward) = if up >= -down { (1, up) } else { (-1, down) };
        let target = now.last_close * (1.0 + m * toward);
        Order {
            take_profit: profitable_target(direction, now.last_close, target),
            ..Order::market(now.origin, direction)
        }
    }

    /// The multiple with the highest summed return over the last [`MAXDIFF_LOOKBACK`] earlier
    /// windows whose held bars all lie before the current origin (1.0 without any; ties go
    /// to the larger multiple). Costs are the same for every multiple and left out.
    pub fn tuned_multiplier(past: &Past<'_>) -> f64 {
        let hold = past.sim.hold.max(1);
        let end = past.bars.close.len();
        let ended: Vec<&Outlook> = past
            .outlooks
            .iter()
            .filter(|o| o.origin >= 1 && o.origin + hold <= end)
            .collect();
        let recent = &ended[ended.len().saturating_sub(MAXDIFF_LOOKBACK)..];
        if recent.is_empty() {
            return 1.0;
        }
        let sim = SimConfig {
            fee_bps: 0.0,
            slippage_bps: 0.0,
            spread_bps: 0.0,
            ..*past.sim
        };
        let mut best = (f64::NEG_INFINITY, 1.0);
        for &m in MAXDIFF_MULTIPLIERS.iter().rev() {
            let total: f64 = recent
                .iter()
                .map(|o| {
                    let result = simulate(&past.bars, &[Self::order_with(o, m)], o.origin, o.origin + hold, &sim);
                    result.equity.last().map_or(0.0, |e| e / sim.initial_equity - 1.0)
                })
                .sum();
            if total > best.0 {
                best = (total, m);
            }
        }
        best.1
    }
}

impl Strategy for MaxDiff {
    fn name(&self) -> &'static str {
        "maxdiff"
    }
    fn rule(&self) -> String {
        format!(
            "toward the larger of the predicted high and low moves (none when low >= high); take-profit at a multiple ({MAXDIFF_MULTIPLIERS:?}) of that move, chosen on the last {MAXDIFF_LOOKBACK} earlier windows that ended before the origin"
        )
    }
    fn needs_high_low(&self) -> bool {
        true
    }
    fn order(&self, now: &Outlook, past: &Past<'_>) -> Order {
        Self::order_with(now, Self::tuned_multiplier(past))
    }
}

/// The strategy called `name` (one of [`NAMES`]); `threshold` configures `threshold`.
pub fn by_name(name: &str, threshold: f64) -> Option<Box<dyn Strategy>> {
    Some(match name {
        "threshold" => Box::new(Threshold { threshold }),
        "confidence" => Box::new(Confidence),
        "simple" => Box::new(Simple),
        "all_signals" => Box::new(AllSignals),
        "entry_takeprofit" => Box::new(EntryTakeProfit),
        "highlow" => Box::new(HighLow),
        "maxdiff" => Box::new(MaxDiff),
        _ => return None,
    })
}

/// `order` with shorts turned flat (`--no-short`).
pub fn no_short(order: Order) -> Order {
    if order.direction < 0 {
        Order::market(order.origin, 0)
    } else {
        order
    }
}

/// The orders of `strategy` at every outlook (sorted by origin) over `bars`: each decision
/// sees the bars before its origin and the earlier outlooks only.
pub fn orders(strategy: &dyn Strategy, outlooks: &[Outlook], bars: &Bars<'_>, sim: &SimConfig) -> Vec<Order> {
    outlooks
        .iter()
        .enumerate()
        .map(|(i, now)| {
            let past = Past {
                bars: bars.before(now.origin),
                outlooks: &outlooks[..i],
                sim,
            };
            strategy.order(now, &past)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trading::{FillAt, TradingMetrics};

    fn sim() -> SimConfig {
        SimConfig {
            fraction: 1.0,
            fee_bps: 0.0,
            slippage_bps: 0.0,
            spread_bps: 0.0,
            hold: 1,
            initial_equity: 100.0,
            fill_at: FillAt::Close,
        }
    }

    fn outlook(origin: usize, close: f64, high: f64, low: f64) -> Outlook {
        Outlook {
            origin,
            last_close: 100.0,
            close,
            high: Some(high),
            low: Some(low),
            interval: (close - 1.0, close + 1.0),
        }
    }

    // Bars 0..3: bar 0 closes at 100; bar 1 opens 100, high 104, low 97, closes 101;
    // bar 2 opens 101, high 102, low 95, closes 96.
    const OPEN: [f64; 3] = [100.0, 100.0, 101.0];
    const HIGH: [f64; 3] = [100.0, 104.0, 102.0];
    const LOW: [f64; 3] = [100.0, 97.0, 95.0];
    const CLOSE: [f64; 3] = [100.0, 101.0, 96.0];

    fn bars() -> Bars<'static> {
        Bars {
            open: Some(&OPEN),
            high: Some(&HIGH),
            low: Some(&LOW),
            close: &CLOSE,
        }
    }

    /// The one-bar return of `strategy` at origin 1 with last close 100.
    fn one_bar(strategy: &dyn Strategy, now: Outlook) -> (Order, f64) {
        let order = strategy.order(
            &now,
            &Past {
                bars: bars().before(1),
                outlooks: &[],
                sim: &sim(),
            },
        );
        let result = simulate(&bars(), &[order], 1, 2, &sim());
        (order, TradingMetrics::of(&result, 100.0, 365.0).total_return)
    }

    #[test]
    fn threshold_by_hand() {
        let s = Threshold { threshold: 0.005 };
        // +0.4 % predicted: below the threshold, flat.
        assert_eq!(one_bar(&s, outlook(1, 100.4, 101.0, 99.0)).0.direction, 0);
        // +0.6 %: long from 100 to 101 = +1 %.
        let (order, r) = one_bar(&s, outlook(1, 100.6, 101.0, 99.0));
        assert_eq!(order.direction, 1);
        assert!((r - 0.01).abs() < 1e-12);
        // -0.6 %: short, -1 %.
        assert!((one_bar(&s, outlook(1, 99.4, 101.0, 99.0)).1 + 0.01).abs() < 1e-12);
    }

    #[test]
    fn confidence_by_hand() {
        // Interval 100.5..102.5 above 100: long.
        assert_eq!(one_bar(&Confidence, outlook(1, 101.5, 0.0, 0.0)).0.direction, 1);
        // Interval 99..101 straddles 100: flat.
        assert_eq!(one_bar(&Confidence, outlook(1, 100.0, 0.0, 0.0)).0.direction, 0);
        // Interval 97..99 below: short, 100 -> 101 = -1 %.
        let (order, r) = one_bar(&Confidence, outlook(1, 98.0, 0.0, 0.0));
        assert_eq!(order.direction, -1);
        assert!((r + 0.01).abs() < 1e-12);
    }

    #[test]
    fn simple_by_hand() {
        let (order, r) = one_bar(&Simple, outlook(1, 100.01, 0.0, 0.0));
        assert_eq!(order, Order::market(1, 1));
        assert!((r - 0.01).abs() < 1e-12);
        assert_eq!(one_bar(&Simple, outlook(1, 99.99, 0.0, 0.0)).0.direction, -1);
        assert_eq!(one_bar(&Simple, outlook(1, 100.0, 0.0, 0.0)).0.direction, 0);
    }

    #[test]
    fn all_signals_by_hand() {
        // Close, high, low all up: long (+1 %).
        let (order, r) = one_bar(&AllSignals, outlook(1, 101.0, 103.0, 100.5));
        assert_eq!(order.direction, 1);
        assert!((r - 0.01).abs() < 1e-12);
        // Low below the last close: the moves disagree, flat.
        assert_eq!(one_bar(&AllSignals, outlook(1, 101.0, 103.0, 99.0)).0.direction, 0);
        // All down: short.
        assert_eq!(one_bar(&AllSignals, outlook(1, 99.0, 99.5, 98.0)).0.direction, -1);
    }

    #[test]
    fn entry_takeprofit_by_hand() {
        // Long, predicted high 103: bar 1's high 104 reaches it; exit at 103 = +3 %.
        let (order, r) = one_bar(&EntryTakeProfit, outlook(1, 101.0, 103.0, 99.0));
        assert_eq!(order.take_profit, Some(103.0));
        assert!((r - 0.03).abs() < 1e-12);
        // Long, predicted high 105: not reached; exit at the close 101 = +1 %.
        assert!((one_bar(&EntryTakeProfit, outlook(1, 101.0, 105.0, 99.0)).1 - 0.01).abs() < 1e-12);
        // Short, predicted low 98: bar 1's low 97 reaches it; 100 -> 98 = +2 %.
        assert!((one_bar(&EntryTakeProfit, outlook(1, 99.0, 101.0, 98.0)).1 - 0.02).abs() < 1e-12);
        // A predicted high below the last close is no take-profit: exit at the close.
        assert_eq!(
            one_bar(&EntryTakeProfit, outlook(1, 101.0, 99.5, 99.0)).0.take_profit,
            None
        );
    }

    #[test]
    fn highlow_by_hand() {
        // Up: buy at the predicted low 98 (bar 1's low 97 reaches it), exit at 101 = +3.0612 %.
        let (order, r) = one_bar(&HighLow, outlook(1, 101.0, 103.0, 98.0));
        assert_eq!((order.direction, order.entry_limit), (1, Some(98.0)));
        assert!((r - (101.0 / 98.0 - 1.0)).abs() < 1e-12);
        // Up, predicted low 96.5: never reached, no trade.
        let (_, r) = one_bar(&HighLow, outlook(1, 101.0, 103.0, 96.5));
        assert_eq!(r, 0.0);
        // Down: short at the predicted high 103 (reached: 104), exit at 101 = +1.9417 %.
        let (_, r) = one_bar(&HighLow, outlook(1, 99.0, 103.0, 98.0));
        assert!((r - (1.0 - 101.0 / 103.0)).abs() < 1e-12);
    }

    #[test]
    fn maxdiff_by_hand() {
        // No history: multiple 1. High move +3 % > low move -1 %: long, take-profit 103,
        // reached (104): +3 %.
        let (order, r) = one_bar(&MaxDiff, outlook(1, 100.5, 103.0, 99.0));
        assert_eq!((order.direction, order.take_profit), (1, Some(103.0)));
        assert!((r - 0.03).abs() < 1e-12);
        // Low move -4 % larger: short, take-profit 96 not reached (low 97): 100 -> 101 = -1 %.
        let (order, r) = one_bar(&MaxDiff, outlook(1, 100.0, 101.0, 96.0));
        assert_eq!(order.direction, -1);
        assert!((r + 0.01).abs() < 1e-12);
        // Predicted low not below the predicted high: no trade.
        assert_eq!(one_bar(&MaxDiff, outlook(1, 100.0, 99.0, 99.0)).0.direction, 0);
    }

    #[test]
    fn maxdiff_tunes_its_multiple_on_ended_windows_only() {
        // The window at origin 1 predicted a high of 108 (long, +8 %); bar 1's high is 104.
        // Multiple 1 (target 108) is not reached: close 101, +1 %. Multiple 0.25 (102), 0.5
        // (104) reach it: +2 %, +4 %; 0.75 (106) does not: +1 %. Best: 0.5.
        let earlier = [outlook(1, 100.5, 108.0, 99.0)];
        let past = Past {
            bars: bars().before(2),
            outlooks: &earlier,
            sim: &sim(),
        };
        assert_eq!(MaxDiff::tuned_multiplier(&past), 0.5);
        // Deciding at origin 1 itself, that window has not ended: the default 1.
        let past = Past {
            bars: bars().before(1),
            ..past
        };
        assert_eq!(MaxDiff::tuned_multiplier(&past), 1.0);
    }

    #[test]
    fn no_short_turns_shorts_flat() {
        assert_eq!(no_short(Order::market(3, -1)), Order::market(3, 0));
        assert_eq!(no_short(Order::market(3, 1)), Order::market(3, 1));
    }

    /// Prices and forecasts for the no-look-ahead tests: 60 bars, an outlook at every origin
    /// from 10 on, each from a deterministic pseudo-random walk.
    fn scenario(seed: u64) -> (Vec<[f64; 4]>, Vec<Outlook>) {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut close = 100.0;
        let bars: Vec<[f64; 4]> = (0..60)
            .map(|_| {
                let open = close * (1.0 + 0.005 * next());
                close = open * (1.0 + 0.03 * next());
                let high = open.max(close) * (1.0 + 0.01 * (next() + 0.5));
                let low = open.min(close) * (1.0 - 0.01 * (next() + 0.5));
                [open, high, low, close]
            })
            .collect();
        let outlooks = (10..58)
            .map(|o| {
                let last = bars[o - 1][3];
                let c = last * (1.0 + 0.03 * next());
                Outlook {
                    origin: o,
                    last_close: last,
                    close: c,
                    high: Some(c * (1.0 + 0.005 * (next() + 0.5))),
                    low: Some(c * (1.0 - 0.005 * (next() + 0.5))),
                    interval: (c * (1.0 - 0.01 * (next() + 0.5)), c * (1.0 + 0.01 * (next() + 0.5))),
                }
            })
            .collect();
        (bars, outlooks)
    }

    fn run(strategy: &dyn Strategy, bars: &[[f64; 4]], outlooks: &[Outlook], hold: usize) -> crate::trading::SimResult {
        let column = |k: usize| bars.iter().map(|b| b[k]).collect::<Vec<f64>>();
        let (open, high, low, close) = (column(0), column(1), column(2), column(3));
        let bars = Bars {
            open: Some(&open),
            high: Some(&high),
            low: Some(&low),
            close: &close,
        };
        let config = SimConfig {
            hold,
            fee_bps: 10.0,
            spread_bps: 4.0,
            ..sim()
        };
        let orders = orders(strategy, outlooks, &bars, &config);
        simulate(&bars, &orders, 10, 60, &config)
    }

    /// Every strategy: changing bars from `cut` on and the outlooks of later origins never
    /// changes equity, returns or trades up to bar `cut - 1`.
    #[test]
    fn no_strategy_looks_ahead() {
        for name in NAMES {
            let strategy = by_name(name, 0.002).unwrap();
            for hold in [1, 3] {
                let (bars, outlooks) = scenario(7);
                let base = run(strategy.as_ref(), &bars, &outlooks, hold);
                assert!(!base.trades.is_empty(), "{name}: the scenario trades");
                for cut in [20, 33, 45] {
                    let (other_bars, other_outlooks) = scenario(99);
                    let mut bars2 = bars.clone();
                    bars2[cut..].copy_from_slice(&other_bars[cut..]);
                    let mut outlooks2 = outlooks.clone();
                    for (o, other) in outlooks2.iter_mut().zip(&other_outlooks) {
                        if o.origin > cut {
                            *o = Outlook {
                                origin: o.origin,
                                ..*other
                            };
                        }
                    }
                    let changed = run(strategy.as_ref(), &bars2, &outlooks2, hold);
                    let seen = cut - 10; // bars 10..cut
                    assert_eq!(
                        base.equity[..seen],
                        changed.equity[..seen],
                        "{name} hold {hold} cut {cut}"
                    );
                    let done = |r: &crate::trading::SimResult| -> Vec<crate::trading::Trade> {
                        r.trades.iter().filter(|t| t.exit_bar < cut - 1).copied().collect()
                    };
                    assert_eq!(done(&base), done(&changed), "{name} hold {hold} cut {cut}");
                }
            }
        }
    }
}
