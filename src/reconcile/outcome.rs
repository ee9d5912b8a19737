//! What a reconcile decides, as data: the status to write, the events to publish, the metrics
//! to move, and what happens next. Pure: the controller only carries an [`Outcome`] out.
//!
//! Events that report a state (an invalid spec, a refused call, a blocked deletion) are
//! published when that state first appears or changes, judged against the previous status, so
//! a resync that finds the same problem does not repeat itself. Events that report a change in
//! AWS are published for every change.

use std::time::Duration;

use super::apply::{Change, Verb};
use super::diff::{Foreign, Kind, Observed, Plan};
use super::error::{Error, Step};
use super::events::{CONDITION_MESSAGE_MAX, EventSpec, NOTE_MAX, fit_list};
use super::policy::{AnnotationProblem, Settings};
use super::status::{self, reason};
use crate::api::*;
use crate::aws::AwsError;
use crate::render::DesiredState;
use crate::validate::FieldError;

/// What the controller does after carrying out an outcome.
#[derive(Debug)]
pub enum Next {
    /// Reconcile again after this long.
    Requeue(Duration),
    /// Nothing to do until the resource changes.
    AwaitChange,
    /// The reconcile failed: the error policy picks the delay from the error's class.
    Fail(Error),
}

/// The managed-resources gauge for this resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Managed {
    Unchanged,
    Counts {
        pipelines: usize,
        projects: usize,
    },
    /// Cleanup finished: the resource manages nothing any more.
    Gone,
}

#[derive(Debug)]
pub struct Outcome {
    pub status: BranchPipelineStatus,
    pub events: Vec<EventSpec>,
    pub next: Next,
    pub drift_repairs: usize,
    pub managed: Managed,
    /// Pipeline updates and deletions: what waits and what was cancelled.
    pub updates: UpdateReport,
}

/// For the metrics: pipeline updates held back and executions cancelled by this pass.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UpdateReport {
    /// Updates held back this pass that were not held before.
    pub newly_deferred: usize,
    /// How long the oldest update still held back has waited.
    pub oldest_wait: Option<std::time::Duration>,
    /// Executions an update or deletion of this pass cancelled.
    pub cancelled_executions: usize,
}

/// What every decision reads besides its own inputs.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub generation: Option<i64>,
    pub previous: &'a BranchPipelineStatus,
    pub settings: &'a Settings,
    /// RFC 3339, for condition transition times.
    pub now: &'a str,
    /// Until this object's next resync slot (see [`duration::slot_delay`]).
    pub next_resync: Duration,
    /// The class the desired state was compiled with, recorded once AWS matches it.
    pub class: Option<&'a ClassRef>,
}

impl Facts<'_> {
    pub(crate) fn outcome(&self, next: Next) -> Outcome {
        Outcome {
            status: self.previous.clone(),
            events: Vec::new(),
            next,
            drift_repairs: 0,
            managed: Managed::Unchanged,
            updates: UpdateReport::default(),
        }
    }

    /// Whether the previous status already said this (condition, reason, message), so its
    /// event need not be published again.
    fn already_reported(&self, condition: &str, reason: &str, message: &str) -> bool {
        self.previous.condition(condition).is_some_and(|c| {
            c.reason == reason && c.message == message && c.observed_generation == self.generation
        })
    }
}

/// The spec cannot be rendered: no AWS call until it changes.
pub fn invalid_spec(f: &Facts<'_>, errors: &[FieldError]) -> Outcome {
    refused(f, reason::INVALID_SPEC, errors, Next::AwaitChange)
}

/// The resource is not carried to AWS, for `reason`, each error naming a field: `Ready=False`
/// and one event per (reason, message, generation), and no AWS call. What is already in AWS
/// and listed in the status stays as it is.
pub fn refused(f: &Facts<'_>, reason: &str, errors: &[FieldError], next: Next) -> Outcome {
    let items: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let message = fit_list(&items, CONDITION_MESSAGE_MAX, false);
    let mut out = f.outcome(next);
    if !f.already_reported(CONDITION_READY, reason, &message) {
        out.events
            .push(EventSpec::warning(reason, fit_list(&items, NOTE_MAX, true)));
    }
    status::set_ready_synced(
        &mut out.status,
        false,
        reason,
        &message,
        f.generation,
        f.now,
    );
    with_annotations(f, out)
}

/// An AWS call failed during observe or apply. `done` are the writes that succeeded first.
/// Retryable failures mark `Synced=False` and back off; terminal ones mark both conditions and
/// wait for a change or the next resync.
pub fn aws_failed(f: &Facts<'_>, step: Step, error: AwsError, done: &[Change]) -> Outcome {
    let mut out = f.outcome(Next::AwaitChange);
    report_changes(&mut out, done, false);
    let message = error.to_string();
    if error.is_retryable() {
        status::set_retrying(&mut out.status, &message, f.generation, f.now);
    } else {
        if !f.already_reported(CONDITION_SYNCED, reason::AWS_TERMINAL_ERROR, &message) {
            out.events
                .push(EventSpec::warning(reason::AWS_TERMINAL_ERROR, &message));
        }
        status::set_ready_synced(
            &mut out.status,
            false,
            reason::AWS_TERMINAL_ERROR,
            &message,
            f.generation,
            f.now,
        );
    }
    out.next = Next::Fail(Error::aws(step)(error));
    // A pass that failed before deciding (observe) leaves the held updates held: their age
    // stays on the gauge.
    out.updates.oldest_wait = super::deferral::oldest_wait(&f.previous.pending_updates, f.now);
    with_annotations(f, out)
}

