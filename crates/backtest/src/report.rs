//! Backtest outputs: the terminal summary, `report.json` with every figure, `forecasts.csv`,
//! `trades.csv`, and `report.html`, a self-contained page (inline SVG, no network) with
//! equity curves against buy-and-hold, drawdowns, forecast fans and the error per window.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chronos2_data::{format_timestamp, TimestampStyle};

use crate::table::Table;
use crate::walkforward::{SeriesBacktest, LEVELS};
use crate::{BacktestError, BacktestRun};

/// Formats a number for tables (NaN as `n/a`).
fn num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:.decimals$}")
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}%", 100.0 * v)
    } else {
        num(v, 2)
    }
}

fn day(t: i64) -> String {
    format_timestamp(t, TimestampStyle::DateTime)
        .trim_end_matches(" 00:00:00")
        .to_string()
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

/// Point-forecast metrics of the model and the baselines.
fn forecast_table(b: &SeriesBacktest) -> Table {
    let row = |name: &str, m: &crate::walkforward::PointMetrics| {
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
    table.push(row("chronos-2", &b.model));
    for (name, m) in &b.baselines {
        table.push(row(name, m));
    }
    table
}

/// Trading metrics of every strategy.
fn strategy_table(b: &SeriesBacktest) -> Table {
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
    for st in &b.strategies {
        let m = &st.metrics;
        table.push(vec![
            st.name.clone(),
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

/// The terminal summary: one block per series.
pub fn summary(run: &BacktestRun) -> String {
    let mut s = String::new();
    let o = &run.options;
    let _ = writeln!(
        s,
        "backtest of {} on {}: {} windows, context {}, horizon {}, step {}, traded step {}, fees {} bps + slippage {} bps per side",
        run.model, run.data, o.windows, o.context, o.horizon, o.step, o.strategy.trade_step, o.strategy.sim.fee_bps, o.strategy.sim.slippage_bps
    );
    for b in &run.series {
        let first = b.windows.first().map_or(0, |w| w.origin_time);
        let last = b.windows.last().map_or(0, |w| w.origin_time);
        let _ = writeln!(
            s,
            "\n{} | origins {} .. {} | {:.0} bars/year",
            b.label,
            day(first),
            day(last),
            b.periods_per_year
        );
        s.push_str(&forecast_table(b).columns(&[0, 1, 2, 3, 5, 6, 8]).text("  "));
        let _ = writeln!(s, "  {}", quality_facts(b).join(" | "));
        s.push_str(&strategy_table(b).columns(&[0, 1, 2, 4, 5, 7, 9, 10, 11, 14]).text("  "));
        for st in &b.strategies {
            if let Some(bar) = st.path.bankrupt_at {
                let _ = writeln!(
                    s,
                    "  {}: equity reached 0 at bar {bar} (bankrupt, -100%); trading stopped there",
                    st.name
                );
            }
        }
    }
    let t = &run.timing;
    let _ = writeln!(
        s,
        "\ntime: {:.2} s total, {:.2} s in the model ({:.0}%, {} forward passes), {:.2} s everything else",
        t.total_seconds,
        t.model_seconds,
        100.0 * t.model_seconds / t.total_seconds.max(1e-9),
        t.model_calls,
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
    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(source) = written.and_then(|()| std::fs::rename(&temporary, path)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(write_error(path, source));
    }
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
    std::fs::create_dir_all(dir).map_err(|source| write_error(dir, source))?;
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
pub const OUTPUT_FILES: [&str; 4] = ["report.json", "forecasts.csv", "trades.csv", "report.html"];

/// Writes `report.json`, `forecasts.csv`, `trades.csv` and `report.html` into `dir`
/// (created if needed), each atomically (see [`write_atomic`]); returns the paths.
///
/// # Errors
/// [`BacktestError::Write`] if a file cannot be written.
pub fn write_outputs(run: &BacktestRun, dir: &Path, extra_html: &str) -> Result<Vec<PathBuf>, BacktestError> {
    check_output_dir(dir)?;
    let json = serde_json::to_string_pretty(run).expect("the report serialises");
    let mut forecasts = String::from("series,origin,step,timestamp_index,actual,median");
    for l in LEVELS {
        let _ = write!(forecasts, ",q{l}");
    }
    forecasts.push_str(",naive,seasonal_naive,drift\n");
    let mut trades = String::from("series,strategy,entry_bar,exit_bar,direction,net_return,pnl,costs\n");
    for b in &run.series {
        let label = csv_field(&b.label);
        for w in &b.windows {
            for k in 0..w.actual.len() {
                let _ = write!(
                    forecasts,
                    "{label},{},{},{},{},{}",
                    day(w.origin_time),
                    k + 1,
                    w.origin + k,
                    w.actual[k],
                    w.median[k]
                );
                for q in &w.quantiles {
                    let _ = write!(forecasts, ",{}", q[k]);
                }
                let _ = writeln!(forecasts, ",{},{},{}", w.naive[k], w.seasonal_naive[k], w.drift[k]);
            }
        }
        for st in &b.strategies {
            for t in &st.path.trades {
                let _ = writeln!(
                    trades,
                    "{label},{},{},{},{},{},{},{}",
                    csv_field(&st.name),
                    t.entry_bar,
                    t.exit_bar,
                    t.direction,
                    t.net_return,
                    t.pnl,
                    t.costs
                );
            }
        }
    }
    let contents = [json, forecasts, trades, html(run, extra_html)];
    let mut paths = Vec::with_capacity(OUTPUT_FILES.len());
    for (name, text) in OUTPUT_FILES.iter().zip(&contents) {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes())?;
        paths.push(path);
    }
    Ok(paths)
}

/// One line of a chart.
struct Line<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

/// A shaded band between two curves.
struct Band<'a> {
    color: &'a str,
    points: Vec<(f64, f64, f64)>,
}

/// An SVG line chart with a y axis, x tick labels from `x_label` and a legend.
fn chart(title: &str, lines: &[Line<'_>], bands: &[Band<'_>], x_label: &dyn Fn(f64) -> String) -> String {
    let (w, h, left, right, top, bottom) = (780.0, 280.0, 70.0, 40.0, 28.0, 40.0);
    let all_x = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(bands.iter().flat_map(|b| b.points.iter().map(|p| p.0)));
    let all_y = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(bands.iter().flat_map(|b| b.points.iter().flat_map(|p| [p.1, p.2])))
        .filter(|v| v.is_finite());
    let (x0, x1) = all_x.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    let (mut y0, mut y1) = all_y.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
    if !y0.is_finite() {
        return format!("<p>{}: no data</p>", escape_html(title));
    }
    if y1 - y0 < 1e-12 {
        y0 -= 1.0;
        y1 += 1.0;
    }
    let pad = 0.05 * (y1 - y0);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let sx = |x: f64| left + (x - x0) / (x1 - x0).max(1e-12) * (w - left - right);
    let sy = |y: f64| top + (y1 - y) / (y1 - y0) * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' viewBox='0 0 {w} {h}' font-family='sans-serif' font-size='11'>\
<text x='{left}' y='16' font-size='13' font-weight='bold'>{}</text>",
        escape_html(title)
    );
    for i in 0..=4 {
        let y = y0 + (y1 - y0) * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<line x1='{left}' x2='{}' y1='{:.1}' y2='{:.1}' stroke='#ddd'/><text x='{}' y='{:.1}' text-anchor='end'>{}</text>",
            w - right,
            sy(y),
            sy(y),
            left - 4.0,
            sy(y) + 4.0,
            short_number(y)
        );
    }
    for i in 0..=4 {
        let x = x0 + (x1 - x0) * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{}' text-anchor='middle'>{}</text>",
            sx(x),
            h - bottom + 16.0,
            x_label(x)
        );
    }
    for band in bands {
        let upper: Vec<String> = band
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.2)))
            .collect();
        let lower: Vec<String> = band
            .points
            .iter()
            .rev()
            .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1)))
            .collect();
        let _ = write!(
            svg,
            "<polygon points='{} {}' fill='{}' fill-opacity='0.25' stroke='none'/>",
            upper.join(" "),
            lower.join(" "),
            band.color
        );
    }
    for (i, line) in lines.iter().enumerate() {
        let points: Vec<String> = line
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1)))
            .collect();
        let dash = if line.dashed { " stroke-dasharray='5,3'" } else { "" };
        let _ = write!(
            svg,
            "<polyline points='{}' fill='none' stroke='{}' stroke-width='1.6'{dash}/>",
            points.join(" "),
            line.color
        );
        let lx = left + 10.0 + 150.0 * i as f64;
        let _ = write!(
            svg,
            "<line x1='{lx}' x2='{}' y1='{}' y2='{}' stroke='{}' stroke-width='3'/><text x='{}' y='{}'>{}</text>",
            lx + 18.0,
            h - 10.0,
            h - 10.0,
            line.color,
            lx + 22.0,
            h - 6.0,
            escape_html(line.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn short_number(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.2}M", v / 1e6),
        a if a >= 1e4 => format!("{:.1}k", v / 1e3),
        a if a >= 10.0 => format!("{v:.0}"),
        a if a >= 0.1 => format!("{v:.2}"),
        _ => format!("{v:.4}"),
    }
}

