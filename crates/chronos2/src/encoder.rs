//! Chronos-2, described once: what the model computes, step by step, over a typed set of
//! buffers ([`Activations`]) and an [`Executor`] that provides the kernels. Every execution
//! mode runs this description: the eager executor (plain kernels, the reference) and the
//! planned executor of compiled mode (packed weights, an arena per shape bucket, the pool).
//! It mirrors `Chronos2Model.forward` of chronos-forecasting 2.3.2 (`chronos/chronos2/model.py`,
//! `layers.py`; `shared/docs/chronos2-spec.md` section 3).
//!
//! Shapes, used in every doc comment of the crate:
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
//! | D | hidden size; H heads of dk; I = H·dk; F the feed-forward width |
//! | Q | quantile levels |
//!
//! The pass: instance-normalise and patch the context ([`crate::patching`]) → embed the
//! patches with a residual block → tokens `[N context patches][REG][M future patches]` per row
//! → for each block: time attention (RoPE, over the tokens of a row), group attention (across
//! the rows of a group, per token), feed-forward, each as `h += f(RMSNorm(h))` → final RMS norm
//! → output residual block on the last M tokens → quantile-major `(B, Q, M·P)`, scaled back.
//!
//! [`Optimizations`] are exact rewrites of that pass (the result is the same up to float
//! rounding); each can be switched off on its own, so parity is tested per optimisation.

use chronos2_kernels::ops::RopeTable;

use crate::config::Config;
use crate::error::Error;
use crate::executor::{Executor, GroupLayout, Layer, Norm, ResidualPart};
use crate::input::{Encoded, ModelInput, ModelOutput};
use crate::patching::{
    context_patches, denormalize, empty_future_patch, patch_context_into, patch_future_into, LocScale,
};

/// Exact rewrites of the pass that an executor may apply. The eager executor runs with none
/// (the pass as the reference writes it); compiled mode with all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Optimizations {
    /// Q, K and V of each attention as one product with stacked weights (executors that
    /// prepare weights honour it; the eager executor always runs three products).
    pub fused_qkv: bool,
    /// When every row is alone in its group, group attention is exactly `O(V(x))` (a softmax
    /// over one key is 1): Q, K and the scores are skipped.
    pub singleton_groups: bool,
    /// Without known future covariates the M future patches are the same for every row: they
    /// are embedded once and copied, instead of once per row.
    pub shared_future_tokens: bool,
    /// In the last block only the last M tokens of each row reach the output head, so only
    /// they get queries, group attention and the feed-forward (keys and values still come from
    /// every token).
    pub trimmed_last_block: bool,
}

impl Optimizations {
    /// Every optimisation on (compiled mode's default).
    pub const ALL: Self = Self {
        fused_qkv: true,
        singleton_groups: true,
        shared_future_tokens: true,
        trimmed_last_block: true,
    };

    /// None: the pass exactly as the reference writes it.
    pub const NONE: Self = Self {
        fused_qkv: false,
        singleton_groups: false,
        shared_future_tokens: false,
        trimmed_last_block: false,
    };
}

impl Default for Optimizations {
    fn default() -> Self {
        Self::ALL
    }
}

/// Everything about a pass that is fixed for a shape bucket: sizes, group layout, RoPE table
/// and the optimisations applied. Executors that plan keep one per bucket.
#[derive(Clone, Debug)]
pub struct Pass {
    /// Rows B.
    pub rows: usize,
    /// Context patches N.
    pub patches: usize,
    /// Output patches M.
    pub output_patches: usize,
    /// Tokens per row S.
    pub tokens: usize,
    /// Whether the input has known future covariates.
    pub covariates: bool,
    /// Which rows attend to each other.
    pub layout: GroupLayout,
    /// Rotations for the S token positions.
    pub rope: RopeTable,
    /// The rewrites applied.
    pub optimizations: Optimizations,
}

impl Pass {
    /// The pass for a batch of these dimensions (`length` = context length before
    /// truncation).
    pub fn new(
        config: &Config,
        length: usize,
        output_patches: usize,
        covariates: bool,
        layout: GroupLayout,
        optimizations: Optimizations,
    ) -> Self {
        let patches = context_patches(config, length);
        let tokens = patches + usize::from(config.use_reg_token) + output_patches;
        Self {
            rows: layout.first_rows().len(),
            patches,
            output_patches,
            tokens,
            covariates,
            layout,
            rope: RopeTable::new(tokens, config.d_kv, config.rope_theta),
            optimizations,
        }
    }

