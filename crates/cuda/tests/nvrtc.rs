//! Every kernel of `kernels.cu` compiles with NVRTC, for the real model's head size
//! and the tiny one's. Needs only NVRTC, no GPU: skipped with a one-line reason where
//! `libnvrtc.so.12` cannot be loaded (e.g. `pip install nvidia-cuda-nvrtc-cu12` and put its
//! `nvidia/cuda_nvrtc/lib` on LD_LIBRARY_PATH to run it on a CPU machine).

use chronos2::Config;
use chronos2_cuda::{compile_kernels, nvrtc_available, KERNEL_NAMES};

#[test]
fn every_kernel_compiles_with_nvrtc() {
    if !nvrtc_available() {
        eprintln!("skipped: NVRTC (libnvrtc.so.12) is not on the loader path");
        return;
    }
    for dk in [Config::chronos2().d_kv, Config::tiny().d_kv] {
        let ptx = compile_kernels(dk).unwrap_or_else(|e| panic!("head size {dk}: {e}"));
        let text = ptx.to_src();
        for name in KERNEL_NAMES {
            assert!(
                text.contains(&format!(".entry {name}(")),
                "head size {dk}: no PTX entry for {name}"
            );
        }
        // The attention kernels keep a query and its accumulator in registers: no kernel
        // spills an array to local memory.
        for body in text.split(".visible .entry ").skip(1) {
            let entry = body.split('(').next().unwrap_or_default();
            assert!(
                !body.contains("__local_depot"),
                "head size {dk}: {entry} uses local memory"
            );
        }
    }
}

#[test]
fn a_broken_source_is_reported_in_one_line() {
    if !nvrtc_available() {
        eprintln!("skipped: NVRTC (libnvrtc.so.12) is not on the loader path");
        return;
    }
    // An odd head size is fine for the compiler; a head size that is not a number is not.
    let err = compile_kernels_with("x").unwrap_err().to_string();
    assert!(
        err.starts_with("NVRTC could not compile the chronos2 kernels:"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The kernels with `DK` defined as `dk` (text), through the crate's compiler options.
fn compile_kernels_with(dk: &str) -> Result<(), chronos2_cuda::CudaError> {
    chronos2_cuda::compile_source(&format!("#define DK {dk}\n{}", chronos2_cuda::KERNEL_SOURCE)).map(|_| ())
}
