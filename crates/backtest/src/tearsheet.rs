//! `report.html`: the tear sheet, one self-contained page (inline SVG and a few lines of
//! script to sort tables; no network).
//!
//! It shows the settings; for a universe the portfolio's equity against buy and hold, its
//! metrics and a sortable table with one row per symbol; then for each symbol (the first
//! [`DETAILED_SERIES`]) the Diebold-Mariano verdict, a price chart with entry and exit
//! markers, the P&L of each trade, equity against buy and hold, drawdowns, forecast fans, the
//! error per window, the metric tables, notes (strategies without trades and why, small
//! samples) and the trade list. Every chart names its axes and their units. User text
//! (labels, file names) is escaped everywhere.

use std::fmt::Write as _;

use chronos2_data::Zone;

use crate::report::{
    best_strategy, day, escape_html, forecast_table, num, pct, portfolio_table, sample_warning, strategy_notes,
    strategy_table, summary, universe_table, verdict,
};
use crate::walkforward::{SeriesBacktest, StrategyResult, Window};
use crate::BacktestRun;

/// Symbols with a full section (the others are in the summary table and report.json).
pub const DETAILED_SERIES: usize = 20;

/// Trades listed per symbol (all are in trades.csv).
pub const LISTED_TRADES: usize = 200;

/// One line of a chart.
struct Line<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

/// A shaded band between two curves.
struct Band<'a> {
    /// Its legend entry.
    name: String,
    color: &'a str,
    points: Vec<(f64, f64, f64)>,
}

/// A trade's entry or exit on a price chart.
struct Marker {
    x: f64,
    y: f64,
    entry: bool,
    long: bool,
    title: String,
}

/// What a chart shows besides its lines.
struct Axes<'a> {
    title: &'a str,
    /// The x axis' title with its unit.
    x_title: &'a str,
    /// The y axis' title with its unit.
    y_title: &'a str,
    x_label: &'a dyn Fn(f64) -> String,
    /// The top of the y axis at most (0 for drawdowns, which are never above 0).
    y_at_most: Option<f64>,
}

const WIDTH: f64 = 780.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 70.0;

/// The svg opening, the title and the two axis titles.
fn frame(class: &str, axes: &Axes<'_>) -> String {
    let mid_x = LEFT + (WIDTH - LEFT - RIGHT) / 2.0;
    let mid_y = TOP + (HEIGHT - TOP - BOTTOM) / 2.0;
    format!(
        "<svg class='{class}' xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' viewBox='0 0 {WIDTH} {HEIGHT}' font-family='sans-serif' font-size='11'>\
<text class='chart-title' x='{LEFT}' y='16' font-size='13' font-weight='bold'>{}</text>\
<text class='axis-title x-axis' x='{mid_x}' y='{}' text-anchor='middle'>{}</text>\
<text class='axis-title y-axis' x='14' y='{mid_y}' text-anchor='middle' transform='rotate(-90 14 {mid_y})'>{}</text>",
        escape_html(axes.title),
        HEIGHT - BOTTOM + 30.0,
        escape_html(axes.x_title),
        escape_html(axes.y_title)
    )
}

/// A value range with 5 % padding (a flat range is widened by 1).
fn padded(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return None;
    }
    let (lo, hi) = if hi - lo < 1e-12 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    };
    let pad = 0.05 * (hi - lo);
    Some((lo - pad, hi + pad))
}

/// Round y tick values inside `[lo, hi]`: multiples of a step of 1, 2 or 5 times a power of
/// ten, the smallest such step that gives at most six ticks and, where a smaller one is
/// needed for it, at least three; the ticks and the step.
fn round_ticks(lo: f64, hi: f64) -> (Vec<f64>, f64) {
    let raw = ((hi - lo) / 5.0).max(1e-12);
    let power = 10f64.powf(raw.log10().floor());
    let steps = [0.5, 1.0, 2.0, 5.0, 10.0].map(|m| m * power);
    let at = steps.iter().position(|&step| step >= raw).unwrap_or(steps.len() - 1);
    let ticks = |step: f64| -> Vec<f64> {
        let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
        // `+ 0.0` turns a tick of -0 into 0.
        (first..=last).map(|i| i as f64 * step + 0.0).collect()
    };
    let step = if ticks(steps[at]).len() < 3 && at > 0 {
        steps[at - 1]
    } else {
        steps[at]
    };
    (ticks(step), step)
}