    /// The pass for `input`.
    pub fn for_input(config: &Config, input: &ModelInput, optimizations: Optimizations) -> Self {
        Self::new(
            config,
            input.length(),
            input.num_output_patches(),
            input.future_covariates().is_some(),
            GroupLayout::of(input),
            optimizations,
        )
    }

    /// Whether future patches are embedded once for all rows.
    fn shares_future_tokens(&self) -> bool {
        self.optimizations.shared_future_tokens && !self.covariates
    }
}

/// Lengths (in floats) of the buffers of [`Activations`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sizes {
    features: usize,
    hidden: usize,
    embed: usize,
    h: usize,
    x: usize,
    qkv: usize,
    ctx: usize,
    patch_mask: usize,
    key_mask: usize,
    head: usize,
}

impl Sizes {
    fn new(config: &Config, pass: &Pass) -> Self {
        let (b, n, m, s) = (pass.rows, pass.patches, pass.output_patches, pass.tokens);
        let (d, inner, p) = (config.d_model, config.inner_dim(), config.patch_size);
        let embedded = (b * n).max(b * m);
        Self {
            features: embedded * 3 * p,
            hidden: embedded.max(b * s) * config.d_ff,
            embed: embedded * d,
            h: b * s * d,
            x: b * s * d,
            qkv: b * s * 3 * inner,
            ctx: b * s * inner,
            patch_mask: b * n,
            key_mask: b * s,
            head: b * m * config.num_quantiles() * p,
        }
    }

    fn total(&self) -> usize {
        let Self {
            features,
            hidden,
            embed,
            h,
            x,
            qkv,
            ctx,
            patch_mask,
            key_mask,
            head,
        } = *self;
        features + hidden + embed + h + x + qkv + ctx + patch_mask + key_mask + head
    }
}

/// The memory of one pass: one f32 arena and the per-row statistics. Eager mode makes a fresh
/// one per call; compiled mode keeps one per shape bucket, so a call allocates nothing.
#[derive(Clone, Debug)]
pub struct ActivationArena {
    sizes: Sizes,
    floats: Vec<f32>,
    stats: Vec<LocScale>,
}

impl ActivationArena {
    /// Bytes the arena of `pass` needs (checked against memory limits before allocating).
    pub fn bytes(config: &Config, pass: &Pass) -> usize {
        Sizes::new(config, pass).total() * std::mem::size_of::<f32>()
    }

    /// Allocates the arena for `pass`.
    pub fn new(config: &Config, pass: &Pass) -> Self {
        let sizes = Sizes::new(config, pass);
        Self {
            sizes,
            floats: vec![0.0; sizes.total()],
            stats: vec![LocScale { loc: 0.0, scale: 1.0 }; pass.rows],
        }
    }

    /// The arena sliced into named buffers.
    pub fn activations(&mut self) -> Activations<'_> {
        let s = self.sizes;
        let mut rest = self.floats.as_mut_slice();
        let mut take = |len: usize| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            rest = tail;
            head
        };
        Activations {
            features: take(s.features),
            hidden: take(s.hidden),
            embed: take(s.embed),
            h: take(s.h),
            x: take(s.x),
            qkv: take(s.qkv),
            ctx: take(s.ctx),
            patch_mask: take(s.patch_mask),
            key_mask: take(s.key_mask),
            head: take(s.head),
            stats: &mut self.stats,
        }
    }
}

/// The buffers of one pass, each named for what it holds. `E = max(B·N, B·M)` rows are
/// embedded at most at once.
pub struct Activations<'a> {
    /// Patch features `(E, 3P)`: per patch `[time encoding (P), values (P), mask (P)]`.
    pub features: &'a mut [f32],
    /// Hidden layer of a residual block or of the feed-forward, `(max(E, B·S), F)`.
    pub hidden: &'a mut [f32],
    /// Embedded patches `(E, D)`; in the last block and the head, the last M tokens of each
    /// row `(B·M, D)`.
    pub embed: &'a mut [f32],
    /// The residual stream: hidden states `(B, S, D)`.
    pub h: &'a mut [f32],
    /// Normed states `(B·S, D)`, the input of each sublayer.
    pub x: &'a mut [f32],
    /// Q, K and V `(B·S, 3I)`.
    pub qkv: &'a mut [f32],
    /// Attention output before its projection `(B·S, I)`.
    pub ctx: &'a mut [f32],
    /// 1 where a context patch has an observed value, `(B, N)`.
    pub patch_mask: &'a mut [f32],
    /// Key mask per token `(B, S)`: the patch mask, then 1 for REG and future tokens.
    pub key_mask: &'a mut [f32],
    /// Output head `(B·M, Q·P)`, patch-major, still normalised.
    pub head: &'a mut [f32],
    /// Instance-norm location and scale per row `(B)`.
    pub stats: &'a mut [LocScale],
}

