//! The AWS side of the bed: SDK clients aimed at moto, and moto's fixtures for tests —
//! IAM roles, the log of the requests it answered, and control of pipeline executions.

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::TestBed;
use super::http;

/// moto's default account: every ARN the bed hands out lives there.
pub const AWS_ACCOUNT_ID: &str = "123456789012";
pub const AWS_REGION: &str = "us-east-1";
/// moto_ext's page size for ListPipelines and ListProjects in the bed.
pub const MOTO_PAGE_SIZE: &str = "10";
/// moto takes any credentials; these are the bed's.
pub(super) const AWS_FAKE_KEY: &str = "testing";

/// One AWS call as seen by moto (`GET /_bpl/requests`).
#[derive(Debug, Clone, Deserialize)]
pub struct AwsRequest {
    pub method: String,
    pub path: String,
    /// `X-Amz-Target`, e.g. `CodeBuild_20161006.UpdateProject`.
    pub target: Option<String>,
    /// The operation, e.g. `UpdateProject` (also for query-protocol calls like IAM's).
    pub action: Option<String>,
    /// The resource the call names (`name`, `pipelineName`, `projectName`, `resourceArn`,
    /// `pipeline.name` or the first of `names`), when it is a JSON-protocol call.
    pub resource: Option<String>,
    pub status: Option<u16>,
    /// Unix time in seconds.
    pub time: f64,
}

impl TestBed {
    /// AWS SDK configuration aimed at moto (region us-east-1, fake static credentials).
    pub async fn aws_config(&self) -> aws_config::SdkConfig {
        let credentials = aws_sdk_codebuild::config::Credentials::new(
            AWS_FAKE_KEY,
            AWS_FAKE_KEY,
            None,
            None,
            "testbed",
        );
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(AWS_REGION))
            .credentials_provider(credentials)
            .endpoint_url(self.moto_url())
            .load()
            .await
    }

    pub async fn codebuild(&self) -> aws_sdk_codebuild::Client {
        aws_sdk_codebuild::Client::new(&self.aws_config().await)
    }

    pub async fn codepipeline(&self) -> aws_sdk_codepipeline::Client {
        aws_sdk_codepipeline::Client::new(&self.aws_config().await)
    }

    /// Creates an IAM role in moto that `trusted_service` (e.g.
    /// `codepipeline.amazonaws.com`) may assume; returns its ARN. moto's CreatePipeline
    /// insists on such a role, with `Principal.Service` a plain string.
    pub async fn create_iam_role(&self, name: &str, trusted_service: &str) -> Result<String> {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": trusted_service}, "Action": "sts:AssumeRole"}],
        });
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
            http::form_encode(name),
            http::form_encode(&policy.to_string()),
        );
        // moto does not verify signatures; the credential scope only routes the call to IAM.
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={AWS_FAKE_KEY}/20240101/{AWS_REGION}/iam/aws4_request, SignedHeaders=host, Signature=0"
        );
        let headers = [
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Authorization", authorization.as_str()),
        ];
        let response =
            http::request(self.moto_url(), "POST", "/", &headers, body.as_bytes()).await?;
        let text = response.text();
        if response.status != 200 {
            bail!("IAM CreateRole {name}: HTTP {}: {text}", response.status);
        }
        let arn = text
            .split_once("<Arn>")
            .and_then(|(_, rest)| rest.split_once("</Arn>"))
            .map(|(arn, _)| arn.to_owned())
            .with_context(|| format!("IAM CreateRole {name}: no <Arn> in {text}"))?;
        Ok(arn)
    }

    /// The role CodePipeline pipelines need in moto.
    pub async fn create_codepipeline_role(&self, name: &str) -> Result<String> {
        self.create_iam_role(name, "codepipeline.amazonaws.com")
            .await
    }

    /// Every AWS call moto has answered since the start or the last reset.
    pub async fn aws_requests(&self) -> Result<Vec<AwsRequest>> {
        let body = http::get_json(self.moto_url(), "/_bpl/requests").await?;
        Ok(serde_json::from_value(body["requests"].clone())?)
    }

    /// How many `action` calls (e.g. `UpdateProject`) named `resource` (any if None).
    pub async fn aws_call_count(&self, action: &str, resource: Option<&str>) -> Result<usize> {
        let requests = self.aws_requests().await?;
        Ok(requests
            .iter()
            .filter(|r| r.action.as_deref() == Some(action))
            .filter(|r| resource.is_none() || r.resource.as_deref() == resource)
            .count())
    }

    pub async fn reset_aws_requests(&self) -> Result<()> {
        http::post_json(
            self.moto_url(),
            "/_bpl/requests/reset",
            &serde_json::json!({}),
        )
        .await?;
        Ok(())
    }

    /// Forgets all moto state and the request log. Not for a shared bed.
    pub async fn reset_aws(&self) -> Result<()> {
        http::post_json(self.moto_url(), "/_bpl/reset", &serde_json::json!({})).await?;
        Ok(())
    }

    /// Forces the status of a pipeline execution (the latest if `execution_id` is None):
    /// moto finishes every execution instantly with `Succeeded`.
    pub async fn set_pipeline_execution_status(
        &self,
        pipeline: &str,
        execution_id: Option<&str>,
        status: &str,
    ) -> Result<()> {
        let body = serde_json::json!({"pipelineName": pipeline, "pipelineExecutionId": execution_id, "status": status});
        http::post_json(self.moto_url(), "/_bpl/pipeline-execution", &body).await?;
        Ok(())
    }
}
