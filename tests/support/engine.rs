//! The bed's CodePipeline execution engine (`tests/moto_ext/engine.py`, rules and sources in
//! `tests/moto_ext/README.md`): simulated pushes, its switches, approvals, and reading an
//! execution's stages back through the AWS API.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::bed::TestBed;
use super::http;
use super::wait;

/// What `#{SourceVariables.BranchName}` is for a manual start with a commit override: AWS does
/// not document it, so the bed plays it both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualStartBranch {
    /// The source action's configured `BranchName`.
    Configured,
    /// The branch the commit was pushed on.
    Commit,
}

impl ManualStartBranch {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Configured => "configured",
            Self::Commit => "commit",
        }
    }
}

/// A stage's result in one execution: `Succeeded`, `Failed`, `InProgress`, `Skipped`, or
/// `NotRun` when the execution ended before it.
pub type StageResults = BTreeMap<String, String>;

impl TestBed {
    /// Simulates a push through every pipeline's triggers; returns the started
    /// `(pipeline, execution id)`s.
    pub async fn push(
        &self,
        repository: &str,
        branch: &str,
        commit: &str,
        files: &[&str],
    ) -> Result<Vec<(String, String)>> {
        let body =
            json!({"repository": repository, "branch": branch, "commit": commit, "files": files});
        let out = http::post_json(self.moto_url(), "/_bpl/push", &body).await?;
        started(&out)
    }

    /// Simulates a pull-request event (`OPEN`, `UPDATED`, `CLOSED`).
    pub async fn pull_request(&self, request: &Value) -> Result<Vec<(String, String)>> {
        let out = http::post_json(self.moto_url(), "/_bpl/pull-request", request).await?;
        started(&out)
    }

    /// Sets the engine's switches (`manualStartBranch`, `actionSeconds`).
    pub async fn engine(&self, settings: &Value) -> Result<Value> {
        http::post_json(self.moto_url(), "/_bpl/engine", settings).await
    }

    pub async fn manual_start_branch(&self, reading: ManualStartBranch) -> Result<()> {
        self.engine(&json!({"manualStartBranch": reading.as_str()}))
            .await?;
        Ok(())
    }

    /// Makes matching future actions end with `status` (e.g. a failing `test` stage).
    pub async fn action_outcome(&self, rule: &Value) -> Result<()> {
        http::post_json(self.moto_url(), "/_bpl/action-outcome", rule).await?;
        Ok(())
    }

    /// The execution's status, through GetPipelineExecution.
    pub async fn execution_status(&self, pipeline: &str, id: &str) -> Result<String> {
        let out = self
            .codepipeline()
            .await
            .get_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(id)
            .send()
            .await?;
        Ok(out
            .pipeline_execution()
            .and_then(|e| e.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default())
    }

    /// Waits until the execution's status is one of `statuses`.
    pub async fn wait_execution(
        &self,
        pipeline: &str,
        id: &str,
        statuses: &[&str],
    ) -> Result<String> {
        wait::until(
            &format!("execution {id} of {pipeline} to be one of {statuses:?}"),
            Duration::from_secs(60),
            || async {
                let status = self.execution_status(pipeline, id).await?;
                Ok(if statuses.contains(&status.as_str()) {
                    wait::Check::Done(status)
                } else {
                    wait::Check::NotYet(status)
                })
            },
        )
        .await
    }

    /// The actions that ran in one execution (ListActionExecutions filtered by it).
    pub async fn action_executions(
        &self,
        pipeline: &str,
        id: &str,
    ) -> Result<aws_sdk_codepipeline::operation::list_action_executions::ListActionExecutionsOutput>
    {
        let filter = aws_sdk_codepipeline::types::ActionExecutionFilter::builder()
            .pipeline_execution_id(id)
            .build();
        Ok(self
            .codepipeline()
            .await
            .list_action_executions()
            .pipeline_name(pipeline)
            .filter(filter)
            .send()
            .await?)
    }

    /// Each stage's result in one execution, from ListActionExecutions (stages whose actions
    /// ran) and GetPipelineState (`Skipped`, while that execution is the stage's latest).
    pub async fn stage_results(&self, pipeline: &str, id: &str) -> Result<StageResults> {
        let client = self.codepipeline().await;
        let state = client.get_pipeline_state().name(pipeline).send().await?;
        let actions = self.action_executions(pipeline, id).await?;
        let mut results = StageResults::new();
        for stage in state.stage_states() {
            let name = stage.stage_name().unwrap_or_default().to_string();
            let ran: Vec<&str> = actions
                .action_execution_details()
                .iter()
                .filter(|a| a.stage_name() == Some(name.as_str()))
                .filter_map(|a| a.status().map(|s| s.as_str()))
                .collect();
            let latest = stage
                .latest_execution()
                .filter(|l| l.pipeline_execution_id() == id)
                .map(|l| l.status().as_str().to_string());
            let result = if ran.contains(&"Failed") {
                "Failed".to_string()
            } else if ran.contains(&"InProgress") {
                "InProgress".to_string()
            } else if !ran.is_empty() {
                "Succeeded".to_string()
            } else {
                latest.unwrap_or_else(|| "NotRun".to_string())
            };
            results.insert(name, result);
        }
        Ok(results)
    }

    /// Approves the approval waiting in `stage` (GetPipelineState's token, then
    /// PutApprovalResult), waiting for it to be there first.
    pub async fn approve(&self, pipeline: &str, stage: &str) -> Result<()> {
        let client = self.codepipeline().await;
        let token = wait::until(
            &format!("an approval waiting in {pipeline}/{stage}"),
            Duration::from_secs(60),
            || async {
                let state = client.get_pipeline_state().name(pipeline).send().await?;
                let token = state
                    .stage_states()
                    .iter()
                    .filter(|s| s.stage_name() == Some(stage))
                    .flat_map(|s| s.action_states())
                    .find_map(|a| a.latest_execution().and_then(|l| l.token()))
                    .map(str::to_string);
                Ok(match token {
                    Some(token) => wait::Check::Done(token),
                    None => wait::Check::NotYet("no token yet".into()),
                })
            },
        )
        .await?;
        let result = aws_sdk_codepipeline::types::ApprovalResult::builder()
            .status(aws_sdk_codepipeline::types::ApprovalStatus::Approved)
            .summary("approved by the test")
            .build()?;
        client
            .put_approval_result()
            .pipeline_name(pipeline)
            .stage_name(stage)
            .action_name("approve")
            .token(token)
            .result(result)
            .send()
            .await?;
        Ok(())
    }
}

fn started(out: &Value) -> Result<Vec<(String, String)>> {
    let Some(list) = out["started"].as_array() else {
        bail!("no 'started' in {out}");
    };
    Ok(list
        .iter()
        .map(|s| {
            (
                s["pipelineName"].as_str().unwrap_or_default().to_string(),
                s["pipelineExecutionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect())
}
