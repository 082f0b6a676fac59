//! The eager forward pass: the readable reference path, op by op, as PyTorch eager runs
//! `Chronos2Model.forward` (`chronos/chronos2/model.py`, `layers.py` of chronos-forecasting
//! 2.3.2; described in `shared/docs/chronos2-spec.md` section 3).
//!
//! Shapes, used in every doc comment below:
//!
//! | letter | meaning |
//! |---|---|
//! | B | rows in the batch (every target, covariate and variate is a row) |
//! | T | context length after truncation to `context_length` |
//! | P | patch size (16) |
//! | N | context patches, `ceil(T / P)` |
//! | M | output patches |
//! | R | 1 if the model has a REG token, else 0 |
//! | S | tokens per row, `N + R + M` |
//! | D | hidden size; H heads of dk; I = H·dk |
//! | Q | quantile levels |
//!
//! All tensors are row-major `Vec<f32>`. The pass is
//! `instance_norm` → `patch_context` → `input_embedding` → tokens (+REG, +future) →
//! layers × (`time_attention`, `group_attention`, `feed_forward`) → final RMS norm →
//! `output_head` (quantile-major rearrangement and inverse scaling).

use chronos2_kernels::ops::{add_bias, relu, rms_norm, softmax, RopeTable};
use chronos2_kernels::{matmul, MatMut, MatRef, Threads};

use crate::config::Config;
use crate::error::Error;
use crate::input::{Encoded, ModelInput, ModelOutput};
use crate::weights::{Attention, EncoderBlock, Linear, ResidualBlock, Weights};

/// Instance-norm eps: replaces an exactly-zero scale (never added).
const INSTANCE_NORM_EPS: f32 = 1e-5;

/// Additive attention mask value for a masked key: `finfo(float32).min`, not `-inf`, so a
/// query with every key masked gets a uniform softmax instead of NaN.
pub const MASK_VALUE: f32 = f32::MIN;

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

/// The patched context of a batch, ready for the input embedding.
struct PatchedContext {
    /// `(B·N, 3P)`: per patch `[time encoding (P), values (P), mask (P)]`.
    features: Vec<f32>,
    /// `(B, N)`: 1 if any value of the patch is observed.
    patch_mask: Vec<f32>,
    /// Per-row instance-norm statistics, `(B)`.
    loc_scale: Vec<LocScale>,
    /// N.
    patches: usize,
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
/// # Errors
/// [`Error::Input`] if an explicit mask marks a NaN value as observed (the reference would
/// silently return NaN forecasts).
///
/// # Panics
/// If a buffer has the wrong length.
pub fn patch_context_into(
    config: &Config,
    input: &ModelInput,
    features: &mut [f32],
    patch_mask: &mut [f32],
    stats: &mut [LocScale],
) -> Result<(), Error> {
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
                let mask = match input.context_mask() {
                    Some(m) => m[row * full + skip + step],
                    None => f32::from(!value.is_nan()),
                };
                out[p + i] = if mask > 0.0 {
                    if value.is_nan() {
                        return Err(Error::Input(format!(
                            "context row {row} step {} is NaN but context_mask marks it observed",
                            skip + step
                        )));
                    }
                    normalize(value, ls, config.use_arcsinh)
                } else {
                    0.0
                };
                out[2 * p + i] = mask;
                observed += mask;
            }
            patch_mask[row * n + patch] = f32::from(observed > 0.0);
        }
    }
    Ok(())
}

