//! Waiting for something to happen, instead of sleeping for as long as it usually takes:
//! poll a check until it passes, up to a timeout, then fail saying what was awaited and
//! what the last look found.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// How often a condition is checked.
pub const POLL: Duration = Duration::from_millis(200);

/// What one look found: the awaited value, or a description of the state instead (the
/// failure message shows the last one).
pub enum Check<T> {
    Done(T),
    NotYet(String),
}

impl Check<()> {
    /// `Done` if `passed`, else `NotYet(seen())`.
    pub fn passed(passed: bool, seen: impl FnOnce() -> String) -> Self {
        if passed {
            Check::Done(())
        } else {
            Check::NotYet(seen())
        }
    }
}

/// Runs `check` every [`POLL`] until it is `Done`, for at most `timeout`. An error from
/// `check` ends the wait at once.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Check<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match check().await? {
            Check::Done(value) => return Ok(value),
            Check::NotYet(seen) => seen,
        };
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last seen: {seen}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `name` no longer exists (e.g. after its finalizers ran).
pub async fn until_gone<K>(api: &kube::Api<K>, name: &str, timeout: Duration) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    until(&format!("{name} to be deleted"), timeout, || async {
        Ok(match api.get_opt(name).await? {
            None => Check::Done(()),
            Some(object) => Check::NotYet(format!(
                "still there, finalizers {:?}, deletionTimestamp {:?}",
                object.meta().finalizers,
                object.meta().deletion_timestamp
            )),
        })
    })
    .await
}
