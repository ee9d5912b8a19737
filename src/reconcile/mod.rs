//! The reconciler: validate → render → observe → diff → apply → status.

pub mod apply;
pub mod diff;
pub mod error;
pub mod observe;
pub mod policy;
pub mod run;
pub mod status;
