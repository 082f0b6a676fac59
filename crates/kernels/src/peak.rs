//! What this machine's cores can do at most, measured, and the level each kernel family runs at.
//!
//! [`measure`] runs, for every instruction-set level the CPU has, a loop of the multiply-add
//! instruction the GEMM kernels of a precision are built on, with enough independent chains to
//! cover latency x throughput and nothing else in the loop:
//!
//! * f32: `VFMADD*PS` on ymm (AVX2+FMA) and zmm (AVX-512F);
//! * int8: `VPMADDUBSW` + `VPMADDWD` (by ones) + `VPADDD` on ymm (AVX2, the AVX2 int8 kernel's
//!   sequence: 32 multiply-adds per vector and step), `VPDPBUSD` on ymm (AVX-VNNI) and zmm
//!   (AVX512_VNNI);
//! * bf16: `VDPBF16PS` on zmm (AVX512_BF16); at the other levels the bf16 kernels widen to f32
//!   FMAs, so their peak is that level's f32 peak (reported again under bf16, not re-measured).
//!
//! Each loop runs on every thread of a [`Pool`] for a fixed short span, a few times, and the
//! best rate counts: no run can beat the hardware, so the best is the one least slowed by
//! other work on the machine. A peak is measured for every level the CPU has, whatever
//! `CHRONOS2_ISA` says; [`Peak::used`] marks the level the family's kernels run at (what
//! [`KernelLevels`] names).

use std::fmt;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::pool::Pool;
use crate::IsaLevel;

/// A precision of the GEMM kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// [`crate::packed`].
    F32,
    /// [`crate::bf16`].
    Bf16,
    /// [`crate::int8`].
    Int8,
}

impl Family {
    /// Every family, in report order.
    pub const ALL: [Family; 3] = [Family::F32, Family::Bf16, Family::Int8];

    /// The family's short name (`f32`, `bf16`, `int8`).
    pub fn name(self) -> &'static str {
        match self {
            Family::F32 => "f32",
            Family::Bf16 => "bf16",
            Family::Int8 => "int8",
        }
    }

    /// The unit of its rates (two operations per multiply-add): `GFLOP/s` or, for int8, `GOP/s`.
    pub fn unit(self) -> &'static str {
        match self {
            Family::Int8 => "GOP/s",
            Family::F32 | Family::Bf16 => "GFLOP/s",
        }
    }
}

/// One measured throughput loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loop {
    FmaAvx2,
    FmaAvx512,
    Int8Avx2,
    Int8AvxVnni,
    Int8Avx512Vnni,
    Bf16Avx512,
}

/// A loop's batch: `steps` steps, returning a value folded from every accumulator.
type Batch = unsafe fn(u64) -> f32;

impl Loop {
    const ALL: [Loop; 6] = [
        Loop::FmaAvx2,
        Loop::FmaAvx512,
        Loop::Int8Avx2,
        Loop::Int8AvxVnni,
        Loop::Int8Avx512Vnni,
        Loop::Bf16Avx512,
    ];

    fn family(self) -> Family {
        match self {
            Loop::FmaAvx2 | Loop::FmaAvx512 => Family::F32,
            Loop::Int8Avx2 | Loop::Int8AvxVnni | Loop::Int8Avx512Vnni => Family::Int8,
            Loop::Bf16Avx512 => Family::Bf16,
        }
    }

