//! [`GithubApi`] over octocrab: GitHub App authentication (a JWT signed with the App's key,
//! exchanged per installation for tokens octocrab renews before they expire) or a plain token.
//! Credentials never leave this module: no log line, event or status carries them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use octocrab::Octocrab;
use octocrab::models::{AppId, CombinedStatus, StatusState};
use tokio::sync::Mutex;
use tracing::debug;

use super::{CommitStatus, GithubApi, GithubError, Posted, Repo, State};

/// How the controller authenticates.
pub enum Credentials {
    /// A GitHub App: its id and RSA private key (PEM).
    App { id: u64, private_key_pem: Vec<u8> },
    /// A personal or fine-grained token with "Commit statuses: write".
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::App { id, .. } => write!(f, "App({id})"),
            Self::Token(_) => f.write_str("Token"),
        }
    }
}

/// GitHub's largest page.
const PER_PAGE: usize = 100;
/// Pages of contexts read per commit: 1,000 contexts, far more than a commit carries, with a
/// bound on what one read can cost.
const COMBINED_STATUS_PAGES: usize = 10;

pub struct OctocrabGithub {
    base: Octocrab,
    app: bool,
    /// The installation's client per repository, created on first use (an installation may be
    /// limited to some of its owner's repositories, so it is looked up per repository).
    installations: Mutex<HashMap<String, Octocrab>>,
}

impl OctocrabGithub {
    /// `api_url` is `https://api.github.com`, or a GitHub Enterprise Server's `/api/v3`.
    pub fn new(api_url: &str, credentials: Credentials) -> Result<Self, GithubError> {
        let setup = |e: octocrab::Error| GithubError::Auth(format!("client setup: {e}"));
        let builder = Octocrab::builder()
            .base_uri(api_url)
            .map_err(setup)?
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)));
        let (base, app) = match credentials {
            Credentials::App {
                id,
                private_key_pem,
            } => {
                let key = octocrab::EncodingKey::from_rsa_pem(&private_key_pem)
                    .map_err(|_| GithubError::Auth("the App key is not an RSA PEM key".into()))?;
                (builder.app(AppId(id), key).build().map_err(setup)?, true)
            }
            Credentials::Token(token) => {
                (builder.personal_token(token).build().map_err(setup)?, false)
            }
        };
        Ok(Self {
            base,
            app,
            installations: Mutex::default(),
        })
    }

    /// The client for `repo`: the App's installation on it, or the token client.
    async fn client_for(&self, repo: &Repo) -> Result<Octocrab, GithubError> {
        if !self.app {
            return Ok(self.base.clone());
        }
        let (owner, name) = split(repo)?;
        let mut installations = self.installations.lock().await;
        if let Some(client) = installations.get(&repo.0) {
            return Ok(client.clone());
        }
        let installation = self
            .base
            .apps()
            .get_repository_installation(owner, name)
            .await
            .map_err(|e| match status_of(&e) {
                Some(404) => GithubError::NoInstallation(repo.0.clone()),
                _ => from_octocrab("GetRepositoryInstallation", e),
            })?;
        debug!(
            owner,
            installation = installation.id.0,
            "found the App's installation"
        );
        let client = self
            .base
            .installation(installation.id)
            .map_err(|e| from_octocrab("CreateInstallationClient", e))?;
        installations.insert(repo.0.clone(), client.clone());
        Ok(client)
    }
}

fn split(repo: &Repo) -> Result<(&str, &str), GithubError> {
    repo.0.split_once('/').ok_or_else(|| GithubError::Refused {
        operation: "repository",
        status: 0,
        message: format!("{repo} is not owner/name"),
    })
}

#[async_trait]
impl GithubApi for OctocrabGithub {
    /// Reads GitHub's combined status, which holds exactly the latest status of each context
    /// (<https://docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-reference>:
    /// "the most recent status for each context", paginated, at most 100 a page). The list of
    /// all statuses, newest first, would need every page to be sure of a context: a commit that
    /// other systems posted 100 statuses to after ours hides ours beyond the first page.
    async fn statuses(
        &self,
        repo: &Repo,
        sha: &str,
    ) -> Result<BTreeMap<String, Posted>, GithubError> {
        let client = self.client_for(repo).await?;
        let (owner, name) = split(repo)?;
        let route = format!("/repos/{owner}/{name}/commits/{sha}/status");
        let mut latest = BTreeMap::new();
        for page in 1..=COMBINED_STATUS_PAGES {
            let query = [("per_page", PER_PAGE), ("page", page)];
            let combined: CombinedStatus = client
                .get(&route, Some(&query))
                .await
                .map_err(|e| from_octocrab("GetCombinedStatus", e))?;
            let count = combined.statuses.len();
            for status in combined.statuses {
                let Some(context) = status.context else {
                    continue;
                };
                latest.entry(context).or_insert_with(|| Posted {
                    state: from_state(&status.state),
                    description: status.description.unwrap_or_default(),
                });
            }
            let total = usize::try_from(combined.total_count).unwrap_or(0);
            if count < PER_PAGE || latest.len() >= total {
                break;
            }
        }
        Ok(latest)
    }

