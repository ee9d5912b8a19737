use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use branchpipeline::api::DeletionPolicy;
use branchpipeline::aws::sdk::SdkAws;
use branchpipeline::controller::{self, Config, Context, Counters};
use branchpipeline::{crd, duration, manifest, render};

#[derive(Parser)]
#[command(
    name = "branchpipeline-controller",
    version,
    about = "Keeps AWS CodePipeline V2 and CodeBuild in line with BranchPipeline resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinition YAML.
    Crd,
    /// Render manifests into the CodePipeline and CodeBuild inputs they produce, as JSON.
    Render {
        /// Multi-document YAML file, or `-` for stdin.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// Run the controller. AWS credentials, region and endpoint come from the SDK's standard
    /// chain (environment, profile, IRSA, Pod Identity, AWS_ENDPOINT_URL).
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// How often every resource is re-checked against AWS to repair drift, e.g. 10m.
    #[arg(long, default_value = "10m", value_parser = duration::parse)]
    resync_interval: Duration,
    /// Deletion policy for resources that set none (annotation and spec take precedence).
    #[arg(long, value_enum)]
    deletion_policy: Option<PolicyArg>,
    /// Log format.
    #[arg(long, default_value = "text", value_enum)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PolicyArg {
    Delete,
    Retain,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", crd::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Render { file } => render_cmd(&file),
        Command::Run(args) => run_cmd(args),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn run_cmd(args: RunArgs) -> ExitCode {
    init_tracing(args.log_format);
    // kube brings rustls with ring and the AWS SDK brings aws-lc-rs; with both linked rustls
    // cannot pick a provider by itself and panics on the first TLS handshake.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot reach the Kubernetes API");
                return ExitCode::FAILURE;
            }
        };
        let aws = Arc::new(SdkAws::from_env().await);
        let config = Config {
            resync_interval: args.resync_interval,
            deletion_policy: args.deletion_policy.map(|p| match p {
                PolicyArg::Delete => DeletionPolicy::Delete,
                PolicyArg::Retain => DeletionPolicy::Retain,
            }),
            ..Config::default()
        };
        tracing::info!(
            namespace = args.namespace.as_deref().unwrap_or("(all)"),
            resync_interval_s = config.resync_interval.as_secs(),
            "starting controller"
        );
        let ctx = Arc::new(Context::new(
            client,
            aws,
            config,
            Arc::new(Counters::default()),
        ));
        controller::run(ctx, args.namespace).await;
        ExitCode::SUCCESS
    })
}

fn render_cmd(file: &PathBuf) -> ExitCode {
    let label = file.display().to_string();
    let text = if label == "-" {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf).map(|_| buf)
    } else {
        std::fs::read_to_string(file)
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {label}: {e}");
            return ExitCode::from(2);
        }
    };
    let docs = manifest::parse_documents(&text);
    let multi = docs.len() > 1;
    let mut out = render::DesiredState::default();
    let mut failed = false;
    for doc in docs {
        let at = if multi {
            format!("{label}#{}", doc.index)
        } else {
            label.clone()
        };
        let rendered = doc
            .result
            .map_err(|e| vec![e])
            .and_then(|bp| render::render(&bp));
        match rendered {
            Ok(state) => {
                out.pipelines.extend(state.pipelines);
                out.projects.extend(state.projects);
            }
            Err(errors) => {
                failed = true;
                for e in errors {
                    eprintln!("error: {at}: {e}");
                }
            }
        }
    }
    if failed {
        return ExitCode::from(2);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out).expect("state serializes")
    );
    ExitCode::SUCCESS
}
