//! Quantile arithmetic of the reference pipeline (`chronos/utils.py`): linear interpolation
//! between quantile levels, quantiles of weighted samples, and the probability mass of each
//! level. All in f32, like the reference.

/// Linear interpolation of quantile values at `query` levels (`interpolate_quantiles`).
///
/// `levels` are the known levels (ascending) and `values` their values. Queries below the
/// first or above the last known level take the edge value (the reference pads level 0 with
/// the first value and level 1 with the last, but only when no known level is 0 or 1).
pub fn interpolate(query: &[f32], levels: &[f32], values: &[f32], out: &mut [f32]) {
    debug_assert_eq!(levels.len(), values.len());
    debug_assert_eq!(query.len(), out.len());
    let pad_low = levels.first().is_some_and(|&l| l > 0.0);
    let pad_high = levels.last().is_some_and(|&l| l < 1.0);
    interpolate_padded(query, levels, values, pad_low, pad_high, out);
}

/// [`interpolate`] with the padding decided by the caller (the reference decides it over a whole
/// batch, see [`weighted_quantile`]).
fn interpolate_padded(query: &[f32], levels: &[f32], values: &[f32], pad_low: bool, pad_high: bool, out: &mut [f32]) {
    // The padded sequence: [0?] + levels + [1?], values [v0?] + values + [vn?].
    let n = levels.len() + usize::from(pad_low) + usize::from(pad_high);
    let level_at = |i: usize| -> f32 {
        match (pad_low, i) {
            (true, 0) => 0.0,
            _ => {
                let j = i - usize::from(pad_low);
                if j < levels.len() {
                    levels[j]
                } else {
                    1.0
                }
            }
        }
    };
    let value_at = |i: usize| -> f32 {
        let j = (i as isize - isize::from(pad_low)).clamp(0, values.len() as isize - 1);
        values[j as usize]
    };
    for (q, slot) in query.iter().zip(out.iter_mut()) {
        // searchsorted(right=True): first index whose level is > q, clamped to n - 1.
        let upper = (0..n).find(|&i| level_at(i) > *q).unwrap_or(n).min(n - 1);
        let lower = upper.saturating_sub(1);
        let (l0, l1) = (level_at(lower), level_at(upper));
        let (v0, v1) = (value_at(lower), value_at(upper));
        // torch.nan_to_num(x, nan=0.0) also maps ±inf to ±f32::MAX.
        let weight = match (*q - l0) / (l1 - l0) {
            w if w.is_nan() => 0.0,
            w if w == f32::INFINITY => f32::MAX,
            w if w == f32::NEG_INFINITY => f32::MIN,
            w => w,
        };
        *slot = v0 + weight * (v1 - v0);
    }
}

/// Sum of f32 values accumulated in f64 and rounded once (as close to torch's reductions as
/// a sum can be).
fn sum_f32(values: &[f32]) -> f32 {
    values.iter().map(|&v| f64::from(v)).sum::<f64>() as f32
}

/// Normalised probability mass of each level (`_get_prob_mass_per_quantile_level`): with
/// boundaries `[0, q1..qn, 1]`, `mass_i = (q_{i+1} - q_{i-1}) / 2`, normalised to sum 1.
pub fn probability_mass(levels: &[f32]) -> Vec<f32> {
    let bounded: Vec<f32> = std::iter::once(0.0)
        .chain(levels.iter().copied())
        .chain([1.0])
        .collect();
    let mass: Vec<f32> = bounded.windows(3).map(|w| (w[2] - w[0]) / 2.0).collect();
    let total = sum_f32(&mass);
    mass.iter().map(|m| m / total).collect()
}

