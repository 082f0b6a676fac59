//! [`CudaExecutor`]: the model description's kernel interface ([`Executor`]) on one GPU. Spans
//! are offsets into the bucket's device arena; matrix products go to cuBLAS, the rest to the
//! NVRTC kernels; the host steps go through a staging buffer and one copy each way.
//!
//! The trait's methods return nothing, so the first GPU error is kept and every later call
//! is skipped; the caller collects it with [`CudaExecutor::finish`].

use chronos2::encoder::{Activations, Pass};
use chronos2::executor::{Executor, GroupLayout, Layer, Norm, Span};
use chronos2::patching::LocScale;
use chronos2::Config;
use chronos2_kernels::ops::RopeTable;
use cudarc::driver::CudaSlice;

use crate::error::CudaError;
use crate::gpu::{Gpu, GroupIndex, Operand};
use crate::weights::DeviceWeights;

/// The device memory of one shape bucket, allocated once: the arena of the pass's
/// [`Activations`], its RoPE tables and group layout, bf16 scratch, and the host staging
/// buffers of the input and output.
pub(crate) struct BucketMemory {
    /// Where the buffers are in `arena`.
    pub acts: Activations,
    arena: CudaSlice<f32>,
    cos: CudaSlice<f32>,
    sin: CudaSlice<f32>,
    /// Positions the RoPE tables cover.
    positions: usize,
    groups: GroupIndex,
    /// The widest input of a bf16 layer, as bf16 bits (one value in f32).
    rounded: CudaSlice<u16>,
    /// Host staging of the input (`write_host`) and the output (`read_host`).
    staging: Vec<f32>,
    /// Instance-norm location and scale per row (host side).
    pub stats: Vec<LocScale>,
}

impl BucketMemory {
    /// Bytes of device memory a bucket of `pass` takes.
    pub fn bytes(config: &Config, pass: &Pass, rounded: usize) -> usize {
        Activations::new(config, pass).floats() * 4 + 2 * pass.rope.cos().len() * 4 + 3 * pass.rows * 4 + rounded * 2
    }

    /// Bf16 scratch values `pass` needs in `weights`' precision.
    pub fn rounded_len(config: &Config, pass: &Pass, weights: &DeviceWeights) -> usize {
        if weights.bf16() {
            pass.rows * pass.tokens * config.d_model.max(config.inner_dim()).max(config.d_ff)
        } else {
            1
        }
    }

    /// Allocates everything for `pass`.
    ///
    /// # Errors
    /// [`CudaError::Memory`] naming the bucket if it does not fit; driver errors.
    pub fn new(gpu: &Gpu, config: &Config, pass: &Pass, weights: &DeviceWeights) -> Result<Self, CudaError> {
        let acts = Activations::new(config, pass);
        let what = format!("a bucket of {} rows x {} tokens", pass.rows, pass.tokens);
        let rounded_len = Self::rounded_len(config, pass, weights);
        let needed = Self::bytes(config, pass, rounded_len);
        let (free, _) = gpu.memory()?;
        if needed > free {
            return Err(CudaError::Memory { what, needed, free });
        }
        Ok(Self {
            arena: gpu.alloc(acts.floats(), &what)?,
            cos: gpu.upload(pass.rope.cos(), &what)?,
            sin: gpu.upload(pass.rope.sin(), &what)?,
            positions: pass.rope.positions(),
            groups: GroupIndex::new(gpu, pass.layout.first_rows())?,
            rounded: gpu.alloc(rounded_len, &what)?,
            staging: Vec::new(),
            stats: vec![LocScale { loc: 0.0, scale: 1.0 }; pass.rows],
            acts,
        })
    }
}

/// The kernels of one call on one bucket.
pub(crate) struct CudaExecutor<'a> {
    gpu: &'a Gpu,
    weights: &'a DeviceWeights,
    config: &'a Config,
    arena: u64,
    cos: u64,
    sin: u64,
    positions: usize,
    groups: &'a GroupIndex,
    rounded: (u64, usize),
    staging: &'a mut Vec<f32>,
    error: Option<CudaError>,
}

impl<'a> CudaExecutor<'a> {
    /// The executor over `memory` (its stats stay with the caller).
    pub fn new(
        gpu: &'a Gpu,
        weights: &'a DeviceWeights,
        config: &'a Config,
        memory: &'a mut BucketMemory,
    ) -> (Self, &'a mut [LocScale], Activations) {
        let exec = Self {
            gpu,
            weights,
            config,
            arena: gpu.address(&memory.arena),
            cos: gpu.address(&memory.cos),
            sin: gpu.address(&memory.sin),
            positions: memory.positions,
            groups: &memory.groups,
            rounded: (gpu.address(&memory.rounded), memory.rounded.len()),
            staging: &mut memory.staging,
            error: None,
        };
        (exec, &mut memory.stats, memory.acts)
    }

    /// The first error of the calls so far, if any (later calls were skipped).
    ///
    /// # Errors
    /// That error.
    pub fn finish(&mut self) -> Result<(), CudaError> {
        self.error.take().map_or(Ok(()), Err)
    }

    /// The device address of a span.
    fn at(&self, span: Span) -> u64 {
        self.arena + 4 * span.start as u64
    }

    /// Runs `step` unless an earlier step failed; keeps its error.
    fn run(&mut self, step: impl FnOnce(&Self) -> Result<(), CudaError>) {
        if self.error.is_none() {
            if let Err(e) = step(self) {
                self.error = Some(e);
            }
        }
    }
}