/// The forward pass (`Chronos2Model.forward`): quantile forecasts `(B, Q, M·P)` in the data's
/// units, written into `out` (its allocation is reused). `input` must have passed
/// [`ModelInput::validate`] and `pass` be made for it: callers size the pass and its arena
/// from the input, so they check it first.
///
/// # Errors
/// [`Error::Input`] for a NaN under a known-future mask.
pub fn forward(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    input: &ModelInput,
    acts: &mut Activations<'_>,
    out: &mut ModelOutput,
) -> Result<(), Error> {
    embed_tokens(exec, config, pass, input, acts)?;
    let trimmed = pass.optimizations.trimmed_last_block;
    run_blocks(exec, config, pass, acts, trimmed);
    let (b, m, d) = (pass.rows, pass.output_patches, config.d_model);
    if !trimmed {
        // The trimmed last block already left the last M tokens of each row in `embed`.
        gather_last_tokens(acts.h, acts.embed, pass, d);
    }
    // Final norm and the output head, on the last M tokens of each row only.
    let tail = &mut acts.x[..b * m * d];
    exec.rms_norm(Norm::Final, &acts.embed[..b * m * d], tail);
    residual_block(exec, config, Layer::OutputHead, tail, b * m, acts.hidden, acts.head);
    write_output(config, acts.head, acts.stats, b, m, out);
    Ok(())
}

/// The encoder alone (`Chronos2Model.encode`): the final hidden states of every token.
///
/// # Errors
/// As [`forward`].
pub fn encode(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    input: &ModelInput,
    acts: &mut Activations<'_>,
) -> Result<Encoded, Error> {
    embed_tokens(exec, config, pass, input, acts)?;
    run_blocks(exec, config, pass, acts, false);
    exec.rms_norm(Norm::Final, acts.h, acts.x);
    Ok(Encoded {
        hidden: acts.x.to_vec(),
        rows: pass.rows,
        tokens: pass.tokens,
        d_model: config.d_model,
        num_context_patches: pass.patches,
        loc: acts.stats.iter().map(|ls| ls.loc).collect(),
        scale: acts.stats.iter().map(|ls| ls.scale).collect(),
    })
}

/// Instance norm, patching and the input embedding: fills `h` with the S tokens of every row
/// and `key_mask` with their key mask.
fn embed_tokens(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    input: &ModelInput,
    acts: &mut Activations<'_>,
) -> Result<(), Error> {
    let (b, n, m, s) = (pass.rows, pass.patches, pass.output_patches, pass.tokens);
    let (d, p) = (config.d_model, config.patch_size);

    // Context patches -> embeddings -> token slots [0, N) of each row; REG at slot N.
    let features = &mut acts.features[..b * n * 3 * p];
    patch_context_into(config, input, features, acts.patch_mask, acts.stats);
    residual_block(
        exec,
        config,
        Layer::InputEmbedding,
        features,
        b * n,
        acts.hidden,
        &mut acts.embed[..b * n * d],
    );
    for row in 0..b {
        let tokens = &mut acts.h[row * s * d..(row + 1) * s * d];
        tokens[..n * d].copy_from_slice(&acts.embed[row * n * d..(row + 1) * n * d]);
        if let Some(reg) = exec.reg_token() {
            tokens[n * d..(n + 1) * d].copy_from_slice(reg);
        }
    }

    // Future patches -> embeddings -> token slots [S - M, S) of each row.
    let shared = pass.shares_future_tokens();
    let future_rows = if shared { 1 } else { b };
    let features = &mut acts.features[..future_rows * m * 3 * p];
    if shared {
        for (patch, chunk) in features.chunks_exact_mut(3 * p).enumerate() {
            empty_future_patch(chunk, patch, config);
        }
    } else {
        patch_future_into(config, input, acts.stats, features)?;
    }
    let embedded = &mut acts.embed[..future_rows * m * d];
    residual_block(
        exec,
        config,
        Layer::InputEmbedding,
        features,
        future_rows * m,
        acts.hidden,
        embedded,
    );
    for row in 0..b {
        let source = if shared { 0 } else { row };
        acts.h[(row * s + s - m) * d..(row + 1) * s * d]
            .copy_from_slice(&embedded[source * m * d..(source + 1) * m * d]);
    }

    // Key mask per token: [patch mask, REG 1, future 1...].
    for row in 0..b {
        let mask = &mut acts.key_mask[row * s..(row + 1) * s];
        mask[..n].copy_from_slice(&acts.patch_mask[row * n..(row + 1) * n]);
        mask[n..].fill(1.0);
    }
    Ok(())
}

