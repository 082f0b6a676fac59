//! The interface between the model description ([`crate::encoder`]) and the code that runs
//! it: an [`Executor`] provides the kernels (linear layers, norms, attention) and owns the
//! memory they run on; the description says which ones run, in which order, on which buffers.
//!
//! Buffers are [`Span`]s of the executor's activation memory (offsets in floats), so that
//! memory can live anywhere: in host RAM for the CPU executors, on a GPU for the CUDA one.
//! The steps that only make sense on the host (instance normalisation and patching, writing
//! the denormalised output) reach the memory through [`Executor::write_host`] and
//! [`Executor::read_host`]: in place on the CPU, through an upload or a download on a GPU.
//!
//! Executors differ in how they store weights (plain tensors, packed panels, lower
//! precision), which kernels they use and how they split work over threads; never in what
//! they compute. The CPU executors implement [`HostKernels`] over plain slices, and
//! [`HostExecutor`] makes them an [`Executor`] over a host arena at no cost (it only resolves
//! spans to slices): [`crate::eager::EagerExecutor`] (plain kernels, the reference) and the
//! planned executor of `chronos2-engine` (compiled mode). The CUDA executor
//! (`chronos2-cuda`, cargo feature `cuda`) implements [`Executor`] on device memory.

use std::ops::Range;

use chronos2_kernels::ops::RopeTable;

use crate::input::ModelInput;

/// A linear layer of the model, by its place in the architecture. Executors look the weights
/// up themselves, so each can store them its own way (packed, fused, in bf16, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// A layer of the input patch embedding's residual block (`3P -> F -> D`).
    InputEmbedding(ResidualPart),
    /// Q, K and V of block `i`'s time attention, as one `(rows, 3I)` output: Q in columns
    /// `[0, I)`, K in `[I, 2I)`, V in `[2I, 3I)`.
    TimeQkv(usize),
    /// The output projection of block `i`'s time attention (`I -> D`).
    TimeOutput(usize),
    /// Q, K and V of block `i`'s group attention, laid out as [`Layer::TimeQkv`].
    GroupQkv(usize),
    /// V alone of block `i`'s group attention (`D -> I`).
    GroupValue(usize),
    /// The output projection of block `i`'s group attention (`I -> D`).
    GroupOutput(usize),
    /// The feed-forward input layer of block `i` (`D -> F`).
    FeedForwardIn(usize),
    /// The feed-forward output layer of block `i` (`F -> D`).
    FeedForwardOut(usize),
    /// A layer of the output head's residual block (`D -> F -> Q·P`).
    OutputHead(ResidualPart),
}

impl Layer {
    /// Whether the layer is inside an encoder block (attention projections and feed-forward):
    /// the layers that lower precisions compute in. The patch embedding and the output head
    /// stay f32.
    pub fn in_encoder_block(self) -> bool {
        !matches!(self, Self::InputEmbedding(_) | Self::OutputHead(_))
    }
}

/// The precision of the encoder blocks' linear layers. Instance normalisation, loc/scale,
/// norms, RoPE, attention scores and softmax, the patch embedding, the output head and the
/// inverse transform always stay f32 (the reference keeps scaling in f32 for the same
/// reason).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Everything in f32.
    #[default]
    Float32,
    /// Block weights and their inputs rounded to bfloat16 (to nearest, ties to even); the
    /// products, exact in f32, summed in f32.
    BFloat16,
    /// Block weights quantized to int8 per output channel, their inputs per row
    /// (`chronos2_kernels::int8`); integer products summed exactly, scales applied in f32.
    Int8,
}

impl Precision {
    /// The name the settings use (`float32`, `bfloat16`, `int8`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::BFloat16 => "bfloat16",
            Self::Int8 => "int8",
        }
    }
}

/// The three layers of a `ResidualBlock`: `output(relu(hidden(x))) + residual(x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResidualPart {
    /// `hidden_layer`.
    Hidden,
    /// `output_layer`.
    Output,
    /// `residual_layer`.
    Residual,
}

/// An RMS norm of the model, by its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Before block `i`'s time attention.
    Time(usize),
    /// Before block `i`'s group attention.
    Group(usize),
    /// Before block `i`'s feed-forward.
    FeedForward(usize),
    /// After the last block.
    Final,
}

