//! The Apply branch: observe AWS, decide, carry out.

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use tracing::info;

use super::{Context, effects, now};
use crate::api::*;
use crate::reconcile::apply;
use crate::reconcile::diff::{self, Owner, Plan};
use crate::reconcile::error::{Error, Step};
use crate::reconcile::observe::{self, Owned};
use crate::reconcile::outcome::{self, Facts, Outcome};
use crate::reconcile::run::{self, RunDecision};
use crate::render::{self, DesiredState};

pub(super) async fn sync(
    bp: &BranchPipeline,
    ctx: &Context,
    api: &Api<BranchPipeline>,
) -> Result<Action, Error> {
    let settings = ctx.settings(bp);
    let previous = bp.status.clone().unwrap_or_default();
    let now = now();
    let facts = Facts {
        generation: bp.metadata.generation,
        previous: &previous,
        settings: &settings,
        now: &now,
    };
    let outcome = match render::compile(bp) {
        Err(errors) => outcome::invalid_spec(&facts, &errors),
        Ok(desired) => sync_aws(bp, ctx, &facts, &desired).await,
    };
    effects::carry_out(ctx, api, bp, outcome).await
}

/// Observe → plan → apply → decide, then the manual run the annotation asks for.
async fn sync_aws(
    bp: &BranchPipeline,
    ctx: &Context,
    facts: &Facts<'_>,
    desired: &DesiredState,
) -> Outcome {
    let namespace = bp.namespace().unwrap_or_default();
    let name = bp.name_any();
    let hints = Owned {
        pipelines: facts
            .previous
            .pipelines
            .iter()
            .map(|p| p.name.clone())
            .collect(),
        projects: facts.previous.projects.clone(),
    };
    let observed =
        match observe::observe(ctx.aws.as_ref(), desired, &namespace, &name, &hints).await {
            Ok(observed) => observed,
            Err(e) => return outcome::aws_failed(facts, Step::Observe, e, &[]),
        };
    let owner = Owner {
        namespace: &namespace,
        name: &name,
        adopt: facts.settings.adopt,
    };
    let plan = diff::plan(desired, &observed, &owner);
    info!(
        writes = plan.writes(),
        foreign = plan.foreign.len(),
        "planned"
    );
    let mut done = Vec::new();
    if let Err(e) = apply::apply(ctx.aws.as_ref(), &plan, &mut done).await {
        return outcome::aws_failed(facts, Step::Apply, e, &done);
    }
    let mut synced = outcome::synced(facts, desired, &observed, &plan, &done);
    manual_run(bp, ctx, facts, desired, &plan, &mut synced).await;
    synced
}

/// `branchpipeline.dev/run`: observe the annotation, decide, start at most once per value.
async fn manual_run(
    bp: &BranchPipeline,
    ctx: &Context,
    facts: &Facts<'_>,
    desired: &DesiredState,
    plan: &Plan,
    out: &mut Outcome,
) {
    let value = bp.annotations().get(annotations::RUN).map(String::as_str);
    let uid = bp.uid().unwrap_or_default();
    let last = out.status.last_run.as_ref();
    let (generation, now) = (facts.generation, facts.now);
    match run::decide(value, last, &uid, desired, &plan.foreign) {
        RunDecision::Nothing => {}
        RunDecision::Reject { reason, message } => {
            let value = value.unwrap_or_default();
            let event = run::rejected(&mut out.status, value, reason, &message, generation, now);
            out.events.push(event);
        }
        RunDecision::Start(start) => match ctx.aws.start_execution(&start).await {
            Ok(execution) => {
                info!(pipeline = %start.pipeline, execution = %execution, "manual run started");
                let value = value.unwrap_or_default();
                let event = run::started(
                    &mut out.status,
                    value,
                    &start.pipeline,
                    &execution,
                    generation,
                    now,
                );
                out.events.push(event);
            }
            Err(e) => {
                let events = std::mem::take(&mut out.events);
                *out = outcome::aws_failed(facts, Step::StartRun, e, &[]);
                out.events.splice(0..0, events);
            }
        },
    }
}
