//! One execution plan per shape bucket: the compiled forward pass.
//!
//! Identical in result to `chronos2::forward` (the eager reference) except:
//! * one arena, sized once per bucket (rows B, context patches N, output patches M, group
//!   layout, covariates or not), sliced into fixed buffers: a call allocates nothing;
//! * packed weights with fused Q/K/V and residual adds folded into GEMM accumulation;
//! * singleton groups: group attention is exactly `O(V(x))` (softmax over one key is 1), so
//!   Q, K and the B×B scores are skipped; other groups attend only within themselves;
//! * the REG token and the future tokens without covariates are embedded once, not per row;
//! * in the last block, only the last M tokens of each row (the ones the output head reads)
//!   get queries, group attention and the feed-forward; keys and values still come from all;
//! * only the last M tokens get the final norm and the output head.
//!
//! Positions whose own key is masked (padding patches) may hold different values than in the
//! eager pass (the reference gives them a uniform softmax over all rows); they never reach an
//! unmasked position or the output.

use chronos2::forward::{denormalize, empty_future_patch, patch_context_into, patch_future_into, LocScale, MASK_VALUE};
use chronos2::{Config, ModelInput, ModelOutput};
use chronos2_kernels::ops::{relu, rms_norm, softmax, RopeTable};
use chronos2_kernels::packed::{linear, pack_into, packed_len, PackedRef};
use chronos2_kernels::{pool, MatRef, Threads};

use crate::packed_model::{PackedBlock, PackedLinear, PackedModel, PackedResidual};
use crate::EngineError;

/// What makes two inputs share a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlanKey {
    pub rows: usize,
    pub patches: usize,
    pub output_patches: usize,
    pub covariates: bool,
    /// For each row, the first row of its group (a canonical group layout).
    pub group_of: Vec<usize>,
}

/// Which GEMMs run single-threaded (chosen by `max-autotune`, else all multi-threaded).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ThreadChoice {
    pub single: [bool; GEMM_KINDS],
}

/// GEMM kinds a plan tunes: embed, qkv, o, ffn-in, ffn-out, head.
pub(crate) const GEMM_KINDS: usize = 6;
const EMBED: usize = 0;
const QKV: usize = 1;
const OUT: usize = 2;
const FFN_IN: usize = 3;
const FFN_OUT: usize = 4;
const HEAD: usize = 5;

impl ThreadChoice {
    fn threads(&self, kind: usize) -> Threads {
        if self.single[kind] {
            Threads::Single
        } else {
            Threads::Pool
        }
    }
}

/// Buffer lengths of one plan's arena, in floats.
#[derive(Clone, Copy, Debug)]
struct Layout {
    features: usize,
    hidden: usize,
    embed: usize,
    h: usize,
    x: usize,
    qkv: usize,
    ctx: usize,
    attention: usize,
    patch_mask: usize,
    attn_mask: usize,
    head: usize,
}

impl Layout {
    fn total(&self) -> usize {
        self.features
            + self.hidden
            + self.embed
            + self.h
            + self.x
            + self.qkv
            + self.ctx
            + self.attention
            + self.patch_mask
            + self.attn_mask
            + self.head
    }
}

/// Per (row, head) scratch of the time attention: packed K, scores, packed Vᵀ, output.
#[derive(Clone, Copy, Debug)]
struct AttentionScratch {
    keys: usize,
    scores: usize,
    values: usize,
    out: usize,
}

impl AttentionScratch {
    fn new(s: usize, dk: usize) -> Self {
        Self {
            keys: packed_len(s, dk),
            scores: s * s,
            values: packed_len(dk, s),
            out: s * dk,
        }
    }
    fn len(&self) -> usize {
        self.keys + self.scores + self.values + self.out
    }
}

/// The arena sliced into named buffers.
struct Buffers<'a> {
    features: &'a mut [f32],
    hidden: &'a mut [f32],
    embed: &'a mut [f32],
    h: &'a mut [f32],
    x: &'a mut [f32],
    qkv: &'a mut [f32],
    ctx: &'a mut [f32],
    attention: &'a mut [f32],
    patch_mask: &'a mut [f32],
    attn_mask: &'a mut [f32],
    head: &'a mut [f32],
}

/// Hands out consecutive slices of the arena.
struct Carver<'a>(&'a mut [f32]);

