//! The model's weights prepared once, at load, for the planned executor: every linear layer
//! repacked into GEMM panels ([`PackedWeight`]), Q/K/V stacked into one matrix per attention
//! layer when fusion is on, norms and the REG token copied out of the checkpoint.

use std::sync::Mutex;

use chronos2::weights::{Attention, EncoderBlock, Linear, ResidualBlock, Weights};
use chronos2_kernels::packed::PackedWeight;
use chronos2_kernels::pool::Pool;

/// A packed linear layer with its bias.
pub(crate) struct PackedLinear {
    pub weight: PackedWeight,
    pub bias: Option<Vec<f32>>,
}

impl PackedLinear {
    fn new(layer: &Linear) -> Self {
        Self {
            weight: PackedWeight::new(layer.weight.data(), layer.out_dim(), layer.in_dim()),
            bias: layer.bias.as_ref().map(|b| b.data().to_vec()),
        }
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
    fn new(attention: &Attention, fused: bool) -> Self {
        if !fused {
            return Self::Separate([&attention.q, &attention.k, &attention.v].map(PackedLinear::new));
        }
        let parts = [&attention.q, &attention.k, &attention.v].map(|l| l.weight.data());
        Self::Fused {
            qkv: PackedLinear {
                weight: PackedWeight::stacked(&parts, attention.q.in_dim()),
                bias: None,
            },
            v: PackedLinear::new(&attention.v),
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
    fn new(block: &ResidualBlock) -> Self {
        Self {
            hidden: PackedLinear::new(&block.hidden),
            output: PackedLinear::new(&block.output),
            residual: PackedLinear::new(&block.residual),
        }
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
    fn new(block: &EncoderBlock, fused: bool) -> Self {
        Self {
            time_norm: block.time_norm.data().to_vec(),
            time_qkv: PackedQkv::new(&block.time_attention, fused),
            time_o: PackedLinear::new(&block.time_attention.o),
            group_norm: block.group_norm.data().to_vec(),
            group_qkv: PackedQkv::new(&block.group_attention, fused),
            group_o: PackedLinear::new(&block.group_attention.o),
            ffn_norm: block.ffn_norm.data().to_vec(),
            wi: PackedLinear::new(&block.wi),
            wo: PackedLinear::new(&block.wo),
        }
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
    /// Repacks `weights`, one block per task on `pool`; Q/K/V stacked if `fused_qkv`.
    pub fn new(weights: &Weights, fused_qkv: bool, pool: &Pool) -> Self {
        let slots: Vec<Mutex<Option<PackedBlock>>> = weights.blocks.iter().map(|_| Mutex::new(None)).collect();
        pool.parallel_for(slots.len(), &|i| {
            let block = PackedBlock::new(&weights.blocks[i], fused_qkv);
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
}