/// A tick value with the decimals its step needs, in `k` or `M` where the axis' largest
/// value (`largest`) is that large, so that every label of an axis has the same unit.
fn tick_label(value: f64, step: f64, largest: f64) -> String {
    let (scale, suffix) = match largest.abs().max(step) {
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e4 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let decimals = (-(step / scale).log10().floor()).max(0.0) as usize;
    format!("{:.*}{suffix}", decimals, value / scale)
}

/// The y grid of a chart: a line and a label at each round tick from `y0` to `y1`, `sy`
/// mapping a value to its SVG height.
fn y_grid(svg: &mut String, y0: f64, y1: f64, sy: &dyn Fn(f64) -> f64) {
    let (ticks, step) = round_ticks(y0, y1);
    let largest = ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
    for y in ticks {
        let _ = write!(
            svg,
            "<line x1='{LEFT}' x2='{}' y1='{:.1}' y2='{:.1}' stroke='#ddd'/><text x='{}' y='{:.1}' text-anchor='end'>{}</text>",
            WIDTH - RIGHT,
            sy(y),
            sy(y),
            LEFT - 4.0,
            sy(y) + 4.0,
            tick_label(y, step, largest)
        );
    }
}

/// Where the `i`-th legend entry goes: five entries per row, below the x axis title.
fn legend_slot(i: usize) -> (f64, f64) {
    (
        LEFT + 10.0 + 125.0 * (i % 5) as f64,
        HEIGHT - 20.0 + 13.0 * (i / 5) as f64,
    )
}

/// An SVG line chart with axis titles, y grid and labels, x tick labels, a legend, bands and
/// trade markers.
fn chart(class: &str, axes: &Axes<'_>, lines: &[Line<'_>], bands: &[Band<'_>], markers: &[Marker]) -> String {
    let all_x = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(bands.iter().flat_map(|b| b.points.iter().map(|p| p.0)));
    let all_y = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(bands.iter().flat_map(|b| b.points.iter().flat_map(|p| [p.1, p.2])))
        .chain(markers.iter().map(|m| m.y));
    let (Some((x0, x1)), Some((y0, y1))) = (
        all_x.fold(None, |r: Option<(f64, f64)>, x| {
            Some(r.map_or((x, x), |(a, b)| (a.min(x), b.max(x))))
        }),
        padded(all_y),
    ) else {
        return format!("<p>{}: no data</p>", escape_html(axes.title));
    };
    let y1 = axes.y_at_most.filter(|&top| top > y0).map_or(y1, |top| y1.min(top));
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0).max(1e-12) * (WIDTH - LEFT - RIGHT);
    let sy = |y: f64| TOP + (y1 - y) / (y1 - y0) * (HEIGHT - TOP - BOTTOM);
    let mut svg = frame(class, axes);
    y_grid(&mut svg, y0, y1, &sy);
    for i in 0..=4 {
        let x = x0 + (x1 - x0) * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{}' text-anchor='middle'>{}</text>",
            sx(x),
            HEIGHT - BOTTOM + 16.0,
            escape_html(&(axes.x_label)(x))
        );
    }
    for band in bands {
        let upper = band.points.iter().map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.2)));
        let lower = band
            .points
            .iter()
            .rev()
            .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1)));
        let _ = write!(
            svg,
            "<polygon points='{}' fill='{}' fill-opacity='0.25' stroke='none'/>",
            upper.chain(lower).collect::<Vec<_>>().join(" "),
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
        let (lx, ly) = legend_slot(i);
        let _ = write!(
            svg,
            "<line x1='{lx}' x2='{}' y1='{}' y2='{}' stroke='{}' stroke-width='3'/><text x='{}' y='{}'>{}</text>",
            lx + 18.0,
            ly - 4.0,
            ly - 4.0,
            line.color,
            lx + 22.0,
            ly,
            escape_html(line.name)
        );
    }
    // Every band and every kind of marker has a legend entry too, after the lines'.
    let mut slot = lines.len();
    for band in bands {
        let (lx, ly) = legend_slot(slot);
        slot += 1;
        let _ = write!(
            svg,
            "<rect x='{lx}' y='{}' width='18' height='8' fill='{}' fill-opacity='0.25'/><text x='{}' y='{ly}'>{}</text>",
            ly - 8.0,
            band.color,
            lx + 22.0,
            escape_html(&band.name)
        );
    }
    let kinds = [
        (markers.iter().any(|m| m.entry && m.long), "long entry", "#2ca02c", true),
        (
            markers.iter().any(|m| m.entry && !m.long),
            "short entry",
            "#d62728",
            true,
        ),
        (markers.iter().any(|m| !m.entry), "exit", "#333", false),
    ];
    for (_, name, color, triangle) in kinds.into_iter().filter(|kind| kind.0) {
        let (lx, ly) = legend_slot(slot);
        slot += 1;
        let shape = if triangle {
            // Pointing the trade's way, as on the chart: up for long, down for short.
            let (apex, base) = if name.starts_with("long") {
                (ly - 10.0, ly)
            } else {
                (ly, ly - 10.0)
            };
            format!(
                "<polygon points='{},{apex} {},{base} {},{base}' fill='{color}'/>",
                lx + 9.0,
                lx + 4.0,
                lx + 14.0
            )
        } else {
            format!(
                "<rect x='{}' y='{}' width='7' height='7' fill='{color}'/>",
                lx + 5.5,
                ly - 8.0
            )
        };
        let _ = write!(svg, "{shape}<text x='{}' y='{ly}'>{name}</text>", lx + 22.0);
    }
    for m in markers {
        let (x, y) = (sx(m.x), sy(m.y));
        // Entries are triangles pointing the trade's way; exits are squares.
        let (class, shape) = if m.entry {
            let d = if m.long { -6.0 } else { 6.0 };
            (
                "entry-marker",
                format!(
                    "<polygon points='{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}' fill='{}'>",
                    x,
                    y + d,
                    x - 5.0,
                    y - d,
                    x + 5.0,
                    y - d,
                    if m.long { "#2ca02c" } else { "#d62728" }
                ),
            )
        } else {
            (
                "exit-marker",
                format!(
                    "<rect x='{:.1}' y='{:.1}' width='7' height='7' fill='#333'>",
                    x - 3.5,
                    y - 3.5
                ),
            )
        };
        let close = if m.entry { "</polygon>" } else { "</rect>" };
        let _ = write!(
            svg,
            "<g class='{class}'>{shape}<title>{}</title>{close}</g>",
            escape_html(&m.title)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// An SVG bar chart of one value per item (green gains, red losses) with axis titles.
fn bar_chart(class: &str, axes: &Axes<'_>, values: &[(String, f64)]) -> String {
    let Some((y0, y1)) = padded(values.iter().map(|v| v.1).chain([0.0])) else {
        return format!("<p>{}: no data</p>", escape_html(axes.title));
    };
    let sy = |y: f64| TOP + (y1 - y) / (y1 - y0) * (HEIGHT - TOP - BOTTOM);
    let slot = (WIDTH - LEFT - RIGHT) / values.len().max(1) as f64;
    let mut svg = frame(class, axes);
    y_grid(&mut svg, y0, y1, &sy);
    for (i, (label, v)) in values.iter().enumerate() {
        let (top, bottom) = if *v >= 0.0 {
            (sy(*v), sy(0.0))
        } else {
            (sy(0.0), sy(*v))
        };
        let _ = write!(
            svg,
            "<rect class='bar' x='{:.1}' y='{:.1}' width='{:.1}' height='{:.1}' fill='{}'><title>{}: {}</title></rect>",
            LEFT + slot * i as f64 + slot * 0.1,
            top,
            (slot * 0.8).max(0.5),
            (bottom - top).max(0.5),
            if *v >= 0.0 { "#2ca02c" } else { "#d62728" },
            escape_html(label),
            num(*v, 2)
        );
    }
    for i in [0, values.len().saturating_sub(1)] {
        if let Some((label, _)) = values.get(i) {
            let _ = write!(
                svg,
                "<text x='{:.1}' y='{}' text-anchor='middle'>{}</text>",
                LEFT + slot * (i as f64 + 0.5),
                HEIGHT - BOTTOM + 16.0,
                escape_html(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#444444",
];

/// The color of the `i`-th of `n` strategies; buy and hold (last) is grey.
fn color(i: usize, name: &str) -> &'static str {
    if name == "buy_and_hold" {
        "#444444"
    } else {
        COLORS[i % (COLORS.len() - 1)]
    }
}

/// The strategy whose trades the price chart marks: the best that traded, else the first.
fn marked_strategy(b: &SeriesBacktest) -> Option<&StrategyResult> {
    best_strategy(b)
        .filter(|st| !st.path.trades.is_empty())
        .or_else(|| b.strategies.first())
}

/// The price chart with the marked strategy's entries and exits, and its P&L per trade.
fn price_and_trades(b: &SeriesBacktest, time_label: &dyn Fn(f64) -> String) -> String {
    let Some(st) = marked_strategy(b) else {
        return String::new();
    };
    let price = Line {
        name: "price",
        color: "#1f77b4",
        points: b
            .history
            .iter()
            .enumerate()
            .map(|(k, &c)| ((b.history_start + k) as f64, c))
            .collect(),
        dashed: false,
    };
    let side = |d: i8| if d > 0 { "long" } else { "short" };
    let mut markers = Vec::with_capacity(2 * st.path.trades.len());
    for t in &st.path.trades {
        markers.push(Marker {
            x: t.entry_bar as f64,
            y: t.entry_price,
            entry: true,
            long: t.direction > 0,
            title: format!(
                "{} entry {} at {}",
                side(t.direction),
                time_label(t.entry_bar as f64),
                num(t.entry_price, 4)
            ),
        });
        markers.push(Marker {
            x: t.exit_bar as f64,
            y: t.exit_price,
            entry: false,
            long: t.direction > 0,
            title: format!(
                "exit {} at {} ({})",
                time_label(t.exit_bar as f64),
                num(t.exit_price, 4),
                pct(t.net_return)
            ),
        });
    }
    let title = format!(
        "Price with {}'s entries (triangles: up long, down short) and exits (squares)",
        st.name
    );
    let mut s = chart(
        "price-chart",
        &Axes {
            title: &title,
            x_title: "date",
            y_title: "price (data units)",
            x_label: time_label,
            y_at_most: None,
        },
        &[price],
        &[],
        &markers,
    );
    let pnl: Vec<(String, f64)> = st
        .path
        .trades
        .iter()
        .map(|t| (time_label(t.exit_bar as f64), t.pnl))
        .collect();
    let title = format!("P&L per trade of {} (after costs)", st.name);
    if pnl.is_empty() {
        let _ = write!(s, "<p class='trade-pnl'>{}: no trades</p>", escape_html(&title));
    } else {
        s.push_str(&bar_chart(
            "trade-pnl",
            &Axes {
                title: &title,
                x_title: "trade exit date",
                y_title: "P&L (equity units, initial 10,000)",
                x_label: time_label,
                y_at_most: None,
            },
            &pnl,
        ));
    }
    s
}

/// The trade list of every strategy (the first [`LISTED_TRADES`]).
fn trade_list(zone: Option<Zone>, b: &SeriesBacktest) -> String {
    let mut table = crate::table::Table::new([
        "strategy",
        "side",
        "entry",
        "entry price",
        "exit",
        "exit price",
        "return",
        "P&L",
        "costs",
    ]);
    let all: Vec<_> = b
        .strategies
        .iter()
        .flat_map(|st| st.path.trades.iter().map(move |t| (st.name.as_str(), t)))
        .collect();
    for (name, t) in all.iter().take(LISTED_TRADES) {
        let at = |bar: usize| b.time_of(bar).map_or_else(|| format!("bar {bar}"), |t| day(zone, t));
        table.push(vec![
            name.to_string(),
            if t.direction > 0 { "long" } else { "short" }.into(),
            at(t.entry_bar),
            num(t.entry_price, 4),
            at(t.exit_bar),
            num(t.exit_price, 4),
            pct(t.net_return),
            num(t.pnl, 2),
            num(t.costs, 2),
        ]);
    }
    let more = if all.len() > LISTED_TRADES {
        format!(" (the first {LISTED_TRADES} of {}; all are in trades.csv)", all.len())
    } else {
        String::new()
    };
    format!(
        "<h3>Trades{more}</h3>{}",
        table.align_left(3).html_with_class("trade-list sortable")
    )
}

/// The forecast fan of one window: history, actual, median and the outer and inner bands.
fn fan(zone: Option<Zone>, b: &SeriesBacktest, w: &Window, levels: &[f32]) -> String {
    let h = w.actual.len();
    let history: Vec<(f64, f64)> = (w.origin.saturating_sub(3 * h)..w.origin)
        .filter_map(|i| {
            i.checked_sub(b.history_start)
                .and_then(|k| b.history.get(k))
                .map(|&c| (i as f64, c))
        })
        .collect();
    let at = |k: usize| (w.origin + k) as f64;
    // Bands: the outermost levels, then the next pair in, when the run has them.
    let mut bands = Vec::new();
    for pair in 0..2 {
        let (lo, hi) = (pair, levels.len().saturating_sub(1 + pair));
        if lo < hi {
            bands.push(Band {
                name: format!("{}-{} band", levels[lo], levels[hi]),
                color: "#ff7f0e",
                points: (0..h)
                    .map(|k| (at(k), w.quantiles[lo][k], w.quantiles[hi][k]))
                    .collect(),
            });
        }
    }
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
    let band_text = match levels {
        [first, .., last] => format!("; bands {first}-{last} and the next levels in"),
        _ => String::new(),
    };
    chart(
        "forecast-fan",
        &Axes {
            title: &format!("Forecast from {}{band_text}", day(zone, w.origin_time)),
            x_title: "bars from the origin",
            y_title: "value (data units)",
            x_label: &label,
            y_at_most: None,
        },
        &lines,
        &bands,
        &[],
    )
}

fn series_section(run: &BacktestRun, b: &SeriesBacktest) -> String {
    let initial = run.options.strategy.sim.initial_equity;
    let mut s = format!(
        "<section class='series'><h2>{}</h2><p class='verdict'>{}</p>",
        escape_html(&b.label),
        escape_html(&verdict(b, &run.model))
    );
    let time_label = |bar: f64| {
        b.time_of(bar.round().max(0.0) as usize)
            .map_or_else(|| format!("bar {bar:.0}"), |t| day(run.zone, t))
    };
    s.push_str(&price_and_trades(b, &time_label));
    let equity_title = format!("Equity: strategies vs buy and hold (initial {})", num(initial, 0));
    let lines: Vec<Line<'_>> = b
        .strategies
        .iter()
        .enumerate()
        .map(|(i, st)| Line {
            name: &st.name,
            color: color(i, &st.name),
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
    s.push_str(&chart(
        "equity-chart",
        &Axes {
            title: &equity_title,
            x_title: "date",
            y_title: "equity (currency units)",
            x_label: &time_label,
            y_at_most: None,
        },
        &lines,
        &[],
        &[],
    ));
    let drawdowns: Vec<Line<'_>> = b
        .strategies
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let mut peak = initial;
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
                color: color(i, &st.name),
                points,
                dashed: st.name == "buy_and_hold",
            }
        })
        .collect();
    s.push_str(&chart(
        "drawdown-chart",
        &Axes {
            title: "Drawdown from the running peak",
            x_title: "date",
            y_title: "drawdown (%)",
            x_label: &time_label,
            y_at_most: Some(0.0),
        },
        &drawdowns,
        &[],
        &[],
    ));
    // Forecast fans for the most recent windows (non-overlapping ones preferred).
    let step = b.windows.first().map_or(1, |w| w.actual.len()).max(1);
    let recent: Vec<&Window> = b.windows.iter().rev().step_by(step).take(3).collect();
    for w in recent.into_iter().rev() {
        s.push_str(&fan(run.zone, b, w, &run.options.quantiles));
    }
    let errors = |pick: fn(&Window) -> &Vec<f64>| -> Vec<(f64, f64)> {
        b.windows
            .iter()
            .map(|w| (w.origin as f64, crate::metrics::mae(&w.actual, pick(w))))
            .collect()
    };
    let model_mae = format!("{} MAE", run.model);
    let lines = [
        Line {
            name: &model_mae,
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
    s.push_str(&chart(
        "error-chart",
        &Axes {
            title: "Error per window (MAE over the horizon)",
            x_title: "forecast origin (date)",
            y_title: "MAE (data units)",
            x_label: &time_label,
            y_at_most: None,
        },
        &lines,
        &[],
        &[],
    ));
    s.push_str(&forecast_table(b, &run.model).html());
    let coverage: Vec<String> = b
        .quantile
        .coverage
        .iter()
        .map(|(l, c)| format!("{l}: {}", pct(*c)))
        .collect();
    let _ = write!(
        s,
        "<p>season {} · WQL {} · SQL {} · MSIS {} · skill vs naive {} · coverage per level: {}</p>",
        b.season,
        num(b.quantile.wql, 4),
        num(b.quantile.sql, 3),
        num(b.quantile.msis, 3),
        pct(b.skill_vs_naive),
        escape_html(&coverage.join(", "))
    );
    s.push_str(&strategy_table(b).html_with_class("strategies"));
    for (class, note) in strategy_notes(run.zone, b) {
        let _ = write!(s, "<p class='{class}'>{}</p>", escape_html(&note));
    }
    s.push_str(&trade_list(run.zone, b));
    s.push_str("</section>");
    s
}

/// The portfolio: equity per strategy against buy and hold, and its metrics.
fn portfolio_section(run: &BacktestRun) -> String {
    let p = &run.portfolio;
    let time_label = |x: f64| {
        p.times
            .get(x.round().max(0.0) as usize)
            .map_or_else(String::new, |&t| day(run.zone, t))
    };
    let lines: Vec<Line<'_>> = p
        .strategies
        .iter()
        .enumerate()
        .map(|(i, st)| Line {
            name: &st.name,
            color: color(i, &st.name),
            points: st.equity.iter().enumerate().map(|(k, &e)| (k as f64, e)).collect(),
            dashed: st.name == "buy_and_hold",
        })
        .collect();
    let title = format!(
        "Portfolio equity: {} symbols, strategies vs buy and hold (initial {})",
        run.series.len(),
        num(run.options.strategy.sim.initial_equity, 0)
    );
    let mut s = String::from("<section class='portfolio'><h2>Portfolio</h2>");
    s.push_str(&chart(
        "portfolio-equity",
        &Axes {
            title: &title,
            x_title: "date",
            y_title: "equity (currency units)",
            x_label: &time_label,
            y_at_most: None,
        },
        &lines,
        &[],
        &[],
    ));
    s.push_str(&portfolio_table(run).html_with_class("portfolio-metrics"));
    if let Some(warning) = p
        .strategies
        .iter()
        .find_map(|st| sample_warning(&st.metrics, p.times.len()))
    {
        let _ = write!(s, "<p class='sample-warning'>* {}</p>", escape_html(&warning));
    }
    let weights: Vec<String> = p.weights.iter().map(|(l, w)| format!("{l} {}", pct(*w))).collect();
    let _ = write!(s, "<p>weights: {}</p></section>", escape_html(&weights.join(", ")));
    s
}

/// How the simulator fills, stated on every tear sheet.
const ASSUMPTIONS: &str = "Fills: each decision is made at the close before its origin and sees no later bar. \
Market orders fill at that close (or at the next open with --fill-at next-open); limit entries and take-profits \
fill exactly at the touched price, or at the open when a bar opens beyond it, using a bar's high and low only after \
the entry. Every fill pays the fee, the slippage and half the spread; none is paid when the position does not \
change. Equity compounds bar by bar.";

/// Sorts a table by a clicked header (numbers by value, `n/a` last; text alphabetically).
const SORT_SCRIPT: &str = "<script>\
document.querySelectorAll('table.sortable th').forEach(function(th,i){th.style.cursor='pointer';th.title='sort';\
th.addEventListener('click',function(){var body=th.closest('table').tBodies[0];var rows=Array.from(body.rows);\
var asc=th.dataset.order!=='asc';th.dataset.order=asc?'asc':'desc';\
var key=function(r){var t=r.cells[i].textContent.replace('%','');var v=parseFloat(t);return isNaN(v)?t:v;};\
rows.sort(function(a,b){var x=key(a),y=key(b);if(typeof x!==typeof y){return typeof x==='number'?-1:1;}\
return (x<y?-1:x>y?1:0)*(asc?1:-1);});rows.forEach(function(r){body.appendChild(r);});});});\
</script>";

/// The self-contained HTML report; `extra` is inserted after the settings (e.g. the
/// eager-vs-compiled verdict).
pub fn html(run: &BacktestRun, extra: &str) -> String {
    let mut body = String::new();
    if run.series.len() > 1 {
        body.push_str(&portfolio_section(run));
        let _ = write!(
            body,
            "<h2>Symbols</h2><p>click a column to sort</p>{}",
            universe_table(run).html_with_class("summary sortable")
        );
    }
    for skipped in &run.skipped {
        let _ = write!(
            body,
            "<p class='skipped-series'>skipped {}</p>",
            escape_html(&skipped.reason)
        );
    }
    for b in run.series.iter().take(DETAILED_SERIES) {
        body.push_str(&series_section(run, b));
    }
    if run.series.len() > DETAILED_SERIES {
        let _ = write!(
            body,
            "<p>sections for the first {DETAILED_SERIES} of {} symbols; every figure of every symbol is in report.json and summary.csv</p>",
            run.series.len()
        );
    }
    format!(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>chronos2 backtest</title><style>\
body{{font-family:sans-serif;max-width:1000px;margin:20px auto;color:#222}} table{{border-collapse:collapse;margin:8px 0;font-size:12px}} \
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} td:first-child,th:first-child{{text-align:left}} pre{{background:#f6f6f6;padding:8px;font-size:11px;overflow-x:auto}} \
.verdict{{font-weight:bold}} .sample-warning,.no-trades,.skipped-strategy,.skipped-series{{color:#8a5a00}}\
</style></head><body><h1>Walk-forward backtest</h1><pre>{}</pre><p class='assumptions'>{ASSUMPTIONS}</p>{extra}{body}{SORT_SCRIPT}</body></html>",
        escape_html(&summary(run))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lo: f64, hi: f64) -> Vec<String> {
        let (ticks, step) = round_ticks(lo, hi);
        let largest = ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
        ticks.iter().map(|&t| tick_label(t, step, largest)).collect()
    }

    #[test]
    fn ticks_are_round_and_labelled_with_the_decimals_they_need() {
        assert_eq!(labels(-3.7, 12.2), ["0", "5", "10"]);
        assert_eq!(labels(0.93, 1.07), ["0.95", "1.00", "1.05"]);
        assert_eq!(labels(18_500.0, 31_000.0), ["20k", "25k", "30k"]);
        assert_eq!(labels(1.05e6, 1.9e6), ["1.2M", "1.4M", "1.6M", "1.8M"]);
        assert_eq!(labels(-0.4, 0.4), ["-0.4", "-0.2", "0.0", "0.2", "0.4"]);
        // One unit per axis: 9500 next to 10k reads as 9.5k.
        assert_eq!(labels(8_900.0, 10_600.0), ["9.0k", "9.5k", "10.0k", "10.5k"]);
    }

    #[test]
    fn every_band_and_kind_of_marker_has_a_legend_entry() {
        let line = Line {
            name: "price",
            color: COLORS[0],
            points: vec![(0.0, 1.0), (1.0, 2.0), (2.0, 1.5)],
            dashed: false,
        };
        let band = Band {
            name: "0.1-0.9 band".into(),
            color: "#ff7f0e",
            points: vec![(1.0, 1.5, 2.5), (2.0, 1.0, 2.0)],
        };
        let marker = |entry, long| Marker {
            x: 1.0,
            y: 2.0,
            entry,
            long,
            title: String::new(),
        };
        let axes = Axes {
            title: "Price",
            x_title: "date",
            y_title: "price",
            x_label: &|x: f64| format!("{x}"),
            y_at_most: None,
        };
        let svg = chart(
            "price",
            &axes,
            &[line],
            &[band],
            &[marker(true, true), marker(false, true)],
        );
        for entry in [
            ">price</text>",
            ">0.1-0.9 band</text>",
            ">long entry</text>",
            ">exit</text>",
        ] {
            assert!(svg.contains(entry), "{entry} missing: {svg}");
        }
        assert!(!svg.contains(">short entry</text>"), "no short trade, no entry for one");
    }

    #[test]
    fn a_drawdown_axis_never_goes_above_zero() {
        let line = Line {
            name: "threshold",
            color: COLORS[0],
            points: vec![(0.0, 0.0), (1.0, -3.0), (2.0, -1.0)],
            dashed: false,
        };
        let axes = |y_at_most| Axes {
            title: "Drawdown",
            x_title: "date",
            y_title: "drawdown (%)",
            x_label: &|x: f64| format!("{x}"),
            y_at_most,
        };
        let tick_labels = |svg: &str| -> Vec<String> {
            svg.split("text-anchor='end'>")
                .skip(1)
                .map(|rest| rest.split('<').next().unwrap().to_string())
                .collect()
        };
        let capped = chart(
            "drawdown-chart",
            &axes(Some(0.0)),
            std::slice::from_ref(&line),
            &[],
            &[],
        );
        let capped = tick_labels(&capped);
        assert_eq!(capped.last().map(String::as_str), Some("0"), "{capped:?}");
        assert!(capped.iter().all(|l| l.parse::<f64>().unwrap() <= 0.0), "{capped:?}");
        // Without the cap the padding puts the top above 0.
        let free = chart("chart", &axes(None), &[line], &[], &[]);
        assert!(tick_labels(&free).iter().all(|l| l.parse::<f64>().is_ok()));
    }
}
