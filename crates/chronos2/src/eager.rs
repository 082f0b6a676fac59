//! The eager executor: the model description run with the plain kernels, straight from the
//! checkpoint's tensors, fresh buffers for every call. It is the readable reference that every
//! other executor is tested against.

use chronos2_kernels::bf16::round_bf16;
use chronos2_kernels::int8;
use chronos2_kernels::ops::{add_bias, relu, rms_norm, softmax, RopeTable};
use chronos2_kernels::pool::Pool;
use chronos2_kernels::{matmul, MatMut, MatRef};

use crate::config::Config;
use crate::executor::{GroupLayout, HostKernels, Layer, Norm, Precision, ResidualPart};
use crate::weights::{Attention, Linear, ResidualBlock, Weights};

/// Additive attention mask value for a masked key: `finfo(float32).min`, not `-inf`, so a
/// query with every key masked gets a uniform softmax instead of NaN.
const MASK_VALUE: f32 = f32::MIN;

/// Additive key mask: 0 where `observed` is 1, `finfo.min` where it is 0 (`(1 - mask) * min`).
pub fn additive_mask(observed: f32) -> f32 {
    (1.0 - observed) * MASK_VALUE
}

/// Plain kernels over the checkpoint's own tensors. Matrix products are split over `pool`;
/// attention runs head by head on the calling thread.
///
/// In [`Precision::BFloat16`] the inputs of every encoder-block layer are rounded to bf16
/// before an ordinary f32 product; the weights must already be rounded
/// ([`Weights::rounded_to_bf16`]). Products of bf16 values are exact in f32, so this computes
/// what a bf16 kernel computes, up to the order of the f32 sums. In [`Precision::Int8`] every
/// encoder-block product is [`chronos2_kernels::int8::linear_reference`]: weights and inputs
/// quantized at each call in the plainest way, the same roundings and epilogue as the packed
/// int8 kernels (so the two agree bit for bit), and slow.
pub struct EagerExecutor<'a> {
    config: &'a Config,
    weights: &'a Weights,
    pool: &'a Pool,
    precision: Precision,
}

impl<'a> EagerExecutor<'a> {
    /// An f32 executor over `weights`, products split over `pool`.
    pub fn new(config: &'a Config, weights: &'a Weights, pool: &'a Pool) -> Self {
        Self {
            config,
            weights,
            pool,
            precision: Precision::Float32,
        }
    }

    /// The same executor computing its encoder blocks in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// `y[:, at..at + out] (+)= x·Wᵀ + b` with `y` rows of stride `y_stride`; in int8 when
    /// `quantized` (an encoder-block layer) and the precision says so.
    #[allow(clippy::too_many_arguments, reason = "a strided product with its options")]
    fn product(
        &self,
        layer: &Linear,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
        y_stride: usize,
        at: usize,
        accumulate: bool,
        quantized: bool,
    ) {
        let (out_dim, in_dim) = (layer.out_dim(), layer.in_dim());
        let y = &mut y[at..];
        if self.precision == Precision::Int8 && quantized {
            let bias = layer.bias.as_ref().map(|b| b.data());
            let weight = layer.weight.data();
            int8::linear_reference(y, y_stride, x, rows, weight, out_dim, in_dim, bias, accumulate);
            return;
        }
        matmul(
            MatMut::strided(y, rows, out_dim, y_stride, 1),
            MatRef::row_major(x, rows, in_dim),
            MatRef::row_major(layer.weight.data(), out_dim, in_dim).t(),
            accumulate,
            self.pool,
        );
        if let Some(bias) = &layer.bias {
            for row in y.chunks_mut(y_stride).take(rows) {
                add_bias(&mut row[..out_dim], bias.data());
            }
        }
    }

    /// Q, K and V as three products into the column ranges Q | K | V of one `(rows, 3I)`
    /// output.
    fn stacked(&self, attention: &Attention, x: &[f32], rows: usize, y: &mut [f32], accumulate: bool) {
        let inner = self.config.inner_dim();
        for (index, layer) in [&attention.q, &attention.k, &attention.v].into_iter().enumerate() {
            self.product(layer, x, rows, y, 3 * inner, index * inner, accumulate, true);
        }
    }
}

/// One layer of a residual block.
fn part(block: &ResidualBlock, part: ResidualPart) -> &Linear {
    match part {
        ResidualPart::Hidden => &block.hidden,
        ResidualPart::Output => &block.output,
        ResidualPart::Residual => &block.residual,
    }
}

