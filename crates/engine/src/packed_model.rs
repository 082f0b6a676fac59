//! The model's weights repacked once, at load, into the layout the compiled kernels want:
//! GEMM panels ([`PackedWeight`]), Q/K/V fused into one matrix per attention layer, and the
//! group attention's V kept apart for the singleton-group shortcut.

use chronos2::weights::{Linear, ResidualBlock, Weights};
use chronos2::Config;
use chronos2_kernels::packed::PackedWeight;
use rayon::prelude::*;

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

    /// Q, K and V stacked into one `[3I, D]` matrix (one GEMM instead of three).
    fn fused(layers: [&Linear; 3]) -> Self {
        let k = layers[0].in_dim();
        Self {
            weight: PackedWeight::stacked(&layers.map(|l| l.weight.data()), k),
            bias: None,
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
    pub time_qkv: PackedLinear,
    pub time_o: PackedLinear,
    pub group_norm: Vec<f32>,
    pub group_qkv: PackedLinear,
    pub group_v: PackedLinear,
    pub group_o: PackedLinear,
    pub ffn_norm: Vec<f32>,
    pub wi: PackedLinear,
    pub wo: PackedLinear,
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
    /// Repacks `weights` (in parallel over layers).
    pub fn new(_config: &Config, weights: &Weights) -> Self {
        let blocks = weights
            .blocks
            .par_iter()
            .map(|b| PackedBlock {
                time_norm: b.time_norm.data().to_vec(),
                time_qkv: PackedLinear::fused([&b.time_attention.q, &b.time_attention.k, &b.time_attention.v]),
                time_o: PackedLinear::new(&b.time_attention.o),
                group_norm: b.group_norm.data().to_vec(),
                group_qkv: PackedLinear::fused([&b.group_attention.q, &b.group_attention.k, &b.group_attention.v]),
                group_v: PackedLinear::new(&b.group_attention.v),
                group_o: PackedLinear::new(&b.group_attention.o),
                ffn_norm: b.ffn_norm.data().to_vec(),
                wi: PackedLinear::new(&b.wi),
                wo: PackedLinear::new(&b.wo),
            })
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