const COLORS: [&str; 3] = ["#1f77b4", "#2ca02c", "#444444"];

fn series_section(b: &SeriesBacktest, initial_equity: f64) -> String {
    let closes_hint = |i: usize| i.checked_sub(b.history_start).and_then(|k| b.history.get(k).copied());
    let mut s = format!("<h2>{}</h2>", escape_html(&b.label));
    let time_of = |bar: f64| -> String {
        let index = b
            .windows
            .iter()
            .position(|w| w.origin as f64 >= bar)
            .unwrap_or(b.windows.len().saturating_sub(1));
        b.windows.get(index).map_or(String::new(), |w| day(w.origin_time))
    };
    // Equity curves against buy and hold.
    let lines: Vec<Line<'_>> = b
        .strategies
        .iter()
        .enumerate()
        .map(|(i, st)| Line {
            name: &st.name,
            color: COLORS[i % COLORS.len()],
            points: st
                .path
                .equity
                .iter()
                .enumerate()
                .map(|(k, &e)| ((st.path.start + k) as f64, e))
                .collect(),
            dashed: st.name == "buy_and_hold",
        })
        .collect();
    s.push_str(&chart("Equity (strategies vs buy and hold)", &lines, &[], &time_of));
    // Drawdowns.
    let drawdown_lines: Vec<Line<'_>> = b
        .strategies
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let mut peak = initial_equity;
            let points = st
                .path
                .equity
                .iter()
                .enumerate()
                .map(|(k, &e)| {
                    peak = peak.max(e);
                    ((st.path.start + k) as f64, -100.0 * (1.0 - e / peak))
                })
                .collect();
            Line {
                name: &st.name,
                color: COLORS[i % COLORS.len()],
                points,
                dashed: st.name == "buy_and_hold",
            }
        })
        .collect();
    s.push_str(&chart("Drawdown (%)", &drawdown_lines, &[], &time_of));
    // Forecast fans for the most recent windows (non-overlapping ones preferred).
    let recent: Vec<_> = b
        .windows
        .iter()
        .rev()
        .step_by((b.windows.first().map_or(1, |w| w.actual.len())).max(1))
        .take(3)
        .collect();
    for w in recent.into_iter().rev() {
        let h = w.actual.len();
        let history: Vec<(f64, f64)> = (w.origin.saturating_sub(3 * h)..w.origin)
            .filter_map(|i| closes_hint(i).map(|c| (i as f64, c)))
            .collect();
        let at = |k: usize| (w.origin + k) as f64;
        let level = |l: f32| &w.quantiles[LEVELS.iter().position(|&x| (x - l).abs() < 1e-6).expect("level")];
        let (q10, q30, q70, q90) = (level(0.1), level(0.3), level(0.7), level(0.9));
        let bands = [
            Band {
                color: "#ff7f0e",
                points: (0..h).map(|k| (at(k), q10[k], q90[k])).collect(),
            },
            Band {
                color: "#ff7f0e",
                points: (0..h).map(|k| (at(k), q30[k], q70[k])).collect(),
            },
        ];
        let mut actual = vec![(w.origin as f64 - 1.0, w.last_close)];
        actual.extend((0..h).map(|k| (at(k), w.actual[k])));
        let lines = [
            Line {
                name: "history",
                color: "#444444",
                points: history,
                dashed: false,
            },
            Line {
                name: "actual",
                color: "#1f77b4",
                points: actual,
                dashed: false,
            },
            Line {
                name: "median forecast",
                color: "#d62728",
                points: (0..h).map(|k| (at(k), w.median[k])).collect(),
                dashed: true,
            },
        ];
        let origin = w.origin;
        let label = move |x: f64| format!("{:+}", x as i64 - origin as i64);
        s.push_str(&chart(
            &format!(
                "Forecast from {} (bars relative to the origin; bands 10-90% and 30-70%)",
                day(w.origin_time)
            ),
            &lines,
            &bands,
            &label,
        ));
    }
    // Error per window.
    let errors = |pick: fn(&crate::walkforward::Window) -> &Vec<f64>| -> Vec<(f64, f64)> {
        b.windows
            .iter()
            .map(|w| (w.origin as f64, crate::metrics::mae(&w.actual, pick(w))))
            .collect()
    };
    let lines = [
        Line {
            name: "chronos-2 MAE",
            color: "#d62728",
            points: errors(|w| &w.median),
            dashed: false,
        },
        Line {
            name: "naive MAE",
            color: "#444444",
            points: errors(|w| &w.naive),
            dashed: true,
        },
    ];
    s.push_str(&chart("Error per window (MAE over the horizon)", &lines, &[], &time_of));
    s.push_str(&tables(b));
    s
}