    /// The level, named as the kernels name theirs.
    fn level(self) -> &'static str {
        match self {
            Loop::FmaAvx2 => "avx2+fma",
            Loop::FmaAvx512 => "avx512f",
            Loop::Int8Avx2 => "avx2",
            Loop::Int8AvxVnni => "avx-vnni",
            Loop::Int8Avx512Vnni => "avx512vnni",
            Loop::Bf16Avx512 => "avx512bf16",
        }
    }

    fn instructions(self) -> &'static str {
        match self {
            Loop::FmaAvx2 => "VFMADD*PS ymm",
            Loop::FmaAvx512 => "VFMADD*PS zmm",
            Loop::Int8Avx2 => "VPMADDUBSW + VPMADDWD + VPADDD ymm",
            Loop::Int8AvxVnni => "VPDPBUSD ymm",
            Loop::Int8Avx512Vnni => "VPDPBUSD zmm",
            Loop::Bf16Avx512 => "VDPBF16PS zmm",
        }
    }

    /// Multiply-adds of one step (every chain once).
    fn macs_per_step(self) -> f64 {
        let (chains, per_vector) = match self {
            Loop::FmaAvx2 => (CHAINS, 8),
            Loop::FmaAvx512 => (CHAINS, 16),
            Loop::Int8Avx2 => (INT8_AVX2_CHAINS, 32),
            Loop::Int8AvxVnni | Loop::Bf16Avx512 => (CHAINS, 32),
            Loop::Int8Avx512Vnni => (CHAINS, 64),
        };
        (chains * per_vector) as f64
    }

    /// Whether this CPU runs the loop's instructions.
    fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Loop::FmaAvx2 => has!("avx2") && has!("fma"),
                Loop::FmaAvx512 => has!("avx512f"),
                Loop::Int8Avx2 => has!("avx2"),
                Loop::Int8AvxVnni => has!("avx2") && has!("avxvnni"),
                Loop::Int8Avx512Vnni => has!("avx512f") && has!("avx512vnni"),
                Loop::Bf16Avx512 => has!("avx512f") && has!("avx512bf16"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }

    /// The loop's batch function, only where this CPU runs it.
    fn batch(self) -> Option<Batch> {
        if !self.available() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        {
            Some(match self {
                Loop::FmaAvx2 => x86::fma_avx2,
                Loop::FmaAvx512 => x86::fma_avx512,
                Loop::Int8Avx2 => x86::int8_avx2,
                Loop::Int8AvxVnni => x86::int8_avx_vnni,
                Loop::Int8Avx512Vnni => x86::int8_avx512_vnni,
                Loop::Bf16Avx512 => x86::bf16_avx512,
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }
}

/// Independent accumulator chains of a loop: at least latency x throughput of every
/// multiply-add instruction measured (4-5 cycles x 2 per cycle), within 16 ymm registers.
const CHAINS: usize = 12;

/// Chains of the AVX2 int8 loop: each also needs a temporary, and `w` and the ones vector
/// stay in registers.
const INT8_AVX2_CHAINS: usize = 10;

/// How long one measurement of a loop runs on every thread.
const SPAN: Duration = Duration::from_millis(25);

/// Measurements per loop; the best counts.
const REPEATS: usize = 3;

/// Loop steps between two reads of the clock (some tens of microseconds).
const BATCH: u64 = 8192;

/// The measured peak of one family at one level.
#[derive(Clone, Debug, PartialEq)]
pub struct Peak {
    /// The kernel family.
    pub family: Family,
    /// The instruction-set level (`avx2+fma`, `avx512vnni`, ...).
    pub level: &'static str,
    /// What was measured, e.g. `VPDPBUSD zmm`, or for widening bf16 that it is the f32 peak.
    pub measured: String,
    /// Giga multiply-adds per second, all threads together.
    pub gmacs: f64,
    /// Whether the family's kernels run at this level.
    pub used: bool,
}

impl Peak {
    /// The rate in the family's [unit](Family::unit): two operations per multiply-add.
    pub fn rate(&self) -> f64 {
        2.0 * self.gmacs
    }
}

/// Measures the peak of every level this CPU has on every thread of `pool` (some 0.1 s per
/// level), f32 first, then bf16, then int8.
pub fn measure(pool: &Pool) -> Vec<Peak> {
    measure_where(pool, &|_| true)
}

/// [`measure`] restricted to the loops `allowed` admits (and this CPU runs).
fn measure_where(pool: &Pool, allowed: &dyn Fn(Loop) -> bool) -> Vec<Peak> {
    let levels = KernelLevels::current();
    let used = |family: Family, level: &str| used_level(family, levels.of(family)) == Some(level);
    let mut f32_peaks = Vec::new();
    let mut others = Vec::new();
    for kind in Loop::ALL.into_iter().filter(|&l| allowed(l)) {
        let Some(gmacs) = kind.batch().map(|batch| best_rate(pool, kind.macs_per_step(), batch)) else {
            continue;
        };
        let (family, level) = (kind.family(), kind.level());
        let peak = Peak {
            family,
            level,
            measured: kind.instructions().to_string(),
            gmacs,
            used: used(family, level),
        };
        if family == Family::F32 {
            f32_peaks.push(peak);
        } else {
            others.push(peak);
        }
    }
    // Widening bf16 runs on f32 FMAs: the f32 peaks again, under bf16.
    let widened: Vec<Peak> = f32_peaks
        .iter()
        .map(|p| Peak {
            family: Family::Bf16,
            level: p.level,
            measured: format!("{} (bf16 widened to f32: the f32 peak)", p.measured),
            gmacs: p.gmacs,
            used: used(Family::Bf16, p.level),
        })
        .collect();
    let mut all = f32_peaks;
    all.extend(others.iter().filter(|p| p.family == Family::Bf16).cloned());
    all.extend(widened);
    all.extend(others.into_iter().filter(|p| p.family == Family::Int8));
    all
}

/// The peak level (as [`Loop::level`] names it) of a family's kernels named `kernel`, if it
/// runs at one (not the scalar kernels).
fn used_level(family: Family, kernel: &str) -> Option<&'static str> {
    let name: String = kernel
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let keys: &[(&str, &'static str)] = match family {
        Family::F32 => &[("avx512", "avx512f"), ("avx2", "avx2+fma")],
        Family::Bf16 => &[
            ("avx512bf16", "avx512bf16"),
            ("avx512", "avx512f"),
            ("avx2", "avx2+fma"),
        ],
        Family::Int8 => &[("avx512vnni", "avx512vnni"), ("avxvnni", "avx-vnni"), ("avx2", "avx2")],
    };
    keys.iter().find(|(key, _)| name.contains(key)).map(|&(_, level)| level)
}

/// The best of [`REPEATS`] measurements of a loop, in giga multiply-adds per second.
fn best_rate(pool: &Pool, macs_per_step: f64, batch: Batch) -> f64 {
    (0..REPEATS)
        .map(|_| rate_once(pool, macs_per_step, batch))
        .fold(0.0, f64::max)
}

/// One measurement: every thread runs batches until a common deadline; all their steps over
/// the wall time.
fn rate_once(pool: &Pool, macs_per_step: f64, batch: Batch) -> f64 {
    let steps = AtomicU64::new(0);
    let started = Instant::now();
    let deadline = started + SPAN;
    pool.parallel_for(pool.threads(), &|_| {
        let mut done = 0;
        let mut kept = 0.0f32;
        loop {
            // SAFETY: `batch` comes from `Loop::batch`, which returns only loops whose target
            // features this CPU has; the batch functions touch no memory but their own locals.
            kept += unsafe { batch(BATCH) };
            done += BATCH;
            if Instant::now() >= deadline {
                break;
            }
        }
        black_box(kept);
        steps.fetch_add(done, Ordering::Relaxed);
    });
    let seconds = started.elapsed().as_secs_f64();
    steps.into_inner() as f64 * macs_per_step / seconds / 1e9
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The throughput loops. Every chain's accumulator feeds its next step, the starting values
    //! come through `black_box` (so the compiler can neither merge equal chains nor fold the
    //! loop), and the result folds every accumulator.

    use super::{CHAINS, INT8_AVX2_CHAINS};
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// `$n` accumulators set by `$set1` from opaque seeds, then `$steps` rounds of `a = $step`
    /// on each (`a` the accumulator's old value): the measured loop of every throughput
    /// function, inlined into it so that it is compiled with that function's instruction set.
    macro_rules! chains {
        ($steps:expr, $n:expr, $seed:expr, $set1:ident, |$a:ident| $step:expr) => {{
            let seeds = black_box([$seed; $n]);
            let mut acc = [$set1($seed); $n];
            for (slot, &s) in acc.iter_mut().zip(&seeds) {
                *slot = $set1(s);
            }
            for _ in 0..$steps {
                for slot in acc.iter_mut() {
                    let $a = *slot;
                    *slot = $step;
                }
            }
            acc
        }};
    }

    /// `steps` x [`CHAINS`] `VFMADD*PS ymm` (`acc = acc · 0.5 + 1`, converging to 2: no
    /// overflow, no subnormals).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma_avx2(steps: u64) -> f32 {
        let (half, one) = (_mm256_set1_ps(black_box(0.5)), _mm256_set1_ps(black_box(1.0)));
        let acc = chains!(steps, CHAINS, 0.25f32, _mm256_set1_ps, |a| _mm256_fmadd_ps(
            a, half, one
        ));
        let mut sum = _mm256_setzero_ps();
        for a in acc {
            sum = _mm256_add_ps(sum, a);
        }
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
        lanes.iter().sum()
    }

    /// `steps` x [`CHAINS`] `VFMADD*PS zmm`, as [`fma_avx2`].
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma_avx512(steps: u64) -> f32 {
        let (half, one) = (_mm512_set1_ps(black_box(0.5)), _mm512_set1_ps(black_box(1.0)));
        let acc = chains!(steps, CHAINS, 0.25f32, _mm512_set1_ps, |a| _mm512_fmadd_ps(
            a, half, one
        ));
        let mut sum = _mm512_setzero_ps();
        for a in acc {
            sum = _mm512_add_ps(sum, a);
        }
        _mm512_reduce_add_ps(sum)
    }

    /// `steps` x [`INT8_AVX2_CHAINS`] of the AVX2 int8 kernel's sequence: `VPMADDUBSW` (32
    /// unsigned x signed byte products summed in pairs), `VPMADDWD` by ones (pairs of those
    /// summed to i32), `VPADDD` into the accumulator, whose bytes are the next unsigned operand.
    /// Saturation and wrapping are harmless here.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn int8_avx2(steps: u64) -> f32 {
        let (w, ones) = (_mm256_set1_epi8(black_box(3)), _mm256_set1_epi16(black_box(1)));
        let acc = chains!(steps, INT8_AVX2_CHAINS, 1i32, _mm256_set1_epi32, |a| {
            let pairs = _mm256_maddubs_epi16(a, w);
            _mm256_add_epi32(a, _mm256_madd_epi16(pairs, ones))
        });
        fold_epi32_avx2(&acc)
    }

    /// `steps` x [`CHAINS`] `VPDPBUSD ymm` (VEX-encoded AVX-VNNI): 32 byte products summed
    /// into 8 i32 lanes per instruction.
    ///
    /// # Safety
    /// The CPU must support AVX2 and AVX-VNNI.
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) unsafe fn int8_avx_vnni(steps: u64) -> f32 {
        let (x, w) = (_mm256_set1_epi8(black_box(3)), _mm256_set1_epi8(black_box(5)));
        let acc = chains!(steps, CHAINS, 1i32, _mm256_set1_epi32, |a| _mm256_dpbusd_avx_epi32(
            a, x, w
        ));
        fold_epi32_avx2(&acc)
    }

    /// The i32 lanes of `acc` summed (wrapping), as an f32.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn fold_epi32_avx2(acc: &[__m256i]) -> f32 {
        let mut sum = _mm256_setzero_si256();
        for &a in acc {
            sum = _mm256_add_epi32(sum, a);
        }
        let mut lanes = [0i32; 8];
        _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sum);
        lanes.iter().fold(0i32, |s, &v| s.wrapping_add(v)) as f32
    }

    /// `steps` x [`CHAINS`] `VPDPBUSD zmm`: 64 byte products summed into 16 i32 lanes per
    /// instruction.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX512_VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn int8_avx512_vnni(steps: u64) -> f32 {
        let (x, w) = (_mm512_set1_epi8(black_box(3)), _mm512_set1_epi8(black_box(5)));
        let acc = chains!(steps, CHAINS, 1i32, _mm512_set1_epi32, |a| _mm512_dpbusd_epi32(a, x, w));
        let mut sum = _mm512_setzero_si512();
        for a in acc {
            sum = _mm512_add_epi32(sum, a);
        }
        _mm512_reduce_add_epi32(sum) as f32
    }

    /// `steps` x [`CHAINS`] `VDPBF16PS zmm`: 32 bf16 products summed into 16 f32 lanes per
    /// instruction (each step adds 2^-19 to every lane: no overflow).
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX512_BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn bf16_avx512(steps: u64) -> f32 {
        let v = _mm512_set1_ps(black_box(1.0 / 1024.0));
        let x = _mm512_cvtne2ps_pbh(v, v);
        let acc = chains!(steps, CHAINS, 0.25f32, _mm512_set1_ps, |a| _mm512_dpbf16_ps(a, x, x));
        let mut sum = _mm512_setzero_ps();
        for a in acc {
            sum = _mm512_add_ps(sum, a);
        }
        _mm512_reduce_add_ps(sum)
    }
}

