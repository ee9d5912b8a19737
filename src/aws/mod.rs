//! AWS adapters: the operations the reconciler needs, their SDK implementation, and conversions
//! between the render model and the SDK types.

pub mod api;
pub mod convert;
pub mod error;
pub mod executions;
#[cfg(test)]
pub mod fake;
pub mod inventory;
pub mod limiter;
pub mod metering;
pub mod sdk;

pub use api::*;
pub use error::{AwsError, Retry};
