//! The bench's phases, each measured on its own: the plain loop; cold convergence and edits
//! while idle (controller "cold", default resync interval); one steady pass (controller
//! "steady", restarted with a resync interval that makes a pass short enough to watch); and a
//! pass with many slots falling, with edits during it (controller "busy", a shorter interval).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use branchpipeline::aws::sdk::SdkAws;
use kube::Client;

use crate::capture;
use crate::controller::{self, Controller};
use crate::edits::{self, Edit, EditReport, Editor};
use crate::fleet::{self, Object, ReadyWatch};
use crate::metrics::{self, Sample};
use crate::plain::{self, PLAIN_PREFIX, PlainRun};
use crate::results::{self, Build, Record, ShardsRecord};
use crate::support::{BedOptions, TestBed};
use crate::{Args, procfs, report, shards, tracker};

/// moto's page size in the bench: AWS's.
const AWS_PAGE_SIZE: &str = "100";
const PREFIX: &str = "bench";
/// The controller's default `--resync-interval`, for cold convergence.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
/// The computeType the idle edits set on the `test` stage (the example has MEDIUM).
const EDITED_COMPUTE: &str = "BUILD_GENERAL1_LARGE";
/// The busy edits' computeType: another value again. Below 2 x `--edits` objects the busy edits
/// pick objects the idle ones edited, and the idle value would change nothing there: no
/// UpdateProject to time, so the edit items could not be measured.
const BUSY_COMPUTE: &str = "BUILD_GENERAL1_XLARGE";
/// Between two edits while idle.
const IDLE_EDIT_GAP: Duration = Duration::from_secs(2);

pub struct Bench {
    pub args: Args,
    bed: TestBed,
    client: Client,
    /// The bench's own AWS client (the plain loop, the edit polls): no metering, no limit.
    aws: SdkAws,
    role: String,
    objects: Vec<Object>,
    /// Logs of the controller runs, kept after the bench.
    dir: PathBuf,
    binary: PathBuf,
    /// The code measured, recorded with the results.
    pub build: Build,
}

/// Everything measured, for the summary of targets.
pub struct Results {
    pub plain: PlainRun,
    pub cold: Cold,
    pub pass: Pass,
    pub idle_edits: EditReport,
    pub busy_edits: EditReport,
    /// Peak RSS of each controller process, KiB.
    pub rss: Vec<(String, u64)>,
}

impl Bench {
    /// The bed (moto paging by 100), the CRDs, a pipeline role, and the namespaces.
    pub async fn setup(args: Args) -> Result<Self> {
        let binary = controller::binary()?;
        let dir = logs_dir(&binary, args.n)?;
        let build = Build::of(&binary)?;
        println!("Starting the bed (kube-apiserver, etcd, moto paging by {AWS_PAGE_SIZE}) ...");
        let options = BedOptions {
            moto_page_size: AWS_PAGE_SIZE.to_owned(),
        };
        let bed = TestBed::start_with(options).await?;
        bed.install_crds().await?;
        let role = bed.create_codepipeline_role("bench-codepipeline").await?;
        let client = bed.client();
        fleet::create_namespaces(&client, PREFIX).await?;
        let aws = SdkAws::new(&bed.aws_config().await);
        let objects = fleet::generate(PREFIX, args.n);
        report::setup(&args, &dir, &build);
        Ok(Self {
            args,
            bed,
            client,
            aws,
            role,
            objects,
            dir,
            binary,
            build,
        })
    }

