//! Forecast accuracy metrics, one small pure function each.
//!
//! Notation: `y` the actual values over the horizon (length H), `f` a point forecast,
//! `q_l` the forecast at quantile level `l`, `x` the in-sample context. Every function
//! returns NaN when its value is undefined (empty input, zero denominator).

/// Mean absolute error: `mean |y - f|`.
pub fn mae(y: &[f64], f: &[f64]) -> f64 {
    mean(y.iter().zip(f).map(|(a, b)| (a - b).abs()))
}

/// Root mean squared error: `sqrt(mean (y - f)²)`.
pub fn rmse(y: &[f64], f: &[f64]) -> f64 {
    mean(y.iter().zip(f).map(|(a, b)| (a - b).powi(2))).sqrt()
}

/// Mean absolute percentage error in %: `100 · mean |y - f| / |y|` (NaN if some `y` is 0).
pub fn mape(y: &[f64], f: &[f64]) -> f64 {
    100.0 * mean(y.iter().zip(f).map(|(a, b)| (a - b).abs() / a.abs()))
}

/// Symmetric MAPE in % (0..200): `100 · mean 2|y - f| / (|y| + |f|)`; a term with both zero
/// counts as 0.
pub fn smape(y: &[f64], f: &[f64]) -> f64 {
    100.0
        * mean(y.iter().zip(f).map(|(a, b)| {
            let denominator = a.abs() + b.abs();
            if denominator == 0.0 {
                0.0
            } else {
                2.0 * (a - b).abs() / denominator
            }
        }))
}

/// Weighted absolute percentage error: `Σ|y - f| / Σ|y|`.
pub fn wape(y: &[f64], f: &[f64]) -> f64 {
    ratio(
        y.iter().zip(f).map(|(a, b)| (a - b).abs()).sum(),
        y.iter().map(|a| a.abs()).sum(),
    )
}

/// In-sample seasonal-naive scale: `mean_{t > m} |x_t - x_{t-m}|` over the context (NaNs
/// skipped), the denominator of MASE, scaled quantile loss and MSIS.
pub fn seasonal_scale(context: &[f64], season: usize) -> f64 {
    let season = season.max(1);
    if context.len() <= season {
        return f64::NAN;
    }
    mean(
        context
            .windows(season + 1)
            .map(|w| (w[season] - w[0]).abs())
            .filter(|d| !d.is_nan()),
    )
}

/// Mean absolute scaled error: `MAE / seasonal_scale(context, m)`.
pub fn mase(y: &[f64], f: &[f64], scale: f64) -> f64 {
    ratio(mae(y, f), scale)
}

/// Pinball loss of one forecast: `(y - q)·l` if `y >= q`, else `(q - y)·(1 - l)`.
pub fn pinball(y: f64, q: f64, level: f64) -> f64 {
    if y >= q {
        (y - q) * level
    } else {
        (q - y) * (1.0 - level)
    }
}

/// Weighted quantile loss (fev convention, 2 × pinball): for each level,
/// `Σ_t 2·pinball(y_t, q_{l,t}, l) / Σ_t |y_t|`, averaged over levels.
/// `quantiles[i]` holds the forecast at `levels[i]`.
pub fn wql(y: &[f64], quantiles: &[Vec<f64>], levels: &[f64]) -> f64 {
    let denominator: f64 = y.iter().map(|a| a.abs()).sum();
    mean(levels.iter().zip(quantiles).map(|(&l, q)| {
        ratio(
            y.iter().zip(q).map(|(&a, &b)| 2.0 * pinball(a, b, l)).sum(),
            denominator,
        )
    }))
}

/// Scaled quantile loss (fev): `mean over levels and steps of 2·pinball / scale`.
pub fn sql(y: &[f64], quantiles: &[Vec<f64>], levels: &[f64], scale: f64) -> f64 {
    ratio(
        mean(
            levels
                .iter()
                .zip(quantiles)
                .flat_map(|(&l, q)| y.iter().zip(q).map(move |(&a, &b)| 2.0 * pinball(a, b, l))),
        ),
        scale,
    )
}

/// Fraction of steps with `y <= q` (ideal: the level).
pub fn coverage(y: &[f64], q: &[f64]) -> f64 {
    mean(y.iter().zip(q).map(|(a, b)| f64::from(u8::from(a <= b))))
}

/// Fraction of steps with `lower <= y <= upper`.
pub fn interval_coverage(y: &[f64], lower: &[f64], upper: &[f64]) -> f64 {
    mean(
        y.iter()
            .zip(lower)
            .zip(upper)
            .map(|((a, l), u)| f64::from(u8::from(a >= l && a <= u))),
    )
}