/// [`patch_context_into`] with fresh buffers.
fn patch_context(config: &Config, input: &ModelInput) -> Result<PatchedContext, Error> {
    let (b, p) = (input.rows(), config.patch_size);
    let n = context_patches(config, input.length());
    let mut features = vec![0.0f32; b * n * 3 * p];
    let mut patch_mask = vec![0.0f32; b * n];
    let mut stats = vec![LocScale { loc: 0.0, scale: 1.0 }; b];
    patch_context_into(config, input, &mut features, &mut patch_mask, &mut stats)?;
    Ok(PatchedContext {
        features,
        patch_mask,
        loc_scale: stats,
        patches: n,
    })
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

/// [`patch_future_into`] with a fresh buffer.
fn patch_future(config: &Config, input: &ModelInput, stats: &[LocScale]) -> Result<Vec<f32>, Error> {
    let mut features = vec![0.0f32; input.rows() * input.num_output_patches() * 3 * config.patch_size];
    patch_future_into(config, input, stats, &mut features)?;
    Ok(features)
}

/// `y = x·Wᵀ + b` for `rows` rows: `(rows, in) -> (rows, out)`.
fn linear(x: &[f32], rows: usize, layer: &Linear) -> Vec<f32> {
    let (out_dim, in_dim) = (layer.out_dim(), layer.in_dim());
    let mut y = vec![0.0f32; rows * out_dim];
    matmul(
        MatMut::row_major(&mut y, rows, out_dim),
        MatRef::row_major(x, rows, in_dim),
        MatRef::row_major(layer.weight.data(), out_dim, in_dim).t(),
        false,
        Threads::Pool,
    );
    if let Some(bias) = &layer.bias {
        add_bias(&mut y, bias.data());
    }
    y
}

/// `h += x·Wᵀ` (a residual connection around a bias-free projection).
fn linear_residual(h: &mut [f32], x: &[f32], rows: usize, layer: &Linear) {
    let (out_dim, in_dim) = (layer.out_dim(), layer.in_dim());
    matmul(
        MatMut::row_major(h, rows, out_dim),
        MatRef::row_major(x, rows, in_dim),
        MatRef::row_major(layer.weight.data(), out_dim, in_dim).t(),
        true,
        Threads::Pool,
    );
}

/// `ResidualBlock`: `out(relu(hidden(x))) + residual(x)`, `(rows, in) -> (rows, out)`.
fn residual_block(block: &ResidualBlock, x: &[f32], rows: usize) -> Vec<f32> {
    let mut hidden = linear(x, rows, &block.hidden);
    relu(&mut hidden);
    let mut y = linear(&hidden, rows, &block.output);
    let residual = linear(x, rows, &block.residual);
    chronos2_kernels::ops::add_assign(&mut y, &residual);
    y
}

/// RMS norm of every D-wide row of `h` with gain `weight`.
fn norm(h: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; h.len()];
    rms_norm(&mut out, h, weight, eps);
    out
}

/// Additive key mask: 0 where `mask` is 1, `finfo.min` where it is 0 (`(1 - mask) * min`).
fn additive_mask(mask: f32) -> f32 {
    (1.0 - mask) * MASK_VALUE
}

