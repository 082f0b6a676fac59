//! Where a model comes from: `--model` (or `CHRONOS2_MODEL`) resolved the way Hugging Face
//! users expect, and the small model compiled into the binary.
//!
//! Resolution order for a spec:
//! 1. none (no flag, no variable): the built-in model, with a one-line notice;
//! 2. `builtin`: the built-in model;
//! 3. an existing directory: a checkpoint directory (or cache snapshot / repository dir);
//! 4. `org/name[@revision]`: the Hugging Face cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
//!    `~/.cache/huggingface/hub`; `models--org--name/snapshots/<revision>`, the revision read
//!    from `refs/<name>`, default `main`); if absent and the network is allowed (not
//!    `--offline`, not `HF_HUB_OFFLINE=1`), downloaded with the `hf-hub` crate (feature
//!    `download`, on by default).
//!
//! Every failure says where it looked.
//!
//! ```
//! use chronos2_hub::{resolve, ModelSource, ResolveOptions};
//! let options = ResolveOptions { offline: true, env: Box::new(|_| None) };
//! let resolved = resolve(None, &options)?;
//! assert_eq!(resolved.source, ModelSource::Builtin);
//! assert!(resolved.notice.unwrap().contains("--model amazon/chronos-2"));
//! # Ok::<(), chronos2_hub::HubError>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

use std::path::{Path, PathBuf};

use chronos2::Chronos2Model;

/// Name of the built-in model.
pub const BUILTIN_NAME: &str = "chronos2-mini";

const BUILTIN_CONFIG: &str = include_str!("../../../assets/builtin/config.json");
static BUILTIN_WEIGHTS: &[u8] = include_bytes!("../../../assets/builtin/model.safetensors");

/// Errors of model resolution.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Nothing matched; the message lists where we looked.
    #[error("{0}")]
    NotFound(String),
    /// A download failed.
    #[error("{0}")]
    Download(String),
    /// The model was found but does not load.
    #[error(transparent)]
    Model(#[from] chronos2::Error),
}

/// Where the model was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// The model compiled into the binary.
    Builtin,
    /// A checkpoint directory (given, or a cache snapshot).
    Directory(PathBuf),
}

/// A resolved model spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Where it is.
    pub source: ModelSource,
    /// What to call it in reports.
    pub label: String,
    /// A one-line notice for the user (the built-in model says what it is).
    pub notice: Option<String>,
}

impl Resolved {
    /// Loads the model.
    ///
    /// # Errors
    /// The loader's error for a bad checkpoint.
    pub fn load(&self) -> Result<Chronos2Model, HubError> {
        Ok(match &self.source {
            ModelSource::Builtin => builtin()?,
            ModelSource::Directory(dir) => Chronos2Model::load(dir)?,
        })
    }
}

/// The built-in model (weights compiled into the binary; loads in milliseconds).
///
/// # Errors
/// Only if the embedded files were corrupted at build time.
pub fn builtin() -> Result<Chronos2Model, chronos2::Error> {
    Chronos2Model::from_memory(BUILTIN_NAME, BUILTIN_CONFIG, BUILTIN_WEIGHTS)
}

/// Looks up an environment variable.
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String>>;

/// How to resolve: offline or not, and where environment variables come from.
pub struct ResolveOptions {
    /// Forbid network access (`--offline`); `HF_HUB_OFFLINE=1` has the same effect.
    pub offline: bool,
    /// Environment lookup (the process environment in the CLI; a map in tests).
    pub env: EnvLookup,
}

impl ResolveOptions {
    /// Options over the process environment.
    pub fn from_env(offline: bool) -> Self {
        Self {
            offline,
            env: Box::new(|name| std::env::var(name).ok()),
        }
    }

    fn offline(&self) -> bool {
        self.offline
            || (self.env)("HF_HUB_OFFLINE")
                .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
    }

    /// The cache directories to search, in order.
    pub fn cache_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(cache) = (self.env)("HF_HUB_CACHE") {
            dirs.push(PathBuf::from(cache));
        }
        if let Some(home) = (self.env)("HF_HOME") {
            dirs.push(Path::new(&home).join("hub"));
        }
        if let Some(home) = (self.env)("HOME") {
            dirs.push(Path::new(&home).join(".cache/huggingface/hub"));
        }
        dirs.dedup();
        dirs
    }
}

/// A Hugging Face repo id with an optional revision: `org/name[@revision]`.
fn parse_repo_id(spec: &str) -> Option<(&str, &str, &str)> {
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let (org, name) = id.split_once('/')?;
    let valid = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && !s.starts_with('.')
    };
    (valid(org) && valid(name) && !revision.is_empty()).then_some((org, name, revision))
}

/// Whether `spec` can only be a path: absolute, starting with `.` or `~`, or with more than
/// one `/` before a revision.
fn looks_like_a_path(spec: &str) -> bool {
    let id = spec.split_once('@').map_or(spec, |(id, _)| id);
    Path::new(spec).is_absolute()
        || spec.starts_with('.')
        || spec.starts_with('~')
        || id.matches('/').count() > 1
        || spec.contains('\\')
}

