//! The declared weight table of Chronos-2 and the structs that hold it.
//!
//! [`Weights::build`] is the one place that lists every tensor: its dotted name (as in the
//! safetensors file), its shape as a formula of the [`Config`], and how a fresh model
//! initialises it. A [`TensorSource`] supplies the data: the checkpoint loader (which checks the
//! name, shape and dtype) or the random initialiser.

use std::sync::Arc;

use crate::config::Config;
use crate::error::Error;

/// How a fresh model initialises a tensor (the reference's `_init_weights`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// RMS-norm gain: the constant `initializer_factor`.
    NormGain,
    /// A weight matrix: `N(0, std)` with `std` given as a multiple of `initializer_factor`.
    Normal {
        /// Standard deviation divided by `initializer_factor`.
        std_over_factor: f32,
        /// The matrix's input width (for O(1) re-randomisation, `N(0, 1/fan_in)`).
        fan_in: usize,
    },
    /// A bias: zero.
    Bias,
}

/// Where tensor data comes from.
pub trait TensorSource {
    /// Returns the tensor `name`, which must have exactly `shape`.
    ///
    /// # Errors
    /// The source's error for a missing tensor, a wrong shape or an unreadable dtype.
    fn tensor(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor, Error>;
}

/// Bytes a checkpoint's tensors can be read from in place: a memory-mapped file or a static
/// buffer (the built-in model).
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// The f32 data of a tensor: borrowed from a memory-mapped file or owned.
#[derive(Clone)]
enum Storage {
    /// f32 data read in place from a mapped safetensors file.
    Mapped {
        map: SharedBytes,
        offset: usize,
        len: usize,
    },
    /// Converted (bf16/f16) or generated data.
    Owned(Arc<Vec<f32>>),
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mapped { offset, len, .. } => write!(f, "Mapped {{ offset: {offset}, len: {len} }}"),
            Self::Owned(data) => write!(f, "Owned({} values)", data.len()),
        }
    }
}

/// A weight that is not a finite number, as found by [`Weights::non_finite`].
#[derive(Clone, Debug, PartialEq)]
pub struct NonFinite {
    /// The tensor's name.
    pub tensor: String,
    /// The flat index inside the tensor.
    pub index: usize,
    /// The value (NaN or ±Inf).
    pub value: f32,
}

/// A named f32 tensor, row-major.
#[derive(Clone, Debug)]
pub struct Tensor {
    name: String,
    shape: Vec<usize>,
    storage: Storage,
}

impl Tensor {
    /// A tensor that owns its data.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    pub fn owned(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            shape.iter().product::<usize>(),
            "tensor data does not fit its shape"
        );
        Self {
            name: name.into(),
            shape,
            storage: Storage::Owned(Arc::new(data)),
        }
    }

    /// A tensor whose f32 data lies in place in `map` at byte `offset` (`len` elements).
    /// Returns `None` if that range is not 4-byte aligned or not inside the map, or the machine
    /// is big-endian (safetensors is little-endian).
    pub(crate) fn mapped(name: &str, shape: Vec<usize>, map: SharedBytes, offset: usize, len: usize) -> Option<Self> {
        let end = offset.checked_add(len.checked_mul(4)?)?;
        let aligned = ((*map).as_ref().as_ptr() as usize + offset).is_multiple_of(std::mem::align_of::<f32>());
        if !aligned || end > (*map).as_ref().len() || cfg!(target_endian = "big") {
            return None;
        }
        Some(Self {
            name: name.to_string(),
            shape,
            storage: Storage::Mapped { map, offset, len },
        })
    }

    /// The dotted name, as in the checkpoint.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        match &self.storage {
            Storage::Owned(data) => data,
            Storage::Mapped { map, offset, len } => {
                bytemuck::cast_slice(&(**map).as_ref()[*offset..*offset + *len * 4])
            }
        }
    }

    /// Whether the data is read in place from the mapped file (no copy was made).
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped { .. })
    }
}

/// A linear layer `y = x·Wᵀ (+ b)`, `W` stored `[out, in]`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<Tensor>,
}

