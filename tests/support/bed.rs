//! The bed's lifecycle: etcd, kube-apiserver and moto started on free loopback ports under
//! a fresh directory, the shared bed of a test binary, and what tests ask of the apiserver
//! (CRDs, namespaces, kubeconfigs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, GetParams, Patch, PatchParams, PostParams};
use serde::Deserialize;

use super::aws::{AWS_FAKE_KEY, AWS_REGION, MOTO_PAGE_SIZE};
use super::env::BedEnv;
use super::http;
use super::process::{Processes, free_port, log_tail};

const FIELD_MANAGER: &str = "branchpipeline-testbed";
/// Label on every namespace made by `unique_namespace`.
pub const NAMESPACE_LABEL: &str = "branchpipeline.dev/testbed";

const APISERVER_TIMEOUT: Duration = Duration::from_secs(90);
const ETCD_TIMEOUT: Duration = Duration::from_secs(30);
const MOTO_TIMEOUT: Duration = Duration::from_secs(60);
const CRD_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// Retries of a start that lost the race for a port picked by `free_port`.
const PORT_ATTEMPTS: usize = 3;

pub struct TestBed {
    // Field order matters only for the shutdown() in Drop, which stops processes first.
    processes: Processes,
    dir: Mutex<Option<tempfile::TempDir>>,
    path: PathBuf,
    apiserver_url: String,
    moto_url: String,
    admin_token: String,
    kube_config: kube::Config,
    crds: tokio::sync::OnceCell<Vec<String>>,
    /// How the apiserver was started, to start it again the same way after a stop.
    apiserver: ApiserverLaunch,
    apiserver_restarts: AtomicUsize,
}

/// How a private bed is started; the default is what [`TestBed::start`] does.
#[derive(Debug, Clone)]
pub struct BedOptions {
    /// moto's default page size for ListPipelines and ListProjects (`BPL_MOTO_PAGE_SIZE`):
    /// [`MOTO_PAGE_SIZE`] (10) for the tests, so every listing pages; AWS's is 100.
    pub moto_page_size: String,
}

impl Default for BedOptions {
    fn default() -> Self {
        Self {
            moto_page_size: MOTO_PAGE_SIZE.to_owned(),
        }
    }
}

impl TestBed {
    /// Starts etcd, kube-apiserver and moto on free loopback ports, each with its own
    /// data under a fresh temporary directory, and waits until all of them serve.
    pub async fn start() -> Result<Self> {
        Self::start_with(BedOptions::default()).await
    }

    /// [`TestBed::start`] with other options, e.g. moto paging like AWS (100 a page) for a
    /// benchmark.
    pub async fn start_with(options: BedOptions) -> Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let env = BedEnv::load()?;
        let admin_token = env.admin_token()?;

        // Declared before `processes` so that on an early return the processes are
        // stopped before their directory is removed.
        let dir = make_bed_dir()?;
        let path = dir.path().to_owned();
        let processes = Processes::new(path.join("pids"));

        // moto needs ~1 s to import; it starts while etcd and the apiserver come up.
        let moto_port_file = path.join("moto.port");
        let run_moto = env.moto_ext.join("run_moto.py");
        let moto_args = [
            run_moto.display().to_string(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            "0".into(),
            "--port-file".into(),
            moto_port_file.display().to_string(),
        ];
        processes.spawn(
            "moto",
            &env.moto_python,
            &moto_args,
            &[
                ("PYTHONDONTWRITEBYTECODE", "1"),
                ("PYTHONUNBUFFERED", "1"),
                // Pages of 10 instead of AWS's 100 by default, so every listing in the
                // tests pages.
                ("BPL_MOTO_PAGE_SIZE", options.moto_page_size.as_str()),
            ],
            &path.join("moto.log"),
        )?;

        let etcd_url = start_etcd(&processes, &env, &path).await?;
        let (apiserver, moto_url) = tokio::try_join!(
            start_apiserver(&processes, &env, &path, &etcd_url, &admin_token),
            wait_for_moto(&processes, &moto_port_file),
        )?;
        let (apiserver_url, apiserver) = apiserver;
        let kube_config = apiserver.config.clone();

        Ok(Self {
            processes,
            dir: Mutex::new(Some(dir)),
            path,
            apiserver_url,
            moto_url,
            admin_token,
            kube_config,
            crds: tokio::sync::OnceCell::new(),
            apiserver,
            apiserver_restarts: AtomicUsize::new(0),
        })
    }

