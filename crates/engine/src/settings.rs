//! Execution settings: eager or compiled, the compile mode, the backend, the dtype and the
//! thread count, from command-line flags and the original system's environment variables
//! (`TORCH_COMPILED`, `CHRONOS_COMPILE`, `CHRONOS_COMPILE_MODE`, `CHRONOS_COMPILE_BACKEND`,
//! `CHRONOS_DTYPE`). Flags beat variables; unknown values are errors.

use std::fmt;

use chronos2::executor::Precision;

use std::path::PathBuf;

use crate::cache::{self, CachePolicy};
use crate::device::Device;
use crate::EngineError;

/// Eager (op by op, the reference path) or compiled (planned, fused, preallocated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The readable reference path.
    Eager,
    /// The planned engine.
    Compiled,
}

/// What `CHRONOS_COMPILE_MODE` means in our engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileMode {
    /// Plans built on first use, at most [`CompileMode::plan_cache_limit`] kept (least
    /// recently used evicted), so memory stays bounded when shapes vary.
    Default,
    /// Every plan kept: no call after warm-up ever re-plans (static buffers, like CUDA graphs).
    ReduceOverhead,
    /// As `ReduceOverhead`, and each plan times its GEMMs single- and multi-threaded at build
    /// time and keeps the faster choice per layer shape.
    MaxAutotune,
}

impl CompileMode {
    /// Most plans kept at once.
    pub fn plan_cache_limit(self) -> usize {
        match self {
            Self::Default => 4,
            Self::ReduceOverhead | Self::MaxAutotune => usize::MAX,
        }
    }

    /// The variable's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::ReduceOverhead => "reduce-overhead",
            Self::MaxAutotune => "max-autotune",
        }
    }
}

/// Resolved execution settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Eager or compiled.
    pub mode: Mode,
    /// Compile mode (used when compiled).
    pub compile_mode: CompileMode,
    /// Backend name (`cpu`).
    pub backend: String,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Precision of the encoder blocks' linear layers (`--dtype`, `CHRONOS_DTYPE`).
    pub dtype: Precision,
    /// Notes about how the settings were resolved (aliases, defaults).
    pub notes: Vec<String>,
    /// Buckets to plan at load (`ROWSxCONTEXTxHORIZON,...`), compiled mode only.
    pub warmup: Option<String>,
    /// Where the model runs (`--device`, `CHRONOS_DEVICE`).
    pub device: Device,
    /// Compile-cache policy (`--compile-cache`, `CHRONOS_COMPILE_CACHE`), compiled mode only.
    pub compile_cache: CachePolicy,
    /// Compile-cache directory (`CHRONOS2_CACHE_DIR`, else the platform cache directory).
    pub cache_dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::Eager,
            compile_mode: CompileMode::ReduceOverhead,
            backend: "cpu".into(),
            threads: 0,
            dtype: Precision::Float32,
            notes: Vec::new(),
            warmup: None,
            device: Device::Cpu,
            compile_cache: CachePolicy::Prefer,
            cache_dir: None,
        }
    }
}