    /// Where each run's results are kept, beside the runs' own directories.
    pub fn results_root(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// Records a whole run's results, for later runs to compare with.
    pub fn save(&self, record: &Record) -> Result<()> {
        let path = results::results_path(self.results_root(), self.args.n);
        results::save(record, &path, &self.dir)
    }

    /// The plain loop, then the controller's cold convergence; the controller keeps running.
    async fn plain_and_cold(&self) -> Result<(PlainRun, Cold, Controller)> {
        let plain = self.plain().await?;
        let controller = self.start_controller("cold", DEFAULT_INTERVAL).await?;
        let cold = self.cold(&controller).await?;
        report::cold(&self.args, &cold, &plain);
        Ok((plain, cold, controller))
    }

    /// Waits for the execution tracker's first write on every object (its one entry per
    /// environment), which it makes once, within about two poll intervals of an object's
    /// creation: it belongs to convergence, and left for later it would count as a status
    /// write of the steady pass.
    async fn tracked(&self) -> Result<()> {
        let started = Instant::now();
        let deadline = 3 * self.args.poll_interval + Duration::from_secs(60);
        loop {
            let left = fleet::untracked(&self.client).await?;
            if left == 0 {
                println!(
                    "Execution tracker's first reading on every object: {:.1} s after convergence",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < deadline,
                "{left} objects without the tracker's first reading after {:?}",
                deadline
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// `--cold-only`: the plain loop and cold convergence alone.
    pub async fn run_cold_only(&self) -> Result<()> {
        let (plain, cold, controller) = self.plain_and_cold().await?;
        let rss = [stop(&controller, "cold")?];
        report::rss(&rss);
        crate::targets::print_cold_only(&self.args, &cold, &plain, &rss);
        Ok(())
    }

    /// `--shards M`: M controllers, `--shard i/M` each, converge the fleet from cold.
    pub async fn run_shards(&self) -> Result<()> {
        let m = self.args.shards;
        let mut controllers = Vec::with_capacity(m);
        for i in 0..m {
            let label = format!("shard-{i}-of-{m}");
            let extra = ["--shard".to_owned(), format!("{i}/{m}")];
            controllers.push(
                self.start_controller_with(&label, DEFAULT_INTERVAL, &extra)
                    .await?,
            );
        }
        println!(
            "Applying {} BranchPipelines over {} namespaces to {m} shards ...",
            self.args.n,
            fleet::NAMESPACES
        );
        self.reset_moto_log().await?;
        let since = Instant::now();
        let watch = ReadyWatch::start(&self.client, self.args.n, since).await?;
        fleet::apply_all(&self.client, &self.objects, &self.role).await?;
        let timeout = Duration::from_secs(300 + 3 * self.args.n as u64);
        let ready = watch.all_ready(timeout).await?;
        println!(
            "All {} Ready {} after the first apply",
            self.args.n,
            report::secs(ready.last().copied().unwrap_or_default())
        );
        // The managed gauges are set when each reconcile's status is written: give the last
        // ones a moment after Ready shows.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut reports = Vec::with_capacity(m);
        for (i, c) in controllers.iter().enumerate() {
            c.ensure_running()?;
            let metrics = c.metrics().await?;
            reports.push(shards::ShardReport {
                label: format!("shard {i}/{m}"),
                managed_pipelines: metrics.total("branchpipeline_managed_pipelines"),
                managed_projects: metrics.total("branchpipeline_managed_projects"),
                reconciles: metrics.total("branchpipeline_reconciles_total"),
                peak_rss_kib: c.peak_rss_kib()?,
            });
        }
        let (moto, _) = self.moto_log_summary().await?;
        let split = shards::report(self.args.n, &reports, &moto);
        for c in &controllers {
            c.stop();
        }
        self.save_shards(&reports, split)?;
        if !split {
            anyhow::bail!("the shards did not split the fleet");
        }
        Ok(())
    }

    /// Records a `--shards` run, for the whole run's summary.
    fn save_shards(&self, reports: &[shards::ShardReport], split: bool) -> Result<()> {
        let (n, m) = (self.args.n, self.args.shards);
        let record = ShardsRecord {
            n,
            shards: m,
            unix_time: edits::unix_now(),
            build: self.build.clone(),
            split,
            per_shard: (reports.iter())
                .map(|s| (s.label.clone(), s.managed_pipelines, s.reconciles))
                .collect(),
        };
        let path = results::shards_path(self.results_root(), n, m);
        results::save(&record, &path, &self.dir)
    }

    pub async fn run(&self) -> Result<Results> {
        let (plain, cold, cold_controller) = self.plain_and_cold().await?;
        self.tracked().await?;
        let mut rss = Vec::new();
        let idle_edits = self.idle_edits().await?;
        report::edits("Edits while idle", &idle_edits);
        rss.push(stop(&cold_controller, "cold")?);
        let steady = self
            .start_controller("steady", self.args.idle_interval())
            .await?;
        let pass = self.steady_pass(&steady).await?;
        report::pass("Steady pass", &self.args, &pass);
        rss.push(stop(&steady, "steady")?);
        let busy = self
            .start_controller("busy", self.args.busy_interval())
            .await?;
        let (busy_pass, busy_edits) = self.busy(&busy).await?;
        report::pass("Busy pass", &self.args, &busy_pass);
        report::edits("Edits during the busy pass", &busy_edits);
        rss.push(stop(&busy, "busy")?);
        report::rss(&rss);
        Ok(Results {
            plain,
            cold,
            pass,
            idle_edits,
            busy_edits,
            rss,
        })
    }

    pub fn shutdown(&self) {
        self.bed.shutdown();
    }

    async fn plain(&self) -> Result<PlainRun> {
        println!(
            "Plain loop: the Create calls of {} objects ...",
            self.args.n
        );
        let objects = fleet::generate(PLAIN_PREFIX, self.args.n);
        let log = capture::Log::default();
        let aws = self.capturing_aws(log.clone()).await;
        let mut run = self
            .on_moto(plain::run(
                &aws,
                &objects,
                &self.role,
                self.args.plain_concurrency,
            ))
            .await?;
        report::plain(&run);
        let requests = self.dir.join("plain-requests.jsonl");
        plain::write_requests(&requests, &log)?;
        println!("Plain boto3 loop: the same Create calls, one after the other ...");
        let python = &crate::support::env::BedEnv::load()?.moto_python;
        let boto3 = self
            .on_moto(plain::boto3(python, self.bed.moto_url(), &requests))
            .await?;
        report::boto3(&boto3);
        run.boto3 = Some(boto3);
        Ok(run)
    }

    /// Runs `work` alone against moto and prints what moto saw of it and the bed's CPU time.
    async fn on_moto<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.reset_moto_log().await?;
        let before = procfs::cpu_of(&self.bed.pids());
        let out = work.await?;
        let cpu = procfs::cpu_used(&before, &procfs::cpu_of(&self.bed.pids()));
        let (moto, failed) = self.moto_log_summary().await?;
        println!("  moto saw: {moto:?} ({failed} not 2xx)");
        report::cpu(&cpu);
        Ok(out)
    }

    /// An unlimited SDK client, like the bench's own, that also records every request body.
    async fn capturing_aws(&self, log: capture::Log) -> SdkAws {
        let config = self.bed.aws_config().await;
        let inner = config
            .http_client()
            .unwrap_or_else(branchpipeline::aws::sdk::default_https_client);
        let config = config
            .to_builder()
            .http_client(capture::Capture::new(inner, log))
            .build();
        SdkAws::new(&config)
    }

    async fn start_controller(&self, label: &str, interval: Duration) -> Result<Controller> {
        self.start_controller_with(label, interval, &[]).await
    }

    async fn start_controller_with(
        &self,
        label: &str,
        interval: Duration,
        extra: &[String],
    ) -> Result<Controller> {
        let n = self.args.n;
        let mut args = vec![
            "--resync-interval".to_owned(),
            format!("{}s", interval.as_secs()),
            // 2 pipelines and 4 projects an object, the plain loop's as many again: an
            // account with its quotas raised (defaults: 1,000 pipelines, 5,000 projects).
            "--pipeline-quota".to_owned(),
            (5 * n).max(1000).to_string(),
            "--project-quota".to_owned(),
            (10 * n).max(5000).to_string(),
            // Always passed: the controller's own default (10) is for real AWS, see
            // `UNTHROTTLED_MAX_TPS`.
            "--aws-max-tps".to_owned(),
            self.args.aws_max_tps.to_string(),
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&self.args.controller_args);
        println!("Starting the controller ({label}): {}", args.join(" "));
        Controller::start(&self.bed, &self.binary, &self.dir, label, &args).await
    }

    /// Every process whose CPU time the bench reports.
    fn processes(&self, controller: &Controller) -> Vec<(String, u32)> {
        let mut all = self.bed.pids();
        all.push(("controller".to_owned(), controller.pid()));
        all.push(("bench".to_owned(), std::process::id()));
        all
    }
}

/// Cold convergence: from the first apply until every object is Ready.
pub struct Cold {
    pub elapsed: Duration,
    /// Until the last apply returned.
    pub applied: Duration,
    /// When each object became Ready, sorted.
    pub ready: Vec<Duration>,
    /// The controller's metrics over the phase.
    pub metrics: Sample,
    /// The API server's metrics over the phase (its requests, the bench's among them).
    pub api_server: Sample,
    /// moto's log of the phase: requests by operation, and how many failed.
    pub moto: BTreeMap<String, usize>,
    pub moto_failed: usize,
    /// CPU seconds each process used.
    pub cpu: Vec<(String, f64)>,
}

impl Bench {
    async fn cold(&self, controller: &Controller) -> Result<Cold> {
        println!(
            "Applying {} BranchPipelines over {} namespaces ...",
            self.args.n,
            fleet::NAMESPACES
        );
        let before = controller.metrics().await?;
        let api_before = self.api_server_metrics().await?;
        self.reset_moto_log().await?;
        let cpu_before = procfs::cpu_of(&self.processes(controller));
        let since = Instant::now();
        let watch = ReadyWatch::start(&self.client, self.args.n, since).await?;
        let started = Instant::now();
        fleet::apply_all(&self.client, &self.objects, &self.role).await?;
        let applied = started.elapsed();
        let timeout = Duration::from_secs(300 + 3 * self.args.n as u64);
        let ready = watch.all_ready(timeout).await;
        controller.ensure_running()?;
        let lead = started - since;
        let ready: Vec<Duration> = ready?.into_iter().map(|t| t.saturating_sub(lead)).collect();
        let elapsed = *ready.last().context("no object")?;
        let cpu = procfs::cpu_used(&cpu_before, &procfs::cpu_of(&self.processes(controller)));
        let metrics = controller.metrics().await?.minus(&before);
        let api_server = self.api_server_metrics().await?.minus(&api_before);
        let (moto, moto_failed) = self.moto_log_summary().await?;
        Ok(Cold {
            elapsed,
            applied,
            ready,
            metrics,
            api_server,
            moto,
            moto_failed,
            cpu,
        })
    }

    /// The API server's own `/metrics`.
    async fn api_server_metrics(&self) -> Result<Sample> {
        let request = http::Request::get("/metrics")
            .body(Vec::new())
            .context("building GET /metrics")?;
        let text = self
            .client
            .request_text(request)
            .await
            .context("reading the API server's /metrics")?;
        Ok(Sample::parse(&text))
    }

    /// Clears moto's request log; a request that times out is sent again (it is idempotent).
    async fn reset_moto_log(&self) -> Result<()> {
        retried("resetting moto's request log", || {
            self.bed.reset_aws_requests()
        })
        .await
    }

    async fn moto_log(&self) -> Result<Vec<crate::support::AwsRequest>> {
        retried("reading moto's request log", || self.bed.aws_requests()).await
    }

    /// moto's log since its last reset: requests by operation, and how many were not 2xx.
    async fn moto_log_summary(&self) -> Result<(BTreeMap<String, usize>, usize)> {
        let log = self.moto_log().await?;
        let mut by_action = BTreeMap::new();
        for request in &log {
            *by_action
                .entry(request.action.clone().unwrap_or_default())
                .or_insert(0) += 1;
        }
        let failed = log
            .iter()
            .filter(|r| !r.status.is_some_and(|s| (200..300).contains(&s)))
            .count();
        Ok((by_action, failed))
    }
}

/// One resync pass: a window in which every object's slot falls once.
pub struct Pass {
    pub window: Duration,
    /// The controller's metrics over the window.
    pub metrics: Sample,
    /// Objects whose resourceVersion changed (edited ones left out).
    pub status_writes: usize,
    /// Requests in moto's log over the window, when nothing else called AWS.
    pub moto_requests: Option<usize>,
    /// The execution tracker's polls in moto's log over the window.
    pub polls: tracker::Polls,
    /// The pipelines the controller manages at the end (a gauge, so not a difference).
    pub pipelines: f64,
    pub cpu: Vec<(String, f64)>,
}

/// What a pass is measured from.
struct PassStart {
    at: Instant,
    metrics: Sample,
    versions: HashMap<String, String>,
    cpu: BTreeMap<String, f64>,
}

impl Bench {
    async fn begin_pass(&self, controller: &Controller) -> Result<PassStart> {
        self.reset_moto_log().await?;
        Ok(PassStart {
            at: Instant::now(),
            metrics: controller.metrics().await?,
            versions: fleet::resource_versions(&self.client).await?,
            cpu: procfs::cpu_of(&self.processes(controller)),
        })
    }

    async fn end_pass(
        &self,
        controller: &Controller,
        start: PassStart,
        edited: &HashSet<String>,
    ) -> Result<Pass> {
        controller.ensure_running()?;
        let window = start.at.elapsed();
        let now = controller.metrics().await?;
        let pipelines = now.total(metrics::MANAGED_PIPELINES);
        let metrics = now.minus(&start.metrics);
        let cpu = procfs::cpu_used(&start.cpu, &procfs::cpu_of(&self.processes(controller)));
        let versions = fleet::resource_versions(&self.client).await?;
        let log = self.moto_log().await?;
        // The edits' own BatchGetProjects polls are in the log too, but not the tracker's.
        let moto_requests = edited.is_empty().then_some(log.len());
        Ok(Pass {
            window,
            metrics,
            status_writes: fleet::changed(&start.versions, &versions, edited),
            moto_requests,
            polls: tracker::polls(&log),
            pipelines,
            cpu,
        })
    }

    /// A restarted controller resyncs each settled object first at its slot, 0.1 to 1.1
    /// intervals after it starts: the window from 0.1 to 1.1 holds each object's slot once.
    async fn steady_pass(&self, controller: &Controller) -> Result<Pass> {
        let interval = self.args.idle_interval();
        println!(
            "Steady state: one pass, {}s from {}s after the start ...",
            interval.as_secs(),
            (interval / 10).as_secs()
        );
        tokio::time::sleep(interval / 10).await;
        let start = self.begin_pass(controller).await?;
        // Until one interval after the start, not one interval after the start's readings
        // (0.4 s at N=1000): a window longer than the interval holds an object whose slot
        // opened it a second time, at its next resync, where it closes.
        tokio::time::sleep_until((start.at + interval).into()).await;
        self.end_pass(controller, start, &HashSet::new()).await
    }

    fn editor(&self, compute: &'static str) -> Editor<'_> {
        Editor {
            client: &self.client,
            aws: &self.aws,
            role: &self.role,
            compute,
        }
    }

    /// What `edits` cost, from moto's log since its last reset.
    async fn edit_report(&self, edits: &[Edit]) -> Result<EditReport> {
        // Any second UpdateProject an edit caused would come at its object's next reconcile.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let log = self.moto_log().await?;
        Ok(edits::analyse(edits, &log))
    }

    async fn idle_edits(&self) -> Result<EditReport> {
        let k = self.args.edits;
        println!(
            "Edits while idle: {k}, {}s apart ...",
            IDLE_EDIT_GAP.as_secs()
        );
        self.reset_moto_log().await?;
        let offsets: Vec<Duration> = (0..k).map(|i| IDLE_EDIT_GAP * i as u32).collect();
        let editor = self.editor(EDITED_COMPUTE);
        let edits = edits::run(&editor, &self.edit_targets(0), &offsets).await?;
        self.edit_report(&edits).await
    }

    /// The first pass of a restarted controller (every slot falls within 1.1 intervals of
    /// the start), with the edits spread over it.
    async fn busy(&self, controller: &Controller) -> Result<(Pass, EditReport)> {
        let window = self.args.busy_interval().mul_f64(1.1);
        let k = self.args.edits;
        println!(
            "Busy pass: {}s from the start, {k} edits spread over it ...",
            window.as_secs()
        );
        let start = self.begin_pass(controller).await?;
        let end = start.at + window;
        let offsets: Vec<Duration> = (0..k)
            .map(|i| window.mul_f64(i as f64 / k as f64))
            .collect();
        let targets = self.edit_targets(1);
        let edited: HashSet<String> = targets.iter().map(Object::key).collect();
        let editor = self.editor(BUSY_COMPUTE);
        let (edits, pass) = tokio::join!(edits::run(&editor, &targets, &offsets), async {
            tokio::time::sleep_until(end.into()).await;
            self.end_pass(controller, start, &edited).await
        });
        let report = self.edit_report(&edits?).await?;
        Ok((pass?, report))
    }

    /// `--edits` objects spread over the fleet; `round` 0 and 1 pick different ones when there
    /// are at least 2 x `--edits` objects, the same ones below that.
    fn edit_targets(&self, round: usize) -> Vec<Object> {
        let (n, k) = (self.args.n, self.args.edits);
        (0..k)
            .map(|i| self.objects[(i * n / k + round * n / (2 * k)) % n].clone())
            .collect()
    }
}

/// Its peak RSS, then stops it.
fn stop(controller: &Controller, label: &str) -> Result<(String, u64)> {
    let peak = controller.peak_rss_kib()?;
    controller.stop();
    Ok((label.to_owned(), peak))
}

/// `<target>/bench-logs/n<N>-<unix time>`, in the controller binary's target directory.
fn logs_dir(binary: &std::path::Path, n: usize) -> Result<PathBuf> {
    let target = binary
        .parent()
        .and_then(std::path::Path::parent)
        .context("the controller binary has no target directory")?;
    let dir = target
        .join("bench-logs")
        .join(format!("n{n}-{}", edits::unix_now() as u64));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Up to three attempts of an idempotent request to the bed, so that one lost response (see
/// `support::http::REQUEST_TIMEOUT`) does not end an hour-long run.
pub async fn retried<T, F, Fut>(what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if tries < 3 => println!("  (retrying: {what} failed: {e:#})"),
            Err(e) => return Err(e.context(format!("{what}, after {tries} attempts"))),
        }
    }
}