/// The encoder blocks, the last one trimmed to the last M tokens if `trim_last` (its states
/// then end in `embed` `(B·M, D)`, the rest in `h`).
fn run_blocks(exec: &mut impl Executor, config: &Config, pass: &Pass, acts: &mut Activations<'_>, trim_last: bool) {
    let (b, m, s, d) = (pass.rows, pass.output_patches, pass.tokens, config.d_model);
    let inner = config.inner_dim();
    for block in 0..config.num_layers {
        if trim_last && block + 1 == config.num_layers {
            // Queries only from the last M tokens; every later op is per token or per
            // position, so the rest of the block runs on those tokens alone.
            time_attention(exec, config, pass, acts, block, s - m);
            gather_last_tokens(acts.h, acts.embed, pass, d);
            let tail = &mut acts.embed[..b * m * d];
            exec.linear(Layer::TimeOutput(block), &acts.ctx[..b * m * inner], b * m, tail, true);
            group_attention(exec, config, pass, acts.x, acts.qkv, acts.ctx, tail, None, m, block);
            feed_forward(exec, config, acts.x, acts.hidden, tail, block);
            return;
        }
        time_attention(exec, config, pass, acts, block, 0);
        exec.linear(Layer::TimeOutput(block), acts.ctx, b * s, acts.h, true);
        let key_mask = Some(&*acts.key_mask);
        group_attention(
            exec, config, pass, acts.x, acts.qkv, acts.ctx, acts.h, key_mask, s, block,
        );
        feed_forward(exec, config, acts.x, acts.hidden, acts.h, block);
    }
}

/// Time self-attention of block `block` (`TimeSelfAttention` without its output projection):
/// RMS norm, Q/K/V, RoPE, attention over the tokens of each row with queries from
/// `first_query..S`; the head outputs go to `ctx` `(B·(S - first_query), I)`.
fn time_attention(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    acts: &mut Activations<'_>,
    block: usize,
    first_query: usize,
) {
    let (b, s) = (pass.rows, pass.tokens);
    exec.rms_norm(Norm::Time(block), acts.h, acts.x);
    exec.linear(Layer::TimeQkv(block), acts.x, b * s, acts.qkv, false);
    exec.rope(acts.qkv, b, s, &pass.rope);
    let queries = b * (s - first_query) * config.inner_dim();
    exec.time_attention(acts.qkv, acts.key_mask, b, s, first_query, &mut acts.ctx[..queries]);
}

/// Group self-attention of block `block` with its residual (`GroupSelfAttention`):
/// `state += O(Attn(RMSNorm(state)))` for `state` `(B·tokens, D)`.
#[allow(clippy::too_many_arguments, reason = "the buffers one sublayer reads and writes")]
fn group_attention(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    x: &mut [f32],
    qkv: &mut [f32],
    ctx: &mut [f32],
    state: &mut [f32],
    key_mask: Option<&[f32]>,
    tokens: usize,
    block: usize,
) {
    let rows = pass.rows * tokens;
    let (x, ctx) = (&mut x[..state.len()], &mut ctx[..rows * config.inner_dim()]);
    exec.rms_norm(Norm::Group(block), state, x);
    if pass.optimizations.singleton_groups && pass.layout.all_singleton() {
        exec.linear(Layer::GroupValue(block), x, rows, ctx, false);
    } else {
        let qkv = &mut qkv[..rows * 3 * config.inner_dim()];
        exec.linear(Layer::GroupQkv(block), x, rows, qkv, false);
        exec.group_attention(qkv, &pass.layout, key_mask, pass.rows, tokens, ctx);
    }
    exec.linear(Layer::GroupOutput(block), ctx, rows, state, true);
}

