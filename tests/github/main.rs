//! The loop back to GitHub, end to end: pushes and pull requests through the bed's CodePipeline
//! engine, the real controller following their executions, and the bed's GitHub
//! (`tests/github_fake`) recording the commit statuses it receives and how each request was
//! authenticated.

#[path = "../support/mod.rs"]
mod support;

#[path = "../reconciler/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use branchpipeline::api::*;
use serde::Deserialize;
use serde_json::json;

use harness::Harness;
use support::github::{GithubFake, RecordedStatus};
use support::wait::{self, Check};

const NAME: &str = "orders-api";
const TIMEOUT: Duration = Duration::from_secs(90);
/// Tests poll fast; production defaults are 60 s and 10 s.
const POLL: &str = "2s";
const ACTIVE_POLL: &str = "1s";

/// A test's world: its namespace, a repository of its own with the App installed on it, and a
/// controller that posts as the App.
struct World {
    h: Harness,
    github: &'static GithubFake,
    repo: String,
    installation: u64,
}

impl World {
    async fn new(prefix: &str) -> Result<Self> {
        let mut h = Harness::new(prefix).await?;
        let github = GithubFake::shared().await;
        let repo = format!("{}/{NAME}", h.ns);
        let installation = installation_id(&h.ns);
        github.install(installation, &repo).await?;
        start_controller(&mut h, github)?;
        Ok(Self {
            h,
            github,
            repo,
            installation,
        })
    }

    /// The example aimed at this world's repository, with commit statuses on.
    fn example(&self) -> BranchPipeline {
        let mut bp = self.h.example();
        bp.spec.source.repository = self.repo.clone();
        bp.spec.github = Some(GithubSpec {
            commit_statuses: true,
        });
        bp
    }

    async fn apply_ready(&self, bp: &BranchPipeline) -> Result<()> {
        self.h.apply(bp).await?;
        self.h
            .wait_ready(&bp.metadata.name.clone().unwrap_or_default())
            .await?;
        Ok(())
    }

    fn pipeline(&self) -> String {
        format!("{}-{NAME}", self.h.ns)
    }

    /// Makes every action of `pipeline` (or of one stage) last `seconds`, so that the
    /// controller sees it in progress.
    async fn slow(&self, pipeline: &str, stage: Option<&str>, seconds: f64) -> Result<()> {
        let mut rule = json!({"pipelineName": pipeline, "status": "Succeeded", "seconds": seconds});
        if let Some(stage) = stage {
            rule["stageName"] = json!(stage);
        }
        self.h.bed.action_outcome(&rule).await
    }

    async fn push(&self, branch: &str, sha: &str) -> Result<Vec<(String, String)>> {
        self.h
            .bed
            .push(&self.repo, branch, sha, &["src/main.rs"])
            .await
    }

    async fn statuses(&self, sha: &str) -> Result<Vec<RecordedStatus>> {
        Ok(self
            .github
            .statuses(&self.repo)
            .await?
            .into_iter()
            .filter(|s| s.sha == sha)
            .collect())
    }

    /// Waits until the latest status of each `(context, state)` is as given.
    async fn wait_statuses(&self, sha: &str, want: &[(&str, &str)]) -> Result<Vec<RecordedStatus>> {
        let waited = wait::until(&format!("statuses {want:?} on {sha}"), TIMEOUT, || async {
            let all = self.statuses(sha).await?;
            let done = want
                .iter()
                .all(|(context, state)| latest(&all, context).is_some_and(|s| s.state == *state));
            Ok(if done {
                Check::Done(all)
            } else {
                Check::NotYet(summary(&all))
            })
        })
        .await;
        waited.map_err(|e| anyhow::anyhow!("{e:#}\n{}\n{}", self.h.logs(), self.github.log()))
    }

    async fn bp(&self, name: &str) -> Result<BranchPipeline> {
        Ok(self.h.api.get(name).await?)
    }
}

/// A stable installation id per namespace, unique enough across one test binary.
/// A controller that posts as the App and polls fast.
fn start_controller(h: &mut Harness, github: &GithubFake) -> Result<()> {
    let mut args = github.controller_args();
    args.extend(
        [
            "--execution-poll-interval",
            POLL,
            "--execution-active-poll-interval",
            ACTIVE_POLL,
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    h.start_controller(&args)?;
    Ok(())
}

fn installation_id(ns: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(ns.as_bytes());
    1_000
        + u64::from(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]))
}

