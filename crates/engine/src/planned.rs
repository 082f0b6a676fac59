//! The planned executor: compiled mode's kernels for the model description
//! (`chronos2::encoder`). It differs from the eager executor in how, never in what:
//!
//! * weights packed once into GEMM panels ([`PackedModel`]), Q/K/V stacked when
//!   [`Optimizations::fused_qkv`](chronos2::encoder::Optimizations) is on; residual adds
//!   accumulated inside the GEMMs; our AVX-512 / AVX2 / scalar microkernels;
//! * every kernel split over the engine's [`Pool`] (row blocks for norms, RoPE and ReLU,
//!   panels for GEMMs, (row, head) pairs for time attention), or run on the caller alone for
//!   GEMM kinds that `max-autotune` found faster that way;
//! * time attention with K and Vᵀ packed per (row, head) into the plan's scratch, so the two
//!   products run on the same microkernels;
//! * group attention within each multi-row group only; rows alone in their group take their
//!   value projection (a softmax over one key is 1).
//!
//! Nothing here allocates: buffers come from the plan's arena and scratch.

use chronos2::eager::additive_mask;
use chronos2::executor::{GroupLayout, HostKernels, Layer, Norm, Precision, ResidualPart};
use chronos2::Config;
use chronos2_kernels::bf16::{linear_bf16, packed_bf16_pays, pairs, round_bf16_into, to_bf16_pairs};
use chronos2_kernels::int8;
use chronos2_kernels::ops::{fast, RopeTable};
use chronos2_kernels::packed::{linear, pack_columns_into, pack_into, pack_rows_into, packed_len, PackedRef};
use chronos2_kernels::pool::Pool;
use chronos2_kernels::MatRef;

use crate::packed_model::{PackedLinear, PackedMatrix, PackedModel, PackedQkv, PackedResidual};

/// GEMM kinds whose threading `max-autotune` chooses: embed, qkv, o, ffn-in, ffn-out, head.
pub(crate) const GEMM_KINDS: usize = 6;

/// Which GEMM kinds run on the caller alone (chosen by `max-autotune`; else none).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ThreadChoice {
    pub single: [bool; GEMM_KINDS],
}

/// The GEMM kind of a layer, for [`ThreadChoice`].
pub(crate) fn gemm_kind(layer: Layer) -> usize {
    match layer {
        Layer::InputEmbedding(_) => 0,
        Layer::TimeQkv(_) | Layer::GroupQkv(_) | Layer::GroupValue(_) => 1,
        Layer::TimeOutput(_) | Layer::GroupOutput(_) => 2,
        Layer::FeedForwardIn(_) => 3,
        Layer::FeedForwardOut(_) => 4,
        Layer::OutputHead(_) => 5,
    }
}

/// Per (row, head) scratch of the time attention: packed K, scores, packed Vᵀ, output.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionScratch {
    keys: usize,
    scores: usize,
    values: usize,
    out: usize,
}

impl AttentionScratch {
    /// The scratch of one (row, head) for `tokens` tokens of head width `dk`.
    pub fn new(tokens: usize, dk: usize) -> Self {
        Self {
            keys: packed_len(tokens, dk),
            scores: tokens * tokens,
            values: packed_len(dk, tokens),
            out: tokens * dk,
        }
    }

    /// Floats per (row, head).
    pub fn len(&self) -> usize {
        self.keys + self.scores + self.values + self.out
    }
}

/// Per-run scratch of the group attention, for groups of up to `rows` rows: gathered Q,
/// packed K, packed Vᵀ, scores.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupWork {
    rows: usize,
    dk: usize,
}

impl GroupWork {
    /// The scratch for groups of up to `rows` rows with heads of width `dk`.
    pub fn new(rows: usize, dk: usize) -> Self {
        Self { rows, dk }
    }

    /// Floats per run.
    pub fn len(&self) -> usize {
        let (g, dk) = (self.rows, self.dk);
        g * dk + packed_len(g, dk) + packed_len(dk, g) + g * g
    }
}