impl HostKernels for EagerExecutor<'_> {
    fn linear(&mut self, layer: Layer, x: &[f32], rows: usize, y: &mut [f32], accumulate: bool) {
        let rounded: Vec<f32>;
        let x = if self.precision == Precision::BFloat16 && layer.in_encoder_block() {
            rounded = x.iter().map(|&v| round_bf16(v)).collect();
            &rounded
        } else {
            x
        };
        let (weights, blocks) = (self.weights, &self.weights.blocks);
        let single = match layer {
            Layer::TimeQkv(i) => return self.stacked(&blocks[i].time_attention, x, rows, y, accumulate),
            Layer::GroupQkv(i) => return self.stacked(&blocks[i].group_attention, x, rows, y, accumulate),
            Layer::InputEmbedding(p) => part(&weights.input_embedding, p),
            Layer::OutputHead(p) => part(&weights.output_embedding, p),
            Layer::TimeOutput(i) => &blocks[i].time_attention.o,
            Layer::GroupValue(i) => &blocks[i].group_attention.v,
            Layer::GroupOutput(i) => &blocks[i].group_attention.o,
            Layer::FeedForwardIn(i) => &blocks[i].wi,
            Layer::FeedForwardOut(i) => &blocks[i].wo,
        };
        self.product(
            single,
            x,
            rows,
            y,
            single.out_dim(),
            0,
            accumulate,
            layer.in_encoder_block(),
        );
    }

    fn rms_norm(&mut self, norm: Norm, x: &[f32], out: &mut [f32]) {
        let blocks = &self.weights.blocks;
        let weight = match norm {
            Norm::Time(i) => &blocks[i].time_norm,
            Norm::Group(i) => &blocks[i].group_norm,
            Norm::FeedForward(i) => &blocks[i].ffn_norm,
            Norm::Final => &self.weights.final_norm,
        };
        rms_norm(&mut out[..x.len()], x, weight.data(), self.config.layer_norm_epsilon);
    }

    fn relu(&mut self, x: &mut [f32]) {
        relu(x);
    }

    fn rope(&mut self, qkv: &mut [f32], rows: usize, tokens: usize, rope: &RopeTable) {
        let (dk, inner) = (self.config.d_kv, self.config.inner_dim());
        for (token, row) in qkv.chunks_exact_mut(3 * inner).take(rows * tokens).enumerate() {
            for head in row[..2 * inner].chunks_exact_mut(dk) {
                rope.rotate(head, token % tokens);
            }
        }
    }

    fn time_attention(
        &mut self,
        qkv: &[f32],
        key_mask: &[f32],
        rows: usize,
        tokens: usize,
        first_query: usize,
        ctx: &mut [f32],
    ) {
        let (dk, inner) = (self.config.d_kv, self.config.inner_dim());
        let queries = tokens - first_query;
        let mut scores = vec![0.0f32; queries * tokens];
        for row in 0..rows {
            let keys = &key_mask[row * tokens..(row + 1) * tokens];
            for head in 0..self.config.num_heads {
                let at = |token: usize, part: usize| (row * tokens + token) * 3 * inner + part * inner + head * dk;
                let view = |first: usize, count: usize, part: usize| {
                    MatRef::strided(&qkv[at(first, part)..], count, dk, 3 * inner, 1)
                };
                attention_head(
                    MatMut::strided(&mut ctx[row * queries * inner + head * dk..], queries, dk, inner, 1),
                    view(first_query, queries, 0),
                    view(0, tokens, 1),
                    view(0, tokens, 2),
                    &mut scores,
                    |_, key| additive_mask(keys[key]),
                );
            }
        }
    }

    fn group_attention(
        &mut self,
        qkv: &[f32],
        layout: &GroupLayout,
        key_mask: Option<&[f32]>,
        rows: usize,
        tokens: usize,
        ctx: &mut [f32],
    ) {
        // The reference's way: all B rows attend to all B rows at each position, with the
        // group-time mask (same group and key observed).
        let (dk, inner) = (self.config.d_kv, self.config.inner_dim());
        let observed = |row: usize, t: usize| key_mask.map_or(1.0, |mask| mask[row * tokens + t]);
        let mut scores = vec![0.0f32; rows * rows];
        for t in 0..tokens {
            for head in 0..self.config.num_heads {
                let view = |part: usize| {
                    MatRef::strided(
                        &qkv[t * 3 * inner + part * inner + head * dk..],
                        rows,
                        dk,
                        tokens * 3 * inner,
                        1,
                    )
                };
                attention_head(
                    MatMut::strided(&mut ctx[t * inner + head * dk..], rows, dk, tokens * inner, 1),
                    view(0),
                    view(1),
                    view(2),
                    &mut scores,
                    |q, k| additive_mask(f32::from(layout.same_group(q, k)) * observed(k, t)),
                );
            }
        }
    }

    fn reg_token(&self) -> Option<&[f32]> {
        self.weights.reg_token()
    }
}

/// One unscaled attention head: `out = softmax(q·kᵀ + mask)·v`; `key_mask(i, j)` is the
/// additive mask of query i and key j; `scores` is scratch of at least queries × keys.
fn attention_head(
    out: MatMut<'_>,
    q: MatRef<'_>,
    k: MatRef<'_>,
    v: MatRef<'_>,
    scores: &mut [f32],
    key_mask: impl Fn(usize, usize) -> f32,
) {
    let (queries, keys) = (q.rows(), k.rows());
    let scores = &mut scores[..queries * keys];
    matmul(
        MatMut::row_major(scores, queries, keys),
        q,
        k.t(),
        false,
        Pool::serial(),
    );
    for (i, row) in scores.chunks_exact_mut(keys).enumerate() {
        for (j, s) in row.iter_mut().enumerate() {
            *s += key_mask(i, j);
        }
        softmax(row);
    }
    matmul(out, MatRef::row_major(scores, queries, keys), v, false, Pool::serial());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additive_mask_uses_finfo_min() {
        assert_eq!(additive_mask(1.0), 0.0);
        assert_eq!(additive_mask(0.0), f32::MIN);
    }
}
