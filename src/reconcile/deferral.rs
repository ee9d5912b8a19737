//! Pipeline updates that wait for running executions. Pure.
//!
//! AWS's model of `PipelineExecution.status` (CodePipeline API Reference, and botocore's
//! service model) says: "Cancelled: The pipeline's definition was updated before the pipeline
//! execution could be completed." Every UpdatePipeline — a spec edit, a drift repair, a
//! migration — can therefore cancel an execution in flight, a production deploy waiting at its
//! approval included. So before one, the reconcile reads the pipeline's executions in flight
//! and, under `spec.updatePolicy`, holds the update back while any runs.
//!
//! Not deferred:
//! - CodeBuild UpdateProject: no AWS document says a project update affects a build already
//!   running, nor that it does not (a build records its own environment and buildspec when it
//!   starts); the product does not depend on either reading, and a project update is applied
//!   at once.
//! - Retagging: tags are not part of the pipeline's definition.
//! - DeletePipeline (a removed pipeline group, or deletion with the Delete policy): the user
//!   asked for the pipeline to go; the executions it stops are named in a Warning event.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::apply::{Change, Verb};
use super::diff::{Kind, Observed, Plan};
use super::events::{CONDITION_MESSAGE_MAX, EventSpec, fit_list};
use super::outcome::{Facts, Next, Outcome};
use super::status::{self, reason};
use crate::api::{
    BranchPipelineSpec, BranchPipelineStatus, CONDITION_READY, CONDITION_SYNCED,
    CONDITION_UPDATE_PENDING, PendingUpdate, WhenRunning, annotations,
};
use crate::duration;
use crate::render::PipelineDeclaration;

pub const MAX_WAIT_DEFAULT: Duration = Duration::from_secs(3600);
/// Bounds of `spec.updatePolicy.maxWait`: below 10 s waiting means nothing; beyond a week a
/// definition this old is no longer what anyone expects AWS to run.
pub const MAX_WAIT_MIN: Duration = Duration::from_secs(10);
pub const MAX_WAIT_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// `spec.updatePolicy`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub when_running: WhenRunning,
    pub max_wait: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            when_running: WhenRunning::Wait,
            max_wait: MAX_WAIT_DEFAULT,
        }
    }
}

impl Policy {
    /// Validation has checked `maxWait`; an unusable one falls back to the default.
    pub fn of(spec: &BranchPipelineSpec) -> Self {
        let policy = spec.update_policy.clone().unwrap_or_default();
        let max_wait = policy
            .max_wait
            .as_deref()
            .and_then(|t| duration::parse_within(t, MAX_WAIT_MIN, MAX_WAIT_MAX).ok())
            .unwrap_or(MAX_WAIT_DEFAULT);
        Self {
            when_running: policy.when_running,
            max_wait,
        }
    }
}

/// The executions in flight (InProgress or Stopping, which includes waiting at an approval or
/// at a stage's entry) of each pipeline about to be updated or deleted, by pipeline name.
pub type InFlight = BTreeMap<String, Vec<String>>;

/// Why an update went ahead although executions were in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// `spec.updatePolicy.whenRunning: Proceed`.
    Policy,
    /// It had waited `maxWait`.
    MaxWait,
    /// A new `branchpipeline.dev/update-now` value.
    UpdateNow,
}

impl Why {
    fn explain(self, policy: &Policy) -> String {
        match self {
            Why::Policy => "spec.updatePolicy.whenRunning is Proceed".to_string(),
            Why::MaxWait => format!(
                "it had waited spec.updatePolicy.maxWait ({})",
                duration::format(policy.max_wait)
            ),
            Why::UpdateNow => format!("{} asked for it", annotations::UPDATE_NOW),
        }
    }
}

/// An update going ahead that cancels executions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forced {
    pub pipeline: String,
    pub executions: Vec<String>,
    pub why: Why,
}

