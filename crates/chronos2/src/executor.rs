//! The interface between the model description ([`crate::encoder`]) and the code that runs
//! it: an [`Executor`] provides the kernels (linear layers, norms, attention), the description
//! says which ones run, in which order, on which buffers.
//!
//! Executors differ in how they store weights (plain tensors, packed panels, lower
//! precision), which kernels they use and how they split work over threads; never in what
//! they compute. Two live in this workspace: [`crate::eager::EagerExecutor`] (plain kernels,
//! the reference) and the planned executor of `chronos2-engine` (compiled mode).

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
}

impl Precision {
    /// The name the settings use (`float32`, `bfloat16`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::BFloat16 => "bfloat16",
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

/// The kernels the model description needs. Buffers are dense row-major f32; shapes are in
/// the letters of [`crate::encoder`]. Every method writes all of its output (or adds to it,
/// where it says so).
pub trait Executor {
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

#[cfg(test)]
mod tests {
    use super::*;

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