/// Quantiles of weighted samples (`weighted_quantile`), for every row of `samples`.
///
/// Each row of `samples` (`rows x weights.len()`) is sorted; the cumulative normalised weights
/// of the sorted samples (clamped to [0, 1]) are its levels, and the `query` levels are
/// interpolated against them. As in the reference, whether levels 0 and 1 get edge padding is
/// decided once over all rows (global min > 0, global max < 1). Returns `rows x query.len()`.
pub fn weighted_quantile(query: &[f32], weights: &[f32], samples: &[f32]) -> Vec<f32> {
    let k = weights.len();
    let rows = samples.len() / k;
    let total = sum_f32(weights);
    let normalised: Vec<f32> = weights.iter().map(|w| w / total).collect();
    let mut sorted_values = Vec::with_capacity(samples.len());
    let mut cumulative = Vec::with_capacity(samples.len());
    let mut order: Vec<usize> = (0..k).collect();
    for row in samples.chunks_exact(k) {
        order.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
        // torch's CPU cumsum accumulates f32 in f64 and rounds each partial sum; a plain f32
        // running sum drifts by ~1e-6 over 189 samples, which moves the outer quantiles.
        let mut acc = 0.0f64;
        for &i in &order {
            sorted_values.push(row[i]);
            acc += f64::from(normalised[i]);
            cumulative.push((acc as f32).clamp(0.0, 1.0));
        }
    }
    let pad_low = cumulative.iter().copied().fold(f32::INFINITY, f32::min) > 0.0;
    let pad_high = cumulative.iter().copied().fold(f32::NEG_INFINITY, f32::max) < 1.0;
    let mut out = vec![0.0f32; rows * query.len()];
    for ((levels, values), slot) in cumulative
        .chunks_exact(k)
        .zip(sorted_values.chunks_exact(k))
        .zip(out.chunks_exact_mut(query.len()))
    {
        interpolate_padded(query, levels, values, pad_low, pad_high, slot);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_inside_and_clamped_outside() {
        let levels = [0.1, 0.5, 0.9];
        let values = [1.0, 2.0, 4.0];
        let mut out = [0.0; 5];
        interpolate(&[0.05, 0.1, 0.3, 0.7, 0.95], &levels, &values, &mut out);
        // 0.3: halfway 1 -> 2 = 1.5; 0.7: halfway 2 -> 4 = 3; outside: edge values.
        assert_eq!(out, [1.0, 1.0, 1.5, 3.0, 4.0]);
    }

    #[test]
    fn interpolation_at_exact_levels_is_exact() {
        let levels = [0.1, 0.5, 0.9];
        let values = [1.0, 2.0, 4.0];
        let mut out = [0.0; 3];
        interpolate(&levels, &levels, &values, &mut out);
        assert_eq!(out, values);
    }

    #[test]
    fn probability_mass_by_hand() {
        // [0.25, 0.5, 0.75]: masses (0.5-0)/2, (0.75-0.25)/2, (1-0.5)/2 = 0.25 each -> 1/3.
        for m in probability_mass(&[0.25, 0.5, 0.75]) {
            assert!((m - 1.0 / 3.0).abs() < 1e-7);
        }
        // [0.1, 0.9]: 0.45, 0.45 -> 0.5 each.
        assert_eq!(probability_mass(&[0.1, 0.9]), [0.5, 0.5]);
    }

    #[test]
    fn weighted_quantile_of_equal_weights() {
        // Samples 3, 1, 2 with equal weights: sorted 1, 2, 3 at cumulative 1/3, 2/3, 1.
        let out = weighted_quantile(&[0.1, 0.5, 0.99], &[1.0, 1.0, 1.0], &[3.0, 1.0, 2.0]);
        // 0.1 < 1/3: padded level 0 has value 1 -> 1; 0.5: between 1/3 (1) and 2/3 (2) -> 1.5.
        assert_eq!(out[0], 1.0);
        assert!((out[1] - 1.5).abs() < 1e-6);
        // 0.99: between 2/3 (2) and 1 (3): 2 + (0.99-2/3)/(1/3) = 2.97.
        assert!((out[2] - 2.97).abs() < 1e-5);
    }
}