/// What this pass does with the planned pipeline updates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Deferral {
    /// Updates held back, with the time each was first held.
    pub deferred: Vec<PendingUpdate>,
    /// Updates going ahead although they cancel executions.
    pub forced: Vec<Forced>,
    /// Pipelines being deleted with executions in flight, which the deletion stops.
    pub stopping: Vec<(String, Vec<String>)>,
    /// The `update-now` value this pass has seen, to record in the status.
    pub update_now: Option<String>,
    pub policy: Option<Policy>,
}

/// Decides, for each planned update, whether it waits. `now` is RFC 3339.
pub fn decide(
    plan: &Plan,
    in_flight: &InFlight,
    policy: Policy,
    previous: &BranchPipelineStatus,
    update_now: Option<&str>,
    now: &str,
) -> Deferral {
    let fresh_update_now = update_now.is_some() && update_now != previous.update_now.as_deref();
    let mut out = Deferral {
        update_now: update_now
            .map(str::to_string)
            .or_else(|| previous.update_now.clone()),
        policy: Some(policy),
        ..Deferral::default()
    };
    for pipeline in plan.update_pipelines.iter().map(|p| &p.name) {
        let Some(executions) = in_flight.get(pipeline).filter(|e| !e.is_empty()) else {
            continue;
        };
        let since = previous
            .pending_updates
            .iter()
            .find(|p| &p.pipeline == pipeline)
            .map_or_else(|| now.to_string(), |p| p.since.clone());
        let why = if fresh_update_now {
            Some(Why::UpdateNow)
        } else if policy.when_running == WhenRunning::Proceed {
            Some(Why::Policy)
        } else if waited(&since, now) >= policy.max_wait {
            Some(Why::MaxWait)
        } else {
            None
        };
        let executions = executions.clone();
        match why {
            Some(why) => out.forced.push(Forced {
                pipeline: pipeline.clone(),
                executions,
                why,
            }),
            None => out.deferred.push(PendingUpdate {
                pipeline: pipeline.clone(),
                since,
                executions,
            }),
        }
    }
    for pipeline in &plan.delete_pipelines {
        if let Some(executions) = in_flight.get(pipeline).filter(|e| !e.is_empty()) {
            out.stopping.push((pipeline.clone(), executions.clone()));
        }
    }
    out
}

/// How long since `since`; zero when either time does not parse.
/// How long the longest-held of `held` has waited; `None` when nothing is held.
pub fn oldest_wait(held: &[PendingUpdate], now: &str) -> Option<Duration> {
    held.iter().map(|p| waited(&p.since, now)).max()
}

