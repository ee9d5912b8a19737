//! branchpipeline-controller: compiles `BranchPipeline` resources into AWS CodePipeline V2
//! pipelines and CodeBuild projects, and keeps AWS in line with them.
//!
//! The pure core (`api`, `manifest`, `validate`, `naming`, `render`) knows nothing of clients;
//! the reconciler diffs what it renders against what AWS holds.

pub mod api;
pub mod aws;
pub mod class;
pub mod controller;
pub mod crd;
pub mod duration;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod github;
pub mod leader;
pub mod manifest;
pub mod metrics;
pub mod naming;
pub mod reconcile;
pub mod render;
pub mod resolved;
pub mod server;
pub mod shard;
pub mod validate;
