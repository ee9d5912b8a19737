use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use branchpipeline::api::{BranchPipeline, BranchPipelineClass, DeletionPolicy};
use branchpipeline::aws::sdk::SdkAws;
use branchpipeline::controller::{self, Config, Context, TrackerConfig};
use branchpipeline::github::client::{Credentials, OctocrabGithub};
use branchpipeline::github::reporter::Reporter;
use branchpipeline::leader::{self, LeaderConfig};
use branchpipeline::metrics::Metrics;
use branchpipeline::server::{self, Health};
use branchpipeline::validate::FieldError;
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
    /// Print the CustomResourceDefinitions (BranchPipeline, BranchPipelineRun,
    /// BranchPipelineClass) as YAML.
    Crd {
        /// Write each CRD to its file under crds/ and the chart's copy instead (run from the
        /// repository root).
        #[arg(long)]
        write: bool,
    },
    /// Render manifests into the CodePipeline and CodeBuild inputs they produce, as JSON.
    Render {
        /// Multi-document YAML file, or `-` for stdin.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// A BranchPipelineClass (YAML file): the class the manifests name in spec.className,
        /// or the default class for those that name none.
        #[arg(long)]
        class: Option<PathBuf>,
        /// The namespace's labels (k=v, comma-separated), for a class restricted by
        /// guardrails.allowedNamespaces; none by default.
        #[arg(long, value_delimiter = ',', requires = "class")]
        namespace_labels: Vec<String>,
    },
    /// Run the controller. AWS credentials, region and endpoint come from the SDK's standard
    /// chain (environment, profile, IRSA, Pod Identity, AWS_ENDPOINT_URL).
    Run(Box<RunArgs>),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Watch only these namespaces (repeat, or separate with commas; default: all).
    #[arg(long = "namespace", env = "WATCH_NAMESPACE", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// How often every resource is re-checked against AWS to repair drift, e.g. 10m.
    #[arg(long, default_value = "10m", value_parser = duration::parse)]
    resync_interval: Duration,
    /// Deletion policy for resources that set none (annotation and spec take precedence).
    #[arg(long, value_enum)]
    deletion_policy: Option<PolicyArg>,
    /// Log format.
    #[arg(long, default_value = "text", value_enum)]
    log_format: LogFormat,
    /// Reconcile only while holding a Lease, so several replicas can run.
    #[arg(long)]
    leader_election: bool,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    leader_election_namespace: Option<String>,
    #[arg(long, default_value = "branchpipeline-controller")]
    lease_name: String,
    /// How long a lease is valid without renewal; a crashed leader is replaced within this.
    #[arg(long, default_value = "15s", value_parser = duration::parse)]
    lease_duration: Duration,
    /// Requests a second to each AWS service (CodePipeline, CodeBuild), shared by every
    /// reconcile. AWS publishes no per-API rate for either; throttling slows further.
    #[arg(long, default_value_t = 10)]
    aws_max_tps: u32,
    /// Serve only the BranchPipelines (and their runs) whose namespace/name hashes to N of M,
    /// e.g. 0/2: several Deployments split the objects, each with its own --lease-name.
    #[arg(long, value_parser = branchpipeline::shard::Shard::parse)]
    shard: Option<branchpipeline::shard::Shard>,
    /// Serve only BranchPipelines with matching labels (k=v, k!=v, k, !k; comma-separated).
    #[arg(long, value_parser = branchpipeline::shard::LabelSelector::parse)]
    selector: Option<branchpipeline::shard::LabelSelector>,
    /// Pipelines allowed in the account and region (CodePipeline's default quota is 1,000);
    /// a spec whose new pipelines would go over is refused with QuotaExceeded.
    #[arg(long, default_value_t = 1000)]
    pipeline_quota: usize,
    /// CodeBuild projects allowed in the account and region (default quota 5,000).
    #[arg(long, default_value_t = 5000)]
    project_quota: usize,
    /// Refuse every BranchPipeline that uses no BranchPipelineClass (none named, none marked
    /// default), so no tenant can step around the platform's guardrails by leaving one out.
    #[arg(long)]
    require_class: bool,
    /// Reconciles in flight at once (per kind); the others wait. Sized for two cores.
    #[arg(long, default_value_t = 16)]
    max_concurrent_reconciles: u16,
    /// How often each pipeline's executions are read when none is running (environments,
    /// last run, commit statuses).
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    execution_poll_interval: Duration,
    /// How often while an execution is running or awaiting approval.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    execution_active_poll_interval: Duration,
    /// GitHub App id; with --github-app-key-file, commit statuses are posted as the App's
    /// installation on each repository.
    #[arg(long, env = "GITHUB_APP_ID", requires = "github_app_key_file")]
    github_app_id: Option<u64>,
    /// File holding the GitHub App's private key (PEM), e.g. a mounted Secret.
    #[arg(long, requires = "github_app_id", conflicts_with = "github_token_file")]
    github_app_key_file: Option<PathBuf>,
    /// File holding a GitHub token with "Commit statuses: write", instead of an App.
    #[arg(long)]
    github_token_file: Option<PathBuf>,
    /// GitHub's REST API: api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server.
    #[arg(long, default_value = "https://api.github.com")]
    github_api_url: String,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: std::net::SocketAddr,
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
        Command::Crd { write: false } => {
            print!("{}", crd::all_crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Crd { write: true } => match crd::write_files(std::path::Path::new(".")) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Render {
            file,
            class,
            namespace_labels,
        } => render_cmd(&file, class.as_deref(), &namespace_labels),
        Command::Run(args) => run_cmd(*args),
    }
}

