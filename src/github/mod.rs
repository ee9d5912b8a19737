//! Commit statuses on GitHub: what a pipeline run means for a commit, posted once per change.
//! Knows nothing of Kubernetes.
//!
//! GitHub REST API, "Commit statuses": `POST /repos/{owner}/{repo}/statuses/{sha}` with `state`
//! (error, failure, pending, success), `context`, `description` (at most 140 characters, else
//! 422) and `target_url`; `GET /repos/{owner}/{repo}/commits/{ref}/statuses` lists them newest
//! first. A GitHub App needs "Commit statuses: write" and "Metadata: read".

pub mod client;
#[cfg(test)]
pub mod fake;
pub mod reporter;
#[cfg(test)]
mod testserver;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

/// GitHub's limit on a status description.
pub const DESCRIPTION_MAX: usize = 140;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Pending,
    Success,
    Failure,
    Error,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// One status for one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub sha: String,
    /// e.g. `branchpipeline/dev`.
    pub context: String,
    pub state: State,
    /// Cut to [`DESCRIPTION_MAX`] characters.
    pub description: String,
    pub target_url: Option<String>,
}

impl CommitStatus {
    pub fn new(sha: &str, context: &str, state: State, description: &str) -> Self {
        Self {
            sha: sha.to_string(),
            context: context.to_string(),
            state,
            description: description.chars().take(DESCRIPTION_MAX).collect(),
            target_url: None,
        }
    }

    pub fn linked(mut self, url: Option<String>) -> Self {
        self.target_url = url;
        self
    }

    /// What GitHub must already hold for this status not to be posted again.
    pub fn posted(&self) -> Posted {
        Posted {
            state: self.state,
            description: self.description.clone(),
        }
    }
}

/// A status as GitHub holds it: the latest for its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub state: State,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GithubError {
    /// A primary or secondary rate limit: nothing may be sent before `retry_after`.
    #[error("GitHub rate limit; retrying after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// The App is not installed on the repository.
    #[error("the GitHub App is not installed on {0}; install it there")]
    NoInstallation(String),
    #[error("GitHub refused the credentials ({0}); check the App id and key, or the token")]
    Auth(String),
    #[error("GitHub answered {status} to {operation}: {message}")]
    Refused {
        operation: &'static str,
        status: u16,
        message: String,
    },
    /// A transport failure or a 5xx: worth retrying.
    #[error("GitHub {operation} failed: {message}")]
    Transient {
        operation: &'static str,
        message: String,
    },
}

impl GithubError {
    /// Whether the same request can succeed later with nothing changed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient { .. })
    }
}

/// `owner/name` of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repo(pub String);

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One kind of HTTP request to GitHub's REST API. Each request sent is one count of its
/// operation: a read of several pages is several requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// `GET /repos/{owner}/{repo}/installation`, as the App
    /// (<https://docs.github.com/en/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app>).
    GetRepositoryInstallation,
    /// `POST /app/installations/{id}/access_tokens`, as the App
    /// (<https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app>).
    CreateInstallationAccessToken,
    /// One page of `GET /repos/{owner}/{repo}/commits/{ref}/status`.
    GetCombinedStatus,
    /// `POST /repos/{owner}/{repo}/statuses/{sha}`.
    CreateCommitStatus,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GetRepositoryInstallation => "GetRepositoryInstallation",
            Self::CreateInstallationAccessToken => "CreateInstallationAccessToken",
            Self::GetCombinedStatus => "GetCombinedStatus",
            Self::CreateCommitStatus => "CreateCommitStatus",
        }
    }
}

/// How one request ended, as `branchpipeline_github_requests_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Success,
    RateLimited,
    RetryableError,
    TerminalError,
}

impl Outcome {
    pub fn of<T>(result: &Result<T, GithubError>) -> Self {
        match result {
            Ok(_) => Self::Success,
            Err(GithubError::RateLimited { .. }) => Self::RateLimited,
            Err(e) if e.is_retryable() => Self::RetryableError,
            Err(_) => Self::TerminalError,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RateLimited => "rate_limited",
            Self::RetryableError => "retryable_error",
            Self::TerminalError => "terminal_error",
        }
    }
}

/// Told of every HTTP request a [`GithubApi`] sends, once it has ended: what the metrics count.
pub trait RequestLog: Send + Sync {
    fn request(&self, operation: Operation, outcome: Outcome);
}

/// Each method sends as many HTTP requests as it needs (an installation lookup, a token, each
/// page) and tells `log` of every one.
#[async_trait]
pub trait GithubApi: Send + Sync {
    /// The latest status per context GitHub holds for `sha`.
    async fn statuses(
        &self,
        repo: &Repo,
        sha: &str,
        log: &dyn RequestLog,
    ) -> Result<BTreeMap<String, Posted>, GithubError>;
    async fn post(
        &self,
        repo: &Repo,
        status: &CommitStatus,
        log: &dyn RequestLog,
    ) -> Result<(), GithubError>;
}