/// The groups that take the packed products (at least [`SMALL_GROUP`] rows).
fn large_groups(layout: &GroupLayout) -> impl Iterator<Item = &Vec<usize>> + Clone {
    layout.multi_row_groups().iter().filter(|g| g.len() >= SMALL_GROUP)
}

/// Floats of scratch the group attention of `pass` needs with `runs` runs: every task's
/// output, then one [`GroupWork`] per run (large groups only; small ones need none).
pub(crate) fn group_scratch_len(config: &Config, layout: &GroupLayout, tokens: usize, runs: usize) -> usize {
    let grouped: usize = large_groups(layout).map(Vec::len).sum();
    let largest = large_groups(layout).map(Vec::len).max().unwrap_or(0);
    tokens * config.num_heads * grouped * config.d_kv + runs * GroupWork::new(largest, config.d_kv).len()
}

/// The planned executor for one call: the packed weights, the pool, and the plan's scratch.
pub(crate) struct PlannedExecutor<'a> {
    pub config: &'a Config,
    pub model: &'a PackedModel,
    pub pool: &'a Pool,
    pub threads: ThreadChoice,
    /// Attention scratch (see `Plan`).
    pub scratch: &'a mut [f32],
    pub scratch_layout: AttentionScratch,
    /// A low-precision layer's input, rounded or quantized (see [`InputScratch`]).
    pub input: &'a mut InputScratch,
}

/// One layer of a packed residual block.
fn part(block: &PackedResidual, part: ResidualPart) -> &PackedLinear {
    match part {
        ResidualPart::Hidden => &block.hidden,
        ResidualPart::Output => &block.output,
        ResidualPart::Residual => &block.residual,
    }
}

/// Scratch for a low-precision layer's input, sized once per plan for the widest layer input
/// of every token: bf16 pairs for bf16 panels, rounded f32 values for f32-packed bf16
/// weights, quantized rows and their scales for int8.
pub(crate) struct InputScratch {
    pairs: Vec<u32>,
    rounded: Vec<f32>,
    quantized: Vec<u8>,
    row_scales: Vec<f32>,
}

impl InputScratch {
    /// Elements per token of each buffer for inputs of up to `widest` values in `precision`:
    /// `[pairs, rounded, quantized, row_scales]`.
    fn per_token(widest: usize, precision: Precision) -> [usize; 4] {
        match precision {
            Precision::Float32 => [0; 4],
            Precision::BFloat16 if packed_bf16_pays() => [pairs(widest), 0, 0, 0],
            Precision::BFloat16 => [0, widest, 0, 0],
            Precision::Int8 => [0, 0, int8::row_bytes(widest), 1],
        }
    }

    /// Scratch for `tokens` inputs of up to `widest` values in `precision`.
    pub fn new(tokens: usize, widest: usize, precision: Precision) -> Self {
        let [pairs, rounded, quantized, row_scales] = Self::per_token(widest, precision);
        Self {
            pairs: vec![0; tokens * pairs],
            rounded: vec![0.0; tokens * rounded],
            quantized: vec![0; tokens * quantized],
            row_scales: vec![0.0; tokens * row_scales],
        }
    }

    /// Bytes [`new`](Self::new) allocates.
    pub fn bytes(tokens: usize, widest: usize, precision: Precision) -> usize {
        let [pairs, rounded, quantized, row_scales] = Self::per_token(widest, precision);
        tokens * (size_of::<u32>() * pairs + size_of::<f32>() * (rounded + row_scales) + quantized)
    }
}

