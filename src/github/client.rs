//! [`GithubApi`] over octocrab: GitHub App authentication (a JWT signed with the App's key,
//! exchanged per installation for tokens octocrab mints and renews before they expire) or a
//! plain token. Credentials never leave this module: no log line, event or status carries them.
//!
//! Every HTTP request is sent here, one at a time, and told to the caller's [`RequestLog`]: the
//! installation lookup, each token minted, each page read, each post. octocrab's installation
//! client would also mint tokens inside other requests (and, after a 401, mint one and send the
//! request again) where nothing outside it can count them, so it is used only to mint; the REST
//! calls go through a client holding the token it minted.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use octocrab::Octocrab;
use octocrab::models::{AppId, CombinedStatus, InstallationId, StatusState};
use octocrab::secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::debug;

use super::{
    CommitStatus, GithubApi, GithubError, Operation, Outcome, Posted, Repo, RequestLog, State,
};

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
    /// The App's installation on each repository, found on first use (an installation may be
    /// limited to some of its owner's repositories, so it is looked up per repository). One
    /// lock for lookups and mints: concurrent polls share a token instead of minting one each.
    installations: Mutex<HashMap<String, Installation>>,
}

/// What `GET /repos/{owner}/{repo}/installation` answers that the controller uses.
#[derive(Deserialize)]
struct RepositoryInstallation {
    id: u64,
}

/// The App's installation on one repository, and its token.
struct Installation {
    id: InstallationId,
    /// octocrab's installation client, used only to mint: `installation_token` returns its
    /// cached token, or mints one (one request) when that expires within 30 s.
    minter: Octocrab,
    /// The token last minted, and a client that sends it.
    current: Option<(SecretString, Octocrab)>,
}

impl Installation {
    fn new(base: &Octocrab, id: InstallationId) -> Result<Self, GithubError> {
        let minter = base
            .installation(id)
            .map_err(|e| GithubError::Auth(format!("installation client: {e}")))?;
        Ok(Self {
            id,
            minter,
            current: None,
        })
    }

    /// A client holding a token good for 30 s more. A token other than the last one seen was
    /// minted just now: that is one request.
    async fn client(
        &mut self,
        base: &Octocrab,
        log: &dyn RequestLog,
    ) -> Result<Octocrab, GithubError> {
        let operation = Operation::CreateInstallationAccessToken;
        let token = match self.minter.installation_token().await {
            Ok(token) => token,
            Err(e) => {
                let e = from_octocrab(operation, e);
                log.request(operation, Outcome::of::<()>(&Err(e.clone())));
                return Err(e);
            }
        };
        if let Some((known, client)) = &self.current
            && known.expose_secret() == token.expose_secret()
        {
            return Ok(client.clone());
        }
        log.request(operation, Outcome::Success);
        let client = base
            .user_access_token(token.clone())
            .map_err(|e| GithubError::Auth(format!("installation token client: {e}")))?;
        self.current = Some((token, client.clone()));
        Ok(client)
    }
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

    /// The client for `repo`: the token client, or one holding the App's installation token.
    async fn client_for(&self, repo: &Repo, log: &dyn RequestLog) -> Result<Octocrab, GithubError> {
        if !self.app {
            return Ok(self.base.clone());
        }
        let mut installations = self.installations.lock().await;
        let installation = match installations.entry(repo.0.clone()) {
            Entry::Occupied(found) => found.into_mut(),
            Entry::Vacant(slot) => slot.insert(Installation::new(
                &self.base,
                self.lookup(repo, log).await?,
            )?),
        };
        let client = installation.client(&self.base, log).await;
        if matches!(&client, Err(e) if !e.is_retryable()) {
            // The installation may be gone or replaced: look it up again next time.
            installations.remove(&repo.0);
        }
        client
    }

