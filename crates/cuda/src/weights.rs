//! The model's weights on the GPU, uploaded once: each linear layer in f32, or in bf16 for the
//! encoder blocks' layers in bf16 mode (the patch embedding and the output head stay f32, as
//! on the CPU); Q, K and V stacked into one `(3I, D)` matrix per attention.

use chronos2::executor::{Layer, Precision, ResidualPart};
use chronos2::weights::{Attention, Linear, ResidualBlock, Weights};
use chronos2_kernels::bf16::to_bf16;
use cudarc::driver::CudaSlice;

use crate::error::CudaError;
use crate::gpu::{Gpu, Operand};

/// A weight matrix `(out, in)` row-major on the device.
enum Matrix {
    F32(CudaSlice<f32>),
    Bf16(CudaSlice<u16>),
}

/// One linear layer on the device.
pub(crate) struct DeviceLinear {
    weight: Matrix,
    bias: Option<CudaSlice<f32>>,
    /// Output width.
    pub out: usize,
    /// Input width.
    pub input: usize,
}

/// A linear layer's operands as device addresses: weight, bias, widths.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerRef {
    /// The weight, `(out, in)` row-major.
    pub weight: Operand,
    /// The bias, if any.
    pub bias: Option<u64>,
    /// Output width.
    pub out: usize,
    /// Input width.
    pub input: usize,
}

impl DeviceLinear {
    /// Uploads the concatenation of `parts` (stacked along the output), in bf16 if `bf16`.
    fn upload(gpu: &Gpu, name: &str, parts: &[&Linear], bf16: bool) -> Result<Self, CudaError> {
        let input = parts[0].in_dim();
        let out = parts.iter().map(|p| p.out_dim()).sum();
        let values: Vec<f32> = parts.iter().flat_map(|p| p.weight.data().iter().copied()).collect();
        let weight = if bf16 {
            let bits: Vec<u16> = values.iter().map(|&v| to_bf16(v)).collect();
            Matrix::Bf16(gpu.upload(&bits, name)?)
        } else {
            Matrix::F32(gpu.upload(&values, name)?)
        };
        // Stacked layers share one bias; a part without one contributes zeros.
        let bias = if parts.iter().any(|p| p.bias.is_some()) {
            let values: Vec<f32> = parts
                .iter()
                .flat_map(|p| match &p.bias {
                    Some(b) => b.data().to_vec(),
                    None => vec![0.0; p.out_dim()],
                })
                .collect();
            Some(gpu.upload(&values, name)?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            out,
            input,
        })
    }

    /// Rows `[first, first + count)` of the layer (a part of a stacked matrix).
    fn rows(&self, gpu: &Gpu, first: usize, count: usize) -> LayerRef {
        let offset = (first * self.input) as u64;
        let weight = match &self.weight {
            Matrix::F32(w) => Operand::F32(gpu.address(w) + offset * 4),
            Matrix::Bf16(w) => Operand::Bf16(gpu.address(w) + offset * 2),
        };
        LayerRef {
            weight,
            bias: self.bias.as_ref().map(|b| gpu.address(b) + (first * 4) as u64),
            out: count,
            input: self.input,
        }
    }

    /// The whole layer.
    fn all(&self, gpu: &Gpu) -> LayerRef {
        self.rows(gpu, 0, self.out)
    }

    fn bytes(&self) -> usize {
        let weight = match &self.weight {
            Matrix::F32(w) => w.len() * 4,
            Matrix::Bf16(w) => w.len() * 2,
        };
        weight + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }
}

/// A residual block's three layers.
struct DeviceResidual {
    hidden: DeviceLinear,
    output: DeviceLinear,
    residual: DeviceLinear,
}

impl DeviceResidual {
    fn upload(gpu: &Gpu, name: &str, block: &ResidualBlock) -> Result<Self, CudaError> {
        Ok(Self {
            hidden: DeviceLinear::upload(gpu, name, &[&block.hidden], false)?,
            output: DeviceLinear::upload(gpu, name, &[&block.output], false)?,
            residual: DeviceLinear::upload(gpu, name, &[&block.residual], false)?,
        })
    }

    fn part(&self, part: ResidualPart) -> &DeviceLinear {
        match part {
            ResidualPart::Hidden => &self.hidden,
            ResidualPart::Output => &self.output,
            ResidualPart::Residual => &self.residual,
        }
    }
}

/// One encoder block.
struct DeviceBlock {
    time_qkv: DeviceLinear,
    time_o: DeviceLinear,
    group_qkv: DeviceLinear,
    group_o: DeviceLinear,
    wi: DeviceLinear,
    wo: DeviceLinear,
    time_norm: CudaSlice<f32>,
    group_norm: CudaSlice<f32>,
    ffn_norm: CudaSlice<f32>,
}

/// Every weight of the model on one GPU.
pub(crate) struct DeviceWeights {
    input: DeviceResidual,
    output: DeviceResidual,
    blocks: Vec<DeviceBlock>,
    final_norm: CudaSlice<f32>,
    reg: Option<CudaSlice<f32>>,
    /// Hidden size D.
    d_model: usize,
    /// Whether the encoder blocks' layers are in bf16.
    bf16: bool,
}