    /// The bed shared by all tests of this test binary, started on first use and
    /// stopped when the binary exits (atexit; PR_SET_PDEATHSIG if it is killed).
    pub async fn shared() -> &'static TestBed {
        static SHARED: tokio::sync::OnceCell<TestBed> = tokio::sync::OnceCell::const_new();
        extern "C" fn stop_shared() {
            let _ = std::panic::catch_unwind(|| {
                if let Some(bed) = SHARED.get() {
                    bed.shutdown();
                }
            });
        }
        let started = SHARED
            .get_or_try_init(|| async {
                let bed = TestBed::start().await?;
                // SAFETY: registers a plain extern "C" fn that never unwinds.
                unsafe { libc::atexit(stop_shared) };
                anyhow::Ok(bed)
            })
            .await;
        match started {
            Ok(bed) => bed,
            Err(e) => panic!("cannot start the shared test bed: {e:#}"),
        }
    }

    /// A client for the bed's apiserver, authenticated as a `system:masters` user.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.kube_config.clone())
            .expect("kube client from the test bed config")
    }

    pub fn kube_config(&self) -> kube::Config {
        self.kube_config.clone()
    }

    pub fn apiserver_url(&self) -> &str {
        &self.apiserver_url
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    pub fn moto_url(&self) -> &str {
        &self.moto_url
    }

    /// The bed's temporary directory: process logs (`*.log`), `pids`, etcd data.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// `(name, pid)` of every process the bed started (also in `dir()/pids`).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.processes.pids()
    }

    /// A kubeconfig for running the controller binary against the bed.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": {"server": self.apiserver_url, "insecure-skip-tls-verify": true}}],
            "users": [{"name": "testbed-admin", "user": {"token": self.admin_token}}],
            "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": "testbed-admin", "namespace": "default"}}],
            "current-context": "testbed",
        });
        let text = serde_yaml::to_string(&kubeconfig)?;
        write_private(path, text.as_bytes())
    }

    /// Environment for a controller subprocess: the kubeconfig and AWS settings.
    pub fn controller_env(&self, kubeconfig: &Path) -> Vec<(String, String)> {
        [
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("AWS_ENDPOINT_URL", self.moto_url.clone()),
            ("AWS_ACCESS_KEY_ID", AWS_FAKE_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", AWS_FAKE_KEY.into()),
            ("AWS_REGION", AWS_REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Applies every CustomResourceDefinition in `crds/*.yaml` (server-side apply) and
    /// waits until each is Established. Returns their names; none if `crds/` is absent.
    /// Runs once per bed. The CRDs are applied exactly as committed, so a CRD the
    /// apiserver rejects fails the tests.
    pub async fn install_crds(&self) -> Result<Vec<String>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        self.crds
            .get_or_try_init(|| install_crds_from(self.client(), dir))
            .await
            .cloned()
    }

    /// Creates a namespace `<prefix>-<random>` and returns its name.
    pub async fn unique_namespace(&self, prefix: &str) -> Result<String> {
        let mut prefix: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        prefix.truncate(50);
        let name = unique_name(prefix.trim_matches('-'));
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    NAMESPACE_LABEL.to_owned(),
                    "true".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client())
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(name)
    }

    /// Stops the kube-apiserver (SIGTERM, then SIGKILL after a grace period) and waits until it
    /// has exited; etcd and everything stored in it stay. An outage for the clients: for a
    /// private bed only.
    pub fn stop_apiserver(&self) {
        self.processes.stop(APISERVER);
    }

    /// Starts the kube-apiserver again after [`TestBed::stop_apiserver`]: the same binary and
    /// flags, so the same port, certificates, tokens and etcd. Returns once it is ready. Each
    /// restart logs to its own `kube-apiserver.<n>.log` in [`TestBed::dir`].
    pub async fn start_apiserver(&self) -> Result<()> {
        let n = self.apiserver_restarts.fetch_add(1, Ordering::SeqCst) + 1;
        let log = self.path.join(format!("{APISERVER}.{n}.log"));
        // The port was ours until the stop; another process may have taken it since (a bed
        // starting elsewhere picks free ports), in which case waiting may give it back.
        for _ in 0..PORT_ATTEMPTS {
            if self.apiserver.run(&self.processes, &log).await? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        bail!(
            "kube-apiserver could not get its port back at {} after {PORT_ATTEMPTS} attempts",
            self.apiserver_url
        )
    }

    /// Stops every process (SIGTERM, then SIGKILL after a grace period) and removes the
    /// directory unless `BPL_KEEP_TESTBED` is set. Idempotent; also run on drop.
    pub fn shutdown(&self) {
        self.processes.shutdown();
        let dir = self.dir.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(dir) = dir
            && std::env::var_os("BPL_KEEP_TESTBED").is_some()
        {
            eprintln!("testbed: keeping {}", dir.keep().display());
        }
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `<prefix>-<8 hex digits>`: unique names for namespaces and AWS resources.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// etcd fsyncs on every write; tmpfs makes that free, so the bed lives in /dev/shm
/// when it has room (container defaults of 64 MiB do not: etcd preallocates 64 MiB).
fn make_bed_dir() -> Result<tempfile::TempDir> {
    const NEEDED: u64 = 1 << 30;
    let shm = Path::new("/dev/shm");
    sweep_abandoned_beds(shm);
    sweep_abandoned_beds(&std::env::temp_dir());
    let mut builder = tempfile::Builder::new();
    builder.prefix(BED_DIR_PREFIX);
    let dir = match free_bytes(shm) {
        Some(free) if free >= NEEDED => builder.tempdir_in(shm).or_else(|_| builder.tempdir()),
        _ => builder.tempdir(),
    }
    .context("creating the test bed directory")?;
    std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())?;
    Ok(dir)
}

const BED_DIR_PREFIX: &str = "bpl-testbed-";
/// PID of the test process that made a bed directory.
const OWNER_FILE: &str = "owner";

/// A test binary killed by SIGKILL or Ctrl-C never runs Drop or atexit: its processes
/// die (PR_SET_PDEATHSIG) but its directory stays, and in /dev/shm that holds memory.
/// Removes the directories whose owner process is gone.
fn sweep_abandoned_beds(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(BED_DIR_PREFIX)
        {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(entry.path().join(OWNER_FILE)) else {
            continue;
        };
        let Ok(pid) = owner.trim().parse::<libc::pid_t>() else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn free_bytes(path: &Path) -> Option<u64> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and a properly sized out-parameter.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

fn lost_port_race(log: &Path) -> bool {
    log_tail(log).contains("address already in use")
}

async fn start_etcd(processes: &Processes, env: &BedEnv, dir: &Path) -> Result<String> {
    let log = dir.join("etcd.log");
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let args = [
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={url}"),
            format!("--advertise-client-urls={url}"),
            // Single member: the peer listener is never used, so let the OS pick it.
            "--listen-peer-urls=http://127.0.0.1:0".into(),
            "--logger=zap".into(),
            "--log-level=warn".into(),
        ];
        processes.spawn("etcd", &env.etcd, &args, &[], &log)?;
        let deadline = Instant::now() + ETCD_TIMEOUT;
        loop {
            if let Err(e) = processes.ensure_running("etcd") {
                if lost_port_race(&log) {
                    processes.stop("etcd");
                    break;
                }
                return Err(e);
            }
            if let Ok(health) = http::get_json(&url, "/health").await
                && health["health"] == "true"
            {
                return Ok(url);
            }
            if Instant::now() > deadline {
                bail!(
                    "etcd not healthy after {ETCD_TIMEOUT:?}; log:\n{}",
                    log_tail(&log)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
    bail!("etcd: no free port after {PORT_ATTEMPTS} attempts")
}

const APISERVER: &str = "kube-apiserver";

/// Everything needed to start the apiserver, kept so that it can be started again.
struct ApiserverLaunch {
    program: PathBuf,
    args: Vec<String>,
    config: kube::Config,
}

impl ApiserverLaunch {
    /// Starts the apiserver and waits until it is ready: `Ok(false)` if it lost the race for
    /// its port (it is then stopped again).
    async fn run(&self, processes: &Processes, log: &Path) -> Result<bool> {
        processes.spawn(APISERVER, &self.program, &self.args, &[], log)?;
        let client = kube::Client::try_from(self.config.clone())?;
        let deadline = Instant::now() + APISERVER_TIMEOUT;
        loop {
            if let Err(e) = processes.ensure_running(APISERVER) {
                if lost_port_race(log) {
                    processes.stop(APISERVER);
                    return Ok(false);
                }
                return Err(e);
            }
            let readyz = kube::core::Request::new("").get("readyz", &GetParams::default())?;
            if client.request_text(readyz).await.is_ok() {
                return Ok(true);
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver not ready after {APISERVER_TIMEOUT:?}; log:\n{}",
                    log_tail(log)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn start_apiserver(
    processes: &Processes,
    env: &BedEnv,
    dir: &Path,
    etcd_url: &str,
    token: &str,
) -> Result<(String, ApiserverLaunch)> {
    let log = dir.join(format!("{APISERVER}.log"));
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port()?;
        let url = format!("https://127.0.0.1:{port}");
        let args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--token-auth-file={}", env.token_file.display()),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", env.sa_pub.display()),
            format!(
                "--service-account-signing-key-file={}",
                env.sa_key.display()
            ),
            // Allocation range for Service IPs only; nothing is routed there.
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            // No controller-manager runs, so nothing would create service-account tokens.
            "--disable-admission-plugins=ServiceAccount".into(),
            "--enable-priority-and-fairness=false".into(),
            // Keeps the apiserver from rewriting the kubernetes Endpoints every 10 s.
            "--endpoint-reconciler-type=none".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
        ];
        let mut config = kube::Config::new(url.parse().context("apiserver URL")?);
        config.accept_invalid_certs = true;
        config.auth_info.token = Some(token.to_owned().into());
        let launch = ApiserverLaunch {
            program: env.kube_apiserver.clone(),
            args,
            config,
        };
        if launch.run(processes, &log).await? {
            return Ok((url, launch));
        }
    }
    bail!("kube-apiserver: no free port after {PORT_ATTEMPTS} attempts")
}

async fn wait_for_moto(processes: &Processes, port_file: &Path) -> Result<String> {
    let deadline = Instant::now() + MOTO_TIMEOUT;
    loop {
        processes.ensure_running("moto")?;
        if let Ok(text) = std::fs::read_to_string(port_file) {
            let port: u16 = text
                .trim()
                .parse()
                .with_context(|| format!("bad port in {}", port_file.display()))?;
            let url = format!("http://127.0.0.1:{port}");
            let health = http::get_json(&url, "/_bpl/health").await?;
            if health["ok"] != true {
                bail!("moto health check failed: {health}");
            }
            return Ok(url);
        }
        if Instant::now() > deadline {
            bail!("moto did not start within {MOTO_TIMEOUT:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn install_crds_from(client: kube::Client, dir: PathBuf) -> Result<Vec<String>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    files.sort();

    let api = Api::<CustomResourceDefinition>::all(client);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            // Applied as plain JSON rather than the typed struct, so no field the
            // k8s-openapi version does not know is dropped on the way.
            let value = serde_json::Value::deserialize(document)
                .with_context(|| format!("parsing {}", file.display()))?;
            if value.is_null() {
                continue;
            }
            if value["kind"] != "CustomResourceDefinition" {
                bail!(
                    "{}: expected only CustomResourceDefinitions, found kind {}",
                    file.display(),
                    value["kind"]
                );
            }
            let name = value["metadata"]["name"]
                .as_str()
                .with_context(|| format!("{}: CRD without metadata.name", file.display()))?
                .to_owned();
            api.patch(&name, &params, &Patch::Apply(&value))
                .await
                .with_context(|| format!("applying CRD {name} from {}", file.display()))?;
            names.push(name);
        }
    }

    let deadline = Instant::now() + CRD_TIMEOUT;
    for name in &names {
        loop {
            let crd = api.get(name).await?;
            let established = crd
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break;
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "CRD {name} not Established after {CRD_TIMEOUT:?}: {:?}",
                    crd.status
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(names)
}