/// AWS was brought in line with `desired` by `plan`; `done` are its writes.
pub fn synced(
    f: &Facts<'_>,
    desired: &DesiredState,
    observed: &Observed,
    plan: &Plan,
    done: &[Change],
) -> Outcome {
    let mut out = f.outcome(Next::Requeue(f.next_resync));
    report_changes(&mut out, done, is_drift(f, plan));
    fill_inventory(&mut out.status, desired, observed, done, &plan.foreign);
    // A project kept for a pipeline whose update waits (deferral::without_deferred) stays
    // named, so the next pass finds it again and deletes it with that update.
    let kept = observed
        .stale_projects
        .iter()
        .filter(|p| !plan.delete_projects.contains(p));
    out.status.projects.extend(kept.cloned());
    if plan.foreign.is_empty() {
        status::set_ready_synced(
            &mut out.status,
            true,
            reason::SYNCED,
            "AWS matches the spec",
            f.generation,
            f.now,
        );
        out.status.synced_generation = f.generation;
        out.status.synced_class = f.class.cloned();
    } else {
        let items: Vec<String> = plan.foreign.iter().map(Foreign::to_string).collect();
        let message = fit_list(&items, CONDITION_MESSAGE_MAX, false);
        if !f.already_reported(CONDITION_READY, reason::NOT_OWNED, &message) {
            for foreign in &plan.foreign {
                out.events.push(
                    EventSpec::warning(reason::NOT_OWNED, foreign.to_string())
                        .about(foreign.kind, &foreign.name),
                );
            }
        }
        status::set_ready_synced(
            &mut out.status,
            false,
            reason::NOT_OWNED,
            &message,
            f.generation,
            f.now,
        );
    }
    out.managed = Managed::Counts {
        pipelines: out.status.pipelines.len(),
        projects: out.status.projects.len(),
    };
    with_annotations(f, out)
}

/// The per-region quotas a plan must stay within, as configured (defaults: CodePipeline's
/// 1,000 pipelines and CodeBuild's 5,000 projects per region, "Quotas in AWS CodePipeline" and
/// "Quotas for AWS CodeBuild"; both adjustable with AWS, so they are flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub pipelines: usize,
    pub projects: usize,
}

/// Why `plan` would exceed a quota, given the account's counts from the last listing.
pub fn over_quota(plan: &Plan, account: (usize, usize), quotas: Quotas) -> Option<String> {
    let (pipelines, projects) = account;
    let after_pipelines = pipelines + plan.create_pipelines.len();
    let after_projects = projects + plan.create_projects.len();
    if !plan.create_pipelines.is_empty() && after_pipelines > quotas.pipelines {
        return Some(format!(
            "creating {} pipelines would make {after_pipelines} in this account and region, over the quota of {}; raise it with AWS and --pipeline-quota, or remove pipeline groups",
            plan.create_pipelines.len(),
            quotas.pipelines
        ));
    }
    if !plan.create_projects.is_empty() && after_projects > quotas.projects {
        return Some(format!(
            "creating {} CodeBuild projects would make {after_projects} in this account and region, over the quota of {}; raise it with AWS and --project-quota",
            plan.create_projects.len(),
            quotas.projects
        ));
    }
    None
}

/// A plan refused for a quota: nothing is written until the spec or the quota changes.
pub fn quota_exceeded(f: &Facts<'_>, message: &str) -> Outcome {
    let mut out = f.outcome(Next::Fail(Error::QuotaExceeded(message.to_string())));
    if !f.already_reported(CONDITION_READY, reason::QUOTA_EXCEEDED, message) {
        out.events
            .push(EventSpec::warning(reason::QUOTA_EXCEEDED, message));
    }
    status::set_ready_synced(
        &mut out.status,
        false,
        reason::QUOTA_EXCEEDED,
        message,
        f.generation,
        f.now,
    );
    with_annotations(f, out)
}

/// Whether `bp` looked in line with AWS when last reconciled and has not changed since, nor has
/// its class (`class`: the one it uses now): its first reconcile after a controller start can
/// wait for its resync slot, so a restart does not read the whole account at once and edits are
/// not queued behind that pass.
pub fn is_settled(bp: &BranchPipeline, settings: &Settings, class: Option<&ClassRef>) -> bool {
    let generation = bp.metadata.generation;
    let finalized = bp
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    let Some(status) = bp.status.as_ref() else {
        return false;
    };
    let is_true = |type_: &str| status.condition(type_).is_some_and(|c| c.status == "True");
    bp.metadata.deletion_timestamp.is_none()
        && finalized
        && settings.problems.is_empty()
        && generation.is_some()
        && status.observed_generation == generation
        && status.synced_generation == generation
        && is_true(CONDITION_READY)
        && is_true(CONDITION_SYNCED)
        && status.synced_class.as_ref() == class
}