impl DeviceWeights {
    /// Uploads `weights`, the encoder blocks' linear layers in `precision`.
    ///
    /// # Errors
    /// [`CudaError::Unavailable`] for int8 (CPU only); [`CudaError::Memory`] if they do not
    /// fit; driver errors.
    pub fn upload(gpu: &Gpu, weights: &Weights, precision: Precision) -> Result<Self, CudaError> {
        let bf16 = match precision {
            Precision::Float32 => false,
            Precision::BFloat16 => true,
            other => {
                return Err(CudaError::Unavailable(format!(
                    "{} runs on the CPU only; use float32 or bfloat16 on the GPU",
                    other.name()
                )))
            }
        };
        let stacked = |name: &str, a: &Attention| DeviceLinear::upload(gpu, name, &[&a.q, &a.k, &a.v], bf16);
        let single = |name: &str, l: &Linear| DeviceLinear::upload(gpu, name, &[l], bf16);
        let norm = |name: &str, t: &chronos2::weights::Tensor| gpu.upload(t.data(), name);
        let blocks = weights
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let name = format!("the weights of block {i}");
                Ok(DeviceBlock {
                    time_qkv: stacked(&name, &b.time_attention)?,
                    time_o: single(&name, &b.time_attention.o)?,
                    group_qkv: stacked(&name, &b.group_attention)?,
                    group_o: single(&name, &b.group_attention.o)?,
                    wi: single(&name, &b.wi)?,
                    wo: single(&name, &b.wo)?,
                    time_norm: norm(&name, &b.time_norm)?,
                    group_norm: norm(&name, &b.group_norm)?,
                    ffn_norm: norm(&name, &b.ffn_norm)?,
                })
            })
            .collect::<Result<Vec<_>, CudaError>>()?;
        Ok(Self {
            input: DeviceResidual::upload(gpu, "the input embedding", &weights.input_embedding)?,
            output: DeviceResidual::upload(gpu, "the output head", &weights.output_embedding)?,
            blocks,
            final_norm: norm("the final norm", &weights.final_norm)?,
            reg: weights
                .reg_token()
                .map(|r| gpu.upload(r, "the REG token"))
                .transpose()?,
            d_model: weights.final_norm.data().len(),
            bf16,
        })
    }

    /// The device operands of `layer`.
    pub fn layer(&self, gpu: &Gpu, layer: Layer) -> LayerRef {
        let blocks = &self.blocks;
        match layer {
            Layer::InputEmbedding(p) => self.input.part(p).all(gpu),
            Layer::OutputHead(p) => self.output.part(p).all(gpu),
            Layer::TimeQkv(i) => blocks[i].time_qkv.all(gpu),
            Layer::TimeOutput(i) => blocks[i].time_o.all(gpu),
            Layer::GroupQkv(i) => blocks[i].group_qkv.all(gpu),
            Layer::GroupValue(i) => {
                let qkv = &blocks[i].group_qkv;
                let inner = qkv.out / 3;
                qkv.rows(gpu, 2 * inner, inner)
            }
            Layer::GroupOutput(i) => blocks[i].group_o.all(gpu),
            Layer::FeedForwardIn(i) => blocks[i].wi.all(gpu),
            Layer::FeedForwardOut(i) => blocks[i].wo.all(gpu),
        }
    }

    /// The gain of `norm`.
    pub fn norm(&self, gpu: &Gpu, norm: chronos2::executor::Norm) -> u64 {
        use chronos2::executor::Norm;
        let weight = match norm {
            Norm::Time(i) => &self.blocks[i].time_norm,
            Norm::Group(i) => &self.blocks[i].group_norm,
            Norm::FeedForward(i) => &self.blocks[i].ffn_norm,
            Norm::Final => &self.final_norm,
        };
        gpu.address(weight)
    }

    /// The REG token's embedding, if the model has one.
    pub fn reg_token(&self, gpu: &Gpu) -> Option<u64> {
        self.reg.as_ref().map(|r| gpu.address(r))
    }

    /// Hidden size D.
    pub fn d_model(&self) -> usize {
        self.d_model
    }

    /// Whether the encoder blocks' layers are in bf16.
    pub fn bf16(&self) -> bool {
        self.bf16
    }

    /// Bytes held on the device.
    pub fn bytes(&self) -> usize {
        let residual = |r: &DeviceResidual| r.hidden.bytes() + r.output.bytes() + r.residual.bytes();
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| {
                [&b.time_qkv, &b.time_o, &b.group_qkv, &b.group_o, &b.wi, &b.wo]
                    .iter()
                    .map(|l| l.bytes())
                    .sum::<usize>()
                    + 4 * (b.time_norm.len() + b.group_norm.len() + b.ffn_norm.len())
            })
            .sum();
        residual(&self.input) + residual(&self.output) + blocks + 4 * self.final_norm.len()
    }
}