fn waited(since: &str, now: &str) -> Duration {
    let (Ok(since), Ok(now)) = (
        since.parse::<jiff::Timestamp>(),
        now.parse::<jiff::Timestamp>(),
    ) else {
        return Duration::ZERO;
    };
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

/// The plan without the updates that wait, and without deleting a project that a waiting
/// pipeline's live definition still names (a stage renamed, a per-environment deploy dropped,
/// the move to shared projects): the execution the wait protects would otherwise fail at its
/// next build action. The project goes in the pass that updates the pipeline.
pub fn without_deferred(plan: &Plan, deferral: &Deferral, observed: &Observed) -> Plan {
    let mut plan = plan.clone();
    let waits = |name: &str| deferral.deferred.iter().any(|d| d.pipeline == name);
    plan.update_pipelines.retain(|p| !waits(&p.name));
    let in_use: BTreeSet<&str> = observed
        .pipelines
        .iter()
        .filter(|(name, _)| waits(name))
        .flat_map(|(_, seen)| projects_named(&seen.declaration))
        .collect();
    plan.delete_projects
        .retain(|p| !in_use.contains(p.as_str()));
    plan
}

/// The CodeBuild projects a pipeline's actions run (`ProjectName` in an action's
/// configuration, "CodeBuild build and test action reference", CodePipeline User Guide).
fn projects_named(declaration: &PipelineDeclaration) -> impl Iterator<Item = &str> {
    declaration
        .stages
        .iter()
        .flat_map(|s| &s.actions)
        .filter_map(|a| a.configuration.get("ProjectName").map(String::as_str))
}

/// What the outcome reports of the deferral: a Warning event for every execution an update or
/// deletion in `done` cancelled, the metrics' figures, and while an update waits, [`hold`].
pub fn report(
    out: &mut Outcome,
    f: &Facts<'_>,
    deferral: &Deferral,
    done: &[Change],
    poll: Duration,
) {
    out.status.update_now = if update_now_acted(deferral, done) {
        deferral.update_now.clone()
    } else {
        // The forced update failed (throttled, say): the value must still force the retry.
        f.previous.update_now.clone()
    };
    out.status.pending_updates = deferral.deferred.clone();
    report_cancelled(out, deferral, done);
    let was_held = |d: &&PendingUpdate| {
        f.previous
            .pending_updates
            .iter()
            .any(|p| p.pipeline == d.pipeline)
    };
    out.updates.newly_deferred = deferral.deferred.iter().filter(|d| !was_held(d)).count();
    out.updates.oldest_wait = oldest_wait(&deferral.deferred, f.now);
    if matches!(out.next, Next::Fail(_)) {
        // The failure's own conditions say more; the deferral is reported once it is past.
        return;
    }
    if deferral.deferred.is_empty() {
        out.status
            .conditions
            .retain(|c| c.type_ != CONDITION_UPDATE_PENDING);
    } else {
        hold(out, f, deferral, poll);
    }
}

/// Whether every update the `update-now` value forced went through.
fn update_now_acted(deferral: &Deferral, done: &[Change]) -> bool {
    deferral
        .forced
        .iter()
        .filter(|forced| forced.why == Why::UpdateNow)
        .all(|forced| {
            done.iter().any(|c| {
                c.verb == Verb::Updated && c.kind == Kind::Pipeline && c.name == forced.pipeline
            })
        })
}

/// `UpdatePending`, `Synced=False` and a `Ready` that says so; an event when the wait begins or
/// its executions change; a requeue no later than the next execution poll or the wait's end.
fn hold(out: &mut Outcome, f: &Facts<'_>, deferral: &Deferral, poll: Duration) {
    let policy = deferral.policy.unwrap_or_default();
    let items: Vec<String> = deferral
        .deferred
        .iter()
        .map(|p| waiting_line(p, &policy))
        .collect();
    let message = format!(
        "{}; set annotation {} to a new value to update now",
        fit_list(&items, CONDITION_MESSAGE_MAX - 200, false),
        annotations::UPDATE_NOW
    );
    if !same_holders(&f.previous.pending_updates, &deferral.deferred) {
        out.events
            .push(EventSpec::normal(reason::UPDATE_PENDING, message.clone()));
    }
    let ready = out
        .status
        .condition(CONDITION_READY)
        .is_some_and(|c| c.status == "True");
    let mut conditions = vec![(CONDITION_UPDATE_PENDING, true), (CONDITION_SYNCED, false)];
    if ready {
        conditions.push((CONDITION_READY, true));
    }
    for (type_, ok) in conditions {
        status::set_condition(
            &mut out.status.conditions,
            type_,
            ok,
            reason::UPDATE_PENDING,
            &message,
            f.generation,
            f.now,
        );
    }
    // AWS is not yet at this generation: repairing it later is the held update, not drift.
    out.status.synced_generation = f.previous.synced_generation;
    out.status.synced_class = f.previous.synced_class.clone();
    let until_expiry = deferral
        .deferred
        .iter()
        .map(|p| policy.max_wait.saturating_sub(waited(&p.since, f.now)))
        .min()
        .unwrap_or(poll);
    let wait = poll.min(until_expiry).max(Duration::from_secs(1));
    if let Next::Requeue(after) = &out.next {
        out.next = Next::Requeue((*after).min(wait));
    } else if matches!(out.next, Next::AwaitChange) {
        out.next = Next::Requeue(wait);
    }
}

fn waiting_line(p: &PendingUpdate, policy: &Policy) -> String {
    let deadline = p
        .since
        .parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| {
            let wait = jiff::SignedDuration::try_from(policy.max_wait).ok()?;
            t.checked_add(wait).ok()
        })
        .map_or_else(|| "maxWait".to_string(), |t| t.to_string());
    format!(
        "the update of pipeline {} waits for execution(s) {} (running or awaiting approval) since {}; it proceeds when they end, or at {deadline}",
        p.pipeline,
        p.executions.join(", "),
        p.since
    )
}

