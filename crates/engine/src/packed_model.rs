//! The model's weights prepared once, at load, for the planned executor: every linear layer
//! repacked into GEMM panels ([`PackedWeight`], or [`PackedBf16`] for the encoder blocks in
//! bf16), Q/K/V stacked into one matrix per attention layer when fusion is on, norms and the
//! REG token copied out of the checkpoint.
//!
//! Every matrix has a name (`blocks.3.time_qkv`, `input.hidden`, ...) and is made by a
//! [`MatrixSource`]: packed now from the checkpoint ([`pack`]), or taken from a compile-cache
//! entry written by an earlier process ([`crate::cache`]). Biases, norms and the REG token are
//! small and always copied from the checkpoint.

use std::sync::{Arc, Mutex};

use chronos2::executor::Precision;
use chronos2::weights::{Attention, EncoderBlock, Linear, ResidualBlock, Weights};
use chronos2_kernels::bf16::{packed_bf16_pays, round_bf16, PackedBf16};
use chronos2_kernels::int8::PackedInt8;
use chronos2_kernels::packed::PackedWeight;
use chronos2_kernels::pool::Pool;
use chronos2_kernels::storage::{Plain, SharedBuffer, Storage, StorageError};

/// The weight a matrix is packed from: one checkpoint tensor, or several stacked along the
/// output dimension (fused Q, K and V). Only [`pack`] reads it; a cache hit never does.
pub(crate) enum Source<'a> {
    /// A row-major `[n, k]` tensor.
    Plain(&'a [f32]),
    /// Row-major `[n_i, k]` tensors stacked into one `[Σ n_i, k]` matrix.
    Stacked(Vec<&'a [f32]>),
}

/// One matrix to make: its name, where it comes from, its shape and precision.
pub(crate) struct MatrixRequest<'a> {
    /// Unique within the model (`blocks.3.time_qkv`).
    pub name: String,
    /// The checkpoint data to pack it from.
    pub source: Source<'a>,
    /// Output features.
    pub n: usize,
    /// Input features.
    pub k: usize,
    /// The layer's precision.
    pub precision: Precision,
}

/// Makes matrices: packs them ([`pack`]) or reads them from a cache entry. Called from several
/// threads at once (one block per task).
pub(crate) type MatrixSource<'s> = dyn Fn(MatrixRequest<'_>) -> Result<PackedMatrix, String> + Sync + 's;

/// The [`MatrixSource`] that packs from the checkpoint.
pub(crate) fn pack(request: MatrixRequest<'_>) -> Result<PackedMatrix, String> {
    let (n, k) = (request.n, request.k);
    Ok(match request.source {
        Source::Plain(weight) => PackedMatrix::new(weight, n, k, request.precision),
        Source::Stacked(parts) => {
            let stacked: Vec<f32> = parts.iter().flat_map(|part| part.iter().copied()).collect();
            PackedMatrix::new(&stacked, n, k, request.precision)
        }
    })
}

/// What a matrix in `precision` is stored as on this machine.
pub(crate) fn layout_for(precision: Precision) -> MatrixLayout {
    match precision {
        Precision::Float32 => MatrixLayout::F32,
        Precision::BFloat16 if packed_bf16_pays() => MatrixLayout::Bf16,
        Precision::BFloat16 => MatrixLayout::Bf16InF32,
        Precision::Int8 => MatrixLayout::Int8,
    }
}

/// The storage layouts of [`PackedMatrix`], by name (as a cache entry records them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum MatrixLayout {
    /// [`PackedMatrix::F32`].
    F32,
    /// [`PackedMatrix::Bf16`].
    Bf16,
    /// [`PackedMatrix::Bf16InF32`].
    Bf16InF32,
    /// [`PackedMatrix::Int8`].
    Int8,
}

/// A weight matrix in the layout of its precision.
pub(crate) enum PackedMatrix {
    /// f32 panels.
    F32(PackedWeight),
    /// bf16 pair panels.
    Bf16(PackedBf16),
    /// bf16-rounded weights in f32 panels (bf16 layers where bf16 kernels do not pay; see
    /// [`packed_bf16_pays`]); the inputs are rounded to bf16 before the f32 product.
    Bf16InF32(PackedWeight),
    /// int8 panels with per-column scales; the inputs are quantized per row.
    Int8(PackedInt8),
}

impl PackedMatrix {
    /// Packs a row-major `[n, k]` weight in `precision`.
    fn new(weight: &[f32], n: usize, k: usize, precision: Precision) -> Self {
        match layout_for(precision) {
            MatrixLayout::F32 => Self::F32(PackedWeight::new(weight, n, k)),
            MatrixLayout::Bf16 => Self::Bf16(PackedBf16::new(weight, n, k)),
            MatrixLayout::Bf16InF32 => {
                let rounded: Vec<f32> = weight[..n * k].iter().map(|&v| round_bf16(v)).collect();
                Self::Bf16InF32(PackedWeight::new(&rounded, n, k))
            }
            MatrixLayout::Int8 => Self::Int8(PackedInt8::new(weight, n, k)),
        }
    }

