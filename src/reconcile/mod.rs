//! The reconciler: validate → render → observe → diff → apply → status.

pub mod diff;
