//! AWS adapters: conversions between the render model and the SDKs.

pub mod convert;
