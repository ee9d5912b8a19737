//! The reconciler's steps and decisions. Observe and apply talk to AWS through
//! [`crate::aws::AwsApi`]; diff, policy, outcome, run and status are pure and decide what the
//! controller carries out.

pub mod apply;
pub mod deferral;
pub mod diff;
pub mod error;
pub mod events;
pub mod executions;
pub mod observe;
pub mod outcome;
pub mod policy;
pub mod refusal;
pub mod run;
pub mod status;
pub mod tracking;
