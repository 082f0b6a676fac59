//! Instance normalisation and patching: the fp32 steps before the encoder and the inverse
//! scaling after it (`_prepare_patched_context`, `_prepare_patched_future` and `InstanceNorm`
//! of the reference; `docs/chronos2-spec.md` section 2). Every executor shares them.

use crate::config::Config;
use crate::error::Error;
use crate::input::ModelInput;

/// Instance-norm eps: replaces an exactly-zero scale (never added).
const INSTANCE_NORM_EPS: f32 = 1e-5;

/// Per-row location and scale of the instance norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocScale {
    /// `nanmean(x)`, 0 for an all-NaN row.
    pub loc: f32,
    /// Population std of the non-NaN values; 1 for an all-NaN row, 1e-5 for a constant row.
    pub scale: f32,
}

/// NaN-aware location and scale of one row (`InstanceNorm.forward` with no `loc_scale`).
///
/// ```python
/// loc = torch.nan_to_num(torch.nanmean(x, dim=-1, keepdim=True), nan=0.0)
/// scale = torch.nan_to_num((x - loc).square().nanmean(dim=-1, keepdim=True).sqrt(), nan=1.0)
/// scale = torch.where(scale == 0, self.eps, scale)
/// ```
pub fn loc_scale(row: &[f32]) -> LocScale {
    let observed = || row.iter().copied().filter(|v| !v.is_nan());
    let count = observed().count();
    if count == 0 {
        return LocScale { loc: 0.0, scale: 1.0 };
    }
    let loc = (observed().map(f64::from).sum::<f64>() / count as f64) as f32;
    let variance = observed().map(|v| f64::from(v - loc).powi(2)).sum::<f64>() / count as f64;
    let scale = (variance.sqrt()) as f32;
    LocScale {
        loc,
        scale: if scale == 0.0 { INSTANCE_NORM_EPS } else { scale },
    }
}

/// `(x - loc) / scale`, then arcsinh if the model uses it (f32, NaN stays NaN).
pub fn normalize(x: f32, ls: LocScale, use_arcsinh: bool) -> f32 {
    let z = (x - ls.loc) / ls.scale;
    if use_arcsinh {
        z.asinh()
    } else {
        z
    }
}

/// The inverse of [`normalize`]: `sinh(y) · scale + loc` (or `y · scale + loc`).
pub fn denormalize(y: f32, ls: LocScale, use_arcsinh: bool) -> f32 {
    let z = if use_arcsinh { y.sinh() } else { y };
    z * ls.scale + ls.loc
}

/// End-aligned time encoding of the context step `steps_before_end` steps before the end
/// (1 = the last step): the reference's `arange(-N·P, 0) / scale`, so the last step is always
/// `-1/scale` whatever the padding.
pub fn context_time(steps_before_end: usize, scale: usize) -> f32 {
    -(steps_before_end as f32) / scale as f32
}

/// Time encoding of future step `step` (0 = the first): `arange(0, M·P) / scale`.
pub fn future_time(step: usize, scale: usize) -> f32 {
    step as f32 / scale as f32
}

/// Context patches N for a context of `length` steps (after truncation to `context_length`).
pub fn context_patches(config: &Config, length: usize) -> usize {
    length.min(config.context_length).div_ceil(config.patch_size)
}

/// Truncates, normalises and patches the context into caller-provided buffers
/// (`_prepare_patched_context`): `features` `(B·N, 3P)`, `patch_mask` `(B, N)`, `stats` `(B)`.
/// Every element of the buffers is written.
///
/// Rows are cut to their last `context_length` values, normalised over the whole cut row,
/// left-padded with NaN to a multiple of P, and every unobserved value is set to 0.
///
/// # Panics
/// If a buffer has the wrong length.
pub fn patch_context_into(
    config: &Config,
    input: &ModelInput,
    features: &mut [f32],
    patch_mask: &mut [f32],
    stats: &mut [LocScale],
) {
    let (b, full) = (input.rows(), input.length());
    let t = full.min(config.context_length);
    let skip = full - t;
    let p = config.patch_size;
    let n = t.div_ceil(p);
    let pad = n * p - t;
    assert_eq!(features.len(), b * n * 3 * p, "patch_context_into: features buffer");
    assert_eq!(
        (patch_mask.len(), stats.len()),
        (b * n, b),
        "patch_context_into: mask/stats buffers"
    );
    for row in 0..b {
        let values = &input.context()[row * full + skip..(row + 1) * full];
        let ls = loc_scale(values);
        stats[row] = ls;
        for patch in 0..n {
            let out = &mut features[(row * n + patch) * 3 * p..][..3 * p];
            let mut observed = 0.0f32;
            for i in 0..p {
                // End-aligned time encoding: arange(-N·P, 0) / time_encoding_scale.
                out[i] = context_time((n - patch) * p - i, config.time_encoding_scale);
                let Some(step) = (patch * p + i).checked_sub(pad) else {
                    out[p + i] = 0.0; // left padding: value 0, mask 0
                    out[2 * p + i] = 0.0;
                    continue;
                };
                let value = values[step];
                let mask = f32::from(!value.is_nan());
                out[p + i] = if value.is_nan() {
                    0.0
                } else {
                    normalize(value, ls, config.use_arcsinh)
                };
                out[2 * p + i] = mask;
                observed += mask;
            }
            patch_mask[row * n + patch] = f32::from(observed > 0.0);
        }
    }
}