/// The instruction set each kernel family runs at, as the kernels name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLevels {
    /// The f32 GEMM ([`crate::packed::isa_name`]).
    pub gemm_f32: &'static str,
    /// The path of bf16 layers ([`crate::bf16::path_name`]).
    pub gemm_bf16: &'static str,
    /// The int8 GEMM ([`crate::int8::isa_name`]).
    pub gemm_int8: &'static str,
    /// The element-wise kernels ([`crate::ops::isa_name`]).
    pub element_wise: &'static str,
}

/// The bf16 entry of the start-up line of a run without bf16 layers.
const BF16_UNTIMED: &str = "bf16 or f32 panels (timed when a bf16 model loads)";

/// The start-up line when the kernels use no SIMD instruction set.
pub const NO_SIMD: &str =
    "no SIMD instruction set in use (CPU without AVX2+FMA, or CHRONOS2_ISA=scalar): scalar kernels, compiled mode will be slow";

impl KernelLevels {
    /// The levels on this machine (after `CHRONOS2_ISA`); for bf16 this times the panels
    /// once ([`crate::bf16::path_name`]).
    pub fn current() -> Self {
        Self::with_bf16(crate::bf16::path_name())
    }

    /// The levels, with `gemm_bf16` as given.
    fn with_bf16(gemm_bf16: &'static str) -> Self {
        Self {
            gemm_f32: crate::packed::isa_name(),
            gemm_bf16,
            gemm_int8: crate::int8::isa_name(),
            element_wise: crate::ops::isa_name(),
        }
    }

