//! Chronos-2, described once: what the model computes, step by step, over a typed set of
//! buffers ([`Activations`]) and an [`Executor`] that provides the kernels. Every execution
//! mode runs this description: the eager executor (plain kernels, the reference) and the
//! planned executor of compiled mode (packed weights, an arena per shape bucket, the pool).
//! It mirrors `Chronos2Model.forward` of chronos-forecasting 2.3.2 (`chronos/chronos2/model.py`,
//! `layers.py`; `docs/chronos2-spec.md` section 3).
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
use crate::executor::{Executor, GroupLayout, HostExecutor, HostKernels, Layer, Norm, ResidualPart, Span};
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

/// Where the buffers of one pass live in the executor's activation memory: one [`Span`]
/// per buffer, laid end to end from float 0 ([`floats`](Self::floats) in all), each named for
/// what it holds. `E = max(B·N, B·M)` rows are embedded at most at once; `Mf` is 1 when the
/// future tokens are shared by every row, else B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activations {
    /// Patch features: the context's `(B·N, 3P)`, then the future's `(Mf·M, 3P)`; per patch
    /// `[time encoding (P), values (P), mask (P)]`.
    pub features: Span,
    /// Hidden layer of a residual block or of the feed-forward, `(max(E, B·S), F)`.
    pub hidden: Span,
    /// Embedded patches `(E, D)`; in the last block and the head, the last M tokens of each
    /// row `(B·M, D)`.
    pub embed: Span,
    /// The residual stream: hidden states `(B, S, D)`.
    pub h: Span,
    /// Normed states `(B·S, D)`, the input of each sublayer.
    pub x: Span,
    /// Q, K and V `(B·S, 3I)`.
    pub qkv: Span,
    /// Attention output before its projection `(B·S, I)`.
    pub ctx: Span,
    /// 1 where a context patch has an observed value, `(B, N)`.
    pub patch_mask: Span,
    /// Key mask per token `(B, S)`: the patch mask, then 1 for REG and future tokens.
    pub key_mask: Span,
    /// Output head `(B·M, Q·P)`, patch-major, still normalised.
    pub head: Span,
}

impl Activations {
    /// The buffers of `pass`, laid end to end.
    pub fn new(config: &Config, pass: &Pass) -> Self {
        let (b, n, m, s) = (pass.rows, pass.patches, pass.output_patches, pass.tokens);
        let (d, inner, p) = (config.d_model, config.inner_dim(), config.patch_size);
        let embedded = (b * n).max(b * m);
        let mut end = 0;
        let mut next = |len: usize| {
            end += len;
            Span::new(end - len, len)
        };
        Self {
            features: next((b * n + future_rows(pass) * m) * 3 * p),
            hidden: next(embedded.max(b * s) * config.d_ff),
            embed: next(embedded * d),
            h: next(b * s * d),
            x: next(b * s * d),
            qkv: next(b * s * 3 * inner),
            ctx: next(b * s * inner),
            patch_mask: next(b * n),
            key_mask: next(b * s),
            head: next(b * m * config.num_quantiles() * p),
        }
    }

    /// Floats of memory the buffers take.
    pub fn floats(&self) -> usize {
        self.head.start + self.head.len
    }
}

/// Rows of future patches embedded: 1 if shared by every row, else B.
fn future_rows(pass: &Pass) -> usize {
    if pass.shares_future_tokens() {
        1
    } else {
        pass.rows
    }
}

/// The host memory of one pass for the CPU executors: one f32 arena holding the
/// [`Activations`], and the per-row statistics. Eager mode makes a fresh one per call;
/// compiled mode keeps one per shape bucket, so a call allocates nothing.
#[derive(Clone, Debug)]
pub struct ActivationArena {
    activations: Activations,
    floats: Vec<f32>,
    stats: Vec<LocScale>,
}

impl ActivationArena {
    /// Bytes the arena of `pass` needs (checked against memory limits before allocating).
    pub fn bytes(config: &Config, pass: &Pass) -> usize {
        Activations::new(config, pass).floats() * std::mem::size_of::<f32>()
    }

    /// Allocates the arena for `pass`.
    pub fn new(config: &Config, pass: &Pass) -> Self {
        let activations = Activations::new(config, pass);
        Self {
            activations,
            floats: vec![0.0; activations.floats()],
            stats: vec![LocScale { loc: 0.0, scale: 1.0 }; pass.rows],
        }
    }

