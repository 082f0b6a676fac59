//! The model's weights prepared once, at load, for the planned executor: every linear layer
//! repacked into GEMM panels ([`PackedWeight`], or [`PackedBf16`] for the encoder blocks in
//! bf16), Q/K/V stacked into one matrix per attention layer when fusion is on, norms and the
//! REG token copied out of the checkpoint.

use std::sync::Mutex;

use chronos2::executor::Precision;
use chronos2::weights::{Attention, EncoderBlock, Linear, ResidualBlock, Weights};
use chronos2_kernels::bf16::{packed_bf16_pays, round_bf16, PackedBf16};
use chronos2_kernels::packed::PackedWeight;
use chronos2_kernels::pool::Pool;

/// A weight matrix in the layout of its precision.
pub(crate) enum PackedMatrix {
    /// f32 panels.
    F32(PackedWeight),
    /// bf16 pair panels.
    Bf16(PackedBf16),
    /// bf16-rounded weights in f32 panels (bf16 layers where bf16 kernels do not pay; see
    /// [`packed_bf16_pays`]); the inputs are rounded to bf16 before the f32 product.
    Bf16InF32(PackedWeight),
}

impl PackedMatrix {
    /// Packs a row-major `[n, k]` weight in `precision`.
    fn new(weight: &[f32], n: usize, k: usize, precision: Precision) -> Self {
        match precision {
            Precision::Float32 => Self::F32(PackedWeight::new(weight, n, k)),
            Precision::BFloat16 if packed_bf16_pays() => Self::Bf16(PackedBf16::new(weight, n, k)),
            Precision::BFloat16 => {
                let rounded: Vec<f32> = weight[..n * k].iter().map(|&v| round_bf16(v)).collect();
                Self::Bf16InF32(PackedWeight::new(&rounded, n, k))
            }
        }
    }

    /// Output features n.
    pub fn n(&self) -> usize {
        match self {
            Self::F32(w) | Self::Bf16InF32(w) => w.n(),
            Self::Bf16(w) => w.n(),
        }
    }

    /// Input features k.
    pub fn k(&self) -> usize {
        match self {
            Self::F32(w) | Self::Bf16InF32(w) => w.k(),
            Self::Bf16(w) => w.k(),
        }
    }

    /// Bytes held.
    fn bytes(&self) -> usize {
        match self {
            Self::F32(w) | Self::Bf16InF32(w) => w.bytes(),
            Self::Bf16(w) => w.bytes(),
        }
    }
}

/// A packed linear layer with its bias.
pub(crate) struct PackedLinear {
    pub weight: PackedMatrix,
    pub bias: Option<Vec<f32>>,
}

impl PackedLinear {
    fn new(layer: &Linear, precision: Precision) -> Self {
        Self {
            weight: PackedMatrix::new(layer.weight.data(), layer.out_dim(), layer.in_dim(), precision),
            bias: layer.bias.as_ref().map(|b| b.data().to_vec()),
        }
    }

    fn bytes(&self) -> usize {
        self.weight.bytes() + self.bias.as_ref().map_or(0, |b| b.len() * std::mem::size_of::<f32>())
    }
}

/// Q, K and V of one attention layer.
pub(crate) enum PackedQkv {
    /// Stacked into one `[3I, D]` matrix: one GEMM instead of three. V is kept apart too,
    /// for the singleton-group shortcut.
    Fused { qkv: PackedLinear, v: PackedLinear },
    /// Three matrices, three GEMMs.
    Separate([PackedLinear; 3]),
}

impl PackedQkv {
    fn new(attention: &Attention, fused: bool, precision: Precision) -> Self {
        let parts = [&attention.q, &attention.k, &attention.v];
        if !fused {
            return Self::Separate(parts.map(|layer| PackedLinear::new(layer, precision)));
        }
        let stacked: Vec<f32> = parts.iter().flat_map(|l| l.weight.data().iter().copied()).collect();
        let (n, k) = (parts.iter().map(|l| l.out_dim()).sum(), attention.q.in_dim());
        Self::Fused {
            qkv: PackedLinear {
                weight: PackedMatrix::new(&stacked, n, k, precision),
                bias: None,
            },
            v: PackedLinear::new(&attention.v, precision),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Fused { qkv, v } => qkv.bytes() + v.bytes(),
            Self::Separate(parts) => parts.iter().map(PackedLinear::bytes).sum(),
        }
    }

