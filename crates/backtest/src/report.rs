//! Backtest outputs: the terminal summary, `report.json` with every figure, `forecasts.csv`,
//! `trades.csv`, `summary.csv` (one row per symbol), `portfolio.csv` (the portfolio's equity
//! per strategy) and `report.html`, the tear sheet ([`crate::tearsheet`]).
//!
//! Figures that cannot be computed print as `n/a` (the naive forecast predicts no move, so its
//! direction hit rate is n/a, not 0 %); annualised figures from fewer than
//! [`MIN_TRADES`] trades or [`MIN_BARS`] bars carry a warning; `report.json` writes infinite
//! ratios as the strings `"inf"` / `"-inf"`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chronos2_data::{format_timestamp, format_timestamp_at, TimestampStyle, Zone};

use crate::table::Table;
use crate::trading::{FillAt, TradingMetrics};
use crate::walkforward::{PointMetrics, SeriesBacktest, StrategyResult};
use crate::{BacktestError, BacktestRun};

/// Fewer trades than this make annualised figures a warning.
pub const MIN_TRADES: usize = 30;
/// Fewer bars than this make annualised figures a warning.
pub const MIN_BARS: usize = 60;

/// Formats a number for tables (NaN as `n/a`).
pub(crate) fn num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:.decimals$}")
    }
}

/// A fraction as a percentage (NaN as `n/a`).
pub(crate) fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}%", 100.0 * v)
    } else {
        num(v, 2)
    }
}

/// A timestamp as a date, with the time of day when it is not midnight (UTC); in `zone`, with
/// its offset, where `--tz` gave one.
pub(crate) fn day(zone: Option<Zone>, t: i64) -> String {
    match zone {
        None => format_timestamp(t, TimestampStyle::DateTime)
            .trim_end_matches(" 00:00:00")
            .to_string(),
        Some(zone) => format_timestamp_at(t, TimestampStyle::DateTimeUtcOffset, zone.offset_at(t)),
    }
}

/// A bar's time, or its index when outside the series' recorded span.
fn time_or_bar(zone: Option<Zone>, b: &SeriesBacktest, bar: usize) -> String {
    b.time_of(bar).map_or_else(|| format!("bar {bar}"), |t| day(zone, t))
}

/// The Diebold-Mariano verdict in one line: which forecast it favours and whether that is
/// significant at 5 %.
pub fn verdict(b: &SeriesBacktest, model: &str) -> String {
    let dm = &b.dm_vs_naive;
    if dm.p_value.is_nan() || dm.mean_difference.is_nan() {
        return format!(
            "Diebold-Mariano: no verdict ({} paired errors; needs at least 3 that are not all equal)",
            dm.n
        );
    }
    let (better, worse) = if dm.mean_difference < 0.0 {
        (model, "naive")
    } else {
        ("naive", model)
    };
    let significance = if dm.p_value < 0.05 {
        "significant at 5 %"
    } else {
        "not significant at 5 %"
    };
    format!(
        "Diebold-Mariano favours {better} over {worse} ({significance}: p = {}, n = {})",
        num(dm.p_value, 4),
        dm.n
    )
}

/// A warning when the annualised figures of `m` rest on a small sample.
pub fn sample_warning(m: &TradingMetrics, bars: usize) -> Option<String> {
    (m.trades < MIN_TRADES || bars < MIN_BARS).then(|| {
        format!(
            "annualised figures (CAGR, volatility, Sharpe, Sortino, Calmar) rest on {} trades over {bars} bars (fewer than {MIN_TRADES} trades or {MIN_BARS} bars): indicative only",
            m.trades
        )
    })
}

/// The probabilistic metrics, skill and significance of a series, one fact per item.
fn quality_facts(b: &SeriesBacktest) -> Vec<String> {
    let q = &b.quantile;
    let dm = &b.dm_vs_naive;
    vec![
        format!("WQL {}", num(q.wql, 4)),
        format!("SQL {}", num(q.sql, 3)),
        format!(
            "{:.0}-{:.0}% interval coverage {}",
            q.interval.0 * 100.0,
            q.interval.1 * 100.0,
            pct(q.interval_coverage)
        ),
        format!("MSIS {}", num(q.msis, 3)),
        format!("skill vs naive (1 - MAE ratio) {}", pct(b.skill_vs_naive)),
        format!(
            "Diebold-Mariano vs naive (absolute errors at the traded step): stat {}, p {} (n = {})",
            num(dm.statistic, 3),
            num(dm.p_value, 4),
            dm.n
        ),
    ]
}

