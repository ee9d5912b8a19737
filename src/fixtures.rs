//! What the unit tests share: the README's example, parsed and rendered.

use crate::api::BranchPipeline;
use crate::render::DesiredState;

/// `examples/orders-api.yaml`, the README's example.
pub fn example() -> BranchPipeline {
    crate::manifest::parse_documents(include_str!("../examples/orders-api.yaml"))
        .remove(0)
        .result
        .expect("the example parses")
}

/// The example rendered.
pub fn example_desired() -> DesiredState {
    crate::render::compile(&example()).expect("the example renders")
}
