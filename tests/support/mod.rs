//! Integration-test bed, the Rust counterpart of controller-runtime's envtest: a real
//! etcd + kube-apiserver, and moto (patched by `tests/moto_ext`) standing in for AWS.
//!
//! Binaries come from `scripts/testbed-install.sh` (see [`env`]). Two ways to use it:
//!
//! * `TestBed::start().await?` — a private bed, stopped when dropped (~7 s to start, 1 s
//!   to stop on 2 cores: prefer the shared bed for suites). `TestBed::start_with(BedOptions
//!   { .. })` starts one with other options (moto's page size: 10 for the tests, 100 as AWS).
//! * `TestBed::shared().await` — one bed per test binary; isolate tests with
//!   [`TestBed::unique_namespace`] and [`unique_name`] for AWS resources (moto state is
//!   global to the bed). Stopped when the test binary exits.
//!
//! Clients are created per call because a `kube::Client` or AWS client is bound to the
//! tokio runtime it was created on, and every `#[tokio::test]` has its own runtime.
//!
//! | Module | What |
//! | --- | --- |
//! | [`bed`] | the bed's lifecycle: starting and stopping etcd, kube-apiserver and moto, the shared bed, CRDs, namespaces, kubeconfigs |
//! | [`aws`] | the AWS side: SDK clients aimed at moto, IAM roles, moto's request log, execution status control |
//! | [`engine`] | the bed's CodePipeline execution engine: pushes, switches, approvals, stage results |
//! | [`process`] | launching the bed's processes so that they die with the test binary |
//! | [`fixtures`] | the README's example, as text, JSON or a `BranchPipeline`, edited or moved into a test's namespace |
//! | [`env`] | where `scripts/testbed-install.sh` put the binaries |
//! | [`wait`] | polling for a condition with a timeout, instead of fixed sleeps |
//! | [`http`] | a minimal HTTP client for moto's control endpoints |
//! | [`github`] | the bed's GitHub (`tests/github_fake`): the App's key, installations, recorded statuses and requests, injected rate limits |
//! | [`fault_proxy`] | an HTTP proxy in front of moto that injects throttling, 5xx and denials |
#![allow(dead_code)]

pub mod aws;
pub mod bed;
pub mod engine;
pub mod env;
pub mod fault_proxy;
pub mod fixtures;
pub mod github;
pub mod http;
pub mod process;
pub mod wait;

// The names callers use from `support::` directly; not every binary uses every one.
#[allow(unused_imports)]
pub use aws::{AWS_ACCOUNT_ID, AWS_REGION, AwsRequest, MOTO_PAGE_SIZE};
#[allow(unused_imports)]
pub use bed::{BedOptions, NAMESPACE_LABEL, TestBed, unique_name};