impl Executor for CudaExecutor<'_> {
    fn linear(&mut self, layer: Layer, x: Span, rows: usize, y: Span, accumulate: bool) {
        self.run(|e| {
            let l = e.weights.layer(e.gpu, layer);
            let input = match l.weight {
                Operand::F32(_) => Operand::F32(e.at(x)),
                Operand::Bf16(_) => {
                    let (scratch, capacity) = e.rounded;
                    let count = rows * l.input;
                    if count > capacity {
                        return Err(CudaError::Driver(format!(
                            "bf16 scratch of {capacity} values is too small for {count}"
                        )));
                    }
                    e.gpu.round_bf16(e.at(x), scratch, count)?;
                    Operand::Bf16(scratch)
                }
            };
            e.gpu
                .gemm(input, l.weight, rows, l.input, l.out, e.at(y), l.out, accumulate)?;
            match l.bias {
                Some(bias) => e.gpu.add_bias(e.at(y), bias, rows, l.out, l.out),
                None => Ok(()),
            }
        });
    }

    fn rms_norm(&mut self, norm: Norm, x: Span, out: Span) {
        self.run(|e| {
            let d = e.config.d_model;
            let weight = e.weights.norm(e.gpu, norm);
            e.gpu
                .rms_norm(e.at(x), e.at(out), weight, x.len / d, d, e.config.layer_norm_epsilon)
        });
    }

    fn relu(&mut self, x: Span) {
        self.run(|e| e.gpu.relu(e.at(x), x.len));
    }

    fn rope(&mut self, qkv: Span, rows: usize, tokens: usize, rope: &RopeTable) {
        self.run(|e| {
            if rope.positions() != e.positions || tokens > e.positions {
                return Err(CudaError::Driver(format!(
                    "RoPE tables of {} positions uploaded, {tokens} tokens asked",
                    e.positions
                )));
            }
            let (inner, dk) = (e.config.inner_dim(), e.config.d_kv);
            e.gpu.rope(e.at(qkv), e.cos, e.sin, rows * tokens, tokens, inner, dk)
        });
    }

    fn time_attention(&mut self, qkv: Span, key_mask: Span, rows: usize, tokens: usize, first_query: usize, ctx: Span) {
        self.run(|e| {
            let (heads, inner) = (e.config.num_heads, e.config.inner_dim());
            e.gpu.time_attention(
                e.at(qkv),
                e.at(key_mask),
                e.at(ctx),
                rows,
                heads,
                tokens,
                first_query,
                inner,
            )
        });
    }

    fn group_attention(
        &mut self,
        qkv: Span,
        _layout: &GroupLayout,
        key_mask: Option<Span>,
        rows: usize,
        tokens: usize,
        ctx: Span,
    ) {
        // The layout is the pass's, uploaded with the bucket.
        self.run(|e| {
            let (heads, inner) = (e.config.num_heads, e.config.inner_dim());
            let mask = key_mask.map(|m| e.at(m));
            e.gpu
                .group_attention(e.at(qkv), mask, e.groups, e.at(ctx), rows, heads, tokens, inner)
        });
    }

    fn copy_rows(&mut self, src: Span, src_stride: usize, dst: Span, dst_stride: usize, rows: usize, width: usize) {
        self.run(|e| {
            e.gpu
                .copy_rows(e.at(src), src_stride, e.at(dst), dst_stride, rows, width)
        });
    }

    fn reg_token(&mut self, dst: Span, rows: usize, stride: usize) {
        self.run(|e| match e.weights.reg_token(e.gpu) {
            Some(reg) => e.gpu.copy_rows(reg, 0, e.at(dst), stride, rows, e.weights.d_model()),
            None => Ok(()),
        });
    }

    fn write_host<const N: usize, R>(&mut self, spans: [Span; N], write: impl FnOnce([&mut [f32]; N]) -> R) -> R {
        let total = spans.iter().map(|s| s.len).sum();
        if self.staging.len() < total {
            self.staging.resize(total, 0.0);
        }
        let result = write(split_lengths(&mut self.staging[..total], spans.map(|s| s.len)));
        let mut offset = 0;
        for span in spans {
            let values = &self.staging[offset..offset + span.len];
            let (gpu, at) = (self.gpu, self.at(span));
            if self.error.is_none() {
                if let Err(e) = gpu.write(at, values) {
                    self.error = Some(e);
                }
            }
            offset += span.len;
        }
        result
    }

    fn read_host<R>(&mut self, span: Span, read: impl FnOnce(&[f32]) -> R) -> R {
        if self.staging.len() < span.len {
            self.staging.resize(span.len, 0.0);
        }
        let (gpu, at) = (self.gpu, self.at(span));
        if self.error.is_none() {
            if let Err(e) = gpu.read(at, &mut self.staging[..span.len]) {
                self.error = Some(e);
            }
        }
        read(&self.staging[..span.len])
    }
}

/// `buffer` cut into consecutive slices of `lengths` (which must sum to at most its length).
fn split_lengths<const N: usize>(mut buffer: &mut [f32], lengths: [usize; N]) -> [&mut [f32]; N] {
    lengths.map(|len| {
        let (head, tail) = std::mem::take(&mut buffer).split_at_mut(len);
        buffer = tail;
        head
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_is_cut_in_span_order() {
        let mut buffer: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let [a, b, c] = split_lengths(&mut buffer, [1, 3, 2]);
        assert_eq!(
            (&a[..], &b[..], &c[..]),
            (&[0.0][..], &[1.0, 2.0, 3.0][..], &[4.0, 5.0][..])
        );
    }
}