    /// The App's installation on `repo`: one request, signed as the App.
    async fn lookup(
        &self,
        repo: &Repo,
        log: &dyn RequestLog,
    ) -> Result<InstallationId, GithubError> {
        let (owner, name) = split(repo)?;
        let operation = Operation::GetRepositoryInstallation;
        let found: Result<RepositoryInstallation, _> = self
            .base
            .get(format!("/repos/{owner}/{name}/installation"), None::<&()>)
            .await;
        let found = found.map_err(|e| match status_of(&e) {
            Some(404) => GithubError::NoInstallation(repo.0.clone()),
            _ => from_octocrab(operation, e),
        });
        log.request(operation, Outcome::of(&found));
        let id = found?.id;
        debug!(owner, installation = id, "found the App's installation");
        Ok(InstallationId(id))
    }

    /// Sends one request (`call`, given the client to send it with) and logs it. An
    /// installation token refused with 401 (revoked, or expired early) is dropped and the
    /// request sent once more with a new one, as octocrab does for its installation clients.
    async fn send<T, F, Fut>(
        &self,
        repo: &Repo,
        log: &dyn RequestLog,
        operation: Operation,
        call: F,
    ) -> Result<T, GithubError>
    where
        F: Fn(Octocrab) -> Fut,
        Fut: Future<Output = Result<T, octocrab::Error>>,
    {
        let client = self.client_for(repo, log).await?;
        let first = logged(log, operation, call(client).await);
        if !(self.app && matches!(first, Err(GithubError::Auth(_)))) {
            return first;
        }
        if let Some(installation) = self.installations.lock().await.get_mut(&repo.0) {
            *installation = Installation::new(&self.base, installation.id)?;
        }
        let client = self.client_for(repo, log).await?;
        logged(log, operation, call(client).await)
    }
}