/// Drift is a change to something that existed while the spec and class stayed as AWS was last
/// brought in line with them: after a spec or class edit, the changes are the edit's. A spec
/// edit applied after a failure is not drift, even though the failure path recorded the new
/// generation as observed.
fn is_drift(f: &Facts<'_>, plan: &Plan) -> bool {
    plan.changes_existing()
        && f.generation.is_some()
        && f.previous.synced_generation == f.generation
        && f.previous.synced_class.as_ref() == f.class
}

/// One Event per kind of change and reconcile, naming every resource it touched: a new
/// resource is one Event, not one per pipeline and project (six for the README's example), which
/// at a thousand objects is thousands of Event writes the API server and etcd are spared.
fn report_changes(out: &mut Outcome, done: &[Change], drift: bool) {
    let mut groups: Vec<(&'static str, Vec<&Change>)> = Vec::new();
    for change in done {
        let repaired = drift && matches!(change.verb, Verb::Updated | Verb::Retagged);
        let reason = if repaired {
            out.drift_repairs += 1;
            "DriftRepaired"
        } else if change.verb == Verb::Retagged {
            "Updated"
        } else {
            change.verb.as_str()
        };
        match groups.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, changes)) => changes.push(change),
            None => groups.push((reason, vec![change])),
        }
    }
    for (reason, changes) in groups {
        let items: Vec<String> = changes
            .iter()
            .map(|c| format!("{} {} {}", c.verb.as_str(), c.kind.as_str(), c.name))
            .collect();
        let mut event = EventSpec::normal(reason, fit_list(&items, NOTE_MAX, true));
        if let [only] = changes.as_slice() {
            event = event.about(only.kind, &only.name);
        }
        out.events.push(event);
    }
}

/// What cleanup does for this resource's deletion policy.
#[derive(Debug, Clone, PartialEq)]
pub enum CleanupPlan {
    Retain,
    Delete,
    /// The deletion-policy annotation is invalid: delete nothing until it is fixed.
    Blocked(AnnotationProblem),
}

pub fn cleanup_plan(settings: &Settings) -> CleanupPlan {
    match settings.deletion_policy() {
        Ok(DeletionPolicy::Retain) => CleanupPlan::Retain,
        Ok(DeletionPolicy::Delete) => CleanupPlan::Delete,
        Err(problem) => CleanupPlan::Blocked(problem.clone()),
    }
}

/// Deletion is refused until the deletion-policy annotation says what to do.
pub fn deletion_waits_for_annotation(f: &Facts<'_>, problem: &AnnotationProblem) -> Outcome {
    let message = format!("{problem}; nothing is deleted in AWS until then");
    let mut out = blocked(f, &message);
    out.next = Next::Fail(Error::DeletionPolicyInvalid(problem.to_string()));
    with_annotations(f, out)
}

/// A call failed while deleting: the finalizer keeps the resource, and the status says why.
pub fn deletion_failed(f: &Facts<'_>, error: AwsError, done: &[Change]) -> Outcome {
    let message = format!(
        "{error}; the resource is kept until its AWS resources are deleted ({})",
        if error.is_retryable() {
            "retrying with backoff"
        } else {
            "retrying every resync interval"
        }
    );
    let mut out = blocked(f, &message);
    let mut changes = f.outcome(Next::AwaitChange);
    report_changes(&mut changes, done, false);
    out.events.splice(0..0, changes.events);
    out.next = Next::Fail(Error::aws(Step::Cleanup)(error));
    with_annotations(f, out)
}

fn blocked(f: &Facts<'_>, message: &str) -> Outcome {
    let mut out = f.outcome(Next::AwaitChange);
    if !f.already_reported(CONDITION_READY, reason::DELETION_BLOCKED, message) {
        out.events
            .push(EventSpec::warning(reason::DELETION_BLOCKED, message));
    }
    status::set_ready_synced(
        &mut out.status,
        false,
        reason::DELETION_BLOCKED,
        message,
        f.generation,
        f.now,
    );
    out
}

/// Cleanup finished (or the policy retains everything): the finalizer can go.
pub fn cleaned_up(f: &Facts<'_>, done: &[Change]) -> Outcome {
    let mut out = f.outcome(Next::AwaitChange);
    report_changes(&mut out, done, false);
    out.managed = Managed::Gone;
    out
}

