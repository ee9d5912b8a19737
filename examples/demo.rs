//! `scripts/demo.sh`: starts the test bed (kube-apiserver, etcd, moto), runs the controller
//! against it, applies `examples/orders-api.yaml`, prints what AWS holds and the resource's
//! status, and keeps everything running until Ctrl-C.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use branchpipeline::api::BranchPipeline;
use branchpipeline::aws::AwsApi;
use branchpipeline::aws::sdk::SdkAws;
use branchpipeline::controller::{self, Config, Context};
use branchpipeline::manifest;
use branchpipeline::metrics::Metrics;
use branchpipeline::server::Health;
use kube::api::{Api, Patch, PatchParams};

const EXAMPLE: &str = include_str!("orders-api.yaml");

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter("warn,kube_client=off,branchpipeline=info")
        .with_writer(std::io::stderr)
        .init();
    println!("Starting kube-apiserver, etcd and moto ...");
    let bed = support::TestBed::start().await?;
    bed.install_crds().await?;
    let role = bed.create_codepipeline_role("orders-codepipeline").await?;
    let client = bed.client();
    let ns = "team-orders";
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns_object =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    namespaces
        .patch(ns, &PatchParams::apply("demo"), &Patch::Apply(&ns_object))
        .await?;

    let aws = Arc::new(SdkAws::new(&bed.aws_config().await));
    let config = Config {
        resync_interval: Duration::from_secs(30),
        ..Config::default()
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        aws.clone(),
        config,
        Arc::new(Metrics::new()),
    ));
    let controller = tokio::spawn(controller::run(
        ctx,
        vec![],
        Arc::new(Health::default()),
        std::future::pending(),
    ));

    // moto only knows its own account (123456789012), so the example's ARNs move there.
    let text = EXAMPLE
        .replace(
            "arn:aws:iam::111122223333:role/branchpipeline/orders-codepipeline",
            &role,
        )
        .replace("111122223333", support::AWS_ACCOUNT_ID);
    let bp = manifest::parse_documents(&text)
        .remove(0)
        .result
        .context("example parses")?;
    let api: Api<BranchPipeline> = Api::namespaced(client.clone(), ns);
    let mut value = serde_json::to_value(&bp)?;
    value.as_object_mut().unwrap().remove("status");
    api.patch(
        "orders-api",
        &PatchParams::apply("demo"),
        &Patch::Apply(&value),
    )
    .await?;
    println!("Applied examples/orders-api.yaml to namespace {ns}; waiting for Ready ...\n");

    let ready = wait_ready(&api).await?;
    print_aws(aws.as_ref(), &ready).await?;
    print_status(&ready);

    let kubeconfig = bed.dir().join("kubeconfig");
    bed.write_kubeconfig(&kubeconfig)?;
    println!("\nEverything keeps running. Try:");
    println!(
        "  KUBECONFIG={} kubectl -n {ns} get bpl",
        kubeconfig.display()
    );
    println!(
        "  AWS_ENDPOINT_URL={} aws codepipeline list-pipelines",
        bed.moto_url()
    );
    println!("Press Ctrl-C to stop and clean up.");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    controller.abort();
    bed.shutdown();
    println!("Stopped; nothing left running.");
    Ok(())
}

async fn wait_ready(api: &Api<BranchPipeline>) -> Result<BranchPipeline> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let bp = api.get("orders-api").await?;
        let ready = bp
            .status
            .as_ref()
            .and_then(|s| s.condition("Ready"))
            .is_some_and(|c| c.status == "True");
        if ready {
            return Ok(bp);
        }
        if Instant::now() > deadline {
            bail!("not Ready after 60s: {:?}", bp.status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn print_aws(aws: &dyn AwsApi, bp: &BranchPipeline) -> Result<()> {
    let status = bp.status.clone().unwrap_or_default();
    println!(
        "AWS now holds {} pipelines (the old way needed 7):",
        status.pipelines.len()
    );
    for p in &status.pipelines {
        let seen = aws
            .get_pipeline(&p.name)
            .await?
            .context("pipeline exists")?;
        let d = &seen.declaration;
        println!(
            "\n  pipeline {} ({}, {}, version {:?})",
            d.name, d.pipeline_type, d.execution_mode, d.version
        );
        match d
            .triggers
            .first()
            .and_then(|t| t.git_configuration.push.first())
        {
            Some(push) => println!(
                "    trigger: push to {:?}",
                push.branches
                    .as_ref()
                    .map(|b| b.includes.clone())
                    .unwrap_or_default()
            ),
            None => println!("    trigger: none (manual starts only)"),
        }
        for stage in &d.stages {
            let actions: Vec<String> = stage.actions.iter().map(|a| a.name.clone()).collect();
            let condition = stage
                .before_entry
                .as_ref()
                .and_then(|b| b.conditions.first())
                .and_then(|c| c.rules.first().map(|r| (c.result.clone(), r)))
                .map(|(result, r)| {
                    format!(
                        "  [{result} unless {} {} {:?}]",
                        r.configuration["Variable"],
                        r.configuration["Operator"],
                        r.configuration["Value"]
                    )
                })
                .unwrap_or_default();
            println!(
                "    stage {:<14} actions {:?}{condition}",
                stage.name, actions
            );
        }
    }
    println!("\n  CodeBuild projects:");
    for project in aws.get_projects(&status.projects).await? {
        let p = &project.project;
        println!(
            "    {:<45} {:<22} {}",
            p.name, p.environment.compute_type, p.source.buildspec
        );
    }
    Ok(())
}

fn print_status(bp: &BranchPipeline) {
    let status = bp.status.clone().unwrap_or_default();
    println!("\nBranchPipeline team-orders/orders-api status:");
    for c in &status.conditions {
        println!(
            "  {}={} reason={} {}",
            c.type_, c.status, c.reason, c.message
        );
    }
    println!(
        "  observedGeneration={:?} syncedGeneration={:?}",
        status.observed_generation, status.synced_generation
    );
}