    /// Where the buffers are, the memory they are in (for a [`HostExecutor`]) and the per-row
    /// statistics.
    pub fn parts(&mut self) -> (Activations, &mut [f32], &mut [LocScale]) {
        (self.activations, &mut self.floats, &mut self.stats)
    }

    /// Runs [`forward`] with `kernels` on this arena.
    ///
    /// # Errors
    /// As [`forward`].
    pub fn forward(
        &mut self,
        kernels: impl HostKernels,
        config: &Config,
        pass: &Pass,
        input: &ModelInput,
        out: &mut ModelOutput,
    ) -> Result<(), Error> {
        let (acts, floats, stats) = self.parts();
        forward(
            &mut HostExecutor::new(kernels, floats),
            config,
            pass,
            input,
            &acts,
            stats,
            out,
        )
    }

    /// Runs [`encode`] with `kernels` on this arena.
    ///
    /// # Errors
    /// As [`encode`].
    pub fn encode(
        &mut self,
        kernels: impl HostKernels,
        config: &Config,
        pass: &Pass,
        input: &ModelInput,
    ) -> Result<Encoded, Error> {
        let (acts, floats, stats) = self.parts();
        encode(
            &mut HostExecutor::new(kernels, floats),
            config,
            pass,
            input,
            &acts,
            stats,
        )
    }
}

/// The forward pass (`Chronos2Model.forward`): quantile forecasts `(B, Q, M·P)` in the data's
/// units, written into `out` (its allocation is reused). `input` must have passed
/// [`ModelInput::validate`] and `pass` be made for it: callers size the pass and its memory
/// from the input, so they check it first. `stats` holds the B rows' instance-norm location
/// and scale.
///
/// It runs the three phases in turn: [`load_input`] (host), [`compute`] (the executor's
/// kernels only, which a GPU executor can capture as one graph) and [`read_output`] (host).
///
/// # Errors
/// [`Error::Input`] for a NaN under a known-future mask.
pub fn forward(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    input: &ModelInput,
    acts: &Activations,
    stats: &mut [LocScale],
    out: &mut ModelOutput,
) -> Result<(), Error> {
    load_input(exec, config, pass, input, acts, stats)?;
    compute(exec, config, pass, acts);
    read_output(exec, config, pass, acts, stats, out);
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
    acts: &Activations,
    stats: &mut [LocScale],
) -> Result<Encoded, Error> {
    load_input(exec, config, pass, input, acts, stats)?;
    embed_tokens(exec, config, pass, acts);
    run_blocks(exec, config, pass, acts, false);
    exec.rms_norm(Norm::Final, acts.h, acts.x);
    Ok(Encoded {
        hidden: exec.read_host(acts.x, <[f32]>::to_vec),
        rows: pass.rows,
        tokens: pass.tokens,
        d_model: config.d_model,
        num_context_patches: pass.patches,
        loc: stats.iter().map(|ls| ls.loc).collect(),
        scale: stats.iter().map(|ls| ls.scale).collect(),
    })
}

/// The host phase: instance norm and patching of the context and the future into
/// `features`, the patch mask and the key mask per token `[patch mask, REG 1, future 1...]`
/// into `key_mask`, and each row's location and scale into `stats`.
///
/// # Errors
/// [`Error::Input`] for a NaN under a known-future mask.
pub fn load_input(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    input: &ModelInput,
    acts: &Activations,
    stats: &mut [LocScale],
) -> Result<(), Error> {
    let (b, n, s) = (pass.rows, pass.patches, pass.tokens);
    let context_len = b * n * 3 * config.patch_size;
    let spans = [acts.features, acts.patch_mask, acts.key_mask];
    exec.write_host(spans, |[features, patch_mask, key_mask]| {
        let (context, future) = features.split_at_mut(context_len);
        patch_context_into(config, input, context, patch_mask, stats);
        if pass.shares_future_tokens() {
            for (patch, chunk) in future.chunks_exact_mut(3 * config.patch_size).enumerate() {
                empty_future_patch(chunk, patch, config);
            }
        } else {
            patch_future_into(config, input, stats, future)?;
        }
        for row in 0..b {
            let mask = &mut key_mask[row * s..(row + 1) * s];
            mask[..n].copy_from_slice(&patch_mask[row * n..(row + 1) * n]);
            mask[n..].fill(1.0);
        }
        Ok(())
    })
}