/// Point-forecast metrics of the model (labelled `model`) and the baselines.
pub(crate) fn forecast_table(b: &SeriesBacktest, model: &str) -> Table {
    let row = |name: &str, m: &PointMetrics| {
        vec![
            name.to_string(),
            num(m.mae, 4),
            num(m.rmse, 4),
            num(m.mape, 2),
            num(m.smape, 2),
            num(m.mase, 3),
            num(m.wape, 4),
            num(m.return_mae, 5),
            pct(m.direction_hit_rate),
        ]
    };
    let mut table = Table::new([
        "forecast",
        "MAE",
        "RMSE",
        "MAPE %",
        "sMAPE %",
        "MASE",
        "WAPE",
        "return MAE",
        "dir. hit",
    ]);
    table.push(row(model, &b.model));
    for (name, m) in &b.baselines {
        table.push(row(name, m));
    }
    table
}

/// Trading metrics of named paths; a `*` after the name marks small-sample annualised figures.
pub(crate) fn metrics_table<'a>(rows: impl IntoIterator<Item = (&'a str, &'a TradingMetrics, usize)>) -> Table {
    let mut table = Table::new([
        "strategy",
        "return",
        "CAGR",
        "volatility",
        "Sharpe",
        "Sortino",
        "Calmar",
        "max DD",
        "DD bars",
        "trades",
        "win rate",
        "profit factor",
        "expectancy",
        "avg trade PnL",
        "exposure",
        "costs",
    ]);
    for (name, m, bars) in rows {
        let mark = if sample_warning(m, bars).is_some() { "*" } else { "" };
        table.push(vec![
            format!("{name}{mark}"),
            pct(m.total_return),
            pct(m.cagr),
            pct(m.annual_volatility),
            num(m.sharpe, 2),
            num(m.sortino, 2),
            num(m.calmar, 2),
            pct(m.max_drawdown),
            m.max_drawdown_bars.to_string(),
            m.trades.to_string(),
            pct(m.win_rate),
            num(m.profit_factor, 2),
            pct(m.expectancy),
            num(m.average_trade_pnl, 2),
            pct(m.exposure),
            num(m.total_costs, 2),
        ]);
    }
    table
}

/// Trading metrics of every strategy of a series.
pub(crate) fn strategy_table(b: &SeriesBacktest) -> Table {
    metrics_table(
        b.strategies
            .iter()
            .map(|st| (st.name.as_str(), &st.metrics, st.path.returns.len())),
    )
}

/// Trading metrics of the portfolio, per strategy.
pub(crate) fn portfolio_table(run: &BacktestRun) -> Table {
    let bars = run.portfolio.times.len();
    metrics_table(
        run.portfolio
            .strategies
            .iter()
            .map(|st| (st.name.as_str(), &st.metrics, bars)),
    )
}

/// Notes on a series' strategies: zero trades explained, skipped strategies, bankruptcies,
/// small samples.
pub(crate) fn strategy_notes(zone: Option<Zone>, b: &SeriesBacktest) -> Vec<(&'static str, String)> {
    let mut notes = Vec::new();
    for st in &b.strategies {
        if let Some(reason) = &st.no_trades {
            notes.push(("no-trades", format!("{}: no trades: {reason}", st.name)));
        }
        if let Some(bar) = st.path.bankrupt_at {
            notes.push((
                "bankrupt",
                format!(
                    "{}: equity reached 0 at {} (bankrupt, -100%); trading stopped there",
                    st.name,
                    time_or_bar(zone, b, bar)
                ),
            ));
        }
    }
    for s in &b.skipped {
        notes.push(("skipped-strategy", format!("{}: not run: {}", s.name, s.reason)));
    }
    if let Some(warning) = b
        .strategies
        .iter()
        .find_map(|st| sample_warning(&st.metrics, st.path.returns.len()))
    {
        notes.push(("sample-warning", format!("* {warning}")));
    }
    notes
}

/// The strategy with the highest total return (buy and hold excluded), if any ran.
pub(crate) fn best_strategy(b: &SeriesBacktest) -> Option<&StrategyResult> {
    b.strategies
        .iter()
        .filter(|st| st.name != "buy_and_hold")
        .max_by(|x, y| x.metrics.total_return.total_cmp(&y.metrics.total_return))
}