    /// The GEMM level of `family`.
    pub fn of(&self, family: Family) -> &'static str {
        match family {
            Family::F32 => self.gemm_f32,
            Family::Bf16 => self.gemm_bf16,
            Family::Int8 => self.gemm_int8,
        }
    }

    /// One line for the start-up log: `kernels gemm f32: ..., element-wise: ...`, or
    /// [`NO_SIMD`] when the kernels use no SIMD level ([`IsaLevel::active`] is scalar). The
    /// bf16 panels are timed only for a run that uses them (`bf16_in_use`); other runs say
    /// when that happens instead of spending the time at every start.
    pub fn startup_line(bf16_in_use: bool) -> String {
        if IsaLevel::active() == IsaLevel::Scalar {
            NO_SIMD.to_string()
        } else if bf16_in_use {
            format!("kernels {}", Self::current())
        } else {
            format!("kernels {}", Self::with_bf16(BF16_UNTIMED))
        }
    }
}

impl fmt::Display for KernelLevels {
    /// `gemm f32: <level>, bf16: <level>, int8: <level>, element-wise: <level>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gemm f32: {}, bf16: {}, int8: {}, element-wise: {}",
            self.gemm_f32, self.gemm_bf16, self.gemm_int8, self.element_wise
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measured_peak_is_finite_and_positive() {
        let pool = Pool::new(2);
        let peaks = measure(&pool);
        for peak in &peaks {
            assert!(peak.gmacs.is_finite() && peak.gmacs > 0.0, "{peak:?}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            for family in Family::ALL {
                assert!(
                    peaks.iter().any(|p| p.family == family),
                    "no {family:?} peak: {peaks:?}"
                );
            }
        }
        // The kernels run at at most one level per family.
        for family in Family::ALL {
            assert!(peaks.iter().filter(|p| p.family == family && p.used).count() <= 1);
        }
    }