/// A deterministic 40-hex commit id for `label`.
fn sha(label: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(label.as_bytes()))[..40].to_string()
}

fn latest<'a>(all: &'a [RecordedStatus], context: &str) -> Option<&'a RecordedStatus> {
    all.iter().rev().find(|s| s.context == context)
}

fn summary(all: &[RecordedStatus]) -> String {
    all.iter()
        .map(|s| {
            format!(
                "{}={} ({})",
                s.context,
                s.state,
                s.description.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn contexts(all: &[RecordedStatus]) -> BTreeSet<String> {
    all.iter().map(|s| s.context.clone()).collect()
}

/// The states a context went through, in order.
fn history(all: &[RecordedStatus], context: &str) -> Vec<String> {
    all.iter()
        .filter(|s| s.context == context)
        .map(|s| s.state.clone())
        .collect()
}

fn environment<'a>(bp: &'a BranchPipeline, name: &str) -> Option<&'a EnvironmentStatus> {
    bp.status
        .as_ref()?
        .environments
        .iter()
        .find(|e| e.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_develop_push_reports_build_and_dev_only() -> Result<()> {
    let w = World::new("gh-develop").await?;
    let bp = w.example();
    w.apply_ready(&bp).await?;
    // Long enough for a poll to see the build running even on a loaded machine.
    w.slow(&w.pipeline(), None, 4.0).await?;
    let sha = sha(&format!("{}-develop", w.h.ns));
    let started = w.push("develop", &sha).await?;
    assert_eq!(started.len(), 1, "{started:?}");

    let all = w
        .wait_statuses(
            &sha,
            &[
                ("branchpipeline/build", "success"),
                ("branchpipeline/dev", "success"),
            ],
        )
        .await?;
    assert_eq!(
        history(&all, "branchpipeline/build"),
        ["pending", "success"],
        "{}",
        summary(&all)
    );
    assert_eq!(
        history(&all, "branchpipeline/dev"),
        ["pending", "success"],
        "{}",
        summary(&all)
    );
    assert_eq!(
        contexts(&all),
        BTreeSet::from([
            "branchpipeline/build".to_string(),
            "branchpipeline/dev".to_string()
        ]),
        "no status for qa, stage, perf or prod"
    );
    for status in &all {
        let url = status.target_url.as_deref().unwrap_or_default();
        assert!(
            url.contains("console.aws.amazon.com/codesuite/codepipeline")
                && url.contains(&started[0].1),
            "{url}"
        );
        assert_eq!(status.auth, "installation-token");
    }

    let bp =
        w.h.wait_for(NAME, "dev's deploy in status.environments", |bp| {
            environment(bp, "dev")
                .and_then(|e| e.deployed.as_ref())
                .is_some_and(|d| d.commit == sha)
        })
        .await?;
    let dev = environment(&bp, "dev").context("dev")?;
    let last = dev.last_run.as_ref().context("dev's last run")?;
    assert_eq!(
        (last.trigger.as_str(), last.result.as_str()),
        ("push", "Succeeded")
    );
    assert_eq!(last.branch.as_deref(), Some("develop"));
    assert_eq!(
        last.end_time,
        dev.deployed.as_ref().and_then(|d| d.time.clone()),
        "both are when deploy-dev ended"
    );
    assert!(last.end_time.is_some(), "{dev:?}");
    // One entry per environment: those the push did not reach are listed, with no run.
    let production = format!("{}-production", w.pipeline());
    let listed: Vec<(&str, &str)> = bp
        .status
        .as_ref()
        .map(|s| {
            s.environments
                .iter()
                .map(|e| (e.name.as_str(), e.pipeline.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let pipeline = w.pipeline();
    assert_eq!(
        listed,
        [
            ("dev", pipeline.as_str()),
            ("qa", pipeline.as_str()),
            ("stage", pipeline.as_str()),
            ("perf", pipeline.as_str()),
            ("prod", production.as_str()),
        ]
    );
    for name in ["qa", "stage", "perf", "prod"] {
        assert!(
            environment(&bp, name).is_some_and(|e| e.last_run.is_none() && e.deployed.is_none()),
            "{name}: {:?}",
            bp.status
        );
    }
    let status = bp.status.clone().unwrap_or_default();
    let condition = status
        .condition(CONDITION_COMMIT_STATUSES)
        .context("CommitStatuses")?;
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("True", "Posting")
    );
    assert_eq!(
        status.last_execution.map(|e| e.result),
        Some("Succeeded".into())
    );
    assert_authenticated_and_unlogged(&w).await
}

/// Every request the fake saw for this world carried an App JWT (installation lookup and
/// token) or a valid installation token (statuses, posted and read); no token or key is in the controller's log.
async fn assert_authenticated_and_unlogged(w: &World) -> Result<()> {
    let requests = w.github.requests(&w.repo, w.installation).await?;
    assert!(!requests.is_empty());
    for r in &requests {
        // `/statuses/{sha}` (post) and `/commits/{sha}/status` (read).
        let status_call = r.path.contains("/status");
        let expected = if status_call {
            "installation-token"
        } else {
            "app-jwt"
        };
        assert_eq!(r.auth, expected, "{r:?}");
        if status_call {
            assert_eq!(r.installation_id, Some(w.installation), "{r:?}");
        }
    }
    let log = w.h.controller_log_full(0);
    for token in w.github.tokens().await? {
        assert!(
            !log.contains(&token),
            "an installation token is in the controller's log"
        );
    }
    let key = std::fs::read_to_string(w.github.key_file())?;
    let key_body: String = key.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        !key_body.is_empty() && !log.contains(&key_body),
        "the App key is in the log"
    );
    assert!(!log.contains("eyJ"), "a JWT is in the controller's log");
    Ok(())
}

/// The token alternative (a token Secret, `--github-token-file`): the same statuses, every
/// request sent with that token, and the token in no line of the controller's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_secret_posts_the_same_statuses() -> Result<()> {
    let mut h = Harness::new("gh-token").await?;
    let github = GithubFake::shared().await;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{}\n", github.static_token()))?;
    let file = file.display().to_string();
    h.start_controller(&[
        "--github-token-file",
        &file,
        "--github-api-url",
        github.url(),
        "--execution-poll-interval",
        POLL,
        "--execution-active-poll-interval",
        ACTIVE_POLL,
    ])?;
    let repo = format!("{}/{NAME}", h.ns);
    let installation = installation_id(&h.ns);
    let w = World {
        h,
        github,
        repo,
        installation,
    };
    w.apply_ready(&w.example()).await?;
    let sha = sha(&format!("{}-token", w.h.ns));
    w.push("develop", &sha).await?;
    let all = w
        .wait_statuses(
            &sha,
            &[
                ("branchpipeline/build", "success"),
                ("branchpipeline/dev", "success"),
            ],
        )
        .await?;
    assert!(all.iter().all(|s| s.auth == "static-token"), "{all:?}");
    let requests = w.github.requests(&w.repo, w.installation).await?;
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.auth, "static-token", "{r:?}");
    }
    let log = w.h.controller_log_full(0);
    assert!(
        !log.contains(w.github.static_token()),
        "the token is in the controller's log"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_push_waits_for_perf_approval() -> Result<()> {
    let w = World::new("gh-release").await?;
    w.apply_ready(&w.example()).await?;
    let sha = sha(&format!("{}-release", w.h.ns));
    w.push("release/2.0", &sha).await?;
    let all = w
        .wait_statuses(
            &sha,
            &[
                ("branchpipeline/stage", "success"),
                ("branchpipeline/perf", "pending"),
            ],
        )
        .await?;
    let perf = latest(&all, "branchpipeline/perf").context("perf")?;
    assert!(
        perf.description
            .as_deref()
            .unwrap_or_default()
            .contains("awaiting approval"),
        "{perf:?}"
    );
    w.h.wait_for(NAME, "perf awaiting approval in status", |bp| {
        environment(bp, "perf")
            .and_then(|e| e.last_run.as_ref())
            .is_some_and(|r| r.result == "AwaitingApproval")
    })
    .await?;
    w.h.bed.approve(&w.pipeline(), "deploy-perf").await?;
    let all = w
        .wait_statuses(&sha, &[("branchpipeline/perf", "success")])
        .await?;
    assert!(
        !contexts(&all).contains("branchpipeline/dev"),
        "{}",
        summary(&all)
    );
    assert!(
        !contexts(&all).contains("branchpipeline/prod"),
        "{}",
        summary(&all)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_stage_fails_the_build_status_only() -> Result<()> {
    let w = World::new("gh-failing").await?;
    w.apply_ready(&w.example()).await?;
    let rule = json!({"pipelineName": w.pipeline(), "stageName": "test", "status": "Failed", "summary": "3 tests failed"});
    w.h.bed.action_outcome(&rule).await?;
    let sha = sha(&format!("{}-failing", w.h.ns));
    w.push("develop", &sha).await?;
    let all = w
        .wait_statuses(&sha, &[("branchpipeline/build", "failure")])
        .await?;
    let build = latest(&all, "branchpipeline/build").context("build")?;
    assert!(
        build
            .description
            .as_deref()
            .unwrap_or_default()
            .contains("test"),
        "{build:?}"
    );
    // Give the tracker two more polls: still no environment status.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let all = w.statuses(&sha).await?;
    assert_eq!(
        contexts(&all),
        BTreeSet::from(["branchpipeline/build".to_string()]),
        "{}",
        summary(&all)
    );
    let bp = w.bp(NAME).await?;
    assert!(
        environment(&bp, "dev").is_some_and(|e| e.deployed.is_none() && e.last_run.is_none()),
        "dev is listed, never reached: {:?}",
        bp.status
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_builds_and_deploys_nothing() -> Result<()> {
    let w = World::new("gh-pr").await?;
    let mut bp = w.example();
    bp.spec.pull_requests = Some(PullRequestSpec {
        branches: vec!["develop".into()],
        events: vec![PullRequestEvent::Open, PullRequestEvent::Updated],
        stages: Vec::new(),
    });
    w.apply_ready(&bp).await?;
    let pr_pipeline = format!("{}-pr", w.pipeline());
    let sha = sha(&format!("{}-pr", w.h.ns));
    let request = json!({
        "repository": w.repo, "event": "OPEN", "pullRequestId": "7",
        "sourceBranch": "feature/login", "destinationBranch": "develop", "commit": sha,
    });
    let started = w.h.bed.pull_request(&request).await?;
    let pipelines: Vec<&str> = started.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pipelines,
        [pr_pipeline.as_str()],
        "only the pull-request pipeline starts"
    );
    let (_, id) = &started[0];
    w.h.bed
        .wait_execution(&pr_pipeline, id, &["Succeeded"])
        .await?;
    let stages: Vec<String> =
        w.h.bed
            .stage_results(&pr_pipeline, id)
            .await?
            .into_keys()
            .collect();
    let mut expected = vec!["Source", "build", "lint", "test"];
    expected.sort_unstable();
    assert_eq!(stages, expected, "lint, test and build, no deploy stage");

    let all = w
        .wait_statuses(&sha, &[("branchpipeline/pr", "success")])
        .await?;
    assert_eq!(
        contexts(&all),
        BTreeSet::from(["branchpipeline/pr".to_string()]),
        "{}",
        summary(&all)
    );
    // A closed pull request starts nothing.
    let closed =
        w.h.bed
            .pull_request(&json!({
                "repository": w.repo, "event": "CLOSED", "pullRequestId": "7",
                "sourceBranch": "feature/login", "destinationBranch": "develop", "commit": sha,
            }))
            .await?;
    assert!(closed.is_empty(), "{closed:?}");
    let bp =
        w.h.wait_for(NAME, "the pull request as the last execution", |bp| {
            bp.status
                .as_ref()
                .and_then(|s| s.last_execution.as_ref())
                .is_some_and(|e| e.trigger == "pull-request")
        })
        .await?;
    let status = bp.status.unwrap_or_default();
    assert_eq!(status.environments.len(), 5, "{status:?}");
    assert!(
        status
            .environments
            .iter()
            .all(|e| e.last_run.is_none() && e.deployed.is_none()),
        "a pull request deploys nothing: {status:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_run_duplicates_no_status() -> Result<()> {
    restart_mid_run_posts_nothing_twice("gh-restart", 0).await
}

/// After a restart the controller must find its own statuses even when other systems posted
/// more than a page of them since: GitHub lists a commit's statuses newest first, 100 a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_finds_its_statuses_behind_a_page_of_others() -> Result<()> {
    restart_mid_run_posts_nothing_twice("gh-others", 120).await
}

/// A develop push whose controller restarts mid-run (build green, dev still deploying), while
/// another CI posts `others` statuses to the same commit: afterwards each of the controller's
/// contexts holds each state once.
async fn restart_mid_run_posts_nothing_twice(prefix: &str, others: usize) -> Result<()> {
    let mut w = World::new(prefix).await?;
    w.apply_ready(&w.example()).await?;
    w.slow(&w.pipeline(), Some("deploy-dev"), 8.0).await?;
    let sha = sha(&format!("{}-restart", w.h.ns));
    w.push("develop", &sha).await?;
    w.wait_statuses(
        &sha,
        &[
            ("branchpipeline/build", "success"),
            ("branchpipeline/dev", "pending"),
        ],
    )
    .await?;
    w.h.stop_controller(0);
    for n in 0..others {
        w.github
            .post_as_other_ci(&w.repo, &sha, &format!("other-ci/check-{n}"))
            .await?;
    }
    start_controller(&mut w.h, w.github)?;
    let all = w
        .wait_statuses(&sha, &[("branchpipeline/dev", "success")])
        .await?;
    // Two more polls of the restarted controller, then count.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let all_after = w.statuses(&sha).await?;
    assert_eq!(all_after.len(), all.len(), "{}", summary(&all_after));
    // Only deploy-dev is slow, so the build is usually green when first seen; on a loaded
    // machine the first poll can still find it running. Either way, once each: the restart
    // posted nothing again.
    let build = history(&all_after, "branchpipeline/build");
    assert!(
        build == ["success"] || build == ["pending", "success"],
        "{}",
        summary(&all_after)
    );
    assert_eq!(
        history(&all_after, "branchpipeline/dev"),
        ["pending", "success"],
        "{}",
        summary(&all_after)
    );
    Ok(())
}

/// One API call in the fake's request log, with the time it arrived (epoch seconds).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimedRequest {
    method: String,
    path: String,
    repo: Option<String>,
    installation_id: Option<u64>,
    status: u16,
    rate_limited: Option<String>,
    /// The `retry-after` a secondary limit answered, in seconds.
    retry_after: Option<f64>,
    time: f64,
}

/// Every API call about this world's repository or installation, in arrival order.
async fn timed_requests(w: &World) -> Result<Vec<TimedRequest>> {
    let body = support::http::get_json(w.github.url(), "/_fake/requests").await?;
    let all: Vec<TimedRequest> = serde_json::from_value(body["requests"].clone())?;
    Ok(all
        .into_iter()
        .filter(|r| {
            r.repo
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(&w.repo))
                || r.installation_id == Some(w.installation)
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_github_delays_posts_but_loses_none() -> Result<()> {
    let w = World::new("gh-ratelimit").await?;
    w.apply_ready(&w.example()).await?;
    let sha = sha(&format!("{}-ratelimit", w.h.ns));
    w.github
        .rate_limit(&json!({"kind": "secondary", "count": 2, "retryAfter": 4, "repo": w.repo}))
        .await?;
    w.push("develop", &sha).await?;
    let all = w
        .wait_statuses(
            &sha,
            &[
                ("branchpipeline/build", "success"),
                ("branchpipeline/dev", "success"),
            ],
        )
        .await?;
    let requests = timed_requests(&w).await?;
    let limited: Vec<&TimedRequest> = requests
        .iter()
        .filter(|r| r.rate_limited.is_some())
        .collect();
    assert_eq!(
        limited.len(),
        2,
        "both injected limits were hit: {requests:#?}"
    );
    for hold in limited {
        assert_eq!(
            (hold.method.as_str(), hold.status, hold.retry_after),
            ("POST", 403, Some(4.0)),
            "{hold:?}"
        );
        // Nothing at all goes to GitHub until Retry-After has passed: no post is accepted,
        // none is even tried. `time` is when a request arrived, so the window checked here
        // ends no later than the one the controller was given.
        let until = hold.time + 4.0;
        let during: Vec<&TimedRequest> = requests
            .iter()
            .filter(|r| r.time > hold.time && r.time < until)
            .collect();
        assert!(
            during.is_empty(),
            "sent during the Retry-After window of {hold:?}: {during:#?}"
        );
        let resent = requests.iter().any(|r| {
            r.method == "POST" && r.path == hold.path && r.status == 201 && r.time >= until
        });
        assert!(
            resent,
            "the held post to {} was accepted after the window: {requests:#?}",
            hold.path
        );
    }
    // None lost: every context ends where the execution did, and GitHub holds exactly what
    // was accepted.
    assert_eq!(
        contexts(&all),
        BTreeSet::from([
            "branchpipeline/build".to_string(),
            "branchpipeline/dev".to_string()
        ])
    );
    let accepted = requests
        .iter()
        .filter(|r| {
            r.method == "POST" && r.path.ends_with(&format!("/statuses/{sha}")) && r.status == 201
        })
        .count();
    assert_eq!(accepted, w.statuses(&sha).await?.len(), "{}", summary(&all));
    let log = w.h.controller_log_full(0);
    assert!(log.contains("GitHub rate limit"), "the wait is logged");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_lists_each_pipeline_at_most_once_per_interval() -> Result<()> {
    let w = World::new("gh-steady").await?;
    w.apply_ready(&w.example()).await?;
    let sha = sha(&format!("{}-steady", w.h.ns));
    w.push("develop", &sha).await?;
    w.wait_statuses(&sha, &[("branchpipeline/dev", "success")])
        .await?;
    let pipelines = [w.pipeline(), format!("{}-production", w.pipeline())];
    let before = count_lists(&w, &pipelines).await?;
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let after = count_lists(&w, &pipelines).await?;
    let interval = 2;
    let allowed = window.as_secs() / interval + 1;
    for (pipeline, (b, a)) in pipelines.iter().zip(before.iter().zip(&after)) {
        let lists = (a - b) as u64;
        assert!(
            lists <= allowed,
            "{pipeline}: {lists} ListPipelineExecutions in {window:?}"
        );
        assert!(lists >= 1, "{pipeline} is still polled");
    }
    let other_reads = [
        "ListActionExecutions",
        "GetPipelineState",
        "GetPipelineExecution",
    ];
    let mut reads = 0;
    let requests = w.h.bed.aws_requests().await?;
    for r in requests
        .iter()
        .filter(|r| r.time > now_secs() - window.as_secs_f64() + 1.0)
    {
        if other_reads.contains(&r.action.as_deref().unwrap_or_default())
            && pipelines.iter().any(|p| r.resource.as_deref() == Some(p))
        {
            reads += 1;
        }
    }
    assert_eq!(reads, 0, "nothing new: only the listing");
    Ok(())
}

async fn count_lists(w: &World, pipelines: &[String]) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for p in pipelines {
        out.push(
            w.h.bed
                .aws_call_count("ListPipelineExecutions", Some(p))
                .await?,
        );
    }
    Ok(out)
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_the_status_says_why_nothing_is_posted() -> Result<()> {
    let mut h = Harness::new("gh-nocreds").await?;
    h.start_controller(&["--execution-poll-interval", POLL])?;
    let mut bp = h.example();
    bp.spec.github = Some(GithubSpec {
        commit_statuses: true,
    });
    h.apply(&bp).await?;
    let bp = h
        .wait_for(NAME, "CommitStatuses=False NoCredentials", |bp| {
            bp.status
                .as_ref()
                .and_then(|s| s.condition(CONDITION_COMMIT_STATUSES))
                .is_some_and(|c| c.status == "False" && c.reason == "NoCredentials")
        })
        .await?;
    let ready = bp
        .status
        .as_ref()
        .and_then(|s| s.condition(CONDITION_READY))
        .context("Ready")?;
    if ready.status != "True" {
        bail!("commit statuses do not make the resource unready: {ready:?}");
    }
    // Turning it off removes the condition.
    let mut off = h.example();
    off.spec.github = None;
    h.apply(&off).await?;
    h.wait_for(NAME, "no CommitStatuses condition", |bp| {
        bp.status
            .as_ref()
            .is_some_and(|s| s.condition(CONDITION_COMMIT_STATUSES).is_none())
    })
    .await?;
    Ok(())
}