/// One row per symbol: forecast quality, the verdict, each strategy's return.
pub fn universe_table(run: &BacktestRun) -> Table {
    let names: Vec<&str> = run
        .series
        .first()
        .map(|b| b.strategies.iter().map(|st| st.name.as_str()).collect())
        .unwrap_or_default();
    // Each forecast column names its basis: the MAE-based figures average every step of the
    // horizon, the Diebold-Mariano test compares the errors at the traded step only, so the two
    // can disagree in one row.
    let (h, k) = (run.options.horizon, run.options.strategy.trade_step);
    let mut header: Vec<String> = vec![
        "symbol".into(),
        "windows".into(),
        format!("MAE (steps 1-{h})"),
        "MASE".into(),
        format!("skill vs naive (MAE over steps 1-{h})"),
        format!("DM p (step {k})"),
        format!("favours (DM at step {k})"),
    ];
    header.extend(names.iter().map(|n| format!("{n} return")));
    header.push("best strategy".into());
    let mut table = Table::new(header);
    for b in &run.series {
        let dm = &b.dm_vs_naive;
        let favours = if dm.mean_difference.is_nan() {
            "n/a".to_string()
        } else {
            let side = if dm.mean_difference < 0.0 { "model" } else { "naive" };
            format!("{side}{}", if dm.p_value < 0.05 { " (sig.)" } else { "" })
        };
        let mut row = vec![
            b.label.clone(),
            b.windows.len().to_string(),
            num(b.model.mae, 4),
            num(b.model.mase, 3),
            pct(b.skill_vs_naive),
            num(dm.p_value, 4),
            favours,
        ];
        for name in &names {
            row.push(
                b.strategies
                    .iter()
                    .find(|st| st.name == *name)
                    .map_or_else(|| "n/a".into(), |st| pct(st.metrics.total_return)),
            );
        }
        row.push(best_strategy(b).map_or_else(|| "n/a".into(), |st| st.name.clone()));
        table.push(row);
    }
    table
}

/// The settings line of every report.
fn settings_line(run: &BacktestRun) -> String {
    let o = &run.options;
    let s = &o.strategy;
    let season = o.season.map_or_else(|| "by calendar".to_string(), |m| m.to_string());
    format!(
        "backtest of {} on {}: {}, context {}, horizon {}, step {}, target {}, season {season}, traded step {}, fill at {}, fees {} bps + slippage {} bps + half of a {} bps spread per fill{}",
        run.model,
        run.data,
        crate::table::count(o.windows, "window", "windows"),
        o.context,
        o.horizon,
        o.step,
        o.target,
        s.trade_step,
        match s.sim.fill_at {
            FillAt::Close => "close",
            FillAt::NextOpen => "next open",
        },
        s.sim.fee_bps,
        s.sim.slippage_bps,
        s.sim.spread_bps,
        if s.no_short { ", no shorts" } else { "" }
    )
}

/// The block of one series.
fn series_block(s: &mut String, zone: Option<Zone>, context: usize, b: &SeriesBacktest, model: &str) {
    let first = b.windows.first().map_or(0, |w| w.origin_time);
    let last = b.windows.last().map_or(0, |w| w.origin_time);
    let _ = writeln!(
        s,
        "\n{} | origins {} .. {} | {:.0} bars/year ({}) | season {}{}",
        b.label,
        day(zone, first),
        day(zone, last),
        b.periods_per_year,
        b.annualised_by,
        b.season,
        if b.shortest_context < context {
            format!(
                " | context from {} bars (shortened: the series starts too late)",
                b.shortest_context
            )
        } else {
            String::new()
        }
    );
    s.push_str(&forecast_table(b, model).columns(&[0, 1, 2, 3, 5, 6, 8]).text("  "));
    let _ = writeln!(s, "  {}", verdict(b, model));
    let _ = writeln!(s, "  {}", quality_facts(b).join(" | "));
    s.push_str(&strategy_table(b).columns(&[0, 1, 2, 4, 5, 7, 9, 10, 11, 14]).text("  "));
    for (_, note) in strategy_notes(zone, b) {
        let _ = writeln!(s, "  {note}");
    }
}