impl<'a> Carver<'a> {
    fn take(&mut self, len: usize) -> &'a mut [f32] {
        let (head, rest) = std::mem::take(&mut self.0).split_at_mut(len);
        self.0 = rest;
        head
    }
}

/// A built plan: its key, group structure, arena and scratch.
pub(crate) struct Plan {
    pub key: PlanKey,
    tokens: usize,
    /// Members of each group with more than one row.
    groups: Vec<Vec<usize>>,
    all_singleton: bool,
    layout: Layout,
    arena: Vec<f32>,
    stats: Vec<LocScale>,
    rope: RopeTable,
    scratch: AttentionScratch,
    pub threads: ThreadChoice,
    /// Logical clock of the last use (for LRU eviction).
    pub last_used: u64,
}

impl Plan {
    /// Arena bytes this key would need.
    pub fn arena_bytes(config: &Config, key: &PlanKey) -> usize {
        Self::layout(config, key).0.total() * std::mem::size_of::<f32>()
    }

    fn layout(config: &Config, key: &PlanKey) -> (Layout, usize, AttentionScratch) {
        let (b, n, m) = (key.rows, key.patches, key.output_patches);
        let s = n + usize::from(config.use_reg_token) + m;
        let (d, inner, f, p, q) = (
            config.d_model,
            config.inner_dim(),
            config.d_ff,
            config.patch_size,
            config.num_quantiles(),
        );
        let embed_rows = (b * n).max(b * m);
        let scratch = AttentionScratch::new(s, config.d_kv);
        let layout = Layout {
            features: embed_rows * 3 * p,
            hidden: embed_rows.max(b * s) * f,
            embed: embed_rows * d,
            h: b * s * d,
            x: b * s * d,
            qkv: b * s * 3 * inner,
            ctx: b * s * inner,
            attention: b * config.num_heads * scratch.len(),
            patch_mask: b * n,
            attn_mask: b * s,
            head: b * m * q * p,
        };
        (layout, s, scratch)
    }

    /// Builds the plan for `key`: sizes and allocates everything once.
    pub fn new(config: &Config, key: PlanKey) -> Self {
        let (layout, tokens, scratch) = Self::layout(config, &key);
        let mut members: Vec<Vec<usize>> = Vec::new();
        for row in 0..key.rows {
            if key.group_of[row] == row {
                members.push(vec![row]);
            } else if let Some(group) = members.iter_mut().find(|g| g[0] == key.group_of[row]) {
                group.push(row);
            }
        }
        let groups: Vec<Vec<usize>> = members.into_iter().filter(|g| g.len() > 1).collect();
        Self {
            all_singleton: groups.is_empty(),
            groups,
            tokens,
            layout,
            arena: vec![0.0; layout.total()],
            stats: vec![LocScale { loc: 0.0, scale: 1.0 }; key.rows],
            rope: RopeTable::new(tokens, config.d_kv, config.rope_theta),
            scratch,
            threads: ThreadChoice::default(),
            last_used: 0,
            key,
        }
    }
}

/// Slices the arena into the plan's buffers.
fn carve(arena: &mut [f32], l: Layout) -> Buffers<'_> {
    let mut c = Carver(arena);
    Buffers {
        features: c.take(l.features),
        hidden: c.take(l.hidden),
        embed: c.take(l.embed),
        h: c.take(l.h),
        x: c.take(l.x),
        qkv: c.take(l.qkv),
        ctx: c.take(l.ctx),
        attention: c.take(l.attention),
        patch_mask: c.take(l.patch_mask),
        attn_mask: c.take(l.attn_mask),
        head: c.take(l.head),
    }
}

