//! Summary statistics of timings.

use serde::Serialize;

/// Summary of a sample (milliseconds when it holds timings).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Sample size.
    pub count: usize,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// 95th percentile (linear interpolation between order statistics, numpy's default).
    pub p95: f64,
    /// 99th percentile (same method).
    pub p99: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (ddof 1; 0 for one value).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// The `q` quantile of sorted values by linear interpolation (`numpy.percentile` default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q * (sorted.len() - 1) as f64;
    let (lower, upper) = (position.floor() as usize, position.ceil() as usize);
    sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower as f64)
}

impl Summary {
    /// Summarises `values` (NaN for everything when empty).
    pub fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            return Self {
                count: 0,
                median: f64::NAN,
                p95: f64::NAN,
                p99: f64::NAN,
                mean: f64::NAN,
                std: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Self {
            count: n,
            median: quantile(&sorted, 0.5),
            p95: quantile(&sorted, 0.95),
            p99: quantile(&sorted, 0.99),
            mean,
            std,
            min: sorted[0],
            max: sorted[n - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // 1..=10: median 5.5, p95 at position 8.55 -> 9 + 0.55 = 9.55, mean 5.5,
        // std = sqrt(82.5 / 9) = 3.0276503540974917.
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Summary::of(&values);
        assert_eq!((s.count, s.median, s.min, s.max, s.mean), (10, 5.5, 1.0, 10.0, 5.5));
        assert!((s.p95 - 9.55).abs() < 1e-12);
        assert!((s.p99 - 9.91).abs() < 1e-12);
        assert!((s.std - 3.0276503540974917).abs() < 1e-12);
    }

    #[test]
    fn single_and_empty() {
        let s = Summary::of(&[7.0]);
        assert_eq!((s.median, s.p99, s.std), (7.0, 7.0, 0.0));
        assert!(Summary::of(&[]).median.is_nan());
    }
}