/// Which rows attend to each other in group attention, in canonical form: each row points to
/// the first row of its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupLayout {
    /// For each row, the first row of its group.
    first_row: Vec<usize>,
    /// The members (in row order) of every group with more than one row.
    groups: Vec<Vec<usize>>,
}

impl GroupLayout {
    /// The layout of `input`'s group ids.
    pub fn of(input: &ModelInput) -> Self {
        let mut first_row = Vec::new();
        Self::first_rows_into(input, &mut Vec::new(), &mut first_row);
        Self::from_first_rows(first_row)
    }

    /// The layout given, for each row, the first row of its group (as
    /// [`first_rows_into`](Self::first_rows_into) computes it).
    pub fn from_first_rows(first_row: Vec<usize>) -> Self {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (row, &first) in first_row.iter().enumerate() {
            if first == row {
                groups.push(vec![row]);
            } else if let Some(group) = groups.iter_mut().find(|g| g[0] == first) {
                group.push(row);
            }
        }
        groups.retain(|g| g.len() > 1);
        Self { first_row, groups }
    }

    /// Fills `first_row[r]` with the first row of row r's group, using `pairs` as scratch:
    /// allocation-free once both vectors are large enough (the planned executor looks its
    /// plans up with it on every call).
    pub fn first_rows_into(input: &ModelInput, pairs: &mut Vec<(i64, usize)>, first_row: &mut Vec<usize>) {
        let rows = input.rows();
        first_row.clear();
        let Some(ids) = input.explicit_group_ids() else {
            first_row.extend(0..rows);
            return;
        };
        pairs.clear();
        pairs.extend(ids.iter().copied().zip(0..rows));
        pairs.sort_unstable();
        first_row.resize(rows, 0);
        for run in pairs.chunk_by(|a, b| a.0 == b.0) {
            // Sorted by (id, row): the first pair of a run holds the group's first row.
            for &(_, row) in run {
                first_row[row] = run[0].1;
            }
        }
    }

    /// For each row, the first row of its group.
    pub fn first_rows(&self) -> &[usize] {
        &self.first_row
    }

    /// Members of every group with more than one row.
    pub fn multi_row_groups(&self) -> &[Vec<usize>] {
        &self.groups
    }

    /// Whether every row is alone in its group.
    pub fn all_singleton(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether rows `a` and `b` are in the same group.
    pub fn same_group(&self, a: usize, b: usize) -> bool {
        self.first_row[a] == self.first_row[b]
    }
}

/// A range of floats in an executor's activation memory: where a buffer of
/// [`crate::encoder::Activations`] lives, or a part of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First float.
    pub start: usize,
    /// Floats.
    pub len: usize,
}

impl Span {
    /// `len` floats from `start`.
    pub const fn new(start: usize, len: usize) -> Self {
        Self { start, len }
    }

    /// The floats as a range (for indexing a host arena).
    pub fn range(self) -> Range<usize> {
        self.start..self.start + self.len
    }

    /// The first `len` floats.
    ///
    /// # Panics
    /// If the span is shorter than `len` (a bug in the description).
    pub fn prefix(self, len: usize) -> Self {
        self.part(0, len)
    }

    /// `len` floats from `offset` within the span.
    ///
    /// # Panics
    /// If they do not fit in the span (a bug in the description).
    pub fn part(self, offset: usize, len: usize) -> Self {
        assert!(
            offset + len <= self.len,
            "span part {offset}+{len} outside a span of {}",
            self.len
        );
        Self::new(self.start + offset, len)
    }
}

/// The kernels and the memory the model description runs on. Buffers are [`Span`]s of the
/// executor's activation memory, dense row-major f32, shapes in the letters of
/// [`crate::encoder`]; the spans given to one call never overlap. Every method writes all of
/// its output (or adds to it, where it says so).
pub trait Executor {
    /// `y = x·Wᵀ + b` for `rows` rows of `layer` (`y += x·Wᵀ + b` with `accumulate`: a
    /// residual connection folded into the product). `x` is `(rows, in)`, `y` `(rows, out)`.
    fn linear(&mut self, layer: Layer, x: Span, rows: usize, y: Span, accumulate: bool);