impl Plan {
    /// Runs the compiled forward pass for `input` (which must match the key) into `out`.
    ///
    /// # Errors
    /// [`EngineError::Model`] for input errors found while patching (NaN under a known mask).
    pub fn run(
        &mut self,
        config: &Config,
        model: &PackedModel,
        input: &ModelInput,
        out: &mut ModelOutput,
    ) -> Result<(), EngineError> {
        let Self {
            key,
            tokens,
            groups,
            all_singleton,
            layout,
            arena,
            stats,
            rope,
            scratch,
            threads,
            ..
        } = self;
        let (b, n, m, s) = (key.rows, key.patches, key.output_patches, *tokens);
        let (d, p, threads, scratch) = (config.d_model, config.patch_size, *threads, *scratch);
        let mut buf = carve(arena, *layout);

        // Context patches -> embeddings -> token slots [0, N) of every row.
        let features = &mut buf.features[..b * n * 3 * p];
        patch_context_into(config, input, features, buf.patch_mask, stats)?;
        residual_block(
            &model.input,
            features,
            b * n,
            buf.hidden,
            &mut buf.embed[..b * n * d],
            threads.threads(EMBED),
        );
        for row in 0..b {
            buf.h[row * s * d..(row * s + n) * d].copy_from_slice(&buf.embed[row * n * d..(row + 1) * n * d]);
            if let Some(reg) = &model.reg {
                buf.h[(row * s + n) * d..(row * s + n + 1) * d].copy_from_slice(reg);
            }
        }
        // Future patches: without covariates they are the same for every row: embed once.
        let future_rows = if key.covariates { b } else { 1 };
        let features = &mut buf.features[..future_rows * m * 3 * p];
        if key.covariates {
            patch_future_into(config, input, stats, features)?;
        } else {
            for (patch, chunk) in features.chunks_exact_mut(3 * p).enumerate() {
                empty_future_patch(chunk, patch, config);
            }
        }
        residual_block(
            &model.input,
            features,
            future_rows * m,
            buf.hidden,
            &mut buf.embed[..future_rows * m * d],
            threads.threads(EMBED),
        );
        let first_future = s - m;
        for row in 0..b {
            let source = if key.covariates { row } else { 0 };
            buf.h[(row * s + first_future) * d..(row + 1) * s * d]
                .copy_from_slice(&buf.embed[source * m * d..(source + 1) * m * d]);
        }
        // Key mask per token: [patch mask, REG 1, future 1...].
        for row in 0..b {
            let mask = &mut buf.attn_mask[row * s..(row + 1) * s];
            mask[..n].copy_from_slice(&buf.patch_mask[row * n..(row + 1) * n]);
            mask[n..].fill(1.0);
        }

        let (last_block, blocks) = model.blocks.split_last().expect("a model has at least one block");
        for block in blocks {
            time_attention(config, block, &mut buf, b, s, 0, rope, scratch, threads);
            apply(&block.time_o, buf.ctx, b * s, buf.h, true, threads.threads(OUT));
            let mut stage = Stage {
                h: &mut *buf.h,
                x: &mut *buf.x,
                qkv: &mut *buf.qkv,
                ctx: &mut *buf.ctx,
                hidden: &mut *buf.hidden,
                scratch: &mut *buf.attention,
                mask: Some(&*buf.attn_mask),
            };
            group_and_feed_forward(config, block, &mut stage, b, s, groups, *all_singleton, threads);
        }
        // Last block: keys and values come from every token, but only the last M tokens of
        // each row reach the output head, so queries, group attention and the feed-forward
        // run on those alone (exact: every op after the time attention is per token or per
        // position).
        time_attention(config, last_block, &mut buf, b, s, first_future, rope, scratch, threads);
        let h_last = &mut buf.embed[..b * m * d];
        for row in 0..b {
            h_last[row * m * d..(row + 1) * m * d]
                .copy_from_slice(&buf.h[(row * s + first_future) * d..(row + 1) * s * d]);
        }
        apply(
            &last_block.time_o,
            &buf.ctx[..b * m * config.inner_dim()],
            b * m,
            h_last,
            true,
            threads.threads(OUT),
        );
        let mut stage = Stage {
            h: h_last,
            x: &mut *buf.x,
            qkv: &mut *buf.qkv,
            ctx: &mut *buf.ctx,
            hidden: &mut *buf.hidden,
            scratch: &mut *buf.attention,
            mask: None,
        };
        group_and_feed_forward(config, last_block, &mut stage, b, m, groups, *all_singleton, threads);

        // Final norm of the last M tokens, then the output head.
        let last = &mut buf.x[..b * m * d];
        norm_rows(
            last,
            &buf.embed[..b * m * d],
            &model.final_norm,
            config.layer_norm_epsilon,
        );
        residual_block(&model.output, last, b * m, buf.hidden, buf.head, threads.threads(HEAD));
        write_output(config, buf.head, stats, b, m, out);
        Ok(())
    }
}

