//! Where the model runs: `--device cpu|cuda[:N]` and `CHRONOS_DEVICE`.

use crate::EngineError;

/// Where the model runs (`--device`, `CHRONOS_DEVICE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// The CPU executors (eager or compiled).
    #[default]
    Cpu,
    /// The CUDA executor on GPU `N` (builds with the cargo feature `cuda` only).
    Cuda(usize),
}

impl Device {
    /// Reads `cpu`, `cuda` (GPU 0) or `cuda:N`; `source` names the flag or variable in the
    /// message.
    ///
    /// # Errors
    /// [`EngineError::Settings`] for anything else, and for `cuda` in a build without the
    /// `cuda` feature (saying how to build one).
    pub fn parse(source: &str, value: &str) -> Result<Self, EngineError> {
        let text = value.trim().to_ascii_lowercase();
        let device = match text.split_once(':') {
            None if text == "cpu" => Self::Cpu,
            None if text == "cuda" => Self::Cuda(0),
            Some(("cuda", index)) => match index.parse() {
                Ok(index) => Self::Cuda(index),
                Err(_) => {
                    return Err(EngineError::Settings(format!(
                        "{source}={value:?}: `{index}` is not a GPU number; expected cuda:0, cuda:1, ..."
                    )))
                }
            },
            _ => {
                return Err(EngineError::Settings(format!(
                    "{source}={value:?} is not a device; expected cpu, cuda or cuda:N"
                )))
            }
        };
        if matches!(device, Self::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(EngineError::Settings(format!(
                "{source}={value:?}: this chronos2 was built without GPU support; rebuild with `--features cuda` (cargo build --release --features cuda) or use --device cpu"
            )));
        }
        Ok(device)
    }

    /// `cpu` or `cuda:N`.
    pub fn name(self) -> String {
        match self {
            Self::Cpu => "cpu".into(),
            Self::Cuda(index) => format!("cuda:{index}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spellings, and one line naming the fix when the build has no GPU support.
    #[test]
    fn devices_are_parsed_and_gpus_need_the_feature() {
        let parse = |value: &str| Device::parse("--device", value).map_err(|e| e.to_string());
        assert_eq!(parse("cpu"), Ok(Device::Cpu));
        assert_eq!(parse(" CPU "), Ok(Device::Cpu));
        let err = parse("tpu").unwrap_err();
        assert!(err.contains("--device=\"tpu\" is not a device"), "{err}");
        let err = parse("cuda:x").unwrap_err();
        assert!(err.contains("`x` is not a GPU number"), "{err}");
        for (value, index) in [("cuda", 0), ("CUDA:1", 1)] {
            if cfg!(feature = "cuda") {
                assert_eq!(parse(value), Ok(Device::Cuda(index)));
            } else {
                let err = parse(value).unwrap_err();
                assert!(err.contains("rebuild with `--features cuda`"), "{err}");
                assert_eq!(err.lines().count(), 1);
            }
        }
        assert_eq!(Device::Cuda(2).name(), "cuda:2");
        assert_eq!(Device::Cpu.name(), "cpu");
    }
}
