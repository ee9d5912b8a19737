//! Child processes of the bed: spawned so that they die with the test process, and
//! stopped by PID.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long a child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

type SpawnReply = mpsc::Sender<std::io::Result<Child>>;

/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the
/// process. Tokio test threads end with their test, which would kill a shared bed's
/// processes early, so every child is forked by this thread, which lives as long as
/// the test binary.
fn spawner() -> &'static mpsc::Sender<(Command, SpawnReply)> {
    static SPAWNER: OnceLock<mpsc::Sender<(Command, SpawnReply)>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(Command, SpawnReply)>();
        std::thread::Builder::new()
            .name("testbed-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("cannot start the testbed spawner thread");
        tx
    })
}

fn spawn_tied_to_this_process(mut command: Command) -> std::io::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("test process exited during spawn"));
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner()
        .send((command, tx))
        .map_err(|_| std::io::Error::other("testbed spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("testbed spawner thread is gone"))?
}

struct Managed {
    name: String,
    log: PathBuf,
    child: Child,
}

/// The processes of one bed, stopped together. `shutdown` is idempotent.
pub struct Processes {
    children: Mutex<Vec<Managed>>,
    pid_file: PathBuf,
}

impl Processes {
    pub fn new(pid_file: PathBuf) -> Self {
        Self {
            children: Mutex::new(Vec::new()),
            pid_file,
        }
    }

    /// Starts `program args` with stdout and stderr going to `log`.
    pub fn spawn(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Result<u32> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = spawn_tied_to_this_process(command)
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let pid = child.id();
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children.push(Managed {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
        });
        let listing: String = children
            .iter()
            .map(|m| format!("{} {}\n", m.name, m.child.id()))
            .collect();
        drop(children);
        std::fs::write(&self.pid_file, listing)
            .with_context(|| format!("writing {}", self.pid_file.display()))?;
        Ok(pid)
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        let children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children
            .iter()
            .map(|m| (m.name.clone(), m.child.id()))
            .collect()
    }

    /// Fails with the tail of the log if `name` has exited.
    pub fn ensure_running(&self, name: &str) -> Result<()> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        let Some(managed) = children.iter_mut().find(|m| m.name == name) else {
            anyhow::bail!("{name} was never started");
        };
        if let Some(status) = managed.child.try_wait()? {
            anyhow::bail!(
                "{name} exited with {status}; last lines of {}:\n{}",
                managed.log.display(),
                log_tail(&managed.log)
            );
        }
        Ok(())
    }

    /// Stops and forgets `name` (used to retry after a lost port race).
    pub fn stop(&self, name: &str) {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = children.iter().position(|m| m.name == name) {
            let managed = children.remove(i);
            terminate(vec![managed]);
        }
    }

    /// SIGTERM to all, SIGKILL to whatever is left after the grace period; reaps all.
    pub fn shutdown(&self) {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        terminate(std::mem::take(&mut *children));
    }
}

fn terminate(mut children: Vec<Managed>) {
    for managed in &mut children {
        if matches!(managed.child.try_wait(), Ok(None)) {
            // SAFETY: plain kill(2) on a child we have not reaped yet, so the PID is ours.
            unsafe { libc::kill(managed.child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline
        && children
            .iter_mut()
            .any(|m| matches!(m.child.try_wait(), Ok(None)))
    {
        std::thread::sleep(Duration::from_millis(25));
    }
    for managed in &mut children {
        if matches!(managed.child.try_wait(), Ok(None)) {
            let _ = managed.child.kill();
        }
        let _ = managed.child.wait();
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn log_tail(path: &Path) -> String {
    const TAIL: u64 = 4096;
    let Ok(mut file) = File::open(path) else {
        return String::from("(no log)");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A loopback port that was free a moment ago. Callers retry on "address already in use".
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(listener.local_addr()?.port())
}
