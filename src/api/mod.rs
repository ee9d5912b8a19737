//! The `branchpipeline.dev/v1alpha1` API.

mod class;
mod run;
mod spec;
mod status;

pub use class::*;
pub use run::*;
pub use spec::*;
pub use status::*;

/// Annotations the controller reads.
pub mod annotations {
    /// Every annotation the controller reads starts with this.
    pub const PREFIX: &str = "branchpipeline.dev/";
    /// `"true"` lets the controller adopt untagged AWS resources with the rendered names.
    pub const ADOPT: &str = "branchpipeline.dev/adopt";
    /// `Delete` or `Retain`; takes precedence over the controller flag and `spec.deletionPolicy`.
    pub const DELETION_POLICY: &str = "branchpipeline.dev/deletion-policy";
    /// A duration such as `5m` overriding the controller's `--resync-interval`.
    pub const RESYNC_INTERVAL: &str = "branchpipeline.dev/resync-interval";
    /// Any new value makes pipeline updates that wait for running executions proceed once
    /// (cancelling them); the value acted on is kept in `status.updateNow`.
    pub const UPDATE_NOW: &str = "branchpipeline.dev/update-now";
    /// Removed: started a pipeline. A BranchPipelineRun replaces it; the controller reports
    /// the annotation as invalid so nobody waits for a run it will never start.
    pub const RUN_REMOVED: &str = "branchpipeline.dev/run";
}

pub const FINALIZER: &str = "branchpipeline.dev/cleanup";