    async fn post(&self, repo: &Repo, status: &CommitStatus) -> Result<(), GithubError> {
        let client = self.client_for(repo).await?;
        let (owner, name) = split(repo)?;
        let repos = client.repos(owner, name);
        let mut request = repos
            .create_status(status.sha.clone(), to_state(status.state))
            .context(status.context.clone())
            .description(status.description.clone());
        if let Some(url) = &status.target_url {
            request = request.target(url.clone());
        }
        request
            .send()
            .await
            .map_err(|e| from_octocrab("CreateCommitStatus", e))?;
        Ok(())
    }
}

fn to_state(state: State) -> StatusState {
    match state {
        State::Pending => StatusState::Pending,
        State::Success => StatusState::Success,
        State::Failure => StatusState::Failure,
        State::Error => StatusState::Error,
    }
}

fn from_state(state: &StatusState) -> State {
    match state {
        StatusState::Pending => State::Pending,
        StatusState::Success => State::Success,
        StatusState::Failure => State::Failure,
        _ => State::Error,
    }
}

fn status_of(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// Classifies a failure. Rate limits follow GitHub's "Rate limits for the REST API": a 403 or
/// 429 with `retry-after` (secondary limits) waits that many seconds; one with
/// `x-ratelimit-remaining: 0` waits until `x-ratelimit-reset`.
fn from_octocrab(operation: &'static str, e: octocrab::Error) -> GithubError {
    let octocrab::Error::GitHub { source, .. } = &e else {
        return GithubError::Transient {
            operation,
            message: e.to_string(),
        };
    };
    let status = source.status_code.as_u16();
    let header = |name: &str| {
        source
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if let Some(retry_after) = rate_limit_wait(
        status,
        header("retry-after").as_deref(),
        header("x-ratelimit-remaining").as_deref(),
        header("x-ratelimit-reset").as_deref(),
        now,
    ) {
        return GithubError::RateLimited { retry_after };
    }
    match status {
        401 => GithubError::Auth(source.message.clone()),
        500.. => GithubError::Transient {
            operation,
            message: source.message.clone(),
        },
        _ => GithubError::Refused {
            operation,
            status,
            message: source.message.clone(),
        },
    }
}

/// How long a 403 or 429 says to wait, if it is a rate limit.
fn rate_limit_wait(
    status: u16,
    retry_after: Option<&str>,
    remaining: Option<&str>,
    reset: Option<&str>,
    now_secs: u64,
) -> Option<Duration> {
    if status != 403 && status != 429 {
        return None;
    }
    if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs.max(1)));
    }
    if remaining.map(str::trim) == Some("0") {
        let reset = reset
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(now_secs + 60);
        return Some(Duration::from_secs(reset.saturating_sub(now_secs).max(1)));
    }
    // A secondary limit without a header: GitHub asks to wait at least a minute.
    (status == 429).then(|| Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_read_from_the_headers() {
        assert_eq!(
            rate_limit_wait(403, Some("7"), None, None, 1000),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            rate_limit_wait(403, None, Some("0"), Some("1030"), 1000),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            rate_limit_wait(429, None, None, None, 1000),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            rate_limit_wait(403, None, Some("12"), None, 1000),
            None,
            "a plain 403"
        );
        assert_eq!(rate_limit_wait(422, Some("7"), None, None, 1000), None);
    }

    #[test]
    fn credentials_never_print_their_secrets() {
        let app = Credentials::App {
            id: 7,
            private_key_pem: b"-----BEGIN RSA PRIVATE KEY-----secret".to_vec(),
        };
        assert_eq!(format!("{app:?}"), "App(7)");
        assert_eq!(
            format!("{:?}", Credentials::Token("ghp_secret".into())),
            "Token"
        );
    }
}