/// The terminal summary: the settings; for one series its block; for a universe the table of
/// symbols, the portfolio and the skipped series (each symbol's block is in report.html).
pub fn summary(run: &BacktestRun) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", settings_line(run));
    if let [b] = run.series.as_slice() {
        series_block(&mut s, run.zone, run.options.context, b, &run.model);
    } else {
        let _ = writeln!(s, "\n{} symbols", run.series.len());
        s.push_str(&universe_table(run).text("  "));
        let _ = writeln!(
            s,
            "\nportfolio: {} symbols, {}",
            run.series.len(),
            if run.portfolio.weights.windows(2).all(|w| w[0].1 == w[1].1) {
                "equal weights".to_string()
            } else {
                "weights from --weights".to_string()
            }
        );
        s.push_str(
            &portfolio_table(run)
                .columns(&[0, 1, 2, 4, 5, 7, 9, 10, 11, 14])
                .text("  "),
        );
        if let Some(warning) = run
            .portfolio
            .strategies
            .iter()
            .find_map(|st| sample_warning(&st.metrics, run.portfolio.times.len()))
        {
            let _ = writeln!(s, "  * {warning}");
        }
    }
    for skipped in &run.skipped {
        let _ = writeln!(s, "skipped {}", skipped.reason);
    }
    if run.series.len() > 1 {
        for b in run.series.iter().filter(|b| b.shortest_context < run.options.context) {
            let _ = writeln!(
                s,
                "shortened context: {}: the first windows have {} bars of context, fewer than --context {} (the series starts too late)",
                b.label, b.shortest_context, run.options.context
            );
        }
    }
    let t = &run.timing;
    let _ = writeln!(
        s,
        "\ntime: {:.2} s total, {:.2} s in the model ({:.0}%, {}), {:.2} s everything else",
        t.total_seconds,
        t.model_seconds,
        100.0 * t.model_seconds / t.total_seconds.max(1e-9),
        crate::table::count(t.model_calls, "forward pass", "forward passes"),
        t.total_seconds - t.model_seconds
    );
    s
}

/// A [`BacktestError::Write`] for `path`.
fn write_error(path: &Path, source: std::io::Error) -> BacktestError {
    BacktestError::Write {
        path: path.display().to_string(),
        source,
    }
}

/// The temporary name `path` is written under before the rename: hidden, in the same folder
/// (so the rename is atomic), and unique to this process.
fn temporary_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically: into a temporary file in the same folder, flushed to
/// disk, then renamed over `path`. An interrupted or failed write leaves `path` as it was
/// (and no temporary file behind when the error is reported).
///
/// # Errors
/// [`BacktestError::Write`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BacktestError> {
    use std::io::Write as _;
    let temporary = temporary_name(path);
    crate::written::writing(&temporary);
    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(source) = written.and_then(|()| std::fs::rename(&temporary, path)) {
        let _ = std::fs::remove_file(&temporary);
        crate::written::done(&temporary, None);
        return Err(write_error(path, source));
    }
    crate::written::done(&temporary, Some(path));
    Ok(())
}

/// Creates `dir` if needed and checks that files can be written in it, so that a run fails
/// before its work rather than after. Call it before the run, then [`write_outputs`].
///
/// # Errors
/// [`BacktestError::Write`] naming the folder and the OS error.
pub fn check_output_dir(dir: &Path) -> Result<(), BacktestError> {
    if dir.exists() && !dir.is_dir() {
        return Err(write_error(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a folder; pass another --out",
            ),
        ));
    }
    let existed = dir.exists();
    std::fs::create_dir_all(dir).map_err(|source| write_error(dir, source))?;
    if !existed {
        crate::written::created_dir(dir);
    }
    let probe = temporary_name(&dir.join("write-check"));
    std::fs::write(&probe, b"").map_err(|source| write_error(dir, source))?;
    std::fs::remove_file(&probe).map_err(|source| write_error(&probe, source))
}

/// `field` as one CSV field (RFC 4180): quoted, with inner quotes doubled, when it holds a
/// comma, a quote or a line break; as it is otherwise.
///
/// ```
/// use chronos2_backtest::report::csv_field;
/// assert_eq!(csv_field("BTC"), "BTC");
/// assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
/// ```
pub fn csv_field(field: &str) -> std::borrow::Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\"")).into()
    } else {
        field.into()
    }
}

/// The names of the files [`write_outputs`] writes, in order.
pub const OUTPUT_FILES: [&str; 6] = [
    "report.json",
    "forecasts.csv",
    "trades.csv",
    "summary.csv",
    "portfolio.csv",
    "report.html",
];