    #[test]
    fn levels_the_cpu_lacks_are_not_reported() {
        let pool = Pool::new(1);
        let peaks = measure_where(&pool, &|_| true);
        for kind in Loop::ALL.into_iter().filter(|l| !l.available()) {
            assert!(
                !peaks
                    .iter()
                    .any(|p| p.family == kind.family() && p.level == kind.level()),
                "{kind:?} is not on this CPU but was reported: {peaks:?}"
            );
        }
        // A CPU with only the AVX2 int8 loop: no f32 (and so no widening bf16) peak.
        let peaks = measure_where(&pool, &|l| l == Loop::Int8Avx2);
        assert!(peaks.iter().all(|p| p.family == Family::Int8 && p.level == "avx2"));
        assert_eq!(peaks.len(), usize::from(Loop::Int8Avx2.available()));
    }

    #[test]
    fn kernel_names_map_to_their_peak_levels() {
        assert_eq!(used_level(Family::F32, "avx2+fma"), Some("avx2+fma"));
        assert_eq!(used_level(Family::F32, "avx512f"), Some("avx512f"));
        assert_eq!(used_level(Family::Bf16, "avx512bf16"), Some("avx512bf16"));
        assert_eq!(used_level(Family::Bf16, "avx512f (widening)"), Some("avx512f"));
        assert_eq!(used_level(Family::Bf16, "avx2+fma (widening)"), Some("avx2+fma"));
        assert_eq!(used_level(Family::Int8, "avx512vnni"), Some("avx512vnni"));
        assert_eq!(used_level(Family::Int8, "avx-vnni"), Some("avx-vnni"));
        assert_eq!(used_level(Family::Int8, "avx2 (widening)"), Some("avx2"));
        for family in Family::ALL {
            assert_eq!(used_level(family, "scalar"), None);
        }
    }

    #[test]
    fn kernel_levels_name_every_family() {
        let text = KernelLevels::current().to_string();
        for family in ["gemm f32: ", "bf16: ", "int8: ", "element-wise: "] {
            assert!(text.contains(family), "{text}");
        }
        assert!(KernelLevels::startup_line(false).contains(&format!(", bf16: {BF16_UNTIMED}, ")));
        let line = KernelLevels::startup_line(true);
        assert_eq!(
            line.starts_with("kernels gemm f32: "),
            IsaLevel::active() != IsaLevel::Scalar,
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