/// `y (+)= x·Wᵀ + b` with a packed layer into columns `[at, at + n)` of `y` (row stride
/// `ldy`); `x` is `(rows, in)`. A bf16 layer first rounds `x` to bf16 (pairs, or f32 values).
#[allow(clippy::too_many_arguments, reason = "a strided GEMM with its options and scratch")]
fn apply(
    layer: &PackedLinear,
    x: &[f32],
    rows: usize,
    y: &mut [f32],
    ldy: usize,
    at: usize,
    accumulate: bool,
    pool: &Pool,
    scratch: &mut InputScratch,
) {
    let (k, bias) = (layer.weight.k(), layer.bias.as_deref());
    match &layer.weight {
        PackedMatrix::F32(w) => linear(&mut y[at..], ldy, x, k, rows, w.view(), bias, accumulate, pool),
        PackedMatrix::Bf16(w) => {
            let kp = pairs(k);
            let xp = &mut scratch.pairs[..rows * kp];
            to_bf16_pairs(x, k, rows, k, xp, pool);
            linear_bf16(&mut y[at..], ldy, xp, kp, rows, w, bias, accumulate, pool);
        }
        PackedMatrix::Bf16InF32(w) => {
            let xr = &mut scratch.rounded[..rows * k];
            round_bf16_into(&x[..rows * k], xr, pool);
            linear(&mut y[at..], ldy, xr, k, rows, w.view(), bias, accumulate, pool);
        }
        PackedMatrix::Int8(w) => {
            let width = int8::row_bytes(k);
            let (xq, scales) = (&mut scratch.quantized[..rows * width], &mut scratch.row_scales[..rows]);
            int8::quantize_rows(x, k, rows, k, xq, scales, pool);
            let quantized = int8::QuantizedRows {
                data: xq,
                ld: width,
                scales,
            };
            int8::linear_int8(&mut y[at..], ldy, quantized, rows, w, bias, accumulate, pool);
        }
    }
}

impl<'a> PlannedExecutor<'a> {
    fn pool_for(&self, layer: Layer) -> &'a Pool {
        if self.threads.single[gemm_kind(layer)] {
            Pool::serial()
        } else {
            self.pool
        }
    }

    /// Q, K and V into one `(rows, 3I)` output: one GEMM if stacked, else three.
    #[allow(clippy::too_many_arguments, reason = "a stacked GEMM with its options and scratch")]
    fn qkv(
        inner: usize,
        qkv: &PackedQkv,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
        accumulate: bool,
        pool: &Pool,
        scratch: &mut InputScratch,
    ) {
        match qkv {
            PackedQkv::Fused { qkv, .. } => apply(qkv, x, rows, y, 3 * inner, 0, accumulate, pool, scratch),
            PackedQkv::Separate(parts) => {
                for (index, layer) in parts.iter().enumerate() {
                    apply(layer, x, rows, y, 3 * inner, index * inner, accumulate, pool, scratch);
                }
            }
        }
    }
}