/// A column name per quantile level, as `forecast` names them: the level (`0.1`).
pub fn quantile_column(level: f32) -> String {
    level.to_string()
}

/// `forecasts.csv`: one row per window and step, with the origin, target and context times.
fn forecasts_csv(run: &BacktestRun) -> String {
    let mut out =
        String::from("series,origin_time,target_time,step,context_first_time,context_last_time,bar,actual,median");
    for &l in &run.options.quantiles {
        let _ = write!(out, ",{}", quantile_column(l));
    }
    out.push_str(",naive,seasonal_naive,drift\n");
    for b in &run.series {
        let label = csv_field(&b.label);
        for w in &b.windows {
            for k in 0..w.actual.len() {
                let _ = write!(
                    out,
                    "{label},{},{},{},{},{},{},{},{}",
                    day(run.zone, w.origin_time),
                    time_or_bar(run.zone, b, w.origin + k),
                    k + 1,
                    day(run.zone, w.context_times.0),
                    day(run.zone, w.context_times.1),
                    w.origin + k,
                    w.actual[k],
                    w.median[k]
                );
                for q in &w.quantiles {
                    let _ = write!(out, ",{}", q[k]);
                }
                let _ = writeln!(out, ",{},{},{}", w.naive[k], w.seasonal_naive[k], w.drift[k]);
            }
        }
    }
    out
}

/// `trades.csv`: one row per round trip, with entry and exit times and prices.
fn trades_csv(run: &BacktestRun) -> String {
    let mut out = String::from(
        "series,strategy,direction,entry_time,entry_price,exit_time,exit_price,entry_bar,exit_bar,net_return,pnl,costs\n",
    );
    for b in &run.series {
        let label = csv_field(&b.label);
        for st in &b.strategies {
            for t in &st.path.trades {
                let _ = writeln!(
                    out,
                    "{label},{},{},{},{},{},{},{},{},{},{},{}",
                    csv_field(&st.name),
                    t.direction,
                    time_or_bar(run.zone, b, t.entry_bar),
                    t.entry_price,
                    time_or_bar(run.zone, b, t.exit_bar),
                    t.exit_price,
                    t.entry_bar,
                    t.exit_bar,
                    t.net_return,
                    t.pnl,
                    t.costs
                );
            }
        }
    }
    out
}

/// `portfolio.csv`: the portfolio's value per time and strategy.
fn portfolio_csv(run: &BacktestRun) -> String {
    let p = &run.portfolio;
    let mut out = String::from("time");
    for st in &p.strategies {
        let _ = write!(out, ",{}", csv_field(&st.name));
    }
    out.push('\n');
    for (i, &t) in p.times.iter().enumerate() {
        out.push_str(&day(run.zone, t));
        for st in &p.strategies {
            let _ = write!(out, ",{}", st.equity[i]);
        }
        out.push('\n');
    }
    out
}

/// Writes the [`OUTPUT_FILES`] into `dir` (created if needed), each atomically (see
/// [`write_atomic`]); `extra_html` goes into the tear sheet after the settings. Returns the
/// paths.
///
/// # Errors
/// [`BacktestError::Write`] if a file cannot be written.
pub fn write_outputs(run: &BacktestRun, dir: &Path, extra_html: &str) -> Result<Vec<PathBuf>, BacktestError> {
    check_output_dir(dir)?;
    // Indented for a few symbols (people read it); compact for a universe (a third the size).
    let json = if run.series.len() <= crate::tearsheet::DETAILED_SERIES {
        serde_json::to_string_pretty(run)
    } else {
        serde_json::to_string(run)
    }
    .expect("the report serialises");
    let contents = [
        json,
        forecasts_csv(run),
        trades_csv(run),
        universe_table(run).csv(),
        portfolio_csv(run),
        crate::tearsheet::html(run, extra_html),
    ];
    let mut paths = Vec::with_capacity(OUTPUT_FILES.len());
    for (name, text) in OUTPUT_FILES.iter().zip(&contents) {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes())?;
        paths.push(path);
    }
    Ok(paths)
}

/// `text` with `&`, `<`, `>` and both quotes escaped, safe in HTML text and in quoted
/// attributes.
///
/// ```
/// use chronos2_backtest::report::escape_html;
/// assert_eq!(escape_html("<img src=x onerror='a&b'>"), "&lt;img src=x onerror=&#39;a&amp;b&#39;&gt;");
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