/// `out[b, q, m·P + p] = denormalize(head[b, m, q·P + p])`, reusing `out`'s allocation.
fn write_output(config: &Config, head: &[f32], stats: &[LocScale], b: usize, m: usize, out: &mut ModelOutput) {
    let (p, q) = (config.patch_size, config.num_quantiles());
    out.rows = b;
    out.num_quantiles = q;
    out.horizon = m * p;
    out.quantile_preds.resize(b * q * m * p, 0.0);
    out.loc.clear();
    out.scale.clear();
    for row in 0..b {
        let ls = stats[row];
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

/// `y (+)= x·Wᵀ + b` with a packed layer; `x` is `(rows, in)`, `y` `(rows, out)`.
fn apply(layer: &PackedLinear, x: &[f32], rows: usize, y: &mut [f32], accumulate: bool, threads: Threads) {
    let (n, k) = (layer.weight.n(), layer.weight.k());
    linear(
        y,
        n,
        x,
        k,
        rows,
        layer.weight.view(),
        layer.bias.as_deref(),
        accumulate,
        threads,
    );
}

/// `ResidualBlock` into `y`: `out(relu(hidden(x))) + residual(x)`, the residual branch
/// accumulated into the same output.
fn residual_block(block: &PackedResidual, x: &[f32], rows: usize, hidden: &mut [f32], y: &mut [f32], threads: Threads) {
    let hidden = &mut hidden[..rows * block.hidden.weight.n()];
    apply(&block.hidden, x, rows, hidden, false, threads);
    relu(hidden);
    apply(&block.output, hidden, rows, y, false, threads);
    apply(&block.residual, x, rows, y, true, threads);
}

/// RMS norm of every row of `h` into `x`, rows split over the pool.
fn norm_rows(x: &mut [f32], h: &[f32], weight: &[f32], eps: f32) {
    let chunk = weight.len() * 64;
    pool::global().for_each_chunk(&mut x[..h.len()], chunk, &|i, x| {
        rms_norm(x, &h[i * chunk..i * chunk + x.len()], weight, eps);
    });
}

/// Time self-attention with RoPE and fused QKV over all S tokens of each row, with queries
/// from positions `first_query..S` only; writes their head outputs to `ctx`, compactly
/// `(B·(S - first_query), I)`. The O projection is the caller's.
#[allow(clippy::too_many_arguments, reason = "the plan's state for one layer")]
fn time_attention(
    config: &Config,
    block: &PackedBlock,
    buf: &mut Buffers<'_>,
    b: usize,
    s: usize,
    first_query: usize,
    rope: &RopeTable,
    scratch: AttentionScratch,
    threads: ThreadChoice,
) {
    let queries = s - first_query;
    let (dk, inner, heads) = (config.d_kv, config.inner_dim(), config.num_heads);
    norm_rows(buf.x, buf.h, &block.time_norm, config.layer_norm_epsilon);
    apply(&block.time_qkv, buf.x, b * s, buf.qkv, false, threads.threads(QKV));
    // RoPE on Q and K; position = token index within the row.
    pool::global().for_each_chunk(&mut buf.qkv[..b * s * 3 * inner], 3 * inner, &|token, row| {
        for head in row[..2 * inner].chunks_exact_mut(dk) {
            rope.rotate(head, token % s);
        }
    });
    let qkv: &[f32] = buf.qkv;
    let attn_mask: &[f32] = buf.attn_mask;
    pool::global().for_each_chunk(
        &mut buf.attention[..b * heads * scratch.len()],
        scratch.len(),
        &|task, area| {
            let (row, head) = (task / heads, task % heads);
            let base = row * s * 3 * inner + head * dk;
            let (keys, rest) = area.split_at_mut(scratch.keys);
            let (scores, rest) = rest.split_at_mut(scratch.scores);
            let (values, out) = rest.split_at_mut(scratch.values);
            let stride = 3 * inner;
            pack_into(keys, MatRef::strided(&qkv[base + inner..], s, dk, stride, 1));
            pack_into(values, MatRef::strided(&qkv[base + 2 * inner..], s, dk, stride, 1).t());
            let scores = &mut scores[..queries * s];
            linear(
                scores,
                s,
                &qkv[base + first_query * stride..],
                stride,
                queries,
                PackedRef::new(keys, s, dk),
                None,
                false,
                Threads::Single,
            );
            let mask = &attn_mask[row * s..(row + 1) * s];
            for line in scores.chunks_exact_mut(s) {
                for (score, &m) in line.iter_mut().zip(mask) {
                    *score += (1.0 - m) * MASK_VALUE;
                }
                softmax(line);
            }
            linear(
                &mut out[..queries * dk],
                dk,
                scores,
                s,
                queries,
                PackedRef::new(values, dk, s),
                None,
                false,
                Threads::Single,
            );
        },
    );
    // Scatter head outputs (B·H, queries, dk) into (B·queries, I).
    for (task, area) in buf.attention[..b * heads * scratch.len()]
        .chunks_exact(scratch.len())
        .enumerate()
    {
        let (row, head) = (task / heads, task % heads);
        let out = &area[scratch.keys + scratch.scores + scratch.values..];
        for t in 0..queries {
            buf.ctx[(row * queries + t) * inner + head * dk..][..dk].copy_from_slice(&out[t * dk..(t + 1) * dk]);
        }
    }
}

/// The per-token state group attention and the feed-forward work on: `rows x tokens` tokens
/// (all S tokens, or the last M in the last block).
struct Stage<'a> {
    /// Hidden states `(rows·tokens, D)`, updated in place.
    h: &'a mut [f32],
    /// Normed states (scratch).
    x: &'a mut [f32],
    /// Q/K/V (scratch).
    qkv: &'a mut [f32],
    /// Attention output (scratch).
    ctx: &'a mut [f32],
    /// Feed-forward hidden (scratch).
    hidden: &'a mut [f32],
    /// Scores scratch for group attention (at least the largest group).
    scratch: &'a mut [f32],
    /// Key mask `(rows, tokens)`; `None` = every key observed.
    mask: Option<&'a [f32]>,
}

/// Group attention (singleton shortcut or within groups), then the feed-forward.
#[allow(clippy::too_many_arguments, reason = "the plan's state for one layer")]
fn group_and_feed_forward(
    config: &Config,
    block: &PackedBlock,
    stage: &mut Stage<'_>,
    rows: usize,
    tokens: usize,
    groups: &[Vec<usize>],
    all_singleton: bool,
    threads: ThreadChoice,
) {
    if all_singleton {
        singleton_group_attention(config, block, stage, rows * tokens, threads);
    } else {
        group_attention(config, block, stage, rows, tokens, groups, threads);
    }
    feed_forward(config, block, stage, rows * tokens, threads);
}

/// Group attention when every row is its own group: exactly `h += O(V(RMSNorm(h)))`.
fn singleton_group_attention(
    config: &Config,
    block: &PackedBlock,
    st: &mut Stage<'_>,
    tokens: usize,
    threads: ThreadChoice,
) {
    let (d, inner) = (config.d_model, config.inner_dim());
    let (x, ctx) = (&mut st.x[..tokens * d], &mut st.ctx[..tokens * inner]);
    norm_rows(x, &st.h[..tokens * d], &block.group_norm, config.layer_norm_epsilon);
    apply(&block.group_v, x, tokens, ctx, false, threads.threads(QKV));
    apply(
        &block.group_o,
        ctx,
        tokens,
        &mut st.h[..tokens * d],
        true,
        threads.threads(OUT),
    );
}

/// Dot product with eight independent accumulators (vectorises without reassociation).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Group attention across the rows of each multi-row group at every position; singleton
/// rows take their value projection (softmax over one key).
#[allow(clippy::too_many_arguments, reason = "the plan's state for one layer")]
fn group_attention(
    config: &Config,
    block: &PackedBlock,
    st: &mut Stage<'_>,
    b: usize,
    s: usize,
    groups: &[Vec<usize>],
    threads: ThreadChoice,
) {
    let (d, dk, inner, heads) = (config.d_model, config.d_kv, config.inner_dim(), config.num_heads);
    let tokens = b * s;
    let (x, qkv, ctx) = (
        &mut st.x[..tokens * d],
        &mut st.qkv[..tokens * 3 * inner],
        &mut st.ctx[..tokens * inner],
    );
    norm_rows(x, &st.h[..tokens * d], &block.group_norm, config.layer_norm_epsilon);
    apply(&block.group_qkv, x, tokens, qkv, false, threads.threads(QKV));
    // Singletons (and every row by default): context = V.
    for token in 0..tokens {
        ctx[token * inner..(token + 1) * inner].copy_from_slice(&qkv[token * 3 * inner + 2 * inner..][..inner]);
    }
    let largest = groups.iter().map(Vec::len).max().unwrap_or(0);
    let scores = &mut st.scratch[..largest];
    let observed = |row: usize, t: usize| st.mask.map_or(1.0, |mask| mask[row * s + t]);
    for members in groups {
        let g = members.len();
        for t in 0..s {
            for head in 0..heads {
                let at = |row: usize, part: usize| (row * s + t) * 3 * inner + part * inner + head * dk;
                for &qr in members {
                    let q = &qkv[at(qr, 0)..][..dk];
                    for (slot, &kr) in scores[..g].iter_mut().zip(members) {
                        *slot = dot(q, &qkv[at(kr, 1)..][..dk]) + (1.0 - observed(kr, t)) * MASK_VALUE;
                    }
                    softmax(&mut scores[..g]);
                    let out = &mut ctx[(qr * s + t) * inner + head * dk..][..dk];
                    out.fill(0.0);
                    for (&weight, &kr) in scores[..g].iter().zip(members) {
                        for (o, &v) in out.iter_mut().zip(&qkv[at(kr, 2)..][..dk]) {
                            *o += weight * v;
                        }
                    }
                }
            }
        }
    }
    apply(
        &block.group_o,
        ctx,
        tokens,
        &mut st.h[..tokens * d],
        true,
        threads.threads(OUT),
    );
}

/// Feed-forward with the residual accumulated into `h`.
fn feed_forward(config: &Config, block: &PackedBlock, st: &mut Stage<'_>, tokens: usize, threads: ThreadChoice) {
    let d = config.d_model;
    let x = &mut st.x[..tokens * d];
    norm_rows(x, &st.h[..tokens * d], &block.ffn_norm, config.layer_norm_epsilon);
    let hidden = &mut st.hidden[..tokens * config.d_ff];
    apply(&block.wi, x, tokens, hidden, false, threads.threads(FFN_IN));
    pool::global().for_each_chunk(hidden, 4096, &|_, chunk| relu(chunk));
    apply(
        &block.wo,
        hidden,
        tokens,
        &mut st.h[..tokens * d],
        true,
        threads.threads(FFN_OUT),
    );
}

/// Times `run` single- and multi-threaded; returns whether single-threaded was faster.
pub(crate) fn single_is_faster(mut run: impl FnMut(Threads)) -> bool {
    let mut best = [f64::INFINITY; 2];
    for _ in 0..3 {
        for (i, threads) in [Threads::Single, Threads::Pool].into_iter().enumerate() {
            let started = std::time::Instant::now();
            run(threads);
            best[i] = best[i].min(started.elapsed().as_secs_f64());
        }
    }
    best[0] < best[1]
}

/// Picks single or multi-threaded for each GEMM kind of `plan` by timing one layer of that
/// kind on the plan's row count (`max-autotune`).
pub(crate) fn autotune(model: &PackedModel, plan: &mut Plan) {
    let (b, n, m, s) = (plan.key.rows, plan.key.patches, plan.key.output_patches, plan.tokens);
    let block = &model.blocks[0];
    let kinds: [(&PackedLinear, usize); GEMM_KINDS] = [
        (&model.input.output, b * n.max(m)),
        (&block.time_qkv, b * s),
        (&block.time_o, b * s),
        (&block.wi, b * s),
        (&block.wo, b * s),
        (&model.output.output, b * m),
    ];
    let buffers = carve(&mut plan.arena, plan.layout);
    for (kind, (layer, rows)) in kinds.into_iter().enumerate() {
        // Inputs come from the (large enough) hidden buffer, outputs go to a scratch vector:
        // tuning happens at plan time, where allocating is allowed.
        let x = &buffers.hidden[..rows * layer.weight.k()];
        let mut y = vec![0.0f32; rows * layer.weight.n()];
        plan.threads.single[kind] = single_is_faster(|threads| apply(layer, x, rows, &mut y, false, threads));
    }
}