    /// V alone.
    pub fn value(&self) -> &PackedLinear {
        match self {
            Self::Fused { v, .. } => v,
            Self::Separate([_, _, v]) => v,
        }
    }
}

/// A packed `ResidualBlock`.
pub(crate) struct PackedResidual {
    pub hidden: PackedLinear,
    pub output: PackedLinear,
    pub residual: PackedLinear,
}

impl PackedResidual {
    /// The embedding and the output head stay f32 whatever the blocks' precision.
    fn new(block: &ResidualBlock) -> Self {
        let f32 = |layer| PackedLinear::new(layer, Precision::Float32);
        Self {
            hidden: f32(&block.hidden),
            output: f32(&block.output),
            residual: f32(&block.residual),
        }
    }

    fn bytes(&self) -> usize {
        self.hidden.bytes() + self.output.bytes() + self.residual.bytes()
    }
}

/// One packed encoder block.
pub(crate) struct PackedBlock {
    pub time_norm: Vec<f32>,
    pub time_qkv: PackedQkv,
    pub time_o: PackedLinear,
    pub group_norm: Vec<f32>,
    pub group_qkv: PackedQkv,
    pub group_o: PackedLinear,
    pub ffn_norm: Vec<f32>,
    pub wi: PackedLinear,
    pub wo: PackedLinear,
}

impl PackedBlock {
    fn new(block: &EncoderBlock, fused: bool, precision: Precision) -> Self {
        Self {
            time_norm: block.time_norm.data().to_vec(),
            time_qkv: PackedQkv::new(&block.time_attention, fused, precision),
            time_o: PackedLinear::new(&block.time_attention.o, precision),
            group_norm: block.group_norm.data().to_vec(),
            group_qkv: PackedQkv::new(&block.group_attention, fused, precision),
            group_o: PackedLinear::new(&block.group_attention.o, precision),
            ffn_norm: block.ffn_norm.data().to_vec(),
            wi: PackedLinear::new(&block.wi, precision),
            wo: PackedLinear::new(&block.wo, precision),
        }
    }

    fn bytes(&self) -> usize {
        let norms = (self.time_norm.len() + self.group_norm.len() + self.ffn_norm.len()) * std::mem::size_of::<f32>();
        let linears = [&self.time_o, &self.group_o, &self.wi, &self.wo].map(PackedLinear::bytes);
        norms + self.time_qkv.bytes() + self.group_qkv.bytes() + linears.iter().sum::<usize>()
    }
}

/// All weights, packed.
pub(crate) struct PackedModel {
    pub reg: Option<Vec<f32>>,
    pub input: PackedResidual,
    pub blocks: Vec<PackedBlock>,
    pub final_norm: Vec<f32>,
    pub output: PackedResidual,
}

impl PackedModel {
    /// Repacks `weights`, one block per task on `pool`; Q/K/V stacked if `fused_qkv`; the
    /// blocks' layers in `precision`.
    pub fn new(weights: &Weights, fused_qkv: bool, precision: Precision, pool: &Pool) -> Self {
        let slots: Vec<Mutex<Option<PackedBlock>>> = weights.blocks.iter().map(|_| Mutex::new(None)).collect();
        pool.parallel_for(slots.len(), &|i| {
            let block = PackedBlock::new(&weights.blocks[i], fused_qkv, precision);
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(block);
        });
        let blocks = slots
            .into_iter()
            .filter_map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        Self {
            reg: weights.reg_token().map(<[f32]>::to_vec),
            input: PackedResidual::new(&weights.input_embedding),
            blocks,
            final_norm: weights.final_norm.data().to_vec(),
            output: PackedResidual::new(&weights.output_embedding),
        }
    }

    /// Bytes of prepared weights held (what compiled mode adds to the mapped checkpoint).
    pub fn bytes(&self) -> usize {
        let vectors = self.reg.as_ref().map_or(0, Vec::len) + self.final_norm.len();
        vectors * std::mem::size_of::<f32>()
            + self.input.bytes()
            + self.output.bytes()
            + self.blocks.iter().map(PackedBlock::bytes).sum::<usize>()
    }
}