/// glibc gives threads that contend for the allocator arenas of their own (up to eight per
/// core, mallopt(3) `M_ARENA_MAX`), and memory freed in one arena serves only that arena: after
/// a burst of concurrent reconciles the process keeps every arena's high-water mark. Two arenas,
/// as many as the runtime's worker threads on the two cores the controller is sized for, keep
/// peak RSS near what is live (docs/benchmarks.md). `MALLOC_ARENA_MAX` in the environment
/// still overrides it: glibc reads it at the first allocation, before this runs.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter, and no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Color codes only help a person at a terminal; in files they break grep.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn run_cmd(args: RunArgs) -> ExitCode {
    limit_malloc_arenas();
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
    match runtime.block_on(run_controller(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "controller failed");
            ExitCode::FAILURE
        }
    }
}

async fn run_controller(args: RunArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let lanes = SdkAws::from_env(metrics.clone(), args.aws_max_tps.max(1)).await;
    let aws = Arc::new(lanes.reconcile);
    let config = controller_config(&args, aws.region());
    tracing::info!(
        namespaces = %if args.namespaces.is_empty() { "(all)".to_string() } else { args.namespaces.join(",") },
        resync_interval_s = config.resync_interval.as_secs(),
        leader_election = args.leader_election,
        shard = %args.shard.map(|s| s.to_string()).unwrap_or_else(|| "all".into()),
        selector = args.selector.as_ref().map(|s| s.text.as_str()).unwrap_or("none"),
        "starting controller"
    );
    metrics.set_quotas(args.pipeline_quota, args.project_quota);
    metrics.set_shard(
        &args
            .shard
            .map(|s| s.to_string())
            .unwrap_or_else(|| "all".into()),
    );
    let (addr, server_metrics, server_health) =
        (args.metrics_addr, metrics.clone(), health.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = server::serve(addr, server_metrics, server_health).await {
            tracing::error!(error = %e, %addr, "metrics and probe endpoint failed");
        }
    });
    let ctx = Context::new(client.clone(), aws, config, metrics.clone())
        .with_lanes(Arc::new(lanes.edit), Arc::new(lanes.background));
    let ctx = Arc::new(match github_reporter(&args, &metrics)? {
        Some(reporter) => ctx.with_reporter(reporter),
        None => ctx,
    });
    let namespace = args.namespaces.clone();
    let result = if args.leader_election {
        run_as_leader(&args, client, ctx, health, metrics).await
    } else {
        health.set_leader(true);
        controller::run(ctx, namespace, health, shutdown_signal()).await;
        Ok(())
    };
    server.abort();
    result
}

/// The controller's settings from its flags.
fn controller_config(args: &RunArgs, region: Option<&str>) -> Config {
    Config {
        resync_interval: args.resync_interval,
        deletion_policy: args.deletion_policy.map(|p| match p {
            PolicyArg::Delete => DeletionPolicy::Delete,
            PolicyArg::Retain => DeletionPolicy::Retain,
        }),
        max_concurrent_reconciles: args.max_concurrent_reconciles.max(1),
        scope: branchpipeline::shard::Scope {
            shard: args.shard,
            selector: args.selector.clone(),
        },
        quotas: branchpipeline::reconcile::outcome::Quotas {
            pipelines: args.pipeline_quota,
            projects: args.project_quota,
        },
        require_class: args.require_class,
        tracker: TrackerConfig {
            poll_interval: args.execution_poll_interval,
            active_interval: args.execution_active_poll_interval,
            region: region.unwrap_or("us-east-1").to_string(),
        },
        ..Config::default()
    }
}

