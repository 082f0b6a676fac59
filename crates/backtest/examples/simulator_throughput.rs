//! Throughput of the trading simulator alone, given signals:
//! `cargo run --release -p chronos2-backtest --example simulator_throughput`.
//!
//! 1,000 independent series of 10,000 bars (10 million bar-steps) with a random signal on
//! every bar (a worst case for trade bookkeeping), fees and slippage on, metrics included.
//! Prints bar-steps per second, the median of 7 runs. (One 10-million-bar path with fees on
//! every bar would drive equity into subnormal floats, which measures the FPU, not us.)

use std::time::Instant;

use chronos2_backtest::trading::{simulate, Bars, FillAt, Order, SimConfig, TradingMetrics};

fn main() {
    let (series, bars) = (1_000usize, 10_000usize);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let paths: Vec<(Vec<f64>, Vec<Order>)> = (0..series)
        .map(|_| {
            let mut price = 100.0;
            let closes = (0..bars)
                .map(|_| {
                    price *= 1.0 + (next() - 0.5) * 0.02;
                    price
                })
                .collect();
            let signals = (1..bars)
                .map(|o| Order::market(o, [-1, 0, 1][(next() * 3.0) as usize % 3]))
                .collect();
            (closes, signals)
        })
        .collect();
    let config = SimConfig {
        fraction: 1.0,
        fee_bps: 10.0,
        slippage_bps: 5.0,
        spread_bps: 2.0,
        hold: 1,
        initial_equity: 10_000.0,
        fill_at: FillAt::Close,
    };
    let mut rates = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        for (closes, signals) in &paths {
            let result = simulate(&Bars::closes(closes), signals, 1, bars, &config);
            std::hint::black_box(TradingMetrics::of(&result, 10_000.0, 365.0));
        }
        rates.push((series * (bars - 1)) as f64 / started.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "simulator: {:.1} million bar-steps/s (median of 7 runs; {series} series x {bars} bars, a signal every bar, metrics included)",
        rates[3] / 1e6
    );
}