/// Features of the M future patches into `features` `(B·M, 3P)` (`_prepare_patched_future`).
/// Every element is written.
///
/// Known covariates are normalised with the context's loc/scale; unknown steps and the right
/// padding up to `M·P` get value 0 and mask 0.
///
/// # Errors
/// [`Error::Input`] if a value marked known (by an explicit mask) is NaN.
///
/// # Panics
/// If the buffer has the wrong length.
pub fn patch_future_into(
    config: &Config,
    input: &ModelInput,
    stats: &[LocScale],
    features: &mut [f32],
) -> Result<(), Error> {
    let (b, m, p) = (input.rows(), input.num_output_patches(), config.patch_size);
    assert_eq!(features.len(), b * m * 3 * p, "patch_future_into: features buffer");
    for row in 0..b {
        for patch in 0..m {
            empty_future_patch(&mut features[(row * m + patch) * 3 * p..][..3 * p], patch, config);
        }
        let Some((values, f)) = input.future_covariates() else {
            continue;
        };
        for step in 0..f {
            let value = normalize(values[row * f + step], stats[row], config.use_arcsinh);
            let mask = match input.future_covariates_mask() {
                Some(mask) => mask[row * f + step],
                None => f32::from(!value.is_nan()),
            };
            if mask > 0.0 && value.is_nan() {
                return Err(Error::Input(format!(
                    "future_covariates row {row} step {step} is NaN but its mask says known; fix the mask or omit it"
                )));
            }
            let (patch, i) = (step / p, step % p);
            let out = &mut features[(row * m + patch) * 3 * p..][..3 * p];
            out[p + i] = if mask > 0.0 { value } else { 0.0 };
            out[2 * p + i] = mask;
        }
    }
    Ok(())
}

/// The features `[time (P), values 0 (P), mask 0 (P)]` of future patch `patch` without known
/// covariates; the same for every row.
pub fn empty_future_patch(out: &mut [f32], patch: usize, config: &Config) {
    let p = config.patch_size;
    let (time, rest) = out.split_at_mut(p);
    for (i, slot) in time.iter_mut().enumerate() {
        // Future time encoding: arange(0, M·P) / time_encoding_scale.
        *slot = future_time(patch * p + i, config.time_encoding_scale);
    }
    rest.fill(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loc_scale_ignores_nans_and_handles_special_rows() {
        // [1, NaN, 3]: loc 2, scale sqrt(((1-2)² + (3-2)²)/2) = 1.
        assert_eq!(loc_scale(&[1.0, f32::NAN, 3.0]), LocScale { loc: 2.0, scale: 1.0 });
        assert_eq!(loc_scale(&[f32::NAN; 4]), LocScale { loc: 0.0, scale: 1.0 });
        assert_eq!(loc_scale(&[5.0; 3]), LocScale { loc: 5.0, scale: 1e-5 });
    }

    #[test]
    fn normalize_round_trips() {
        let ls = LocScale { loc: 10.0, scale: 2.0 };
        let y = normalize(13.0, ls, true);
        assert!((y - 1.5f32.asinh()).abs() < 1e-7);
        assert!((denormalize(y, ls, true) - 13.0).abs() < 1e-5);
        assert!(normalize(f32::NAN, ls, true).is_nan());
    }

    #[test]
    fn time_encoding_is_end_aligned() {
        // Two patches of 2 steps, scale 8: arange(-4, 0) / 8.
        let t: Vec<f32> = (1..=4).rev().map(|k| context_time(k, 8)).collect();
        assert_eq!(t, [-0.5, -0.375, -0.25, -0.125]);
        let f: Vec<f32> = (0..3).map(|k| future_time(k, 8)).collect();
        assert_eq!(f, [0.0, 0.125, 0.25]);
    }
}