/// The executor's phase, after [`load_input`]: the input embedding, the blocks, the final
/// norm and the output head into `head`. Nothing here touches the host.
pub fn compute(exec: &mut impl Executor, config: &Config, pass: &Pass, acts: &Activations) {
    embed_tokens(exec, config, pass, acts);
    let trimmed = pass.optimizations.trimmed_last_block;
    run_blocks(exec, config, pass, acts, trimmed);
    let (b, m, d) = (pass.rows, pass.output_patches, config.d_model);
    if !trimmed {
        // The trimmed last block already left the last M tokens of each row in `embed`.
        gather_last_tokens(exec, acts.h, acts.embed, pass, d);
    }
    // Final norm and the output head, on the last M tokens of each row only.
    let tail = acts.x.prefix(b * m * d);
    exec.rms_norm(Norm::Final, acts.embed.prefix(b * m * d), tail);
    residual_block(exec, config, Layer::OutputHead, tail, b * m, acts.hidden, acts.head);
}

/// The host phase after [`compute`]: the head's output rearranged quantile-major and scaled
/// back into `out`.
pub fn read_output(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    acts: &Activations,
    stats: &[LocScale],
    out: &mut ModelOutput,
) {
    let (b, m) = (pass.rows, pass.output_patches);
    exec.read_host(acts.head, |head| write_output(config, head, stats, b, m, out));
}

/// The input embedding: fills `h` with the S tokens of every row, from the features
/// [`load_input`] wrote.
fn embed_tokens(exec: &mut impl Executor, config: &Config, pass: &Pass, acts: &Activations) {
    let (b, n, m, s) = (pass.rows, pass.patches, pass.output_patches, pass.tokens);
    let (d, p) = (config.d_model, config.patch_size);

    // Context patches -> embeddings -> token slots [0, N) of each row; REG at slot N.
    let context = acts.features.prefix(b * n * 3 * p);
    let embedded = acts.embed.prefix(b * n * d);
    residual_block(
        exec,
        config,
        Layer::InputEmbedding,
        context,
        b * n,
        acts.hidden,
        embedded,
    );
    exec.copy_rows(embedded, n * d, acts.h, s * d, b, n * d);
    if config.use_reg_token {
        exec.reg_token(acts.h.part(n * d, acts.h.len - n * d), b, s * d);
    }

    // Future patches -> embeddings -> token slots [S - M, S) of each row.
    let future_rows = future_rows(pass);
    let future = acts.features.part(context.len, future_rows * m * 3 * p);
    let embedded = acts.embed.prefix(future_rows * m * d);
    residual_block(
        exec,
        config,
        Layer::InputEmbedding,
        future,
        future_rows * m,
        acts.hidden,
        embedded,
    );
    let source_stride = if future_rows == 1 { 0 } else { m * d };
    let slots = acts.h.part((s - m) * d, acts.h.len - (s - m) * d);
    exec.copy_rows(embedded, source_stride, slots, s * d, b, m * d);
}

/// The encoder blocks, the last one trimmed to the last M tokens if `trim_last` (its states
/// then end in `embed` `(B·M, D)`, the rest in `h`).
fn run_blocks(exec: &mut impl Executor, config: &Config, pass: &Pass, acts: &Activations, trim_last: bool) {
    let (b, m, s, d) = (pass.rows, pass.output_patches, pass.tokens, config.d_model);
    let inner = config.inner_dim();
    for block in 0..config.num_layers {
        if trim_last && block + 1 == config.num_layers {
            // Queries only from the last M tokens; every later op is per token or per
            // position, so the rest of the block runs on those tokens alone.
            time_attention(exec, config, pass, acts, block, s - m);
            gather_last_tokens(exec, acts.h, acts.embed, pass, d);
            let tail = acts.embed.prefix(b * m * d);
            exec.linear(
                Layer::TimeOutput(block),
                acts.ctx.prefix(b * m * inner),
                b * m,
                tail,
                true,
            );
            group_attention(exec, config, pass, acts, tail, None, m, block);
            feed_forward(exec, config, acts, tail, block);
            return;
        }
        time_attention(exec, config, pass, acts, block, 0);
        exec.linear(Layer::TimeOutput(block), acts.ctx, b * s, acts.h, true);
        group_attention(exec, config, pass, acts, acts.h, Some(acts.key_mask), s, block);
        feed_forward(exec, config, acts, acts.h, block);
    }
}