fn logged<T>(
    log: &dyn RequestLog,
    operation: Operation,
    result: Result<T, octocrab::Error>,
) -> Result<T, GithubError> {
    let result = result.map_err(|e| from_octocrab(operation, e));
    log.request(operation, Outcome::of(&result));
    result
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
        log: &dyn RequestLog,
    ) -> Result<std::collections::BTreeMap<String, Posted>, GithubError> {
        let (owner, name) = split(repo)?;
        let route = format!("/repos/{owner}/{name}/commits/{sha}/status");
        let mut latest = std::collections::BTreeMap::new();
        for page in 1..=COMBINED_STATUS_PAGES {
            let query = [("per_page", PER_PAGE), ("page", page)];
            let (route, query) = (&route, &query);
            let combined: CombinedStatus = self
                .send(
                    repo,
                    log,
                    Operation::GetCombinedStatus,
                    |client| async move { client.get(route, Some(query)).await },
                )
                .await?;
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

    async fn post(
        &self,
        repo: &Repo,
        status: &CommitStatus,
        log: &dyn RequestLog,
    ) -> Result<(), GithubError> {
        let (owner, name) = split(repo)?;
        self.send(
            repo,
            log,
            Operation::CreateCommitStatus,
            |client| async move {
                let repos = client.repos(owner, name);
                let mut request = repos
                    .create_status(status.sha.clone(), to_state(status.state))
                    .context(status.context.clone())
                    .description(status.description.clone());
                if let Some(url) = &status.target_url {
                    request = request.target(url.clone());
                }
                request.send().await.map(|_| ())
            },
        )
        .await
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

/// Classifies a failure: a rate limit (see [`rate_limit_wait`]), bad credentials (401), a
/// failure worth retrying (transport, 5xx), or a refusal.
fn from_octocrab(operation: Operation, e: octocrab::Error) -> GithubError {
    let operation = operation.as_str();
    let octocrab::Error::GitHub { source, .. } = &e else {
        return GithubError::Transient {
            operation,
            message: e.to_string(),
        };
    };
    let status = source.status_code.as_u16();
    let headers = source.headers.as_ref();
    let header = |name| headers?.get(name)?.to_str().ok();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let answer = Answer {
        status,
        message: &source.message,
        retry_after: header("retry-after"),
        remaining: header("x-ratelimit-remaining"),
        reset: header("x-ratelimit-reset"),
    };
    if let Some(retry_after) = rate_limit_wait(&answer, now) {
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

/// What a failed answer says about rate limits.
#[derive(Debug, Clone, Copy, Default)]
struct Answer<'a> {
    status: u16,
    /// The body's `message`.
    message: &'a str,
    retry_after: Option<&'a str>,
    /// `x-ratelimit-remaining`.
    remaining: Option<&'a str>,
    /// `x-ratelimit-reset`, in UTC epoch seconds.
    reset: Option<&'a str>,
}

/// How long an answer says to wait, if it is a rate limit. GitHub's "Rate limits for the REST
/// API", "Exceeding the rate limit"
/// (<https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit>):
/// a primary or secondary limit is a 403 or a 429; a primary one has `x-ratelimit-remaining:
/// 0`, a secondary one says so in its message ("You have exceeded a secondary rate limit").
/// "If the retry-after response header is present, you should not retry your request until
/// after that many seconds has elapsed. If the x-ratelimit-remaining header is 0, you should
/// not retry your request until after the time, in UTC epoch seconds, specified by the
/// x-ratelimit-reset header. Otherwise, wait for at least one minute before retrying."
///
/// A 403 that is none of these is a refusal (e.g. "Resource not accessible by integration"). A
/// 403 with `retry-after` is taken as a limit whatever its message: GitHub sends the header
/// only with one, and waiting costs less than dropping the statuses.
fn rate_limit_wait(answer: &Answer<'_>, now_secs: u64) -> Option<Duration> {
    let seconds = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u64>().ok());
    let retry_after = seconds(answer.retry_after);
    let exhausted = answer.remaining.map(str::trim) == Some("0");
    let limited = match answer.status {
        429 => true,
        403 => {
            exhausted
                || retry_after.is_some()
                || answer.message.to_ascii_lowercase().contains("rate limit")
        }
        _ => false,
    };
    if !limited {
        return None;
    }
    if let Some(secs) = retry_after {
        return Some(Duration::from_secs(secs.max(1)));
    }
    if exhausted && let Some(reset) = seconds(answer.reset) {
        return Some(Duration::from_secs(reset.saturating_sub(now_secs).max(1)));
    }
    Some(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECONDARY: &str =
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";

    fn wait(answer: Answer<'_>) -> Option<Duration> {
        rate_limit_wait(&answer, 1000)
    }

    fn forbidden(message: &str) -> Answer<'_> {
        Answer {
            status: 403,
            message,
            ..Answer::default()
        }
    }

    #[test]
    fn retry_after_is_waited_for_first() {
        for answer in [
            Answer {
                retry_after: Some("7"),
                ..forbidden(SECONDARY)
            },
            Answer {
                retry_after: Some(" 7 "),
                remaining: Some("0"),
                reset: Some("1300"),
                ..forbidden("")
            },
            Answer {
                status: 429,
                retry_after: Some("7"),
                ..Answer::default()
            },
        ] {
            assert_eq!(wait(answer), Some(Duration::from_secs(7)), "{answer:?}");
        }
    }

    #[test]
    fn an_exhausted_primary_limit_waits_until_its_reset() {
        let exhausted = Answer {
            remaining: Some("0"),
            reset: Some("1030"),
            ..forbidden("API rate limit exceeded for installation ID 42.")
        };
        assert_eq!(wait(exhausted), Some(Duration::from_secs(30)));
        let past = Answer {
            reset: Some("990"),
            ..exhausted
        };
        assert_eq!(wait(past), Some(Duration::from_secs(1)), "never zero");
        let no_reset = Answer {
            reset: None,
            ..exhausted
        };
        assert_eq!(wait(no_reset), Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_limit_without_headers_waits_a_minute() {
        // The case that used to drop statuses: a 403 secondary limit without `retry-after`.
        for answer in [
            forbidden(SECONDARY),
            Answer {
                remaining: Some("4999"),
                ..forbidden(SECONDARY)
            },
            forbidden("API rate limit exceeded for user ID 1."),
            forbidden("You have exceeded a SECONDARY RATE LIMIT."),
            Answer {
                status: 429,
                ..Answer::default()
            },
        ] {
            assert_eq!(wait(answer), Some(Duration::from_secs(60)), "{answer:?}");
        }
    }

    #[test]
    fn other_answers_are_not_limits() {
        for answer in [
            forbidden("Resource not accessible by integration"),
            Answer {
                remaining: Some("12"),
                reset: Some("1030"),
                ..forbidden("Resource not accessible by integration")
            },
            Answer {
                retry_after: Some("abc"),
                ..forbidden("Must have admin rights to Repository.")
            },
            Answer {
                status: 422,
                message: SECONDARY,
                retry_after: Some("7"),
                remaining: Some("0"),
                ..Answer::default()
            },
            Answer {
                status: 404,
                message: "Not Found",
                ..Answer::default()
            },
        ] {
            assert_eq!(wait(answer), None, "{answer:?}");
        }
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

    mod over_http {
        //! The client against a local server: every HTTP request it sends is logged once, by
        //! operation, and the server's answers are classified as GitHub documents them.

        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

        use serde_json::json;

        use super::SECONDARY;
        use crate::github::fake::RecordingLog;
        use crate::github::testserver::{Reply, Seen, TestServer};
        use crate::github::{
            CommitStatus, GithubApi, GithubError, Operation, Outcome, Repo, State,
        };

        use super::super::{Credentials, OctocrabGithub};

        const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
        /// Contexts on the commit: two pages of the combined status.
        const CONTEXTS: usize = 150;

        fn repo() -> Repo {
            Repo("acme/app".into())
        }

        fn operation(seen: &Seen) -> Operation {
            let path = seen.path.as_str();
            if path.ends_with("/installation") {
                Operation::GetRepositoryInstallation
            } else if path.ends_with("/access_tokens") {
                Operation::CreateInstallationAccessToken
            } else if path.contains("/commits/") {
                Operation::GetCombinedStatus
            } else {
                Operation::CreateCommitStatus
            }
        }

        fn page(query: &str) -> usize {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("page="))
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
        }

        fn combined_status(query: &str) -> Reply {
            let first = (page(query) - 1) * 100;
            let statuses: Vec<_> = (first..CONTEXTS.min(first + 100))
                .map(|i| json!({"state": "success", "context": format!("ci/{i}"), "description": "ok"}))
                .collect();
            Reply::json(
                200,
                json!({"state": "success", "sha": SHA, "total_count": CONTEXTS, "statuses": statuses}),
            )
        }

        /// GitHub as an App sees it; `refuse` makes the next status post a 401, once.
        fn github(minted: Arc<AtomicUsize>, refuse: Arc<AtomicBool>) -> impl Fn(&Seen) -> Reply {
            move |seen| match (seen.method.as_str(), operation(seen)) {
                ("GET", Operation::GetRepositoryInstallation) => Reply::json(200, json!({"id": 7})),
                ("POST", Operation::CreateInstallationAccessToken) => {
                    let n = minted.fetch_add(1, Ordering::SeqCst) + 1;
                    Reply::json(
                        201,
                        json!({"token": format!("ghs_test{n}"), "expires_at": "2999-01-01T00:00:00Z", "permissions": {"statuses": "write"}}),
                    )
                }
                ("GET", Operation::GetCombinedStatus) => combined_status(&seen.query),
                ("POST", Operation::CreateCommitStatus) if refuse.swap(false, Ordering::SeqCst) => {
                    Reply::json(401, json!({"message": "Bad credentials"}))
                }
                ("POST", Operation::CreateCommitStatus) => Reply::json(
                    201,
                    json!({"state": "success", "context": "branchpipeline/dev"}),
                ),
                _ => Reply::json(404, json!({"message": "Not Found"})),
            }
        }

        /// A throwaway RSA key: the server does not check JWTs, octocrab only needs to sign.
        fn app_key() -> Vec<u8> {
            let out = std::process::Command::new("openssl")
                .args(["genrsa", "2048"])
                .output()
                .expect("openssl (a test bed package) generates the test's App key");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }

        fn status() -> CommitStatus {
            CommitStatus::new(SHA, "branchpipeline/dev", State::Success, "deployed to dev")
        }

        /// What the server received, as operations: what the log must hold, one for one.
        fn received(server: &TestServer) -> Vec<Operation> {
            server.seen().iter().map(operation).collect()
        }

        #[tokio::test]
        async fn every_request_of_an_app_is_counted_once() {
            let (minted, refuse) = (Arc::default(), Arc::new(AtomicBool::new(false)));
            let server = TestServer::start(github(minted, refuse.clone())).await;
            let credentials = Credentials::App {
                id: 1,
                private_key_pem: app_key(),
            };
            let api = OctocrabGithub::new(&server.url, credentials).expect("client");
            let log = RecordingLog::default();

            let read = api.statuses(&repo(), SHA, &log).await.expect("read");
            assert_eq!(read.len(), CONTEXTS);
            use Operation::*;
            assert_eq!(
                log.operations(),
                [
                    GetRepositoryInstallation,
                    CreateInstallationAccessToken,
                    GetCombinedStatus,
                    GetCombinedStatus
                ],
                "one lookup, one token, one count per page"
            );
            api.post(&repo(), &status(), &log).await.expect("posted");
            refuse.store(true, Ordering::SeqCst);
            api.post(&repo(), &status(), &log)
                .await
                .expect("posted again");

            let seen = server.seen();
            assert_eq!(log.operations(), received(&server), "{seen:#?}");
            assert_eq!(
                log.requests()[4..],
                [
                    (CreateCommitStatus, Outcome::Success),
                    (CreateCommitStatus, Outcome::TerminalError),
                    (CreateInstallationAccessToken, Outcome::Success),
                    (CreateCommitStatus, Outcome::Success),
                ],
                "the token is reused until GitHub refuses it, then minted again"
            );
            let auth = |i: usize| seen[i].authorization.clone().unwrap_or_default();
            assert!(
                auth(0).starts_with("Bearer ey"),
                "the lookup is signed as the App"
            );
            assert_eq!(auth(2), "Bearer ghs_test1");
            assert_eq!(auth(5), "Bearer ghs_test1");
            assert_eq!(auth(7), "Bearer ghs_test2", "the refused token is dropped");
        }

        #[tokio::test]
        async fn a_secondary_limit_without_retry_after_is_waited_for() {
            let answers = Arc::new(AtomicUsize::new(0));
            let count = answers.clone();
            let server = TestServer::start(move |_| match count.fetch_add(1, Ordering::SeqCst) {
                0 => Reply::json(403, json!({"message": SECONDARY}))
                    .header("x-ratelimit-remaining", "4999"),
                1 => Reply::json(
                    403,
                    json!({"message": "Resource not accessible by integration"}),
                ),
                _ => Reply::json(
                    403,
                    json!({"message": "API rate limit exceeded for user ID 1."}),
                )
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", "1"),
            })
            .await;
            let api =
                OctocrabGithub::new(&server.url, Credentials::Token("t".into())).expect("client");
            let log = RecordingLog::default();
            let limited = api.post(&repo(), &status(), &log).await;
            assert_eq!(
                limited,
                Err(GithubError::RateLimited {
                    retry_after: std::time::Duration::from_secs(60)
                })
            );
            let refused = api.post(&repo(), &status(), &log).await;
            assert!(
                matches!(refused, Err(GithubError::Refused { status: 403, .. })),
                "{refused:?}"
            );
            let primary = api.statuses(&repo(), SHA, &log).await;
            assert!(
                matches!(primary, Err(GithubError::RateLimited { retry_after }) if retry_after.as_secs() == 1),
                "{primary:?}"
            );
            assert_eq!(
                log.requests(),
                [
                    (Operation::CreateCommitStatus, Outcome::RateLimited),
                    (Operation::CreateCommitStatus, Outcome::TerminalError),
                    (Operation::GetCombinedStatus, Outcome::RateLimited),
                ]
            );
            assert_eq!(log.operations(), received(&server));
        }
    }
}