impl Linear {
    fn load(
        source: &mut dyn TensorSource,
        prefix: &str,
        out_dim: usize,
        in_dim: usize,
        std_over_factor: f32,
        bias: bool,
    ) -> Result<Self, Error> {
        let init = Init::Normal {
            std_over_factor,
            fan_in: in_dim,
        };
        let weight = source.tensor(&format!("{prefix}.weight"), &[out_dim, in_dim], init)?;
        let bias = if bias {
            Some(source.tensor(&format!("{prefix}.bias"), &[out_dim], Init::Bias)?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }

    fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        std::iter::once(&self.weight).chain(self.bias.as_ref())
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Input width.
    pub fn in_dim(&self) -> usize {
        self.weight.shape()[1]
    }
}

/// `ResidualBlock`: `out(relu(hidden(x))) + residual(x)`, all with biases.
#[derive(Clone, Debug)]
pub struct ResidualBlock {
    /// `in -> d_ff`.
    pub hidden: Linear,
    /// `d_ff -> out`.
    pub output: Linear,
    /// `in -> out`.
    pub residual: Linear,
}

impl ResidualBlock {
    fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        [&self.hidden, &self.output, &self.residual]
            .into_iter()
            .flat_map(Linear::tensors)
    }

    fn load(
        source: &mut dyn TensorSource,
        prefix: &str,
        in_dim: usize,
        hidden: usize,
        out: usize,
    ) -> Result<Self, Error> {
        // Each layer: N(0, factor · fan_in^-1/2), zero bias.
        let std = |fan_in: usize| (fan_in as f32).powf(-0.5);
        Ok(Self {
            hidden: Linear::load(
                source,
                &format!("{prefix}.hidden_layer"),
                hidden,
                in_dim,
                std(in_dim),
                true,
            )?,
            output: Linear::load(
                source,
                &format!("{prefix}.output_layer"),
                out,
                hidden,
                std(hidden),
                true,
            )?,
            residual: Linear::load(
                source,
                &format!("{prefix}.residual_layer"),
                out,
                in_dim,
                std(in_dim),
                true,
            )?,
        })
    }
}

/// Q, K, V, O projections of one attention layer (no biases).
#[derive(Clone, Debug)]
pub struct Attention {
    /// `[H·dk, D]`.
    pub q: Linear,
    /// `[H·dk, D]`.
    pub k: Linear,
    /// `[H·dk, D]`.
    pub v: Linear,
    /// `[D, H·dk]`.
    pub o: Linear,
}

impl Attention {
    fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        [&self.q, &self.k, &self.v, &self.o]
            .into_iter()
            .flat_map(Linear::tensors)
    }

    fn load(source: &mut dyn TensorSource, prefix: &str, config: &Config) -> Result<Self, Error> {
        let (d, inner, dk) = (config.d_model, config.inner_dim(), config.d_kv);
        // Mesh-TensorFlow attention init: q is scaled down by (D·dk)^-1/2 instead of the scores.
        let (std_q, std_kv, std_o) = (
            ((d * dk) as f32).powf(-0.5),
            (d as f32).powf(-0.5),
            (inner as f32).powf(-0.5),
        );
        Ok(Self {
            q: Linear::load(source, &format!("{prefix}.q"), inner, d, std_q, false)?,
            k: Linear::load(source, &format!("{prefix}.k"), inner, d, std_kv, false)?,
            v: Linear::load(source, &format!("{prefix}.v"), inner, d, std_kv, false)?,
            o: Linear::load(source, &format!("{prefix}.o"), d, inner, std_o, false)?,
        })
    }
}

/// One encoder block: time attention, group attention, feed-forward, each pre-normed.
#[derive(Clone, Debug)]
pub struct EncoderBlock {
    /// RMS-norm gain before time attention, `[D]`.
    pub time_norm: Tensor,
    /// Time self-attention (with RoPE).
    pub time_attention: Attention,
    /// RMS-norm gain before group attention, `[D]`.
    pub group_norm: Tensor,
    /// Group self-attention (across rows, no RoPE).
    pub group_attention: Attention,
    /// RMS-norm gain before the feed-forward, `[D]`.
    pub ffn_norm: Tensor,
    /// `D -> d_ff`, no bias.
    pub wi: Linear,
    /// `d_ff -> D`, no bias.
    pub wo: Linear,
}

impl EncoderBlock {
    fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        [&self.time_norm, &self.group_norm, &self.ffn_norm]
            .into_iter()
            .chain(self.time_attention.tensors())
            .chain(self.group_attention.tensors())
            .chain(self.wi.tensors())
            .chain(self.wo.tensors())
    }

    fn load(source: &mut dyn TensorSource, layer: usize, config: &Config) -> Result<Self, Error> {
        let p = format!("encoder.block.{layer}.layer");
        let d = config.d_model;
        Ok(Self {
            time_norm: source.tensor(&format!("{p}.0.layer_norm.weight"), &[d], Init::NormGain)?,
            time_attention: Attention::load(source, &format!("{p}.0.self_attention"), config)?,
            group_norm: source.tensor(&format!("{p}.1.layer_norm.weight"), &[d], Init::NormGain)?,
            group_attention: Attention::load(source, &format!("{p}.1.self_attention"), config)?,
            ffn_norm: source.tensor(&format!("{p}.2.layer_norm.weight"), &[d], Init::NormGain)?,
            wi: Linear::load(
                source,
                &format!("{p}.2.mlp.wi"),
                config.d_ff,
                d,
                (d as f32).powf(-0.5),
                false,
            )?,
            wo: Linear::load(
                source,
                &format!("{p}.2.mlp.wo"),
                d,
                config.d_ff,
                (config.d_ff as f32).powf(-0.5),
                false,
            )?,
        })
    }
}

