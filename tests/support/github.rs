//! The bed's GitHub: `tests/github_fake` (what it models, rule by rule, is in its README),
//! started once per test binary with a freshly generated App key, and what tests ask of it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use super::env::BedEnv;
use super::http;
use super::process::{Processes, log_tail};

/// The App id the fake and the controllers agree on.
pub const APP_ID: u64 = 424_242;
/// The token of "another CI system" (`post_as_other_ci`): a static token for every repository.
const OTHER_CI_TOKEN: &str = "other-ci-token";
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct GithubFake {
    processes: Processes,
    _dir: tempfile::TempDir,
    url: String,
    key_file: PathBuf,
    log: PathBuf,
}

/// One commit status as the fake recorded it (`GET /_fake/statuses`), in creation order.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedStatus {
    pub sha: String,
    pub state: String,
    pub description: Option<String>,
    #[serde(rename = "target_url")]
    pub target_url: Option<String>,
    pub context: String,
    /// `installation-token` or `static-token`.
    pub auth: String,
}

/// One API call as the fake logged it (`GET /_fake/requests`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// `app-jwt`, `installation-token`, `static-token`, `expired-token`, `invalid` or `none`.
    pub auth: String,
    pub installation_id: Option<u64>,
    pub repo: Option<String>,
    pub status: u16,
    pub rate_limited: Option<String>,
}

impl GithubFake {
    /// The fake shared by this test binary's tests; each installs the App on its own
    /// repository.
    pub async fn shared() -> &'static GithubFake {
        static SHARED: tokio::sync::OnceCell<GithubFake> = tokio::sync::OnceCell::const_new();
        match SHARED.get_or_try_init(GithubFake::start).await {
            Ok(fake) => fake,
            Err(e) => panic!("cannot start the GitHub fake: {e:#}"),
        }
    }

    pub async fn start() -> Result<Self> {
        let env = BedEnv::load()?;
        let dir = tempfile::tempdir()?;
        let key_file = dir.path().join("app.pem");
        generate_key(&env.moto_python, &key_file)?;
        let port_file = dir.path().join("github.port");
        let log = dir.path().join("github.log");
        let processes = Processes::new(dir.path().join("pids"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/github_fake/run_github.py");
        let args = [
            script.display().to_string(),
            "--port".into(),
            "0".into(),
            "--port-file".into(),
            port_file.display().to_string(),
            "--app-id".into(),
            APP_ID.to_string(),
            "--app-public-key".into(),
            key_file.display().to_string(),
            "--verbose".into(),
            // Another CI system posting to the same repositories with a token of its own.
            "--static-token".into(),
            OTHER_CI_TOKEN.into(),
        ];
        processes.spawn(
            "github",
            &env.moto_python,
            &args,
            &[("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONUNBUFFERED", "1")],
            &log,
        )?;
        let port = wait_for_port(&processes, &port_file, &log).await?;
        Ok(Self {
            processes,
            _dir: dir,
            url: format!("http://127.0.0.1:{port}"),
            key_file,
            log,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The static token the fake accepts for every repository (a token Secret's, or another
    /// CI system's).
    pub fn static_token(&self) -> &'static str {
        OTHER_CI_TOKEN
    }

    /// The App's private key, as the controller reads it from a mounted Secret.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// Flags that make a controller post as the App.
    pub fn controller_args(&self) -> Vec<String> {
        vec![
            "--github-app-id".into(),
            APP_ID.to_string(),
            "--github-app-key-file".into(),
            self.key_file.display().to_string(),
            "--github-api-url".into(),
            self.url.clone(),
        ]
    }

    /// Installs the App on `repo` as installation `id`.
    pub async fn install(&self, id: u64, repo: &str) -> Result<()> {
        let body = json!({"id": id, "repositories": [repo]}).to_string();
        let response = http::request(
            &self.url,
            "POST",
            "/_fake/installations",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await?;
        if response.status != 201 {
            bail!(
                "installing the App on {repo}: HTTP {}: {}",
                response.status,
                response.text()
            );
        }
        Ok(())
    }

    /// Posts a status as another CI system would, through the API (not a control endpoint).
    pub async fn post_as_other_ci(&self, repo: &str, sha: &str, context: &str) -> Result<()> {
        let body = json!({"state": "success", "context": context}).to_string();
        let auth = format!("token {OTHER_CI_TOKEN}");
        let response = http::request(
            &self.url,
            "POST",
            &format!("/repos/{repo}/statuses/{sha}"),
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            body.as_bytes(),
        )
        .await?;
        if response.status != 201 {
            bail!(
                "posting {context} to {repo}@{sha}: HTTP {}: {}",
                response.status,
                response.text()
            );
        }
        Ok(())
    }

    /// Every status posted to `repo`, in creation order.
    pub async fn statuses(&self, repo: &str) -> Result<Vec<RecordedStatus>> {
        let body = http::get_json(&self.url, &format!("/_fake/statuses?repo={repo}")).await?;
        Ok(serde_json::from_value(body["statuses"].clone())?)
    }

    /// Every API call about `repo` or its installation `installation`.
    pub async fn requests(&self, repo: &str, installation: u64) -> Result<Vec<RecordedRequest>> {
        let body = http::get_json(&self.url, "/_fake/requests").await?;
        let all: Vec<RecordedRequest> = serde_json::from_value(body["requests"].clone())?;
        Ok(all
            .into_iter()
            .filter(|r| {
                r.repo
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(repo))
                    || r.installation_id == Some(installation)
            })
            .collect())
    }

    /// Every installation token the fake has issued.
    pub async fn tokens(&self) -> Result<Vec<String>> {
        let body = http::get_json(&self.url, "/_fake/tokens").await?;
        Ok(body["tokens"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["token"].as_str().map(str::to_string))
            .collect())
    }

    /// Queues an injected rate limit (see the fake's README, `POST /_fake/rate-limit`).
    pub async fn rate_limit(&self, injection: &Value) -> Result<()> {
        http::post_json(&self.url, "/_fake/rate-limit", injection).await?;
        Ok(())
    }

    pub fn log(&self) -> String {
        log_tail(&self.log)
    }

    pub fn ensure_running(&self) -> Result<()> {
        self.processes.ensure_running("github")
    }
}

/// A 2048-bit RSA key in PKCS#1 PEM, made with the `cryptography` package of the moto venv.
fn generate_key(python: &Path, out: &Path) -> Result<()> {
    let script = "import sys\n\
        from cryptography.hazmat.primitives.asymmetric import rsa\n\
        from cryptography.hazmat.primitives import serialization as s\n\
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
        open(sys.argv[1], 'wb').write(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()))\n";
    let status = std::process::Command::new(python)
        .args(["-c", script, &out.display().to_string()])
        .status()
        .context("running python to generate the App key")?;
    if !status.success() {
        bail!("generating the App key failed: {status}");
    }
    Ok(())
}

async fn wait_for_port(processes: &Processes, port_file: &Path, log: &Path) -> Result<u16> {
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        if let Ok(text) = std::fs::read_to_string(port_file)
            && let Ok(port) = text.trim().parse()
        {
            return Ok(port);
        }
        processes
            .ensure_running("github")
            .with_context(|| log_tail(log))?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "the GitHub fake did not listen within {START_TIMEOUT:?}: {}",
        log_tail(log)
    )
}
