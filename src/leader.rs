//! Leader election on a `coordination.k8s.io` Lease: only the holder reconciles.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::server::Health;

#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    /// Unique per replica: the pod name, or host and PID.
    pub identity: String,
    /// How long a lease stays valid without renewal: the longest a dead leader blocks failover.
    pub duration: Duration,
}

/// Runs `work` only while this replica holds the lease. `work` gets a signal to stop gracefully
/// on shutdown; when the lease is lost it is aborted at once, so a deposed leader makes no
/// further writes. Returns when `shutdown` fires; dropping the lease channel releases the lease
/// so a standby takes over without waiting for it to expire.
pub async fn run_while_leader<W, Fut>(
    client: Client,
    config: LeaderConfig,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
    work: W,
) -> anyhow::Result<()>
where
    W: Fn(oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let secs = config.duration.as_secs().max(2);
    // Renew a third of the way before expiry, so one slow round trip does not lose the lease.
    let grace = (secs / 3).max(1);
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(secs)
        .with_grace(grace)
        .build()
        .await?;
    let (mut leader, lease_task) = manager.watch().await;
    health.set_standby_ok(true);
    info!(lease = %config.lease_name, namespace = %config.namespace, identity = %config.identity, "waiting for the leader lease");
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            acquired = wait_for(&mut leader, true) => {
                if !acquired {
                    warn!("leader election stopped unexpectedly");
                    break;
                }
            }
        }
        let lost = lead(
            &config,
            &health,
            &metrics,
            &mut leader,
            &mut shutdown,
            &work,
        )
        .await;
        if !lost {
            break;
        }
    }
    health.set_standby_ok(false);
    drop(leader);
    release(lease_task).await;
    Ok(())
}

/// Waits for the lease task, which releases the lease once its channel is dropped.
async fn release<T, E: std::fmt::Display>(lease_task: tokio::task::JoinHandle<Result<T, E>>) {
    match lease_task.await {
        Ok(Ok(_)) => info!("released the leader lease"),
        Ok(Err(e)) => {
            warn!(error = %e, "could not release the leader lease; it expires on its own")
        }
        Err(e) => warn!(error = %e, "lease task failed"),
    }
}

/// Runs `work` while the lease is held. True when the lease was lost (campaign again), false on
/// shutdown or when `work` ended by itself.
async fn lead<W, Fut>(
    config: &LeaderConfig,
    health: &Health,
    metrics: &Metrics,
    leader: &mut watch::Receiver<bool>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    work: &W,
) -> bool
where
    W: Fn(oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    info!(identity = %config.identity, "acquired the leader lease; reconciling");
    health.set_leader(true);
    metrics.set_leader(true);
    let (stop, stopped) = oneshot::channel();
    let mut handle = tokio::spawn(work(stopped));
    let lost = tokio::select! {
        _ = shutdown => {
            let _ = stop.send(());
            let _ = (&mut handle).await;
            false
        }
        _ = wait_for(leader, false) => {
            warn!(identity = %config.identity, "lost the leader lease; stopping at once");
            handle.abort();
            let _ = handle.await;
            true
        }
        _ = &mut handle => false,
    };
    health.set_leader(false);
    metrics.set_leader(false);
    lost
}

/// Waits until the lease state equals `want`; false if the lease task has gone away.
async fn wait_for(rx: &mut watch::Receiver<bool>, want: bool) -> bool {
    rx.wait_for(|held| *held == want).await.is_ok()
}