    /// The matrix from its parts' bytes (as [`parts`](Self::parts) gives them), each part
    /// `(buffer, byte offset, byte length)` in a shared buffer.
    ///
    /// # Errors
    /// If the number of parts, a length or an alignment does not fit the layout and shape.
    pub fn from_parts(
        layout: MatrixLayout,
        n: usize,
        k: usize,
        parts: &[(SharedBuffer, usize, usize)],
    ) -> Result<Self, String> {
        fn view<T: Plain>(part: &(SharedBuffer, usize, usize)) -> Result<Storage<T>, StorageError> {
            let (buffer, offset, bytes) = part;
            Storage::shared(Arc::clone(buffer), *offset, bytes / size_of::<T>())
        }
        let result = match (layout, parts) {
            (MatrixLayout::F32, [data]) => view(data)
                .and_then(|d| PackedWeight::from_packed(d, n, k))
                .map(Self::F32),
            (MatrixLayout::Bf16InF32, [data]) => view(data)
                .and_then(|d| PackedWeight::from_packed(d, n, k))
                .map(Self::Bf16InF32),
            (MatrixLayout::Bf16, [data]) => view(data)
                .and_then(|d| PackedBf16::from_packed(d, n, k))
                .map(Self::Bf16),
            (MatrixLayout::Int8, [data, scales, offsets]) => {
                (|| PackedInt8::from_parts(view(data)?, view(scales)?, view(offsets)?, n, k))().map(Self::Int8)
            }
            _ => return Err(format!("{} parts do not make a {layout:?} matrix", parts.len())),
        };
        result.map_err(|e| e.to_string())
    }

    /// The storage layout.
    pub fn layout(&self) -> MatrixLayout {
        match self {
            Self::F32(_) => MatrixLayout::F32,
            Self::Bf16(_) => MatrixLayout::Bf16,
            Self::Bf16InF32(_) => MatrixLayout::Bf16InF32,
            Self::Int8(_) => MatrixLayout::Int8,
        }
    }

    /// The packed arrays' bytes (native endianness), as a cache entry stores them.
    pub fn parts(&self) -> Vec<&[u8]> {
        match self {
            Self::F32(w) | Self::Bf16InF32(w) => vec![w.packed().as_bytes()],
            Self::Bf16(w) => vec![w.packed().as_bytes()],
            Self::Int8(w) => {
                let (data, scales, offsets) = w.parts();
                vec![data.as_bytes(), scales.as_bytes(), offsets.as_bytes()]
            }
        }
    }

    /// Output features n.
    pub fn n(&self) -> usize {
        match self {
            Self::F32(w) | Self::Bf16InF32(w) => w.n(),
            Self::Bf16(w) => w.n(),
            Self::Int8(w) => w.n(),
        }
    }

    /// Input features k.
    pub fn k(&self) -> usize {
        match self {
            Self::F32(w) | Self::Bf16InF32(w) => w.k(),
            Self::Bf16(w) => w.k(),
            Self::Int8(w) => w.k(),
        }
    }

    /// Bytes held.
    fn bytes(&self) -> usize {
        match self {
            Self::F32(w) | Self::Bf16InF32(w) => w.bytes(),
            Self::Bf16(w) => w.bytes(),
            Self::Int8(w) => w.bytes(),
        }
    }
}

/// A packed linear layer with its bias.
pub(crate) struct PackedLinear {
    pub weight: PackedMatrix,
    pub bias: Option<Vec<f32>>,
}