/// Whether the same pipelines wait for the same executions (times aside).
fn same_holders(a: &[PendingUpdate], b: &[PendingUpdate]) -> bool {
    let key = |l: &[PendingUpdate]| -> Vec<(String, Vec<String>)> {
        l.iter()
            .map(|p| (p.pipeline.clone(), p.executions.clone()))
            .collect()
    };
    key(a) == key(b)
}

/// Warning events (and the count) for executions the updates and deletions in `done` cancelled.
pub fn report_cancelled(out: &mut Outcome, deferral: &Deferral, done: &[Change]) {
    let policy = deferral.policy.unwrap_or_default();
    let happened = |verb: Verb, name: &str| {
        done.iter()
            .any(|c| c.verb == verb && c.kind == Kind::Pipeline && c.name == name)
    };
    for forced in &deferral.forced {
        if happened(Verb::Updated, &forced.pipeline) {
            out.updates.cancelled_executions += forced.executions.len();
            let note = format!(
                "updated pipeline {}, cancelling execution(s) {}: {}",
                forced.pipeline,
                forced.executions.join(", "),
                forced.why.explain(&policy)
            );
            out.events.push(
                EventSpec::warning(reason::EXECUTIONS_CANCELLED, note)
                    .about(Kind::Pipeline, &forced.pipeline),
            );
        }
    }
    for (pipeline, executions) in &deferral.stopping {
        if happened(Verb::Deleted, pipeline) {
            out.updates.cancelled_executions += executions.len();
            let note = format!(
                "deleted pipeline {pipeline}, stopping execution(s) {}",
                executions.join(", ")
            );
            out.events.push(
                EventSpec::warning(reason::EXECUTIONS_CANCELLED, note)
                    .about(Kind::Pipeline, pipeline),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ClassRef, UpdatePolicy};
    use crate::render::PipelineDeclaration;

    const NOW: &str = "2026-11-27T10:00:00Z";

    fn plan(updates: &[&str], deletes: &[&str]) -> Plan {
        Plan {
            update_pipelines: updates.iter().map(|n| declaration(n)).collect(),
            delete_pipelines: deletes.iter().map(|n| n.to_string()).collect(),
            ..Plan::default()
        }
    }

    fn declaration(name: &str) -> PipelineDeclaration {
        let bp = crate::fixtures::example();
        let mut declaration = crate::render::compile(&bp).expect("renders").pipelines[0]
            .pipeline
            .clone();
        declaration.name = name.to_string();
        declaration
    }

    fn running(pipeline: &str, ids: &[&str]) -> InFlight {
        InFlight::from([(
            pipeline.to_string(),
            ids.iter().map(|i| i.to_string()).collect(),
        )])
    }

    fn policy(when_running: WhenRunning, max_wait: &str) -> Policy {
        let mut spec: BranchPipelineSpec = crate::fixtures::example().spec;
        spec.update_policy = Some(UpdatePolicy {
            when_running,
            max_wait: Some(max_wait.into()),
        });
        Policy::of(&spec)
    }

    fn held_since(pipeline: &str, since: &str) -> BranchPipelineStatus {
        BranchPipelineStatus {
            pending_updates: vec![PendingUpdate {
                pipeline: pipeline.into(),
                since: since.into(),
                executions: vec!["e1".into()],
            }],
            ..BranchPipelineStatus::default()
        }
    }

    /// One row: what is running, since when an update waits, the annotation; what follows.
    struct Case {
        what: &'static str,
        in_flight: InFlight,
        held_since: Option<&'static str>,
        update_now: Option<&'static str>,
        waits: bool,
        forced: Option<Why>,
    }

    fn case(what: &'static str, in_flight: InFlight, waits: bool, forced: Option<Why>) -> Case {
        Case {
            what,
            in_flight,
            held_since: None,
            update_now: None,
            waits,
            forced,
        }
    }

    #[test]
    fn updates_wait_only_for_executions_in_flight() {
        let cases = [
            case("nothing running: update", InFlight::new(), false, None),
            case(
                "an execution running: wait",
                running("p", &["e1"]),
                true,
                None,
            ),
            case(
                "another pipeline's: update",
                running("q", &["e1"]),
                false,
                None,
            ),
            Case {
                held_since: Some("2026-11-27T09:01:00Z"),
                ..case("held 59m: still wait", running("p", &["e1"]), true, None)
            },
            Case {
                held_since: Some("2026-11-27T09:00:00Z"),
                ..case(
                    "held 1h: proceed",
                    running("p", &["e1"]),
                    false,
                    Some(Why::MaxWait),
                )
            },
            Case {
                update_now: Some("x"),
                ..case(
                    "a new update-now",
                    running("p", &["e1"]),
                    false,
                    Some(Why::UpdateNow),
                )
            },
        ];
        for c in cases {
            let previous = c
                .held_since
                .map_or_else(BranchPipelineStatus::default, |t| held_since("p", t));
            let wait = policy(WhenRunning::Wait, "1h");
            let d = decide(
                &plan(&["p"], &[]),
                &c.in_flight,
                wait,
                &previous,
                c.update_now,
                NOW,
            );
            assert_eq!(d.deferred.len(), usize::from(c.waits), "{}", c.what);
            assert_eq!(d.forced.first().map(|f| f.why), c.forced, "{}", c.what);
        }
    }

    #[test]
    fn an_update_now_value_acts_once() {
        let wait = policy(WhenRunning::Wait, "1h");
        let mut previous = BranchPipelineStatus::default();
        let first = decide(
            &plan(&["p"], &[]),
            &running("p", &["e1"]),
            wait,
            &previous,
            Some("t1"),
            NOW,
        );
        assert_eq!(first.forced.len(), 1);
        assert_eq!(first.update_now.as_deref(), Some("t1"));
        previous.update_now = first.update_now;
        let again = decide(
            &plan(&["p"], &[]),
            &running("p", &["e2"]),
            wait,
            &previous,
            Some("t1"),
            NOW,
        );
        assert_eq!(
            (again.forced.len(), again.deferred.len()),
            (0, 1),
            "the same value does not act twice"
        );
    }

    #[test]
    fn proceed_never_waits_and_deletes_never_wait() {
        let proceed = policy(WhenRunning::Proceed, "1h");
        let d = decide(
            &plan(&["p"], &["old"]),
            &InFlight::from([
                ("p".to_string(), vec!["e1".to_string()]),
                ("old".to_string(), vec!["e9".to_string()]),
            ]),
            proceed,
            &BranchPipelineStatus::default(),
            None,
            NOW,
        );
        assert!(d.deferred.is_empty());
        assert_eq!(d.forced[0].why, Why::Policy);
        assert_eq!(d.stopping, [("old".to_string(), vec!["e9".to_string()])]);
        let kept = without_deferred(
            &plan(&["p", "q"], &[]),
            &decide(
                &plan(&["p", "q"], &[]),
                &running("p", &["e1"]),
                policy(WhenRunning::Wait, "1h"),
                &BranchPipelineStatus::default(),
                None,
                NOW,
            ),
            &Observed::default(),
        );
        let names: Vec<&str> = kept
            .update_pipelines
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["q"], "only the held update is taken out");
    }

    #[test]
    fn a_waiting_pipeline_keeps_the_projects_it_still_runs() {
        let live = declaration("p");
        let used = super::projects_named(&live)
            .next()
            .expect("the example's pipeline runs a project")
            .to_string();
        let mut planned = plan(&["p"], &[]);
        planned.delete_projects = vec![used.clone(), "unused".to_string()];
        let observed = Observed {
            pipelines: BTreeMap::from([(
                "p".to_string(),
                crate::aws::ObservedPipeline {
                    declaration: live,
                    unmanaged: vec![],
                    arn: "arn:p".into(),
                    tags: None,
                },
            )]),
            ..Observed::default()
        };
        let wait = policy(WhenRunning::Wait, "1h");
        let none = BranchPipelineStatus::default();
        let held = decide(&planned, &running("p", &["e1"]), wait, &none, None, NOW);
        let kept = without_deferred(&planned, &held, &observed);
        assert_eq!(kept.delete_projects, ["unused"], "{used} is still run by p");
        let free = decide(&planned, &InFlight::new(), wait, &none, None, NOW);
        let applied = without_deferred(&planned, &free, &observed);
        assert_eq!(applied.delete_projects, [used, "unused".to_string()]);
    }

    #[test]
    fn max_wait_defaults_to_an_hour() {
        let spec = crate::fixtures::example().spec;
        assert_eq!(Policy::of(&spec), Policy::default());
        assert_eq!(
            policy(WhenRunning::Wait, "90s").max_wait,
            Duration::from_secs(90)
        );
    }

    fn facts<'a>(
        previous: &'a BranchPipelineStatus,
        settings: &'a crate::reconcile::policy::Settings,
        now: &'a str,
    ) -> Facts<'a> {
        Facts {
            generation: Some(4),
            previous,
            settings,
            now,
            next_resync: Duration::from_secs(600),
            class: None,
        }
    }

    fn settings() -> crate::reconcile::policy::Settings {
        let bp = crate::fixtures::example();
        crate::reconcile::policy::settings(
            &bp,
            crate::reconcile::policy::Defaults {
                resync_interval: Duration::from_secs(600),
                deletion_policy: None,
            },
        )
    }

    fn synced_outcome(f: &Facts<'_>) -> Outcome {
        let mut out = f.outcome(Next::Requeue(Duration::from_secs(600)));
        status::set_ready_synced(
            &mut out.status,
            true,
            reason::SYNCED,
            "AWS matches the spec",
            Some(4),
            NOW,
        );
        out.status.synced_generation = Some(4);
        out.status.synced_class = Some(class(9));
        out
    }

    fn class(generation: i64) -> ClassRef {
        ClassRef {
            name: "platform".into(),
            generation,
        }
    }

    /// One pass with `p`'s update planned and execution e1 running, at `now`.
    fn held_pass(previous: &BranchPipelineStatus, now: &str) -> Outcome {
        let s = settings();
        let f = facts(previous, &s, now);
        let d = decide(
            &plan(&["p"], &[]),
            &running("p", &["e1"]),
            Policy::default(),
            previous,
            None,
            now,
        );
        let mut out = synced_outcome(&f);
        report(&mut out, &f, &d, &[], Duration::from_secs(60));
        out
    }

    fn condition_of(out: &Outcome, type_: &str) -> (String, String) {
        let c = out.status.condition(type_).expect("the condition");
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn a_held_update_says_what_holds_it() {
        let previous = BranchPipelineStatus {
            synced_generation: Some(3),
            synced_class: Some(class(8)),
            ..Default::default()
        };
        let out = held_pass(&previous, NOW);
        let message = &out
            .status
            .condition(CONDITION_UPDATE_PENDING)
            .expect("UpdatePending")
            .message;
        assert!(
            message.contains("e1") && message.contains(annotations::UPDATE_NOW),
            "{message}"
        );
        let held = |status: &str| (status.to_string(), reason::UPDATE_PENDING.to_string());
        assert_eq!(condition_of(&out, CONDITION_SYNCED), held("False"));
        assert_eq!(condition_of(&out, CONDITION_READY), held("True"));
        assert_eq!(
            out.status.synced_generation,
            Some(3),
            "not synced to this generation"
        );
        assert_eq!(
            out.status.synced_class,
            Some(class(8)),
            "nor to this class generation"
        );
        assert!(matches!(out.next, Next::Requeue(d) if d == Duration::from_secs(60)));
        assert_eq!((out.events.len(), out.updates.newly_deferred), (1, 1));
    }

    #[test]
    fn a_held_update_is_announced_once_and_woken_at_max_wait() {
        let first = held_pass(&BranchPipelineStatus::default(), NOW);
        let later = held_pass(&first.status, "2026-11-27T10:59:30Z");
        assert!(later.events.is_empty(), "same holders: no new event");
        assert_eq!(later.updates.newly_deferred, 0);
        assert_eq!(later.updates.oldest_wait, Some(Duration::from_secs(3570)));
        assert!(
            matches!(later.next, Next::Requeue(d) if d == Duration::from_secs(30)),
            "woken when maxWait ends: {:?}",
            later.next
        );
    }

    #[test]
    fn cancellations_are_named_only_when_the_write_happened() {
        let (previous, s) = (BranchPipelineStatus::default(), settings());
        let f = facts(&previous, &s, NOW);
        let d = decide(
            &plan(&["p"], &["old"]),
            &InFlight::from([
                ("p".to_string(), vec!["e1".to_string()]),
                ("old".to_string(), vec!["e9".to_string()]),
            ]),
            policy(WhenRunning::Proceed, "1h"),
            &previous,
            None,
            NOW,
        );
        let updated = Change {
            verb: Verb::Updated,
            kind: Kind::Pipeline,
            name: "p".into(),
            arn: None,
            version: Some(2),
        };
        let mut out = synced_outcome(&f);
        report(&mut out, &f, &d, &[updated], Duration::from_secs(60));
        let notes: Vec<&str> = out.events.iter().map(|e| e.note.as_str()).collect();
        assert_eq!(notes.len(), 1, "the delete did not happen: {notes:?}");
        assert!(
            notes[0].contains("e1") && notes[0].contains("Proceed"),
            "{}",
            notes[0]
        );
        assert!(out.events[0].warning);
        assert_eq!(out.updates.cancelled_executions, 1);
        assert!(out.status.condition(CONDITION_UPDATE_PENDING).is_none());
        let deleted = Change {
            verb: Verb::Deleted,
            kind: Kind::Pipeline,
            name: "old".into(),
            arn: None,
            version: None,
        };
        let mut both = synced_outcome(&f);
        report(
            &mut both,
            &f,
            &d,
            &[updated_p(), deleted],
            Duration::from_secs(60),
        );
        let notes: Vec<&str> = both.events.iter().map(|e| e.note.as_str()).collect();
        assert_eq!(
            notes[1], "deleted pipeline old, stopping execution(s) e9",
            "{notes:?}"
        );
        assert_eq!(both.updates.cancelled_executions, 2);
    }

    fn updated_p() -> Change {
        Change {
            verb: Verb::Updated,
            kind: Kind::Pipeline,
            name: "p".into(),
            arn: None,
            version: Some(2),
        }
    }

    #[test]
    fn an_update_now_is_recorded_only_once_its_update_went_through() {
        let (previous, s) = (BranchPipelineStatus::default(), settings());
        let f = facts(&previous, &s, NOW);
        let wait = policy(WhenRunning::Wait, "1h");
        let d = decide(
            &plan(&["p"], &[]),
            &running("p", &["e1"]),
            wait,
            &previous,
            Some("t1"),
            NOW,
        );
        assert_eq!(d.forced[0].why, Why::UpdateNow);
        let mut failed = synced_outcome(&f);
        report(&mut failed, &f, &d, &[], Duration::from_secs(60));
        assert_eq!(
            failed.status.update_now, None,
            "not acted on: retried as forced"
        );
        let mut done = synced_outcome(&f);
        report(&mut done, &f, &d, &[updated_p()], Duration::from_secs(60));
        assert_eq!(done.status.update_now.as_deref(), Some("t1"));
    }
}