impl HostKernels for PlannedExecutor<'_> {
    fn linear(&mut self, layer: Layer, x: &[f32], rows: usize, y: &mut [f32], accumulate: bool) {
        let (model, pool, inner) = (self.model, self.pool_for(layer), self.config.inner_dim());
        let blocks = &model.blocks;
        let scratch = &mut *self.input;
        let single = match layer {
            Layer::TimeQkv(i) => return Self::qkv(inner, &blocks[i].time_qkv, x, rows, y, accumulate, pool, scratch),
            Layer::GroupQkv(i) => return Self::qkv(inner, &blocks[i].group_qkv, x, rows, y, accumulate, pool, scratch),
            Layer::InputEmbedding(p) => part(&model.input, p),
            Layer::OutputHead(p) => part(&model.output, p),
            Layer::TimeOutput(i) => &blocks[i].time_o,
            Layer::GroupValue(i) => blocks[i].group_qkv.value(),
            Layer::GroupOutput(i) => &blocks[i].group_o,
            Layer::FeedForwardIn(i) => &blocks[i].wi,
            Layer::FeedForwardOut(i) => &blocks[i].wo,
        };
        apply(single, x, rows, y, single.weight.n(), 0, accumulate, pool, scratch);
    }

    fn rms_norm(&mut self, norm: Norm, x: &[f32], out: &mut [f32]) {
        let blocks = &self.model.blocks;
        let weight = match norm {
            Norm::Time(i) => &blocks[i].time_norm,
            Norm::Group(i) => &blocks[i].group_norm,
            Norm::FeedForward(i) => &blocks[i].ffn_norm,
            Norm::Final => &self.model.final_norm,
        };
        let (eps, chunk) = (self.config.layer_norm_epsilon, weight.len() * 64);
        self.pool.for_each_chunk(&mut out[..x.len()], chunk, &|i, out| {
            fast::rms_norm(out, &x[i * chunk..i * chunk + out.len()], weight, eps);
        });
    }

    fn relu(&mut self, x: &mut [f32]) {
        self.pool.for_each_chunk(x, 16 * 1024, &|_, chunk| fast::relu(chunk));
    }

    fn rope(&mut self, qkv: &mut [f32], rows: usize, tokens: usize, rope: &RopeTable) {
        let inner = self.config.inner_dim();
        let width = 3 * inner;
        self.pool
            .for_each_chunk(&mut qkv[..rows * tokens * width], 16 * width, &|chunk, block| {
                for (offset, token) in block.chunks_exact_mut(width).enumerate() {
                    // Every head of Q and K: the first two thirds of the token's row.
                    fast::rope(rope, &mut token[..2 * inner], (chunk * 16 + offset) % tokens);
                }
            });
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
        let (s, queries) = (tokens, tokens - first_query);
        let (dk, inner, heads) = (self.config.d_kv, self.config.inner_dim(), self.config.num_heads);
        let layout = self.scratch_layout;
        let stride = 3 * inner;
        let scratch = &mut self.scratch[..rows * heads * layout.len()];
        self.pool.for_each_chunk(scratch, layout.len(), &|task, area| {
            let (row, head) = (task / heads, task % heads);
            let base = row * s * stride + head * dk;
            let (keys, rest) = area.split_at_mut(layout.keys);
            let (scores, rest) = rest.split_at_mut(layout.scores);
            let (values, out) = rest.split_at_mut(layout.values);
            pack_into(keys, MatRef::strided(&qkv[base + inner..], s, dk, stride, 1));
            pack_into(values, MatRef::strided(&qkv[base + 2 * inner..], s, dk, stride, 1).t());
            let scores = &mut scores[..queries * s];
            let serial = Pool::serial();
            let q = &qkv[base + first_query * stride..];
            linear(
                scores,
                s,
                q,
                stride,
                queries,
                PackedRef::new(keys, s, dk),
                None,
                false,
                serial,
            );
            let mask = &key_mask[row * s..(row + 1) * s];
            for line in scores.chunks_exact_mut(s) {
                for (score, &m) in line.iter_mut().zip(mask) {
                    *score += additive_mask(m);
                }
                fast::softmax(line);
            }
            let out = &mut out[..queries * dk];
            linear(
                out,
                dk,
                scores,
                s,
                queries,
                PackedRef::new(values, dk, s),
                None,
                false,
                serial,
            );
        });
        // Scatter the head outputs (B·H, queries, dk) into (B·queries, I).
        for (task, area) in scratch.chunks_exact(layout.len()).enumerate() {
            let (row, head) = (task / heads, task % heads);
            let out = &area[layout.keys + layout.scores + layout.values..];
            for t in 0..queries {
                ctx[(row * queries + t) * inner + head * dk..][..dk].copy_from_slice(&out[t * dk..(t + 1) * dk]);
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
        let (dk, inner, heads) = (self.config.d_kv, self.config.inner_dim(), self.config.num_heads);
        let (s, stride) = (tokens, 3 * inner);
        // Rows alone in their group (and every row, as a start): context = V.
        for token in 0..rows * s {
            ctx[token * inner..(token + 1) * inner].copy_from_slice(&qkv[token * stride + 2 * inner..][..inner]);
        }
        // Small groups (OHLC, a few covariates): a direct loop is cheaper than packing.
        let observed = |row: usize, t: usize| key_mask.map_or(1.0, |mask| mask[row * s + t]);
        for members in layout.multi_row_groups().iter().filter(|g| g.len() < SMALL_GROUP) {
            small_group_attention(
                members,
                qkv,
                s,
                inner,
                dk,
                heads,
                &observed,
                &mut self.scratch[..members.len()],
                ctx,
            );
        }
        let large = || large_groups(layout);
        if large().next().is_none() {
            return;
        }
        // One task per (position, head), over every multi-row group: gather the group's Q,
        // pack its K and Vᵀ, then scores = Q·Kᵀ, masked softmax, out = scores·V, all on the
        // packed microkernels. Each task writes its rows' outputs to its own chunk; they are
        // scattered into `ctx` afterwards.
        let grouped_rows: usize = large().map(Vec::len).sum();
        let largest = large().map(Vec::len).max().unwrap_or(0);
        let work = GroupWork::new(largest, dk);
        let (outputs, runs) = self.scratch.split_at_mut(s * heads * grouped_rows * dk);
        self.pool
            .for_each_task_with_scratch(outputs, grouped_rows * dk, runs, work.len(), &|task, out, area| {
                let (t, head) = (task / heads, task % heads);
                let at = |row: usize, part: usize| (row * s + t) * stride + part * inner + head * dk;
                let mut written = 0;
                for members in large() {
                    let g = members.len();
                    let (queries, rest) = area.split_at_mut(g * dk);
                    let (keys, rest) = rest.split_at_mut(packed_len(g, dk));
                    let (values, rest) = rest.split_at_mut(packed_len(dk, g));
                    let scores = &mut rest[..g * g];
                    for (i, &row) in members.iter().enumerate() {
                        queries[i * dk..(i + 1) * dk].copy_from_slice(&qkv[at(row, 0)..][..dk]);
                    }
                    pack_rows_into(keys, members.iter().map(|&row| &qkv[at(row, 1)..][..dk]), dk);
                    pack_columns_into(values, members.iter().map(|&row| &qkv[at(row, 2)..][..dk]), dk);
                    let serial = Pool::serial();
                    linear(
                        scores,
                        g,
                        queries,
                        dk,
                        g,
                        PackedRef::new(keys, g, dk),
                        None,
                        false,
                        serial,
                    );
                    for line in scores.chunks_exact_mut(g) {
                        for (score, &key) in line.iter_mut().zip(members) {
                            *score += additive_mask(observed(key, t));
                        }
                        fast::softmax(line);
                    }
                    let out = &mut out[written * dk..(written + g) * dk];
                    linear(
                        out,
                        dk,
                        scores,
                        g,
                        g,
                        PackedRef::new(values, dk, g),
                        None,
                        false,
                        serial,
                    );
                    written += g;
                }
            });
        for (task, out) in outputs[..s * heads * grouped_rows * dk]
            .chunks_exact(grouped_rows * dk)
            .enumerate()
        {
            let (t, head) = (task / heads, task % heads);
            for (i, &row) in large().flatten().enumerate() {
                ctx[(row * s + t) * inner + head * dk..][..dk].copy_from_slice(&out[i * dk..(i + 1) * dk]);
            }
        }
    }

    fn reg_token(&self) -> Option<&[f32]> {
        self.model.reg.as_deref()
    }
}

/// Groups smaller than this take [`small_group_attention`]; larger ones the packed products.
const SMALL_GROUP: usize = 32;

/// Group attention of one small group at every position and head, by direct dot products
/// (`scores` holds one query's scores).
#[allow(clippy::too_many_arguments, reason = "one group's view of the Q/K/V buffer")]
fn small_group_attention(
    members: &[usize],
    qkv: &[f32],
    s: usize,
    inner: usize,
    dk: usize,
    heads: usize,
    observed: &dyn Fn(usize, usize) -> f32,
    scores: &mut [f32],
    ctx: &mut [f32],
) {
    for t in 0..s {
        for head in 0..heads {
            let at = |row: usize, part: usize| (row * s + t) * 3 * inner + part * inner + head * dk;
            for &qr in members {
                let q = &qkv[at(qr, 0)..][..dk];
                for (slot, &kr) in scores.iter_mut().zip(members) {
                    *slot = fast::dot(q, &qkv[at(kr, 1)..][..dk]) + additive_mask(observed(kr, t));
                }
                fast::softmax(scores);
                let out = &mut ctx[(qr * s + t) * inner + head * dk..][..dk];
                out.fill(0.0);
                for (&weight, &kr) in scores.iter().zip(members) {
                    fast::axpy(out, weight, &qkv[at(kr, 2)..][..dk]);
                }
            }
        }
    }
}