/// All weights of a Chronos-2 model.
#[derive(Clone, Debug)]
pub struct Weights {
    /// `shared.weight`, `[vocab, D]`: row 0 = PAD, row 1 = REG (when `use_reg_token`).
    pub shared: Tensor,
    /// Input patch embedding, `3P -> d_ff -> D`.
    pub input_embedding: ResidualBlock,
    /// Encoder blocks.
    pub blocks: Vec<EncoderBlock>,
    /// Final RMS-norm gain, `[D]`.
    pub final_norm: Tensor,
    /// Output patch embedding, `D -> d_ff -> Q·P`.
    pub output_embedding: ResidualBlock,
}

impl Weights {
    /// Takes every tensor the configuration implies from `source`, in declaration order.
    ///
    /// # Errors
    /// The first error of the source (missing tensor, wrong shape, bad dtype).
    pub fn build(config: &Config, source: &mut dyn TensorSource) -> Result<Self, Error> {
        let vocab = if config.use_reg_token { 2 } else { 1 };
        let (d, p, q) = (config.d_model, config.patch_size, config.num_quantiles());
        let shared = source.tensor(
            "shared.weight",
            &[vocab, d],
            Init::Normal {
                std_over_factor: 1.0,
                fan_in: 1,
            },
        )?;
        let input_embedding = ResidualBlock::load(source, "input_patch_embedding", 3 * p, config.d_ff, d)?;
        let blocks = (0..config.num_layers)
            .map(|layer| EncoderBlock::load(source, layer, config))
            .collect::<Result<Vec<_>, _>>()?;
        let final_norm = source.tensor("encoder.final_layer_norm.weight", &[d], Init::NormGain)?;
        let output_embedding = ResidualBlock::load(source, "output_patch_embedding", d, config.d_ff, q * p)?;
        Ok(Self {
            shared,
            input_embedding,
            blocks,
            final_norm,
            output_embedding,
        })
    }

    /// Every tensor, for saving and counting.
    pub fn tensors(&self) -> Vec<&Tensor> {
        let mut all = vec![&self.shared, &self.final_norm];
        all.extend(self.input_embedding.tensors());
        all.extend(self.blocks.iter().flat_map(EncoderBlock::tensors));
        all.extend(self.output_embedding.tensors());
        all
    }

    /// Scans every weight for NaN and ±Inf: the first one found (tensor name, flat index,
    /// value) and how many there are in all; `None` if every weight is finite.
    pub fn non_finite(&self) -> Option<(NonFinite, usize)> {
        let mut first = None;
        let mut count = 0;
        for tensor in self.tensors() {
            for (index, &value) in tensor.data().iter().enumerate() {
                if !value.is_finite() {
                    count += 1;
                    first.get_or_insert_with(|| NonFinite {
                        tensor: tensor.name().to_string(),
                        index,
                        value,
                    });
                }
            }
        }
        first.map(|f| (f, count))
    }

    /// Number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.tensors().iter().map(|t| t.data().len()).sum()
    }

    /// A copy whose encoder-block layers (attention projections, feed-forward) hold their
    /// weights rounded to bfloat16, for the eager executor's bf16 path; everything else is
    /// shared unchanged.
    pub fn rounded_to_bf16(&self) -> Self {
        let round = |layer: &mut Linear| {
            let data = layer
                .weight
                .data()
                .iter()
                .map(|&v| chronos2_kernels::bf16::round_bf16(v))
                .collect();
            layer.weight = Tensor::owned(layer.weight.name(), layer.weight.shape().to_vec(), data);
        };
        let mut copy = self.clone();
        for block in &mut copy.blocks {
            for attention in [&mut block.time_attention, &mut block.group_attention] {
                for layer in [&mut attention.q, &mut attention.k, &mut attention.v, &mut attention.o] {
                    round(layer);
                }
            }
            round(&mut block.wi);
            round(&mut block.wo);
        }
        copy
    }

    /// The REG token embedding (row 1 of `shared.weight`), if the model has one.
    pub fn reg_token(&self) -> Option<&[f32]> {
        let d = self.shared.shape()[1];
        (self.shared.shape()[0] > 1).then(|| &self.shared.data()[d..2 * d])
    }
}