/// The commit-status reporter, when GitHub credentials were given. The key and token are read
/// from files (mounted Secrets) so they never appear in the process's arguments or logs.
fn github_reporter(
    args: &RunArgs,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<Arc<Reporter>>> {
    let credentials = match (
        &args.github_app_id,
        &args.github_app_key_file,
        &args.github_token_file,
    ) {
        (Some(id), Some(key), _) => Credentials::App {
            id: *id,
            private_key_pem: std::fs::read(key)
                .with_context(|| format!("reading the GitHub App key from {}", key.display()))?,
        },
        (_, _, Some(file)) => Credentials::Token(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading the GitHub token from {}", file.display()))?
                .trim()
                .to_string(),
        ),
        _ => {
            tracing::info!("no GitHub credentials; commit statuses are not posted");
            return Ok(None);
        }
    };
    tracing::info!(api = %args.github_api_url, credentials = ?credentials, "posting commit statuses to GitHub");
    let api = OctocrabGithub::new(&args.github_api_url, credentials)
        .map_err(|e| anyhow::anyhow!("GitHub client: {e}"))?;
    Ok(Some(Arc::new(Reporter::new(
        Arc::new(api),
        Some(metrics.clone()),
    ))))
}

/// Reconciles only while this replica holds the Lease.
async fn run_as_leader(
    args: &RunArgs,
    client: kube::Client,
    ctx: Arc<Context>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let leader_config = LeaderConfig {
        namespace: args
            .leader_election_namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        lease_name: args.lease_name.clone(),
        identity: identity(),
        duration: args.lease_duration,
    };
    let (namespace, health_for_work) = (args.namespaces.clone(), health.clone());
    leader::run_while_leader(
        client,
        leader_config,
        health,
        metrics,
        shutdown_signal(),
        move |stop| {
            let (ctx, namespace, health) =
                (ctx.clone(), namespace.clone(), health_for_work.clone());
            async move {
                controller::run(ctx, namespace, health, async {
                    let _ = stop.await;
                })
                .await
            }
        },
    )
    .await
}

/// This replica's name in the Lease: the pod name, else host and PID.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received; shutting down"),
    }
}

/// A file's text, or stdin's for `-`.
fn read_input(file: &Path) -> Result<String, String> {
    let label = file.display().to_string();
    let text = if label == "-" {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf).map(|_| buf)
    } else {
        std::fs::read_to_string(file)
    };
    text.map_err(|e| format!("error: {label}: {e}"))
}

/// `--class FILE` and `--namespace-labels`, read and parsed.
fn render_class(
    file: Option<&Path>,
    labels: &[String],
) -> Result<(Option<BranchPipelineClass>, BTreeMap<String, String>), String> {
    let mut namespace_labels = BTreeMap::new();
    for label in labels {
        let (k, v) = label
            .split_once('=')
            .ok_or_else(|| format!("error: --namespace-labels: {label:?} is not k=v"))?;
        namespace_labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    let Some(file) = file else {
        return Ok((None, namespace_labels));
    };
    let class = manifest::parse_class(&read_input(file)?)
        .map_err(|e| format!("error: {}: {e}", file.display()))?;
    Ok((Some(class), namespace_labels))
}

/// One manifest with the class given on the command line, which stands in for the class it
/// names (or for the default class).
fn render_one(
    bp: &BranchPipeline,
    class: Option<&BranchPipelineClass>,
    labels: &BTreeMap<String, String>,
) -> Result<render::DesiredState, Vec<FieldError>> {
    let given = class.and_then(|c| c.metadata.name.as_deref());
    if let Some(named) = bp.spec.class_name.as_deref()
        && given != Some(named)
    {
        let hint = given.map_or("pass it with --class FILE".to_string(), |g| {
            format!("--class gives {g:?}")
        });
        return Err(vec![FieldError::new(
            "spec.className",
            format!("names class {named:?}; {hint}"),
        )]);
    }
    // The controller gives a resource naming no class only the default class.
    if let (None, Some(class)) = (&bp.spec.class_name, class)
        && !class.is_default()
    {
        return Err(vec![FieldError::new(
            "spec.className",
            format!(
                "is not set, and --class gives {:?}, which is not marked default ({}: \"true\"): the controller would use no class; set spec.className or pass the default class",
                given.unwrap_or_default(),
                branchpipeline::api::DEFAULT_CLASS_ANNOTATION
            ),
        )]);
    }
    render::compile_with(bp, class, labels)
        .map(|c| c.desired)
        .map_err(|r| r.into_errors())
}

fn render_cmd(file: &Path, class: Option<&Path>, labels: &[String]) -> ExitCode {
    let label = file.display().to_string();
    let inputs = read_input(file).and_then(|text| Ok((text, render_class(class, labels)?)));
    let (text, (class, labels)) = match inputs {
        Ok(inputs) => inputs,
        Err(message) => {
            eprintln!("{message}");
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
            .and_then(|bp| render_one(&bp, class.as_ref(), &labels));
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
