//! Implemented by the SDK adapter work in progress.