/// Adds or clears the `AnnotationsValid` condition, with a Warning event when the problems
/// first appear or change. The defaults apply meanwhile (see [`super::policy`]).
fn with_annotations(f: &Facts<'_>, mut out: Outcome) -> Outcome {
    let problems = &f.settings.problems;
    if problems.is_empty() {
        out.status
            .conditions
            .retain(|c| c.type_ != CONDITION_ANNOTATIONS_VALID);
        return out;
    }
    let items: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let message = fit_list(&items, CONDITION_MESSAGE_MAX, false);
    if !f.already_reported(
        CONDITION_ANNOTATIONS_VALID,
        reason::INVALID_ANNOTATION,
        &message,
    ) {
        out.events.push(EventSpec::warning(
            reason::INVALID_ANNOTATION,
            fit_list(&items, NOTE_MAX, true),
        ));
    }
    status::set_condition(
        &mut out.status.conditions,
        CONDITION_ANNOTATIONS_VALID,
        false,
        reason::INVALID_ANNOTATION,
        &message,
        f.generation,
        f.now,
    );
    out
}

/// What status lists: each rendered pipeline with its ARN and version, and the projects.
fn fill_inventory(
    status: &mut BranchPipelineStatus,
    desired: &DesiredState,
    observed: &Observed,
    done: &[Change],
    foreign: &[Foreign],
) {
    let is_foreign = |name: &str| foreign.iter().any(|f| f.name == name);
    status.pipelines = desired
        .pipelines
        .iter()
        .filter(|p| !is_foreign(&p.pipeline.name))
        .map(|p| {
            let name = &p.pipeline.name;
            let seen = observed.pipelines.get(name);
            let changed = done
                .iter()
                .filter(|c| &c.name == name && c.kind == Kind::Pipeline);
            let arn = changed
                .clone()
                .find_map(|c| c.arn.clone())
                .or_else(|| seen.map(|s| s.arn.clone()));
            let version = changed
                .rev()
                .find_map(|c| c.version)
                .or_else(|| seen.and_then(|s| s.declaration.version));
            PipelineStatus {
                name: name.clone(),
                arn,
                version,
                environments: p.environments.clone(),
            }
        })
        .collect();
    status.pipeline_count = i32::try_from(status.pipelines.len()).ok();
    status.projects = desired
        .projects
        .iter()
        .map(|p| p.name.clone())
        .filter(|n| !is_foreign(n))
        .collect();
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::aws::Retry;
    use crate::reconcile::policy::{Defaults, settings};
    use crate::render;

    const NOW: &str = "2026-11-27T10:00:00Z";
    const RESYNC: Duration = Duration::from_secs(600);

    fn example(annotations: &[(&str, &str)]) -> BranchPipeline {
        let mut bp = crate::fixtures::example();
        bp.metadata.generation = Some(3);
        bp.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        bp
    }

    fn settings_of(bp: &BranchPipeline) -> Settings {
        settings(
            bp,
            Defaults {
                resync_interval: RESYNC,
                deletion_policy: None,
            },
        )
    }

    fn facts<'a>(
        generation: i64,
        previous: &'a BranchPipelineStatus,
        settings: &'a Settings,
    ) -> Facts<'a> {
        Facts {
            generation: Some(generation),
            previous,
            settings,
            now: NOW,
            next_resync: RESYNC,
            class: None,
        }
    }

    fn aws_error(code: &str, retry: Retry) -> AwsError {
        AwsError {
            operation: "UpdatePipeline",
            resource: Some("team-orders-orders-api".into()),
            code: code.into(),
            message: "denied".into(),
            retry,
        }
    }

    fn change(verb: Verb, kind: Kind, name: &str) -> Change {
        Change {
            verb,
            kind,
            name: name.into(),
            arn: None,
            version: None,
        }
    }

    fn ready(status: &BranchPipelineStatus) -> (String, String) {
        let c = status.condition(CONDITION_READY).expect("Ready is set");
        (c.status.clone(), c.reason.clone())
    }

    fn reasons(out: &Outcome) -> Vec<&str> {
        out.events.iter().map(|e| e.reason.as_str()).collect()
    }

    fn desired() -> DesiredState {
        render::compile(&example(&[])).expect("the example renders")
    }

    /// What AWS reports right after creating everything `desired` holds.
    fn in_sync(desired: &DesiredState) -> Observed {
        let mut observed = Observed::default();
        for (i, p) in desired.pipelines.iter().enumerate() {
            let mut declaration = p.pipeline.clone();
            declaration.version = Some(i as i32 + 1);
            observed.pipelines.insert(
                p.pipeline.name.clone(),
                crate::aws::ObservedPipeline {
                    declaration,
                    unmanaged: vec![],
                    arn: format!("arn:aws:codepipeline:us-east-1:1:{}", p.pipeline.name),
                    tags: Some(p.tags.clone()),
                },
            );
        }
        observed
    }

    #[test]
    fn invalid_spec_reports_once_per_message_and_generation() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let errors = [FieldError::new("spec.stages", "needs a stage")];
        let first = invalid_spec(&facts(3, &BranchPipelineStatus::default(), &s), &errors);
        assert_eq!(ready(&first.status), ("False".into(), "InvalidSpec".into()));
        assert_eq!(reasons(&first), ["InvalidSpec"]);
        assert!(matches!(first.next, Next::AwaitChange));
        let again = invalid_spec(&facts(3, &first.status, &s), &errors);
        assert!(again.events.is_empty(), "{:?}", again.events);
        let edited = invalid_spec(&facts(4, &first.status, &s), &errors);
        assert_eq!(reasons(&edited), ["InvalidSpec"]);
    }

    #[test]
    fn many_field_errors_fit_the_event_and_stay_whole_in_the_status() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let errors: Vec<FieldError> = (0..200)
            .map(|i| {
                FieldError::new(
                    format!("spec.tags.k{i}"),
                    "has a character AWS does not allow in tag keys",
                )
            })
            .collect();
        let out = invalid_spec(&facts(3, &BranchPipelineStatus::default(), &s), &errors);
        let note = &out.events[0].note;
        assert!(note.len() <= NOTE_MAX, "{}", note.len());
        assert!(note.contains("more; see status"), "{note}");
        let message = &out
            .status
            .condition(CONDITION_READY)
            .expect("Ready")
            .message;
        assert!(message.contains("spec.tags.k199"));
    }

    #[test]
    fn retryable_failures_keep_ready_and_back_off_quietly() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let mut previous = BranchPipelineStatus::default();
        status::set_ready_synced(&mut previous, true, reason::SYNCED, "ok", Some(3), "t0");
        let out = aws_failed(
            &facts(3, &previous, &s),
            Step::Apply,
            aws_error("ThrottlingException", Retry::Retryable),
            &[],
        );
        assert_eq!(ready(&out.status), ("True".into(), "Synced".into()));
        let synced = out.status.condition(CONDITION_SYNCED).expect("Synced");
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "AWSError")
        );
        assert!(out.events.is_empty());
        assert!(matches!(&out.next, Next::Fail(e) if e.is_retryable() && e.step() == Step::Apply));
        assert_eq!(out.updates.oldest_wait, None, "nothing was held");
    }

    #[test]
    fn a_failed_pass_keeps_the_age_of_updates_still_held() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let previous = BranchPipelineStatus {
            pending_updates: vec![crate::api::PendingUpdate {
                pipeline: "p".into(),
                since: "2026-01-01T00:00:00Z".into(),
                executions: vec!["e1".into()],
            }],
            ..Default::default()
        };
        let f = Facts {
            now: "2026-01-01T00:02:00Z",
            ..facts(3, &previous, &s)
        };
        let error = aws_error("ThrottlingException", Retry::Retryable);
        let out = aws_failed(&f, Step::Observe, error, &[]);
        assert_eq!(out.updates.oldest_wait, Some(Duration::from_secs(120)));
    }

    #[test]
    fn terminal_failures_name_the_resource_and_report_once() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let error = aws_error("AccessDeniedException", Retry::Terminal);
        let out = aws_failed(
            &facts(3, &BranchPipelineStatus::default(), &s),
            Step::Apply,
            error.clone(),
            &[],
        );
        assert_eq!(
            ready(&out.status),
            ("False".into(), "AWSTerminalError".into())
        );
        let message = &out
            .status
            .condition(CONDITION_READY)
            .expect("Ready")
            .message;
        assert!(
            message.contains(
                "UpdatePipeline team-orders-orders-api failed with AccessDeniedException"
            ),
            "{message}"
        );
        assert_eq!(reasons(&out), ["AWSTerminalError"]);
        assert!(matches!(&out.next, Next::Fail(e) if !e.is_retryable()));
        let again = aws_failed(&facts(3, &out.status, &s), Step::Apply, error, &[]);
        assert!(again.events.is_empty());
    }

    #[test]
    fn writes_before_a_failure_are_still_reported() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let done = [change(Verb::Created, Kind::Project, "p-lint")];
        let out = aws_failed(
            &facts(3, &BranchPipelineStatus::default(), &s),
            Step::Apply,
            aws_error("ThrottlingException", Retry::Retryable),
            &done,
        );
        assert_eq!(reasons(&out), ["Created"]);
        assert_eq!(
            out.events[0].related,
            Some((Kind::Project, "p-lint".into()))
        );
    }

    #[test]
    fn a_sync_records_inventory_generation_and_counts() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let desired = desired();
        let observed = in_sync(&desired);
        let out = synced(
            &facts(3, &BranchPipelineStatus::default(), &s),
            &desired,
            &observed,
            &Plan::default(),
            &[],
        );
        assert_eq!(ready(&out.status), ("True".into(), "Synced".into()));
        assert_eq!(out.status.synced_generation, Some(3));
        assert_eq!(out.status.pipeline_count, Some(2));
        assert_eq!(out.status.projects.len(), 4);
        assert_eq!(out.status.pipelines[1].version, Some(2));
        assert_eq!(
            out.managed,
            Managed::Counts {
                pipelines: 2,
                projects: 4
            }
        );
        assert!(matches!(out.next, Next::Requeue(d) if d == RESYNC));
        assert!(out.events.is_empty());
    }

    fn updated_plan(desired: &DesiredState) -> Plan {
        Plan {
            update_pipelines: vec![desired.pipelines[0].pipeline.clone()],
            ..Plan::default()
        }
    }

    #[test]
    fn a_change_at_the_synced_generation_is_drift() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let desired = desired();
        let previous = BranchPipelineStatus {
            synced_generation: Some(3),
            ..Default::default()
        };
        let done = [change(
            Verb::Updated,
            Kind::Pipeline,
            "team-orders-orders-api",
        )];
        let out = synced(
            &facts(3, &previous, &s),
            &desired,
            &in_sync(&desired),
            &updated_plan(&desired),
            &done,
        );
        assert_eq!(reasons(&out), ["DriftRepaired"]);
        assert_eq!(out.drift_repairs, 1);
    }

    #[test]
    fn a_spec_edit_is_not_drift() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let desired = desired();
        let previous = BranchPipelineStatus {
            synced_generation: Some(2),
            ..Default::default()
        };
        let done = [change(
            Verb::Updated,
            Kind::Pipeline,
            "team-orders-orders-api",
        )];
        let out = synced(
            &facts(3, &previous, &s),
            &desired,
            &in_sync(&desired),
            &updated_plan(&desired),
            &done,
        );
        assert_eq!(reasons(&out), ["Updated"]);
        assert_eq!(out.drift_repairs, 0);
    }

    #[test]
    fn a_class_edit_is_not_drift() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let desired = desired();
        let class_at = |generation| crate::api::ClassRef {
            name: "platform".into(),
            generation,
        };
        let previous = BranchPipelineStatus {
            synced_generation: Some(3),
            synced_class: Some(class_at(1)),
            ..Default::default()
        };
        let done = [change(
            Verb::Updated,
            Kind::Pipeline,
            "team-orders-orders-api",
        )];
        let at = |generation| {
            let class = class_at(generation);
            let f = Facts {
                class: Some(&class),
                ..facts(3, &previous, &s)
            };
            let out = synced(
                &f,
                &desired,
                &in_sync(&desired),
                &updated_plan(&desired),
                &done,
            );
            (reasons(&out).join(","), out.drift_repairs)
        };
        assert_eq!(at(2), ("Updated".into(), 0), "the class moved on: its edit");
        assert_eq!(at(1), ("DriftRepaired".into(), 1), "same class: drift");
    }

    #[test]
    fn a_stale_project_kept_for_a_waiting_update_stays_named() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let desired = desired();
        let mut observed = in_sync(&desired);
        observed.stale_projects = vec!["old-build".into(), "old-test".into()];
        let plan = Plan {
            delete_projects: vec!["old-test".into()],
            ..Plan::default()
        };
        let previous = BranchPipelineStatus::default();
        let out = synced(&facts(3, &previous, &s), &desired, &observed, &plan, &[]);
        assert!(out.status.projects.contains(&"old-build".to_string()));
        assert!(!out.status.projects.contains(&"old-test".to_string()));
    }

    #[test]
    fn an_edit_applied_after_a_terminal_failure_is_not_drift() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let desired = desired();
        // Synced at 2; the edit to 3 hit AccessDenied, which records generation 3 as observed.
        let previous = BranchPipelineStatus {
            synced_generation: Some(2),
            ..Default::default()
        };
        let failed = aws_failed(
            &facts(3, &previous, &s),
            Step::Apply,
            aws_error("AccessDeniedException", Retry::Terminal),
            &[],
        );
        assert_eq!(failed.status.observed_generation, Some(3));
        let done = [change(
            Verb::Updated,
            Kind::Pipeline,
            "team-orders-orders-api",
        )];
        let out = synced(
            &facts(3, &failed.status, &s),
            &desired,
            &in_sync(&desired),
            &updated_plan(&desired),
            &done,
        );
        assert_eq!(reasons(&out), ["Updated"]);
        assert_eq!(out.drift_repairs, 0);
        assert_eq!(out.status.synced_generation, Some(3));
    }

    #[test]
    fn retags_are_reported_as_updates() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let desired = desired();
        let done = [change(
            Verb::Retagged,
            Kind::Pipeline,
            "team-orders-orders-api",
        )];
        let out = synced(
            &facts(3, &BranchPipelineStatus::default(), &s),
            &desired,
            &in_sync(&desired),
            &Plan::default(),
            &done,
        );
        assert_eq!(reasons(&out), ["Updated"]);
    }

    #[test]
    fn foreign_resources_make_ready_false_and_warn_once() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let desired = desired();
        let plan = Plan {
            foreign: vec![Foreign {
                kind: Kind::Pipeline,
                name: "team-orders-orders-api".into(),
                owner: Some("team-x/orders-api".into()),
            }],
            ..Plan::default()
        };
        let out = synced(
            &facts(3, &BranchPipelineStatus::default(), &s),
            &desired,
            &in_sync(&desired),
            &plan,
            &[],
        );
        assert_eq!(ready(&out.status), ("False".into(), "NotOwned".into()));
        assert_eq!(reasons(&out), ["NotOwned"]);
        assert_eq!(
            out.status.pipelines.len(),
            1,
            "the foreign pipeline is not listed"
        );
        assert_eq!(out.status.synced_generation, None);
        let again = synced(
            &facts(3, &out.status, &s),
            &desired,
            &in_sync(&desired),
            &plan,
            &[],
        );
        assert!(again.events.is_empty());
    }

    #[test]
    fn invalid_annotations_add_a_condition_and_one_warning() {
        let bp = example(&[(annotations::RESYNC_INTERVAL, "18446744073709551615s")]);
        let s = settings_of(&bp);
        let desired = desired();
        let out = synced(
            &facts(3, &BranchPipelineStatus::default(), &s),
            &desired,
            &in_sync(&desired),
            &Plan::default(),
            &[],
        );
        let c = out
            .status
            .condition(CONDITION_ANNOTATIONS_VALID)
            .expect("condition");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InvalidAnnotation")
        );
        assert!(
            c.message.contains(annotations::RESYNC_INTERVAL) && c.message.contains("10m meanwhile"),
            "{}",
            c.message
        );
        assert_eq!(reasons(&out), ["InvalidAnnotation"]);
        assert!(matches!(out.next, Next::Requeue(d) if d >= RESYNC));
        let again = synced(
            &facts(3, &out.status, &s),
            &desired,
            &in_sync(&desired),
            &Plan::default(),
            &[],
        );
        assert!(again.events.is_empty());
        let fixed_bp = example(&[]);
        let fixed = settings_of(&fixed_bp);
        let cleared = synced(
            &facts(3, &again.status, &fixed),
            &desired,
            &in_sync(&desired),
            &Plan::default(),
            &[],
        );
        assert!(
            cleared
                .status
                .condition(CONDITION_ANNOTATIONS_VALID)
                .is_none()
        );
    }

    #[test]
    fn only_a_synced_unchanged_resource_is_settled() {
        let desired = desired();
        let mut bp = example(&[]);
        bp.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
        let s = settings_of(&bp);
        assert!(!is_settled(&bp, &s, None), "no status yet");
        let out = synced(
            &facts(3, &BranchPipelineStatus::default(), &s),
            &desired,
            &in_sync(&desired),
            &Plan::default(),
            &[],
        );
        bp.status = Some(out.status.clone());
        assert!(is_settled(&bp, &s, None));
        let mut edited = bp.clone();
        edited.metadata.generation = Some(4);
        assert!(
            !is_settled(&edited, &s, None),
            "edited while the controller was away"
        );
        let mut deleting = bp.clone();
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert!(!is_settled(&deleting, &s, None));
        let annotated = example(&[(annotations::ADOPT, "maybe")]);
        assert!(!is_settled(&bp, &settings_of(&annotated), None));
        let failed = aws_failed(
            &facts(3, &out.status, &s),
            Step::Apply,
            aws_error("ThrottlingException", Retry::Retryable),
            &[],
        );
        bp.status = Some(failed.status);
        assert!(
            !is_settled(&bp, &s, None),
            "a failed sync is retried at once"
        );
    }

    #[test]
    fn a_class_changed_since_the_last_sync_unsettles_its_users() {
        let desired = desired();
        let mut bp = example(&[]);
        bp.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
        let s = settings_of(&bp);
        let platform = |generation| ClassRef {
            name: "platform".into(),
            generation,
        };
        let compiled_with = platform(7);
        let empty = BranchPipelineStatus::default();
        let mut f = facts(3, &empty, &s);
        f.class = Some(&compiled_with);
        let out = synced(&f, &desired, &in_sync(&desired), &Plan::default(), &[]);
        assert_eq!(out.status.synced_class, Some(platform(7)));
        bp.status = Some(out.status);
        assert!(is_settled(&bp, &s, Some(&platform(7))));
        assert!(
            !is_settled(&bp, &s, Some(&platform(8))),
            "the class was edited while the controller was away"
        );
        let other = ClassRef {
            name: "other".into(),
            generation: 7,
        };
        assert!(!is_settled(&bp, &s, Some(&other)), "another default class");
        assert!(!is_settled(&bp, &s, None), "the class is gone");
    }

    #[test]
    fn a_plan_over_a_quota_is_refused_and_reported() {
        let d = desired();
        let plan = Plan {
            create_pipelines: d.pipelines.clone(),
            create_projects: d.projects.clone(),
            ..Plan::default()
        };
        let quotas = Quotas {
            pipelines: 1000,
            projects: 5000,
        };
        assert_eq!(over_quota(&plan, (998, 0), quotas), None);
        let message = over_quota(&plan, (999, 0), quotas).expect("over");
        assert!(
            message.contains("make 1001") && message.contains("--pipeline-quota"),
            "{message}"
        );
        assert!(over_quota(&plan, (0, 4997), quotas).is_some());
        assert_eq!(
            over_quota(&Plan::default(), (5000, 9000), quotas),
            None,
            "nothing to create"
        );
        let bp = example(&[]);
        let s = settings_of(&bp);
        let out = quota_exceeded(&facts(3, &BranchPipelineStatus::default(), &s), &message);
        assert_eq!(ready(&out.status), ("False".into(), "QuotaExceeded".into()));
        assert!(matches!(&out.next, Next::Fail(e) if !e.is_retryable()));
    }

    #[test]
    fn cleanup_follows_the_deletion_policy() {
        let retain = example(&[(annotations::DELETION_POLICY, "Retain")]);
        assert_eq!(cleanup_plan(&settings_of(&retain)), CleanupPlan::Retain);
        assert_eq!(
            cleanup_plan(&settings_of(&example(&[]))),
            CleanupPlan::Delete
        );
        let typo = example(&[(annotations::DELETION_POLICY, "Retian")]);
        assert!(matches!(
            cleanup_plan(&settings_of(&typo)),
            CleanupPlan::Blocked(_)
        ));
    }

    #[test]
    fn a_misspelt_policy_blocks_deletion_with_a_terminal_error() {
        let bp = example(&[(annotations::DELETION_POLICY, "Retian")]);
        let s = settings_of(&bp);
        let CleanupPlan::Blocked(problem) = cleanup_plan(&s) else {
            panic!("a misspelt policy must block")
        };
        let out = deletion_waits_for_annotation(
            &facts(3, &BranchPipelineStatus::default(), &s),
            &problem,
        );
        assert_eq!(
            ready(&out.status),
            ("False".into(), "DeletionBlocked".into())
        );
        assert!(reasons(&out).contains(&"DeletionBlocked"));
        assert!(
            matches!(&out.next, Next::Fail(e) if !e.is_retryable() && e.step() == Step::Cleanup)
        );
    }

    #[test]
    fn a_refused_delete_is_visible_and_retried_by_class() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let mut previous = BranchPipelineStatus::default();
        status::set_ready_synced(
            &mut previous,
            true,
            reason::SYNCED,
            "AWS matches the spec",
            Some(3),
            "t0",
        );
        let denied = AwsError {
            operation: "DeletePipeline",
            ..aws_error("AccessDeniedException", Retry::Terminal)
        };
        let out = deletion_failed(&facts(3, &previous, &s), denied.clone(), &[]);
        assert_eq!(
            ready(&out.status),
            ("False".into(), "DeletionBlocked".into())
        );
        let message = &out
            .status
            .condition(CONDITION_READY)
            .expect("Ready")
            .message;
        assert!(
            message.contains(
                "DeletePipeline team-orders-orders-api failed with AccessDeniedException"
            ),
            "{message}"
        );
        assert!(message.contains("every resync interval"), "{message}");
        assert_eq!(reasons(&out), ["DeletionBlocked"]);
        assert!(out.events[0].warning);
        assert!(matches!(&out.next, Next::Fail(e) if !e.is_retryable()));
        let again = deletion_failed(&facts(3, &out.status, &s), denied, &[]);
        assert!(again.events.is_empty());

        let throttled = deletion_failed(
            &facts(3, &previous, &s),
            aws_error("ThrottlingException", Retry::Retryable),
            &[change(Verb::Deleted, Kind::Pipeline, "a")],
        );
        assert_eq!(reasons(&throttled), ["Deleted", "DeletionBlocked"]);
        assert!(matches!(&throttled.next, Next::Fail(e) if e.is_retryable()));
    }

    #[test]
    fn the_managed_gauge_is_cleared_only_when_cleanup_finished() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let failed = deletion_failed(
            &facts(3, &BranchPipelineStatus::default(), &s),
            aws_error("AccessDeniedException", Retry::Terminal),
            &[],
        );
        assert_eq!(failed.managed, Managed::Unchanged);
        let done = [
            change(Verb::Deleted, Kind::Pipeline, "a"),
            change(Verb::Deleted, Kind::Project, "a-lint"),
        ];
        let out = cleaned_up(&facts(3, &BranchPipelineStatus::default(), &s), &done);
        assert_eq!(out.managed, Managed::Gone);
        assert_eq!(
            reasons(&out),
            ["Deleted"],
            "one Event for the whole cleanup"
        );
        assert_eq!(
            out.events[0].note,
            "Deleted pipeline a; Deleted CodeBuild project a-lint"
        );
        assert_eq!(out.events[0].related, None, "it is about two resources");
        assert!(matches!(out.next, Next::AwaitChange));
    }

    #[test]
    fn changes_are_reported_as_one_event_per_kind_of_change() {
        let bp = example(&[]);
        let s = settings_of(&bp);
        let mut done: Vec<Change> = (0..40)
            .map(|i| {
                change(
                    Verb::Created,
                    Kind::Project,
                    &format!("{}-{i:02}", "p".repeat(60)),
                )
            })
            .collect();
        done.push(change(Verb::Updated, Kind::Pipeline, "a"));
        done.push(change(Verb::Retagged, Kind::Pipeline, "b"));
        let out = aws_failed(
            &facts(3, &BranchPipelineStatus::default(), &s),
            Step::Apply,
            aws_error("ThrottlingException", Retry::Retryable),
            &done,
        );
        assert_eq!(reasons(&out), ["Created", "Updated"]);
        let created = &out.events[0].note;
        assert!(created.len() <= NOTE_MAX, "{}", created.len());
        assert!(
            created.starts_with("Created CodeBuild project pppp"),
            "{created}"
        );
        assert!(created.ends_with("more; see status"), "{created}");
        assert_eq!(
            out.events[1].note,
            "Updated pipeline a; Retagged pipeline b"
        );
    }
}