    /// T5 RMS norm of every D-wide row of `x` into the first `x.len` floats of `out`, with
    /// `norm`'s gain.
    fn rms_norm(&mut self, norm: Norm, x: Span, out: Span);

    /// In-place ReLU.
    fn relu(&mut self, x: Span);

    /// Rotary position embedding on the Q and K parts of `qkv` (`(rows·tokens, 3I)`), the
    /// position being the token's index within its row.
    fn rope(&mut self, qkv: Span, rows: usize, tokens: usize, rope: &RopeTable);

    /// Time attention, as [`HostKernels::time_attention`].
    fn time_attention(&mut self, qkv: Span, key_mask: Span, rows: usize, tokens: usize, first_query: usize, ctx: Span);

    /// Group attention, as [`HostKernels::group_attention`].
    fn group_attention(
        &mut self,
        qkv: Span,
        layout: &GroupLayout,
        key_mask: Option<Span>,
        rows: usize,
        tokens: usize,
        ctx: Span,
    );

    /// For `r < rows`: `dst[r·dst_stride..][..width] = src[r·src_stride..][..width]` (a
    /// `src_stride` of 0 copies the same floats into every row).
    fn copy_rows(&mut self, src: Span, src_stride: usize, dst: Span, dst_stride: usize, rows: usize, width: usize);

    /// Writes the REG token's embedding `(D)` at `dst[r·stride..]` for `r < rows`. Called only
    /// for models that have one.
    fn reg_token(&mut self, dst: Span, rows: usize, stride: usize);

    /// Lets `write` fill the `spans` (each completely) from the host, then makes them what
    /// the kernels read. A CPU executor hands out its own memory; a GPU executor a staging
    /// area that it uploads.
    fn write_host<const N: usize, R>(&mut self, spans: [Span; N], write: impl FnOnce([&mut [f32]; N]) -> R) -> R;

    /// Lets `read` read `span` on the host (a GPU executor downloads it first).
    fn read_host<R>(&mut self, span: Span, read: impl FnOnce(&[f32]) -> R) -> R;
}

/// The kernels of a CPU executor, over host slices: the [`Executor`] methods with every
/// [`Span`] resolved to its slice of the arena (see [`HostExecutor`]). Buffers are dense
/// row-major f32; shapes are in the letters of [`crate::encoder`]. Every method writes all of
/// its output (or adds to it, where it says so).
pub trait HostKernels {
    /// `y = x·Wᵀ + b` for `rows` rows of `layer` (`y += x·Wᵀ + b` with `accumulate`: a
    /// residual connection folded into the product). `x` is `(rows, in)`, `y` `(rows, out)`.
    fn linear(&mut self, layer: Layer, x: &[f32], rows: usize, y: &mut [f32], accumulate: bool);

    /// T5 RMS norm of every D-wide row of `x` into `out`, with `norm`'s gain.
    fn rms_norm(&mut self, norm: Norm, x: &[f32], out: &mut [f32]);

    /// In-place ReLU.
    fn relu(&mut self, x: &mut [f32]);

    /// Rotary position embedding on the Q and K parts of `qkv` (`(rows·tokens, 3I)`), the
    /// position being the token's index within its row.
    fn rope(&mut self, qkv: &mut [f32], rows: usize, tokens: usize, rope: &RopeTable);

    /// Unscaled softmax attention over the `tokens` tokens of each row, per head:
    /// `ctx = softmax(q·kᵀ + mask)·v`, the key mask additive (`finfo.min` where
    /// `key_mask[row, key]` is 0). Only queries `first_query..tokens` are computed; `ctx` is
    /// `(rows·(tokens - first_query), I)`.
    fn time_attention(
        &mut self,
        qkv: &[f32],
        key_mask: &[f32],
        rows: usize,
        tokens: usize,
        first_query: usize,
        ctx: &mut [f32],
    );

