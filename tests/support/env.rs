//! Where the bed's binaries and credentials are: `testbed.env`, written by
//! `scripts/testbed-install.sh`, with environment variables of the same names winning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const INSTALL_HINT: &str = "run scripts/testbed-install.sh first";

#[derive(Debug, Clone)]
pub struct BedEnv {
    pub kube_apiserver: PathBuf,
    pub etcd: PathBuf,
    pub moto_python: PathBuf,
    pub moto_ext: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    pub token_file: PathBuf,
    pub admin_token_file: PathBuf,
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/branchpipeline-controller/testbed.env`, or `$BPL_TESTBED_ENV`.
pub fn env_file_path() -> PathBuf {
    if let Some(path) = non_empty_var("BPL_TESTBED_ENV") {
        return PathBuf::from(path);
    }
    let cache = non_empty_var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(non_empty_var("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    cache.join("branchpipeline-controller").join("testbed.env")
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_env_file(path: &Path) -> Result<HashMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

impl BedEnv {
    pub fn load() -> Result<Self> {
        let path = env_file_path();
        let file = parse_env_file(&path)?;
        let get = |key: &str| -> Result<PathBuf> {
            let value = non_empty_var(key).or_else(|| file.get(key).cloned());
            let Some(value) = value else {
                bail!(
                    "{key} is not set and {} does not define it: {INSTALL_HINT}",
                    path.display()
                );
            };
            let value = PathBuf::from(value);
            if !value.exists() {
                bail!("{key}={} does not exist: {INSTALL_HINT}", value.display());
            }
            Ok(value)
        };
        // The cache is shared by every checkout, so the moto extension comes from this
        // checkout unless explicitly overridden: testbed.env names the installer's one.
        let moto_ext = match non_empty_var("BPL_MOTO_EXT") {
            Some(dir) => PathBuf::from(dir),
            None => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join("moto_ext"),
        };
        Ok(Self {
            kube_apiserver: get("BPL_KUBE_APISERVER")?,
            etcd: get("BPL_ETCD")?,
            moto_python: get("BPL_MOTO_PYTHON")?,
            moto_ext,
            sa_key: get("BPL_SA_KEY")?,
            sa_pub: get("BPL_SA_PUB")?,
            token_file: get("BPL_TOKEN_FILE")?,
            admin_token_file: get("BPL_ADMIN_TOKEN_FILE")?,
        })
    }

    pub fn admin_token(&self) -> Result<String> {
        let token = std::fs::read_to_string(&self.admin_token_file)
            .with_context(|| format!("reading {}", self.admin_token_file.display()))?;
        let token = token.trim().to_owned();
        if token.is_empty() {
            bail!(
                "{} is empty: {INSTALL_HINT}",
                self.admin_token_file.display()
            );
        }
        Ok(token)
    }
}
