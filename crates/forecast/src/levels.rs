//! Reading requested quantile levels off a forecast (`predict_quantiles`): trained levels are
//! read directly, others are interpolated linearly and clamped to the outermost trained levels.

use crate::pipeline::TaskForecast;
use crate::quantiles::interpolate;

/// Forecasts at the requested levels for one task.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelForecast {
    /// `(n_targets, H, L)`: value at each requested level.
    pub quantiles: Vec<f32>,
    /// `(n_targets, H)`: the median (the reference calls it the mean).
    pub mean: Vec<f32>,
    /// Target rows.
    pub n_targets: usize,
    /// Horizon H.
    pub horizon: usize,
    /// Requested levels L.
    pub levels: Vec<f32>,
}

impl LevelForecast {
    /// The forecast of `target` at requested level index `level`, `(H)`.
    pub fn series(&self, target: usize, level: usize) -> Vec<f32> {
        let l = self.levels.len();
        (0..self.horizon)
            .map(|t| self.quantiles[(target * self.horizon + t) * l + level])
            .collect()
    }

    /// The median of `target`, `(H)`.
    pub fn median(&self, target: usize) -> &[f32] {
        &self.mean[target * self.horizon..(target + 1) * self.horizon]
    }
}

/// Whether any requested level lies outside the trained range (and will be clamped).
pub fn outside_trained_range(levels: &[f32], trained: &[f32]) -> bool {
    let (lo, hi) = (trained[0], trained[trained.len() - 1]);
    levels.iter().any(|&l| l < lo || l > hi)
}

/// Reads `levels` off `forecast`, whose quantiles are at the `trained` levels.
/// `median_index` is the index of 0.5 among the trained levels.
pub fn at_levels(forecast: &TaskForecast, trained: &[f32], levels: &[f32], median_index: usize) -> LevelForecast {
    let (n, h, q, l) = (
        forecast.n_targets,
        forecast.horizon,
        forecast.num_quantiles,
        levels.len(),
    );
    let direct: Option<Vec<usize>> = levels
        .iter()
        .map(|lv| trained.iter().position(|t| (t - lv).abs() < 1e-7))
        .collect();
    let mut quantiles = vec![0.0f32; n * h * l];
    let mut column = vec![0.0f32; q];
    for target in 0..n {
        for t in 0..h {
            for (level, slot) in column.iter_mut().enumerate() {
                *slot = forecast.series(target, level)[t];
            }
            let out = &mut quantiles[(target * h + t) * l..][..l];
            match &direct {
                Some(indices) => {
                    for (slot, &i) in out.iter_mut().zip(indices) {
                        *slot = column[i];
                    }
                }
                None => interpolate(levels, trained, &column, out),
            }
        }
    }
    let mean = (0..n)
        .flat_map(|target| forecast.series(target, median_index).to_vec())
        .collect();
    LevelForecast {
        quantiles,
        mean,
        n_targets: n,
        horizon: h,
        levels: levels.to_vec(),
    }
}