/// Finds `org/name` at `revision` in one cache directory.
fn find_in_cache(cache: &Path, org: &str, name: &str, revision: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{org}--{name}"));
    let snapshot_name = std::fs::read_to_string(repo.join("refs").join(revision))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    let snapshot = repo.join("snapshots").join(snapshot_name);
    snapshot.join("config.json").is_file().then_some(snapshot)
}

/// Resolves a model spec (`--model`, else `CHRONOS2_MODEL`, else the built-in model).
///
/// # Errors
/// [`HubError::NotFound`] naming every place looked at; [`HubError::Download`] when a
/// download was tried and failed.
pub fn resolve(spec: Option<&str>, options: &ResolveOptions) -> Result<Resolved, HubError> {
    let from_env = (options.env)("CHRONOS2_MODEL");
    let spec = spec.map(str::to_string).or(from_env);
    let Some(spec) = spec.filter(|s| !s.trim().is_empty()) else {
        return Ok(Resolved {
            source: ModelSource::Builtin,
            label: BUILTIN_NAME.into(),
            notice: Some(format!(
                "using the built-in model {BUILTIN_NAME} (small, trained on synthetic series; see assets/builtin/MODEL_CARD.md); for the real model pass --model amazon/chronos-2 or a checkpoint directory"
            )),
        });
    };
    if spec.eq_ignore_ascii_case("builtin") {
        return Ok(Resolved {
            source: ModelSource::Builtin,
            label: BUILTIN_NAME.into(),
            notice: None,
        });
    }
    let path = Path::new(&spec);
    if path.is_dir() {
        return Ok(Resolved {
            source: ModelSource::Directory(path.to_path_buf()),
            label: spec.clone(),
            notice: None,
        });
    }
    // Something on disk by that name (a file, a dangling link, a symlink loop), or a spelling
    // only a path has, is a local path that is not a checkpoint folder, never a repo id.
    if let Ok(found) = std::fs::symlink_metadata(path) {
        let what = if found.is_symlink() {
            match std::fs::metadata(path) {
                Err(e) => format!("a symbolic link that cannot be followed ({e})"),
                Ok(_) => "a link to a file".to_string(),
            }
        } else {
            "a file".to_string()
        };
        return Err(HubError::NotFound(format!(
            "model `{spec}` is {what}, not a checkpoint folder; pass the folder that holds config.json and model.safetensors"
        )));
    }
    if looks_like_a_path(&spec) {
        return Err(HubError::NotFound(format!(
            "model `{spec}`: no such directory (a path, not a Hugging Face repo id org/name[@revision])"
        )));
    }
    let Some((org, name, revision)) = parse_repo_id(&spec) else {
        return Err(HubError::NotFound(format!(
            "model `{spec}`: no such directory, and not a Hugging Face repo id (org/name[@revision])"
        )));
    };
    let caches = options.cache_dirs();
    for cache in &caches {
        if let Some(snapshot) = find_in_cache(cache, org, name, revision) {
            return Ok(Resolved {
                source: ModelSource::Directory(snapshot),
                label: spec.clone(),
                notice: None,
            });
        }
    }
    let looked = if caches.is_empty() {
        "no cache directory is set (HF_HUB_CACHE, HF_HOME, HOME)".to_string()
    } else {
        format!(
            "looked in {}",
            caches
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if options.offline() {
        return Err(HubError::NotFound(format!(
            "model `{org}/{name}` (revision {revision}) is not in the Hugging Face cache ({looked}) and downloads are off (--offline or HF_HUB_OFFLINE=1)"
        )));
    }
    download(org, name, revision, &looked, options)
}

#[cfg(feature = "download")]
fn download(
    org: &str,
    name: &str,
    revision: &str,
    looked: &str,
    options: &ResolveOptions,
) -> Result<Resolved, HubError> {
    let fail = |e: &dyn std::fmt::Display| {
        HubError::Download(format!(
            "model `{org}/{name}` is not in the Hugging Face cache ({looked}) and downloading it failed: {e}; pass --offline to skip the network or --model DIR for a local checkpoint"
        ))
    };
    let mut builder = hf_hub::api::sync::ApiBuilder::new().with_progress(true);
    if let Some(cache) = options.cache_dirs().first() {
        builder = builder.with_cache_dir(cache.clone());
    }
    let api = builder.build().map_err(|e| fail(&e))?;
    let repo = api.repo(hf_hub::Repo::with_revision(
        format!("{org}/{name}"),
        hf_hub::RepoType::Model,
        revision.to_string(),
    ));
    let config = repo.get("config.json").map_err(|e| fail(&e))?;
    match repo.get("model.safetensors") {
        Ok(_) => {}
        Err(single) => {
            let index = repo.get("model.safetensors.index.json").map_err(|_| fail(&single))?;
            let text = std::fs::read_to_string(&index).map_err(|e| fail(&e))?;
            let mut shards: Vec<&str> = text.split('"').filter(|s| s.ends_with(".safetensors")).collect();
            shards.sort_unstable();
            shards.dedup();
            for shard in shards {
                repo.get(shard).map_err(|e| fail(&e))?;
            }
        }
    }
    let snapshot = config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| fail(&"no snapshot directory"))?;
    Ok(Resolved {
        source: ModelSource::Directory(snapshot),
        label: format!("{org}/{name}"),
        notice: Some(format!("downloaded {org}/{name} into the Hugging Face cache")),
    })
}

#[cfg(not(feature = "download"))]
fn download(
    org: &str,
    name: &str,
    _revision: &str,
    looked: &str,
    _options: &ResolveOptions,
) -> Result<Resolved, HubError> {
    Err(HubError::NotFound(format!(
        "model `{org}/{name}` is not in the Hugging Face cache ({looked}) and this build has no download support (feature `download`)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn options(vars: &[(&str, &str)], offline: bool) -> ResolveOptions {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ResolveOptions {
            offline,
            env: Box::new(move |name| vars.get(name).cloned()),
        }
    }

    /// A cache layout like huggingface_hub's: blobs, refs/main, snapshots/<rev>/ with files.
    fn fake_cache(root: &Path, revision: &str) -> PathBuf {
        let repo = root.join("models--amazon--chronos-2");
        let snapshot = repo.join("snapshots").join(revision);
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), revision).unwrap();
        let model = Chronos2Model::random(chronos2::Config::tiny(), 0, chronos2::RandomInit::Default);
        model.save(&snapshot, chronos2::StorageDtype::F32).unwrap();
        snapshot
    }

    #[test]
    fn no_spec_means_the_builtin_model_with_a_notice() {
        let r = resolve(None, &options(&[], true)).unwrap();
        assert_eq!(r.source, ModelSource::Builtin);
        let model = r.load().unwrap();
        assert!(model.parameter_count() > 0);
        let r = resolve(None, &options(&[("CHRONOS2_MODEL", "builtin")], true)).unwrap();
        assert_eq!((r.source, r.notice), (ModelSource::Builtin, None));
    }

    #[test]
    fn local_directory_wins() {
        let dir = tempfile::tempdir().unwrap();
        let r = resolve(Some(dir.path().to_str().unwrap()), &options(&[], true)).unwrap();
        assert_eq!(r.source, ModelSource::Directory(dir.path().to_path_buf()));
    }

    #[test]
    fn repo_id_found_in_each_cache_location() {
        let root = tempfile::tempdir().unwrap();
        let snapshot = fake_cache(&root.path().join("hub"), "abc123");
        for vars in [
            vec![("HF_HUB_CACHE", root.path().join("hub").to_str().unwrap().to_string())],
            vec![("HF_HOME", root.path().to_str().unwrap().to_string())],
        ] {
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = resolve(Some("amazon/chronos-2"), &options(&vars, true)).unwrap();
            assert_eq!(r.source, ModelSource::Directory(snapshot.clone()));
            assert!(r.load().is_ok());
        }
        // ~/.cache/huggingface/hub under HOME, and an explicit revision.
        let home = tempfile::tempdir().unwrap();
        let snapshot = fake_cache(&home.path().join(".cache/huggingface/hub"), "def456");
        let vars = [("HOME", home.path().to_str().unwrap())];
        let r = resolve(Some("amazon/chronos-2@def456"), &options(&vars, true)).unwrap();
        assert_eq!(r.source, ModelSource::Directory(snapshot));
    }

    #[test]
    fn offline_refusal_names_where_it_looked() {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().to_str().unwrap();
        let err = resolve(Some("amazon/chronos-2"), &options(&[("HF_HUB_CACHE", cache)], true))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not in the Hugging Face cache") && err.contains(cache) && err.contains("--offline"),
            "{err}"
        );
        let err = resolve(
            Some("amazon/chronos-2"),
            &options(&[("HF_HUB_CACHE", cache), ("HF_HUB_OFFLINE", "1")], false),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("downloads are off"), "{err}");
    }

    #[test]
    fn not_found_text_for_a_bad_spec() {
        let err = resolve(Some("./no/such/dir/here"), &options(&[], true))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such directory") && err.contains("org/name"), "{err}");
    }

    /// A relative path to an existing file is not a Hugging Face id (it used to be
    /// sent to the network as `src/lib.rs`).
    #[test]
    fn an_existing_file_is_not_a_repo_id() {
        let err = resolve(Some("src/lib.rs"), &options(&[], false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`src/lib.rs` is a file, not a checkpoint folder"), "{err}");
    }

    /// A symlink loop is reported as such, not looked up on the network.
    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_is_not_a_repo_id() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let err = resolve(Some(a.to_str().unwrap()), &options(&[], false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link that cannot be followed"), "{err}");
    }

    /// Paths that do not exist are never taken for repo ids either.
    #[test]
    fn path_spellings_are_not_repo_ids() {
        for spec in ["../models/x", "/opt/models/x", "models/a/b", "~/x/y"] {
            let err = resolve(Some(spec), &options(&[], false)).unwrap_err().to_string();
            assert!(err.contains("no such directory"), "{spec}: {err}");
        }
    }
}