    /// Unscaled softmax attention across the rows of each group at every token position, per
    /// head, without RoPE. Row q attends to row k at position t iff they share a group and
    /// `key_mask[k, t]` is 1 (`None`: every key observed). `ctx` is `(rows·tokens, I)`; at
    /// positions whose own key is masked the result may differ between executors (it never
    /// reaches an observed position or the output).
    fn group_attention(
        &mut self,
        qkv: &[f32],
        layout: &GroupLayout,
        key_mask: Option<&[f32]>,
        rows: usize,
        tokens: usize,
        ctx: &mut [f32],
    );

    /// The REG token's embedding `(D)`, if the model has one.
    fn reg_token(&self) -> Option<&[f32]>;
}

/// A CPU executor: [`HostKernels`] over an activation arena in host memory. It resolves each
/// [`Span`] to its slice of the arena and calls the kernels; nothing is copied.
pub struct HostExecutor<'a, K> {
    kernels: K,
    floats: &'a mut [f32],
}

impl<'a, K: HostKernels> HostExecutor<'a, K> {
    /// `kernels` running on `floats` (an [`ActivationArena`](crate::encoder::ActivationArena)'s
    /// memory).
    pub fn new(kernels: K, floats: &'a mut [f32]) -> Self {
        Self { kernels, floats }
    }
}

/// `(input, output)` slices of `floats` at two disjoint spans.
fn pair(floats: &mut [f32], input: Span, output: Span) -> (&[f32], &mut [f32]) {
    let [input, output] = disjoint_slices(floats, [input, output]);
    (input, output)
}

/// The slices of `floats` at `spans`, in the order given.
///
/// # Panics
/// If two spans overlap or one leaves `floats` (a bug in the description).
fn disjoint_slices<const N: usize>(mut floats: &mut [f32], spans: [Span; N]) -> [&mut [f32]; N] {
    let mut order: [usize; N] = std::array::from_fn(|i| i);
    order.sort_unstable_by_key(|&i| spans[i].start);
    let mut slices: [Option<&mut [f32]>; N] = std::array::from_fn(|_| None);
    let mut consumed = 0;
    for i in order {
        let span = spans[i];
        assert!(
            span.start >= consumed && span.start + span.len <= consumed + floats.len(),
            "activation buffers {spans:?} overlap or leave the arena"
        );
        let (_, tail) = std::mem::take(&mut floats).split_at_mut(span.start - consumed);
        let (slice, tail) = tail.split_at_mut(span.len);
        slices[i] = Some(slice);
        floats = tail;
        consumed = span.start + span.len;
    }
    slices.map(|slice| slice.expect("every span was placed"))
}