impl PackedLinear {
    fn new(name: String, layer: &Linear, precision: Precision, make: &MatrixSource<'_>) -> Result<Self, String> {
        Ok(Self {
            weight: make(MatrixRequest {
                name,
                source: Source::Plain(layer.weight.data()),
                n: layer.out_dim(),
                k: layer.in_dim(),
                precision,
            })?,
            bias: layer.bias.as_ref().map(|b| b.data().to_vec()),
        })
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
    /// The matrices of `attention`, named `{name}_q`, `_k`, `_v` (and `{name}_qkv` when fused).
    fn new(
        name: &str,
        attention: &Attention,
        fused: bool,
        precision: Precision,
        make: &MatrixSource<'_>,
    ) -> Result<Self, String> {
        let v = PackedLinear::new(format!("{name}_v"), &attention.v, precision, make)?;
        if !fused {
            let q = PackedLinear::new(format!("{name}_q"), &attention.q, precision, make)?;
            let k = PackedLinear::new(format!("{name}_k"), &attention.k, precision, make)?;
            return Ok(Self::Separate([q, k, v]));
        }
        let parts = [&attention.q, &attention.k, &attention.v];
        let qkv = make(MatrixRequest {
            name: format!("{name}_qkv"),
            source: Source::Stacked(parts.iter().map(|layer| layer.weight.data()).collect()),
            n: parts.iter().map(|layer| layer.out_dim()).sum(),
            k: attention.q.in_dim(),
            precision,
        })?;
        Ok(Self::Fused {
            qkv: PackedLinear {
                weight: qkv,
                bias: None,
            },
            v,
        })
    }

    /// The matrices with their name suffixes.
    fn matrices(&self) -> Vec<(&'static str, &PackedMatrix)> {
        match self {
            Self::Fused { qkv, v } => vec![("_v", &v.weight), ("_qkv", &qkv.weight)],
            Self::Separate([q, k, v]) => vec![("_v", &v.weight), ("_q", &q.weight), ("_k", &k.weight)],
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
    fn new(name: &str, block: &ResidualBlock, make: &MatrixSource<'_>) -> Result<Self, String> {
        let f32 = |part: &str, layer| PackedLinear::new(format!("{name}.{part}"), layer, Precision::Float32, make);
        Ok(Self {
            hidden: f32("hidden", &block.hidden)?,
            output: f32("output", &block.output)?,
            residual: f32("residual", &block.residual)?,
        })
    }

    /// The matrices with their names.
    fn matrices(&self, name: &str) -> Vec<(String, &PackedMatrix)> {
        [
            ("hidden", &self.hidden),
            ("output", &self.output),
            ("residual", &self.residual),
        ]
        .into_iter()
        .map(|(part, layer)| (format!("{name}.{part}"), &layer.weight))
        .collect()
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
    fn new(
        index: usize,
        block: &EncoderBlock,
        fused: bool,
        precision: Precision,
        make: &MatrixSource<'_>,
    ) -> Result<Self, String> {
        let name = |part: &str| format!("blocks.{index}.{part}");
        let linear = |part: &str, layer| PackedLinear::new(name(part), layer, precision, make);
        Ok(Self {
            time_norm: block.time_norm.data().to_vec(),
            time_qkv: PackedQkv::new(&name("time"), &block.time_attention, fused, precision, make)?,
            time_o: linear("time_o", &block.time_attention.o)?,
            group_norm: block.group_norm.data().to_vec(),
            group_qkv: PackedQkv::new(&name("group"), &block.group_attention, fused, precision, make)?,
            group_o: linear("group_o", &block.group_attention.o)?,
            ffn_norm: block.ffn_norm.data().to_vec(),
            wi: linear("wi", &block.wi)?,
            wo: linear("wo", &block.wo)?,
        })
    }

    /// The matrices with their names.
    fn matrices(&self, index: usize) -> Vec<(String, &PackedMatrix)> {
        let name = |part: &str| format!("blocks.{index}.{part}");
        let mut all: Vec<(String, &PackedMatrix)> = Vec::new();
        for (prefix, qkv) in [("time", &self.time_qkv), ("group", &self.group_qkv)] {
            all.extend(qkv.matrices().into_iter().map(|(suffix, m)| (name(prefix) + suffix, m)));
        }
        for (part, layer) in [
            ("time_o", &self.time_o),
            ("group_o", &self.group_o),
            ("wi", &self.wi),
            ("wo", &self.wo),
        ] {
            all.push((name(part), &layer.weight));
        }
        all
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
        match Self::build(weights, fused_qkv, precision, pool, &pack) {
            Ok(model) => model,
            Err(never) => unreachable!("packing cannot fail: {never}"),
        }
    }

    /// Makes every matrix with `make` (one block per task on `pool`), copying norms, biases
    /// and the REG token from `weights`.
    ///
    /// # Errors
    /// The first error of `make`.
    pub fn build(
        weights: &Weights,
        fused_qkv: bool,
        precision: Precision,
        pool: &Pool,
        make: &MatrixSource<'_>,
    ) -> Result<Self, String> {
        type Slot = Mutex<Option<Result<PackedBlock, String>>>;
        let slots: Vec<Slot> = weights.blocks.iter().map(|_| Mutex::new(None)).collect();
        pool.parallel_for(slots.len(), &|i| {
            let block = PackedBlock::new(i, &weights.blocks[i], fused_qkv, precision, make);
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(block);
        });
        let blocks = slots
            .into_iter()
            .filter_map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            reg: weights.reg_token().map(<[f32]>::to_vec),
            input: PackedResidual::new("input", &weights.input_embedding, make)?,
            blocks,
            final_norm: weights.final_norm.data().to_vec(),
            output: PackedResidual::new("output", &weights.output_embedding, make)?,
        })
    }

    /// Every matrix with its name (the names [`build`](Self::build) asks for).
    pub fn matrices(&self) -> Vec<(String, &PackedMatrix)> {
        let mut all = self.input.matrices("input");
        for (i, block) in self.blocks.iter().enumerate() {
            all.extend(block.matrices(i));
        }
        all.extend(self.output.matrices("output"));
        all
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