/// The settings as given on the command line (each overrides its variable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsFlags {
    /// `--mode eager|compiled`.
    pub mode: Option<String>,
    /// `--compile-mode`.
    pub compile_mode: Option<String>,
    /// `--backend`.
    pub backend: Option<String>,
    /// `--dtype`.
    pub dtype: Option<String>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--device`.
    pub device: Option<String>,
    /// `--compile-cache`.
    pub compile_cache: Option<String>,
}

/// The thread limit never goes below this, whatever the core count.
const MIN_THREAD_LIMIT: usize = 64;

/// Most worker threads `--threads` may ask for: 4 per core, at least [`MIN_THREAD_LIMIT`]
/// (each thread has its own stack and the pool joins them on every call).
pub fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.saturating_mul(4).max(MIN_THREAD_LIMIT)
}

fn parse_switch(name: &str, value: &str) -> Result<bool, EngineError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(EngineError::Settings(format!(
            "{name}={value:?} is not understood; use 1/true/yes/on for compiled or 0/false/no/off for eager"
        ))),
    }
}

/// The value of a flag, else of its variable, with the name to use in messages.
fn flag_or_env(
    flag: &Option<String>,
    flag_name: &'static str,
    env: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Option<(&'static str, String)> {
    match flag {
        Some(value) => Some((flag_name, value.clone())),
        None => env(variable).map(|value| (variable, value)),
    }
}

/// `Compiled` or `Eager` from a switch variable's value.
fn switch_mode(name: &str, value: &str) -> Result<Mode, EngineError> {
    Ok(if parse_switch(name, value)? {
        Mode::Compiled
    } else {
        Mode::Eager
    })
}

impl Settings {
    /// Resolves flags over the process environment.
    ///
    /// # Errors
    /// [`EngineError::Settings`] for an unknown value, naming the flag or variable.
    pub fn resolve(flags: &SettingsFlags) -> Result<Self, EngineError> {
        Self::resolve_with(flags, |name| std::env::var(name).ok())
    }

    /// As [`resolve`](Self::resolve), with `default` as the mode when neither `--mode` nor
    /// `TORCH_COMPILED` / `CHRONOS_COMPILE` chooses one (a precision comparison defaults to
    /// compiled mode).
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve).
    pub fn resolve_defaulting(flags: &SettingsFlags, default: Mode) -> Result<Self, EngineError> {
        Self::resolve_defaulting_with(flags, default, |name| std::env::var(name).ok())
    }

    /// Resolves flags over the variables `env` returns (testable without touching the
    /// process environment).
    ///
    /// # Errors
    /// [`EngineError::Settings`] for an unknown value, naming the flag or variable.
    pub fn resolve_with(flags: &SettingsFlags, env: impl Fn(&str) -> Option<String>) -> Result<Self, EngineError> {
        Self::resolve_defaulting_with(flags, Mode::Eager, env)
    }

    /// [`resolve_defaulting`](Self::resolve_defaulting) over the variables `env` returns.
    ///
    /// # Errors
    /// As [`resolve_with`](Self::resolve_with).
    pub fn resolve_defaulting_with(
        flags: &SettingsFlags,
        default: Mode,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, EngineError> {
        // A variable set to nothing (`TORCH_COMPILED=`) is unset, as in the shell idiom.
        let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let mut settings = Settings::default();
        settings.mode = match &flags.mode {
            Some(mode) => match mode.to_ascii_lowercase().as_str() {
                "eager" => Mode::Eager,
                "compiled" | "compile" => Mode::Compiled,
                _ => {
                    return Err(EngineError::Settings(format!(
                        "unknown --mode `{mode}`; expected eager or compiled"
                    )))
                }
            },
            None => match (env("TORCH_COMPILED"), env("CHRONOS_COMPILE")) {
                (Some(v), _) => switch_mode("TORCH_COMPILED", &v)?,
                (None, Some(v)) => {
                    settings
                        .notes
                        .push("CHRONOS_COMPILE is the legacy name of TORCH_COMPILED".into());
                    switch_mode("CHRONOS_COMPILE", &v)?
                }
                (None, None) => default,
            },
        };
        if let Some((source, value)) = flag_or_env(&flags.compile_mode, "--compile-mode", &env, "CHRONOS_COMPILE_MODE")
        {
            settings.compile_mode = match value.trim().to_ascii_lowercase().as_str() {
                "default" => CompileMode::Default,
                "reduce-overhead" => CompileMode::ReduceOverhead,
                "max-autotune" | "max-autotune-no-cudagraphs" => CompileMode::MaxAutotune,
                _ => {
                    return Err(EngineError::Settings(format!(
                        "{source}={value:?} is not a compile mode; expected default, reduce-overhead or max-autotune"
                    )))
                }
            };
        }
        if let Some((source, value)) = flag_or_env(&flags.backend, "--backend", &env, "CHRONOS_COMPILE_BACKEND") {
            match value.trim().to_ascii_lowercase().as_str() {
                "cpu" => {}
                "inductor" => settings
                    .notes
                    .push(format!("{source}=inductor is PyTorch's compiler; using our planned `cpu` backend instead")),
                _ => {
                    return Err(EngineError::Settings(format!(
                        "{source}={value:?} is not an available backend; this build has: cpu (inductor is accepted as an alias)"
                    )))
                }
            }
        }
        if let Some((source, value)) = flag_or_env(&flags.dtype, "--dtype", &env, "CHRONOS_DTYPE") {
            settings.dtype = match value.trim().to_ascii_lowercase().as_str() {
                "float32" | "fp32" | "f32" => Precision::Float32,
                "bfloat16" | "bf16" => Precision::BFloat16,
                "int8" | "i8" | "qint8" => Precision::Int8,
                "float16" | "fp16" | "f16" | "half" => {
                    return Err(EngineError::Settings(format!(
                        "{source}={value:?}: float16 is refused: its 5-bit exponent (largest value 65504) overflows on the residual stream of a 120M-parameter transformer and no CPU here multiplies fp16 natively; use bfloat16 (f32's exponent range, the same speed path)"
                    )))
                }
                _ => {
                    return Err(EngineError::Settings(format!(
                        "{source}={value:?} is not a dtype; expected float32, bfloat16 (also bf16) or int8"
                    )))
                }
            };
        }
        if let Some((source, value)) =
            flag_or_env(&flags.compile_cache, "--compile-cache", &env, "CHRONOS_COMPILE_CACHE")
        {
            settings.compile_cache = CachePolicy::parse(source, &value)?;
        }
        settings.cache_dir = cache::default_dir_with(|name| env(name).map(Into::into));
        if let Some((source, value)) = flag_or_env(&flags.device, "--device", &env, "CHRONOS_DEVICE") {
            settings.device = Device::parse(source, &value)?;
        }
        if settings.device != Device::Cpu && settings.dtype == Precision::Int8 {
            return Err(EngineError::Settings(format!(
                "--dtype int8 runs on the CPU only; with --device {} use float32 or bfloat16",
                settings.device.name()
            )));
        }
        settings.threads = flags.threads.unwrap_or(0);
        let limit = max_threads();
        if settings.threads > limit {
            return Err(EngineError::Settings(format!(
                "--threads {} is more than this machine can use (at most {limit}: 4 per core, at least {MIN_THREAD_LIMIT}); pass --threads 0 for all cores",
                settings.threads
            )));
        }
        Ok(settings)
    }
}

impl fmt::Display for Settings {
    /// One line, as the original logged its settings at start-up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let threads = if self.threads == 0 {
            "all cores".to_string()
        } else {
            self.threads.to_string()
        };
        match self.mode {
            Mode::Eager => write!(f, "mode=eager dtype={} threads={threads}", self.dtype.name()),
            Mode::Compiled => write!(
                f,
                "mode=compiled compile_mode={} backend={} dtype={} threads={threads} compile_cache={}",
                self.compile_mode.name(),
                self.backend,
                self.dtype.name(),
                self.compile_cache.name()
            ),
        }?;
        match self.device {
            Device::Cpu => Ok(()),
            gpu => write!(f, " device={}", gpu.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(flags: SettingsFlags, vars: &[(&str, &str)]) -> Result<Settings, EngineError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::resolve_with(&flags, |name| vars.get(name).cloned())
    }

    /// `TORCH_COMPILED=` (set to nothing) means unset, not an error.
    #[test]
    fn empty_variables_are_unset() {
        let s = resolve(
            SettingsFlags::default(),
            &[
                ("TORCH_COMPILED", ""),
                ("CHRONOS_COMPILE", "1"),
                ("CHRONOS_COMPILE_MODE", " "),
            ],
        )
        .unwrap();
        assert_eq!((s.mode, s.compile_mode), (Mode::Compiled, CompileMode::ReduceOverhead));
        assert_eq!(
            resolve(SettingsFlags::default(), &[("TORCH_COMPILED", "")])
                .unwrap()
                .mode,
            Mode::Eager
        );
    }

    /// `--threads 10000` is refused up front, naming the limit.
    #[test]
    fn too_many_threads_are_refused() {
        let flags = SettingsFlags {
            threads: Some(10_000),
            ..SettingsFlags::default()
        };
        let err = resolve(flags, &[]).unwrap_err().to_string();
        assert!(
            err.contains("--threads 10000") && err.contains(&max_threads().to_string()),
            "{err}"
        );
        let flags = SettingsFlags {
            threads: Some(2),
            ..SettingsFlags::default()
        };
        assert_eq!(resolve(flags, &[]).unwrap().threads, 2);
    }

    #[test]
    fn torch_compiled_values() {
        for on in ["1", "true", "YES", "On"] {
            assert_eq!(
                resolve(SettingsFlags::default(), &[("TORCH_COMPILED", on)])
                    .unwrap()
                    .mode,
                Mode::Compiled
            );
        }
        for off in ["0", "false", "No", "OFF"] {
            assert_eq!(
                resolve(SettingsFlags::default(), &[("TORCH_COMPILED", off)])
                    .unwrap()
                    .mode,
                Mode::Eager
            );
        }
        let err = resolve(SettingsFlags::default(), &[("TORCH_COMPILED", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("TORCH_COMPILED=\"maybe\""), "{err}");
        assert_eq!(resolve(SettingsFlags::default(), &[]).unwrap().mode, Mode::Eager);
    }

    #[test]
    fn legacy_alias_and_flags_beat_variables() {
        let s = resolve(SettingsFlags::default(), &[("CHRONOS_COMPILE", "1")]).unwrap();
        assert_eq!(s.mode, Mode::Compiled);
        assert!(s.notes[0].contains("legacy"));
        let flags = SettingsFlags {
            mode: Some("eager".into()),
            compile_mode: Some("max-autotune".into()),
            ..SettingsFlags::default()
        };
        let s = resolve(flags, &[("TORCH_COMPILED", "1"), ("CHRONOS_COMPILE_MODE", "default")]).unwrap();
        assert_eq!((s.mode, s.compile_mode), (Mode::Eager, CompileMode::MaxAutotune));
    }

    #[test]
    fn a_default_mode_yields_to_the_flag_and_both_variables() {
        let resolve = |flags: SettingsFlags, vars: &[(&str, &str)]| {
            Settings::resolve_defaulting_with(&flags, Mode::Compiled, |name| {
                vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
            })
            .unwrap()
            .mode
        };
        assert_eq!(resolve(SettingsFlags::default(), &[]), Mode::Compiled);
        assert_eq!(
            resolve(SettingsFlags::default(), &[("TORCH_COMPILED", "0")]),
            Mode::Eager
        );
        assert_eq!(
            resolve(SettingsFlags::default(), &[("CHRONOS_COMPILE", "0")]),
            Mode::Eager
        );
        let eager = SettingsFlags {
            mode: Some("eager".into()),
            ..SettingsFlags::default()
        };
        assert_eq!(resolve(eager, &[]), Mode::Eager);
    }

    #[test]
    fn modes_backends_and_dtypes() {
        let s = resolve(
            SettingsFlags::default(),
            &[
                ("CHRONOS_COMPILE_MODE", "default"),
                ("CHRONOS_COMPILE_BACKEND", "inductor"),
            ],
        )
        .unwrap();
        assert_eq!(s.compile_mode, CompileMode::Default);
        assert!(s.notes.iter().any(|n| n.contains("inductor")));
        assert!(resolve(SettingsFlags::default(), &[("CHRONOS_COMPILE_MODE", "fast")])
            .unwrap_err()
            .to_string()
            .contains("fast"));
        assert!(
            resolve(SettingsFlags::default(), &[("CHRONOS_COMPILE_BACKEND", "tensorrt")])
                .unwrap_err()
                .to_string()
                .contains("tensorrt")
        );
        assert!(resolve(SettingsFlags::default(), &[("CHRONOS_DTYPE", "fp32")]).is_ok());
        for name in ["bf16", "bfloat16", "BFloat16"] {
            let s = resolve(SettingsFlags::default(), &[("CHRONOS_DTYPE", name)]).unwrap();
            assert_eq!(s.dtype, Precision::BFloat16);
        }
        let err = resolve(SettingsFlags::default(), &[("CHRONOS_DTYPE", "float16")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("use bfloat16"), "{err}");
        assert!(resolve(SettingsFlags::default(), &[("CHRONOS_DTYPE", "int4")]).is_err());
        let flags = SettingsFlags {
            mode: Some("fast".into()),
            ..SettingsFlags::default()
        };
        assert!(resolve(flags, &[])
            .unwrap_err()
            .to_string()
            .contains("unknown --mode `fast`"));
    }

    /// The device comes from `--device`, else `CHRONOS_DEVICE`, else the CPU.
    #[test]
    fn device_flag_beats_its_variable() {
        let flags = |device: Option<&str>| SettingsFlags {
            device: device.map(Into::into),
            ..SettingsFlags::default()
        };
        assert_eq!(resolve(flags(None), &[]).unwrap().device, Device::Cpu);
        let s = resolve(flags(Some("cpu")), &[("CHRONOS_DEVICE", "cuda:1")]).unwrap();
        assert_eq!(s.device, Device::Cpu);
        let err = resolve(flags(None), &[("CHRONOS_DEVICE", "tpu")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("CHRONOS_DEVICE=\"tpu\""), "{err}");
        if cfg!(feature = "cuda") {
            let s = resolve(flags(None), &[("CHRONOS_DEVICE", "cuda:1")]).unwrap();
            assert_eq!(s.device, Device::Cuda(1));
            assert!(s.to_string().ends_with(" device=cuda:1"), "{s}");
            let int8 = SettingsFlags {
                dtype: Some("int8".into()),
                ..flags(Some("cuda"))
            };
            let err = resolve(int8, &[]).unwrap_err().to_string();
            assert!(err.contains("int8 runs on the CPU only"), "{err}");
        }
    }

    #[test]
    fn display_is_one_line() {
        let s = resolve(SettingsFlags::default(), &[("TORCH_COMPILED", "1")]).unwrap();
        assert_eq!(
            s.to_string(),
            "mode=compiled compile_mode=reduce-overhead backend=cpu dtype=float32 threads=all cores compile_cache=prefer"
        );
    }

    /// `int8` (also `i8`, `CHRONOS_DTYPE=int8`) is a precision.
    #[test]
    fn int8_is_a_dtype() {
        let s = resolve(SettingsFlags::default(), &[("CHRONOS_DTYPE", "INT8")]).unwrap();
        assert_eq!(s.dtype, Precision::Int8);
        assert!(s.to_string().contains("dtype=int8"));
        let flag = SettingsFlags {
            dtype: Some("i8".into()),
            ..SettingsFlags::default()
        };
        assert_eq!(resolve(flag, &[]).unwrap().dtype, Precision::Int8);
    }

    /// `--compile-cache` beats `CHRONOS_COMPILE_CACHE`; unknown values name the
    /// source and the choices; the directory follows `CHRONOS2_CACHE_DIR`.
    #[test]
    fn compile_cache_policy_and_directory() {
        let vars = [("CHRONOS_COMPILE_CACHE", "only"), ("CHRONOS2_CACHE_DIR", "/tmp/c2")];
        let s = resolve(SettingsFlags::default(), &vars).unwrap();
        assert_eq!(s.compile_cache, CachePolicy::Only);
        assert_eq!(s.cache_dir.as_deref(), Some(std::path::Path::new("/tmp/c2")));
        let flag = SettingsFlags {
            compile_cache: Some("Never".into()),
            ..SettingsFlags::default()
        };
        assert_eq!(resolve(flag, &vars).unwrap().compile_cache, CachePolicy::Never);
        let err = resolve(SettingsFlags::default(), &[("CHRONOS_COMPILE_CACHE", "always")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CHRONOS_COMPILE_CACHE `always`") && err.contains("prefer, never or only"),
            "{err}"
        );
    }
}