/// Mean scaled interval score for the central `(1 - alpha)` interval `[lower, upper]`:
/// `mean((u - l) + 2/α·(l - y)·[y < l] + 2/α·(y - u)·[y > u]) / scale`.
pub fn msis(y: &[f64], lower: &[f64], upper: &[f64], alpha: f64, scale: f64) -> f64 {
    let score = mean(y.iter().zip(lower).zip(upper).map(|((&a, &l), &u)| {
        (u - l) + if a < l { 2.0 / alpha * (l - a) } else { 0.0 } + if a > u { 2.0 / alpha * (a - u) } else { 0.0 }
    }));
    ratio(score, scale)
}

/// Mean of the values (NaN if none).
pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 {
        f64::NAN
    } else {
        numerator / denominator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: [f64; 3] = [100.0, 110.0, 90.0];
    const F: [f64; 3] = [102.0, 105.0, 90.0];

    #[test]
    fn point_metrics_by_hand() {
        // errors 2, 5, 0: MAE 7/3; RMSE sqrt(29/3).
        assert!((mae(&Y, &F) - 7.0 / 3.0).abs() < 1e-12);
        assert!((rmse(&Y, &F) - (29.0f64 / 3.0).sqrt()).abs() < 1e-12);
        // MAPE: (2/100 + 5/110 + 0) / 3 · 100 = 2.1818181818...
        assert!((mape(&Y, &F) - 100.0 * (0.02 + 5.0 / 110.0) / 3.0).abs() < 1e-12);
        // sMAPE: (4/202 + 10/215 + 0) / 3 · 100.
        assert!((smape(&Y, &F) - 100.0 * (4.0 / 202.0 + 10.0 / 215.0) / 3.0).abs() < 1e-12);
        // WAPE: 7 / 300.
        assert!((wape(&Y, &F) - 7.0 / 300.0).abs() < 1e-12);
        assert!(mape(&[0.0], &[1.0]).is_infinite() || mape(&[0.0], &[1.0]).is_nan());
        assert!(mae(&[], &[]).is_nan());
    }

    #[test]
    fn scaled_metrics_by_hand() {
        // context 1, 3, 2, 6 with m = 1: |2| + |-1| + |4| -> scale 7/3; MASE = (7/3)/(7/3) = 1.
        let scale = seasonal_scale(&[1.0, 3.0, 2.0, 6.0], 1);
        assert!((scale - 7.0 / 3.0).abs() < 1e-12);
        assert!((mase(&Y, &F, scale) - 1.0).abs() < 1e-12);
        // m = 2: |2-1| + |6-3| -> 2.
        assert!((seasonal_scale(&[1.0, 3.0, 2.0, 6.0], 2) - 2.0).abs() < 1e-12);
        assert!(seasonal_scale(&[1.0], 1).is_nan());
    }

    #[test]
    fn quantile_metrics_by_hand() {
        // One step y = 10, q0.1 = 8, q0.9 = 12: pinballs (10-8)·0.1 = 0.2 and (12-10)·0.1 = 0.2.
        assert!((pinball(10.0, 8.0, 0.1) - 0.2).abs() < 1e-12);
        assert!((pinball(10.0, 12.0, 0.9) - 0.2).abs() < 1e-12);
        let q = vec![vec![8.0], vec![12.0]];
        // WQL: mean(2·0.2/10, 2·0.2/10) = 0.04; SQL with scale 2: mean(0.4, 0.4)/2 = 0.2.
        assert!((wql(&[10.0], &q, &[0.1, 0.9]) - 0.04).abs() < 1e-12);
        assert!((sql(&[10.0], &q, &[0.1, 0.9], 2.0) - 0.2).abs() < 1e-12);
        assert_eq!(coverage(&[1.0, 5.0], &[2.0, 2.0]), 0.5);
        assert_eq!(interval_coverage(&[1.0, 5.0, 3.0], &[2.0; 3], &[4.0; 3]), 1.0 / 3.0);
        // MSIS, α = 0.2, [2, 4]: y=1 -> 2 + 10·1 = 12; y=5 -> 2 + 10 = 12; y=3 -> 2; mean 26/3; scale 2.
        assert!((msis(&[1.0, 5.0, 3.0], &[2.0; 3], &[4.0; 3], 0.2, 2.0) - 13.0 / 3.0).abs() < 1e-12);
    }
}