fn tables(b: &SeriesBacktest) -> String {
    let mut s = forecast_table(b).html();
    let coverage: Vec<String> = b
        .quantile
        .coverage
        .iter()
        .map(|(l, c)| format!("{l}: {}", pct(*c)))
        .collect();
    let _ = write!(
        s,
        "<p>{} · coverage per level: {}</p>",
        quality_facts(b).join(" · "),
        coverage.join(", ")
    );
    s.push_str(&strategy_table(b).html());
    s
}

/// The self-contained HTML report; `extra` is inserted after the summary (e.g. the
/// eager-vs-compiled verdict).
pub fn html(run: &BacktestRun, extra: &str) -> String {
    let mut body = String::new();
    for b in &run.series {
        body.push_str(&series_section(b, run.options.strategy.sim.initial_equity));
    }
    format!(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>chronos2 backtest</title><style>\
body{{font-family:sans-serif;max-width:1000px;margin:20px auto;color:#222}} table{{border-collapse:collapse;margin:8px 0;font-size:12px}} \
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} td:first-child,th:first-child{{text-align:left}} pre{{background:#f6f6f6;padding:8px;font-size:11px;overflow-x:auto}}\
</style></head><body><h1>Walk-forward backtest</h1><pre>{}</pre>{extra}{body}</body></html>",
        escape_html(&summary(run))
    )
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