impl<K: HostKernels> Executor for HostExecutor<'_, K> {
    fn linear(&mut self, layer: Layer, x: Span, rows: usize, y: Span, accumulate: bool) {
        let (x, y) = pair(self.floats, x, y);
        self.kernels.linear(layer, x, rows, y, accumulate);
    }

    fn rms_norm(&mut self, norm: Norm, x: Span, out: Span) {
        let [x, out] = disjoint_slices(self.floats, [x, out]);
        self.kernels.rms_norm(norm, x, out);
    }

    fn relu(&mut self, x: Span) {
        self.kernels.relu(&mut self.floats[x.range()]);
    }

    fn rope(&mut self, qkv: Span, rows: usize, tokens: usize, rope: &RopeTable) {
        self.kernels.rope(&mut self.floats[qkv.range()], rows, tokens, rope);
    }

    fn time_attention(&mut self, qkv: Span, key_mask: Span, rows: usize, tokens: usize, first_query: usize, ctx: Span) {
        let [qkv, key_mask, ctx] = disjoint_slices(self.floats, [qkv, key_mask, ctx]);
        self.kernels
            .time_attention(qkv, key_mask, rows, tokens, first_query, ctx);
    }

    fn group_attention(
        &mut self,
        qkv: Span,
        layout: &GroupLayout,
        key_mask: Option<Span>,
        rows: usize,
        tokens: usize,
        ctx: Span,
    ) {
        match key_mask {
            Some(mask) => {
                let [qkv, mask, ctx] = disjoint_slices(self.floats, [qkv, mask, ctx]);
                self.kernels.group_attention(qkv, layout, Some(mask), rows, tokens, ctx);
            }
            None => {
                let (qkv, ctx) = pair(self.floats, qkv, ctx);
                self.kernels.group_attention(qkv, layout, None, rows, tokens, ctx);
            }
        }
    }

    fn copy_rows(&mut self, src: Span, src_stride: usize, dst: Span, dst_stride: usize, rows: usize, width: usize) {
        let (src, dst) = pair(self.floats, src, dst);
        for row in 0..rows {
            dst[row * dst_stride..][..width].copy_from_slice(&src[row * src_stride..][..width]);
        }
    }

    fn reg_token(&mut self, dst: Span, rows: usize, stride: usize) {
        let Some(reg) = self.kernels.reg_token() else {
            return;
        };
        let dst = &mut self.floats[dst.range()];
        for row in 0..rows {
            dst[row * stride..][..reg.len()].copy_from_slice(reg);
        }
    }

    fn write_host<const N: usize, R>(&mut self, spans: [Span; N], write: impl FnOnce([&mut [f32]; N]) -> R) -> R {
        write(disjoint_slices(self.floats, spans))
    }

    fn read_host<R>(&mut self, span: Span, read: impl FnOnce(&[f32]) -> R) -> R {
        read(&self.floats[span.range()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_resolve_to_disjoint_slices_of_the_arena() {
        let span = Span::new(4, 6);
        assert_eq!(span.part(2, 3), Span::new(6, 3));
        assert_eq!(span.prefix(2).range(), 4..6);
        let mut floats: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut host = HostExecutor::new(NoKernels, &mut floats);
        // Broadcast one row (stride 0) into two rows of stride 3.
        host.copy_rows(Span::new(0, 2), 0, Span::new(6, 6), 3, 2, 2);
        let read = host.read_host(Span::new(6, 6), <[f32]>::to_vec);
        assert_eq!(read, [0.0, 1.0, 8.0, 0.0, 1.0, 11.0]);
        host.write_host([Span::new(0, 1), Span::new(11, 1)], |[a, b]| {
            a[0] = -1.0;
            b[0] = -2.0;
        });
        assert_eq!((floats[0], floats[11]), (-1.0, -2.0));
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn overlapping_spans_are_a_bug() {
        let mut floats = vec![0.0f32; 8];
        HostExecutor::new(NoKernels, &mut floats).copy_rows(Span::new(0, 4), 4, Span::new(2, 4), 4, 1, 2);
    }

    /// Kernels that are never called (the tests above use the host-side methods only).
    struct NoKernels;

    impl HostKernels for NoKernels {
        fn linear(&mut self, _: Layer, _: &[f32], _: usize, _: &mut [f32], _: bool) {
            unreachable!()
        }
        fn rms_norm(&mut self, _: Norm, _: &[f32], _: &mut [f32]) {
            unreachable!()
        }
        fn relu(&mut self, _: &mut [f32]) {
            unreachable!()
        }
        fn rope(&mut self, _: &mut [f32], _: usize, _: usize, _: &RopeTable) {
            unreachable!()
        }
        fn time_attention(&mut self, _: &[f32], _: &[f32], _: usize, _: usize, _: usize, _: &mut [f32]) {
            unreachable!()
        }
        fn group_attention(
            &mut self,
            _: &[f32],
            _: &GroupLayout,
            _: Option<&[f32]>,
            _: usize,
            _: usize,
            _: &mut [f32],
        ) {
            unreachable!()
        }
        fn reg_token(&self) -> Option<&[f32]> {
            None
        }
    }

    #[test]
    fn canonical_layout_points_rows_to_their_group_start() {
        let input = ModelInput::new(vec![0.0; 5], 5)
            .unwrap()
            .with_group_ids(vec![7, 3, 7, 9, 3]);
        let layout = GroupLayout::of(&input);
        assert_eq!(layout.first_rows(), [0, 1, 0, 3, 1]);
        assert_eq!(layout.multi_row_groups(), [vec![0, 2], vec![1, 4]]);
        assert!(!layout.all_singleton());
        assert!(layout.same_group(1, 4) && !layout.same_group(0, 3));
        let alone = GroupLayout::of(&ModelInput::new(vec![0.0; 3], 3).unwrap());
        assert!(alone.all_singleton());
    }
}