/// Time self-attention of block `block` (`TimeSelfAttention` without its output projection):
/// RMS norm, Q/K/V, RoPE, attention over the tokens of each row with queries from
/// `first_query..S`; the head outputs go to `ctx` `(B·(S - first_query), I)`.
fn time_attention(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    acts: &Activations,
    block: usize,
    first_query: usize,
) {
    let (b, s) = (pass.rows, pass.tokens);
    exec.rms_norm(Norm::Time(block), acts.h, acts.x);
    exec.linear(Layer::TimeQkv(block), acts.x, b * s, acts.qkv, false);
    exec.rope(acts.qkv, b, s, &pass.rope);
    let queries = b * (s - first_query) * config.inner_dim();
    exec.time_attention(acts.qkv, acts.key_mask, b, s, first_query, acts.ctx.prefix(queries));
}

/// Group self-attention of block `block` with its residual (`GroupSelfAttention`):
/// `state += O(Attn(RMSNorm(state)))` for `state` `(B·tokens, D)`, using `x`, `qkv` and `ctx`.
#[allow(clippy::too_many_arguments, reason = "the buffers one sublayer reads and writes")]
fn group_attention(
    exec: &mut impl Executor,
    config: &Config,
    pass: &Pass,
    acts: &Activations,
    state: Span,
    key_mask: Option<Span>,
    tokens: usize,
    block: usize,
) {
    let rows = pass.rows * tokens;
    let (x, ctx) = (acts.x.prefix(state.len), acts.ctx.prefix(rows * config.inner_dim()));
    exec.rms_norm(Norm::Group(block), state, x);
    if pass.optimizations.singleton_groups && pass.layout.all_singleton() {
        exec.linear(Layer::GroupValue(block), x, rows, ctx, false);
    } else {
        let qkv = acts.qkv.prefix(rows * 3 * config.inner_dim());
        exec.linear(Layer::GroupQkv(block), x, rows, qkv, false);
        exec.group_attention(qkv, &pass.layout, key_mask, pass.rows, tokens, ctx);
    }
    exec.linear(Layer::GroupOutput(block), ctx, rows, state, true);
}

/// The feed-forward with its residual: `state += wo(relu(wi(RMSNorm(state))))`, using `x`
/// and `hidden`.
fn feed_forward(exec: &mut impl Executor, config: &Config, acts: &Activations, state: Span, block: usize) {
    let rows = state.len / config.d_model;
    let (x, hidden) = (acts.x.prefix(state.len), acts.hidden.prefix(rows * config.d_ff));
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
    x: Span,
    rows: usize,
    hidden: Span,
    y: Span,
) {
    let hidden = hidden.prefix(rows * config.d_ff);
    exec.linear(layer(ResidualPart::Hidden), x, rows, hidden, false);
    exec.relu(hidden);
    exec.linear(layer(ResidualPart::Output), hidden, rows, y, false);
    exec.linear(layer(ResidualPart::Residual), x, rows, y, true);
}

/// Copies the last M tokens of each row of `h` `(B, S, D)` into `tail` `(B·M, D)`.
fn gather_last_tokens(exec: &mut impl Executor, h: Span, tail: Span, pass: &Pass, d: usize) {
    let (m, s) = (pass.output_patches, pass.tokens);
    let last = h.part((s - m) * d, h.len - (s - m) * d);
    exec.copy_rows(last, s * d, tail, m * d, pass.rows, m * d);
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
        let (acts, floats, stats) = arena.parts();
        assert_eq!(acts.h.len, 3 * pass.tokens * config.d_model);
        assert_eq!(acts.key_mask.len, 3 * pass.tokens);
        assert_eq!(stats.len(), 3);
        // The buffers tile the arena end to end; the shared future patches take one row.
        assert_eq!((acts.features.start, acts.floats()), (0, floats.len()));
        assert_eq!(acts.hidden.start, acts.features.len);
        let p = config.patch_size;
        assert_eq!(acts.features.len, (3 * pass.patches + 2) * 3 * p);
    }
}