/// One unscaled attention head: `out = softmax(q·kᵀ + mask)·v` for `len` queries and keys.
///
/// `q`, `k`, `v` and `out` are `(len, dk)` views with row stride `stride`; `key_mask(i, j)`
/// gives the additive mask for query i and key j. `scores` is a `len²` scratch buffer.
#[allow(clippy::too_many_arguments, reason = "one head's views and its mask")]
fn attention_head(
    out: &mut [f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    len: usize,
    dk: usize,
    stride: usize,
    scores: &mut [f32],
    key_mask: impl Fn(usize, usize) -> f32,
) {
    let q = MatRef::strided(q, len, dk, stride, 1);
    let k = MatRef::strided(k, len, dk, stride, 1);
    let v = MatRef::strided(v, len, dk, stride, 1);
    matmul(MatMut::row_major(scores, len, len), q, k.t(), false, Threads::Single);
    for (i, row) in scores.chunks_exact_mut(len).enumerate() {
        for (j, s) in row.iter_mut().enumerate() {
            *s += key_mask(i, j);
        }
        softmax(row);
    }
    matmul(
        MatMut::strided(out, len, dk, stride, 1),
        MatRef::row_major(scores, len, len),
        v,
        false,
        Threads::Single,
    );
}

/// The three projections Q, K, V of `x` (`(rows, D) -> 3 × (rows, I)`).
fn project_qkv(x: &[f32], rows: usize, attention: &Attention) -> [Vec<f32>; 3] {
    [
        linear(x, rows, &attention.q),
        linear(x, rows, &attention.k),
        linear(x, rows, &attention.v),
    ]
}

/// Time self-attention with RoPE over the S tokens of each row (`TimeSelfAttention`),
/// residual included: `h += O(Attn(RMSNorm(h)))`. `h` is `(B, S, D)`, `attn_mask` `(B, S)`.
fn time_attention(
    config: &Config,
    block: &EncoderBlock,
    h: &mut [f32],
    b: usize,
    s: usize,
    attn_mask: &[f32],
    rope: &RopeTable,
) {
    let (dk, inner) = (config.d_kv, config.inner_dim());
    let x = norm(h, block.time_norm.data(), config.layer_norm_epsilon);
    let [mut q, mut k, v] = project_qkv(&x, b * s, &block.time_attention);
    // RoPE on Q and K (not V); position = token index from the left, REG and future included.
    for (token, (q_row, k_row)) in q.chunks_exact_mut(inner).zip(k.chunks_exact_mut(inner)).enumerate() {
        for (qh, kh) in q_row.chunks_exact_mut(dk).zip(k_row.chunks_exact_mut(dk)) {
            rope.rotate(qh, token % s);
            rope.rotate(kh, token % s);
        }
    }
    let mut context = vec![0.0f32; b * s * inner];
    let mut scores = vec![0.0f32; s * s];
    for row in 0..b {
        let keys = &attn_mask[row * s..(row + 1) * s];
        for head in 0..config.num_heads {
            let at = row * s * inner + head * dk;
            attention_head(
                &mut context[at..],
                &q[at..],
                &k[at..],
                &v[at..],
                s,
                dk,
                inner,
                &mut scores,
                |_, j| additive_mask(keys[j]),
            );
        }
    }
    linear_residual(h, &context, b * s, &block.time_attention.o);
}

/// Group self-attention across the rows at each token position (`GroupSelfAttention`), no
/// RoPE, residual included. Row q may attend to row k at position t iff they share a group id
/// and `attn_mask[k, t]` is 1 (the reference's group-time mask, computed over all B rows).
#[allow(clippy::too_many_arguments, reason = "the block, the state and its three masks/ids")]
fn group_attention(
    config: &Config,
    block: &EncoderBlock,
    h: &mut [f32],
    b: usize,
    s: usize,
    attn_mask: &[f32],
    group_ids: &[i64],
) {
    let (dk, inner) = (config.d_kv, config.inner_dim());
    let x = norm(h, block.group_norm.data(), config.layer_norm_epsilon);
    let [q, k, v] = project_qkv(&x, b * s, &block.group_attention);
    let mut context = vec![0.0f32; b * s * inner];
    let mut scores = vec![0.0f32; b * b];
    for t in 0..s {
        for head in 0..config.num_heads {
            let at = t * inner + head * dk;
            attention_head(
                &mut context[at..],
                &q[at..],
                &k[at..],
                &v[at..],
                b,
                dk,
                s * inner,
                &mut scores,
                |qi, kj| additive_mask(f32::from(group_ids[qi] == group_ids[kj]) * attn_mask[kj * s + t]),
            );
        }
    }
    linear_residual(h, &context, b * s, &block.group_attention.o);
}

/// Feed-forward with residual: `h += wo(relu(wi(RMSNorm(h))))`, no biases.
fn feed_forward(config: &Config, block: &EncoderBlock, h: &mut [f32], rows: usize) {
    let x = norm(h, block.ffn_norm.data(), config.layer_norm_epsilon);
    let mut hidden = linear(&x, rows, &block.wi);
    relu(&mut hidden);
    linear_residual(h, &hidden, rows, &block.wo);
}

/// Runs the encoder (`Chronos2Model.encode`): returns the final hidden states `(B, S, D)`.
///
/// # Errors
/// [`Error::Input`] for inconsistent shapes or NaNs in known future covariates.
pub fn encode(config: &Config, weights: &Weights, input: &ModelInput) -> Result<Encoded, Error> {
    input.validate(config)?;
    let (b, m, d) = (input.rows(), input.num_output_patches(), config.d_model);
    let context = patch_context(config, input)?;
    let n = context.patches;
    let future = patch_future(config, input, &context.loc_scale)?;
    let context_embeds = residual_block(&weights.input_embedding, &context.features, b * n);
    let future_embeds = residual_block(&weights.input_embedding, &future, b * m);

    // Tokens per row: [N context patches][REG][M future patches]; mask [patch mask, 1, 1..1].
    let reg = weights.reg_token();
    let s = n + usize::from(reg.is_some()) + m;
    let mut h = Vec::with_capacity(b * s * d);
    let mut attn_mask = Vec::with_capacity(b * s);
    for row in 0..b {
        h.extend_from_slice(&context_embeds[row * n * d..(row + 1) * n * d]);
        attn_mask.extend_from_slice(&context.patch_mask[row * n..(row + 1) * n]);
        if let Some(reg) = reg {
            h.extend_from_slice(reg);
            attn_mask.push(1.0);
        }
        h.extend_from_slice(&future_embeds[row * m * d..(row + 1) * m * d]);
        attn_mask.extend(std::iter::repeat_n(1.0, m));
    }

    let rope = RopeTable::new(s, config.d_kv, config.rope_theta);
    let group_ids = input.group_ids();
    for block in &weights.blocks {
        time_attention(config, block, &mut h, b, s, &attn_mask, &rope);
        group_attention(config, block, &mut h, b, s, &attn_mask, &group_ids);
        feed_forward(config, block, &mut h, b * s);
    }
    let hidden = norm(&h, weights.final_norm.data(), config.layer_norm_epsilon);
    Ok(Encoded {
        hidden,
        rows: b,
        tokens: s,
        d_model: d,
        num_context_patches: n,
        loc: context.loc_scale.iter().map(|ls| ls.loc).collect(),
        scale: context.loc_scale.iter().map(|ls| ls.scale).collect(),
    })
}

/// Quantile-major rearrangement `(B, M, Q·P) -> (B, Q, M·P)`:
/// `out[b, q, m·P + p] = y[b, m, q·P + p]`.
pub fn quantile_major(y: &[f32], b: usize, m: usize, q: usize, p: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; y.len()];
    for row in 0..b {
        for patch in 0..m {
            for level in 0..q {
                let src = &y[((row * m + patch) * q + level) * p..][..p];
                out[(row * q + level) * m * p + patch * p..][..p].copy_from_slice(src);
            }
        }
    }
    out
}