/// The feed-forward with its residual: `state += wo(relu(wi(RMSNorm(state))))`.
fn feed_forward(
    exec: &mut impl Executor,
    config: &Config,
    x: &mut [f32],
    hidden: &mut [f32],
    state: &mut [f32],
    block: usize,
) {
    let rows = state.len() / config.d_model;
    let (x, hidden) = (&mut x[..state.len()], &mut hidden[..rows * config.d_ff]);
    exec.rms_norm(Norm::FeedForward(block), state, x);
    exec.linear(Layer::FeedForwardIn(block), x, rows, hidden, false);
    exec.relu(hidden);
    exec.linear(Layer::FeedForwardOut(block), hidden, rows, state, true);
}

/// A `ResidualBlock` into `y`: `output(relu(hidden(x))) + residual(x)`, the residual branch
/// accumulated into the same output.
fn residual_block(
    exec: &mut impl Executor,
    config: &Config,
    layer: fn(ResidualPart) -> Layer,
    x: &[f32],
    rows: usize,
    hidden: &mut [f32],
    y: &mut [f32],
) {
    let hidden = &mut hidden[..rows * config.d_ff];
    exec.linear(layer(ResidualPart::Hidden), x, rows, hidden, false);
    exec.relu(hidden);
    exec.linear(layer(ResidualPart::Output), hidden, rows, y, false);
    exec.linear(layer(ResidualPart::Residual), x, rows, y, true);
}

/// Copies the last M tokens of each row of `h` `(B, S, D)` into `tail` `(B·M, D)`.
fn gather_last_tokens(h: &[f32], tail: &mut [f32], pass: &Pass, d: usize) {
    let (m, s) = (pass.output_patches, pass.tokens);
    for row in 0..pass.rows {
        tail[row * m * d..(row + 1) * m * d].copy_from_slice(&h[(row * s + s - m) * d..(row + 1) * s * d]);
    }
}

/// `out[b, q, m·P + p] = denormalize(head[b, m, q·P + p])`: the reference's quantile-major
/// rearrangement and inverse instance norm, reusing `out`'s allocation.
fn write_output(config: &Config, head: &[f32], stats: &[LocScale], b: usize, m: usize, out: &mut ModelOutput) {
    let (p, q) = (config.patch_size, config.num_quantiles());
    out.rows = b;
    out.num_quantiles = q;
    out.horizon = m * p;
    out.quantile_preds.resize(b * q * m * p, 0.0);
    out.loc.clear();
    out.scale.clear();
    for (row, &ls) in stats.iter().enumerate().take(b) {
        out.loc.push(ls.loc);
        out.scale.push(ls.scale);
        for patch in 0..m {
            for level in 0..q {
                let src = &head[((row * m + patch) * q + level) * p..][..p];
                let dst = &mut out.quantile_preds[(row * q + level) * m * p + patch * p..][..p];
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = denormalize(v, ls, config.use_arcsinh);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_quantile_major_and_denormalised() {
        // B=1, M=2, Q=2 (a config with two levels), P=2: head[m, q·P + p] = 10m + q·P + p.
        let mut config = Config::tiny();
        config.patch_size = 2;
        config.quantiles = vec![0.1, 0.9];
        config.use_arcsinh = false;
        let head = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0];
        let stats = [LocScale { loc: 1.0, scale: 2.0 }];
        let mut out = ModelOutput::empty();
        write_output(&config, &head, &stats, 1, 2, &mut out);
        // out[q, m·P + p] = head[m, q·P + p] · 2 + 1
        assert_eq!(out.quantile_preds, [1.0, 3.0, 21.0, 23.0, 5.0, 7.0, 25.0, 27.0]);
        assert_eq!((out.rows, out.num_quantiles, out.horizon), (1, 2, 4));
    }

    #[test]
    fn arena_sizes_follow_the_pass() {
        let config = Config::tiny();
        let input = ModelInput::new(vec![1.0; 3 * 40], 3).unwrap().with_output_patches(2);
        let pass = Pass::for_input(&config, &input, Optimizations::ALL);
        assert_eq!(pass.tokens, pass.patches + usize::from(config.use_reg_token) + 2);
        let mut arena = ActivationArena::new(&config, &pass);
        let acts = arena.activations();
        assert_eq!(acts.h.len(), 3 * pass.tokens * config.d_model);
        assert_eq!(acts.key_mask.len(), 3 * pass.tokens);
        assert_eq!(acts.stats.len(), 3);
    }
}