/// The output head: the last M tokens of each row through the output residual block,
/// rearranged quantile-major and scaled back to the data's units.
fn output_head(config: &Config, weights: &Weights, encoded: &Encoded, m: usize) -> ModelOutput {
    let (b, s, d, p, q) = (
        encoded.rows,
        encoded.tokens,
        encoded.d_model,
        config.patch_size,
        config.num_quantiles(),
    );
    let mut last = Vec::with_capacity(b * m * d);
    for row in 0..b {
        last.extend_from_slice(&encoded.hidden[(row * s + s - m) * d..(row + 1) * s * d]);
    }
    let y = residual_block(&weights.output_embedding, &last, b * m);
    let mut preds = quantile_major(&y, b, m, q, p);
    for (row, chunk) in preds.chunks_exact_mut(q * m * p).enumerate() {
        let ls = LocScale {
            loc: encoded.loc[row],
            scale: encoded.scale[row],
        };
        for v in chunk {
            *v = denormalize(*v, ls, config.use_arcsinh);
        }
    }
    ModelOutput {
        quantile_preds: preds,
        rows: b,
        num_quantiles: q,
        horizon: m * p,
        loc: encoded.loc.clone(),
        scale: encoded.scale.clone(),
    }
}

/// The full eager forward pass (`Chronos2Model.forward`): quantile forecasts `(B, Q, M·P)`.
///
/// # Errors
/// [`Error::Input`] for inconsistent shapes or NaNs in known future covariates.
pub fn forward(config: &Config, weights: &Weights, input: &ModelInput) -> Result<ModelOutput, Error> {
    let encoded = encode(config, weights, input)?;
    Ok(output_head(config, weights, &encoded, input.num_output_patches()))
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

    #[test]
    fn quantile_major_layout_by_hand() {
        // B=1, M=2, Q=2, P=2: y[m, q·P + p] = 10m + q·P + p.
        let y = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0];
        // out[q, m·P + p] = y[m, q·P + p]
        assert_eq!(
            quantile_major(&y, 1, 2, 2, 2),
            [0.0, 1.0, 10.0, 11.0, 2.0, 3.0, 12.0, 13.0]
        );
    }

    #[test]
    fn additive_mask_uses_finfo_min() {
        assert_eq!(additive_mask(1.0), 0.0);
        assert_eq!(additive_mask(0.0), f32::MIN);
    }
}
