//! Which executions deploy which environment: pipeline-level variables that say what a run
//! asked for, and one `beforeEntry` condition per environment stage. Pure.
//!
//! The design does not depend on what CodePipeline reports as the branch of a manual start. A
//! push-triggered execution builds the pushed branch and resolves
//! `#{SourceVariables.BranchName}` to it (User Guide, "Filter triggers on code push or pull
//! requests"; CodeStarSourceConnection action reference, output variables). A manual start
//! builds the source action's configured branch, or with a `COMMIT_ID` source revision override
//! any commit (User Guide, "Start a pipeline with a source revision override"); what
//! `BranchName` then resolves to is undocumented. So a run states its intent in pipeline-level
//! variables instead, which `StartPipelineExecution` sets (API Reference, StartPipelineExecution
//! `variables`; botocore: "the values can be anything except an empty string") and which a
//! trigger-started execution takes from their declared defaults (User Guide, "Variables
//! reference", pipeline-level variables).
//!
//! | execution | automatic environment (branches P) | manual environment | promotion of S |
//! | --- | --- | --- | --- |
//! | push of branch b | runs if b is in P | skipped | as S, then its approval |
//! | run for this environment | runs | runs | (runs target S instead) |
//! | run for another environment | skipped | skipped | as S |
//!
//! Rules use `VariableCheck` (User Guide, "VariableCheck" rule reference: `Variable`, `Value`,
//! `Operator` EQ, NE, CONTAINS, MATCHES with java.util.regex syntax), which evaluates
//! pipeline-level variables as `#{variables.NAME}` ("What's New", 2024-09-27). All rules of a
//! condition must pass, at most 5 per condition, and a failing `beforeEntry` condition with
//! result `SKIP` skips the stage (API Reference, Condition and BeforeEntryConditions).

use std::collections::BTreeMap;

use super::model::*;
use super::{BRANCH_RULE, BRANCH_VARIABLE, branches};
use crate::resolved::{Environment, Feed, ValidatedSpec};

/// The environment a BranchPipelineRun targets; [`PUSH`] when no run started the execution.
pub const TARGET_VARIABLE: &str = "BPL_TARGET";
/// The branch a BranchPipelineRun asked for.
pub const RUN_BRANCH_VARIABLE: &str = "BPL_BRANCH";
/// The BranchPipelineRun that started the execution.
pub const RUN_VARIABLE: &str = "BPL_RUN";
/// Default of the run variables. Environment names are DNS labels, so none can equal it.
pub const PUSH: &str = "@push";
pub const TARGET_RULE: &str = "Target";
/// Pipeline-level variables the controller declares; users may not declare these names.
pub const RESERVED_VARIABLES: [&str; 3] = [TARGET_VARIABLE, RUN_BRANCH_VARIABLE, RUN_VARIABLE];

pub fn variables() -> Vec<PipelineVariable> {
    let declare = |name: &str, description: &str| PipelineVariable {
        name: name.to_string(),
        default_value: Some(PUSH.to_string()),
        description: Some(description.to_string()),
    };
    vec![
        declare(
            TARGET_VARIABLE,
            "Set by a BranchPipelineRun: the environment it deploys. @push for pushes.",
        ),
        declare(
            RUN_BRANCH_VARIABLE,
            "Set by a BranchPipelineRun: the branch it asked for. @push for pushes.",
        ),
        declare(
            RUN_VARIABLE,
            "Set by a BranchPipelineRun: its name. @push for pushes.",
        ),
    ]
}

/// The entry condition of `env`'s stage. `push_starting` are the branches a push or a
/// console "Release change" can build in this pipeline: the automatic patterns and the source
/// action's configured branch.
pub fn condition(
    spec: &ValidatedSpec,
    env: &Environment,
    push_starting: &[String],
) -> BeforeEntryConditions {
    let root = match &env.feed {
        Feed::Promotion { root, .. } => &spec.environments[*root],
        _ => env,
    };
    let mut rules = Vec::new();
    match root.feed {
        Feed::Manual => rules.push(target_rule("EQ", root.name.clone())),
        _ => {
            rules.push(target_rule(
                "MATCHES",
                format!("^(?:{PUSH}|{})$", root.name),
            ));
            if !push_starting
                .iter()
                .all(|p| branches::covers(&root.branches, p))
            {
                rules.push(branch_rule(&root.branches));
            }
        }
    }
    BeforeEntryConditions {
        conditions: vec![StageCondition {
            result: "SKIP".into(),
            rules,
        }],
    }
}

fn target_rule(operator: &str, value: String) -> Rule {
    variable_check(
        TARGET_RULE,
        &format!("#{{variables.{TARGET_VARIABLE}}}"),
        operator,
        value,
    )
}

/// Lets a push deploy only the branches feeding the environment.
fn branch_rule(patterns: &[String]) -> Rule {
    let (operator, value) = match patterns {
        [single] if branches::is_literal(single) => ("EQ", single.clone()),
        _ => ("MATCHES", branches::to_java_regex(patterns)),
    };
    variable_check(BRANCH_RULE, BRANCH_VARIABLE, operator, value)
}

fn variable_check(name: &str, variable: &str, operator: &str, value: String) -> Rule {
    Rule {
        name: name.into(),
        rule_type_id: RuleTypeId {
            category: "Rule".into(),
            owner: "AWS".into(),
            provider: "VariableCheck".into(),
            version: "1".into(),
        },
        configuration: BTreeMap::from([
            ("Operator".to_string(), operator.to_string()),
            ("Value".to_string(), value),
            ("Variable".to_string(), variable.to_string()),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    fn spec() -> ValidatedSpec {
        let bp = manifest::parse_documents(include_str!("../../examples/orders-api.yaml"))
            .remove(0)
            .result
            .expect("the example parses");
        crate::validate::validate(&bp).expect("valid")
    }

    fn rules(env: &str) -> Vec<(String, String, String)> {
        let spec = spec();
        let e = spec.environment(env).expect("environment");
        let starting = vec!["develop".to_string(), "release/*".to_string()];
        condition(&spec, e, &starting).conditions[0]
            .rules
            .iter()
            .map(|r| {
                (
                    r.configuration["Variable"].clone(),
                    r.configuration["Operator"].clone(),
                    r.configuration["Value"].clone(),
                )
            })
            .collect()
    }

    fn t(v: &str, op: &str, value: &str) -> (String, String, String) {
        (v.into(), op.into(), value.into())
    }

    #[test]
    fn automatic_environments_take_pushes_of_their_branches_or_runs_for_them() {
        assert_eq!(
            rules("dev"),
            [
                t("#{variables.BPL_TARGET}", "MATCHES", "^(?:@push|dev)$"),
                t("#{SourceVariables.BranchName}", "EQ", "develop"),
            ]
        );
    }

    #[test]
    fn manual_environments_take_only_runs_for_them() {
        assert_eq!(rules("qa"), [t("#{variables.BPL_TARGET}", "EQ", "qa")]);
    }

    #[test]
    fn promotions_follow_their_source() {
        assert_eq!(rules("perf"), rules("stage"));
        assert_eq!(
            rules("stage")[0],
            t("#{variables.BPL_TARGET}", "MATCHES", "^(?:@push|stage)$")
        );
    }

    #[test]
    fn the_branch_rule_is_left_out_when_every_push_is_covered() {
        let spec = spec();
        let prod = spec.environment("prod").expect("prod");
        let c = condition(&spec, prod, &["main".to_string()]);
        assert_eq!(c.conditions[0].rules.len(), 1);
        assert_eq!(c.conditions[0].result, "SKIP");
    }

    #[test]
    fn run_variables_default_to_push() {
        let vars = variables();
        assert_eq!(vars.len(), 3);
        assert!(
            vars.iter()
                .all(|v| v.default_value.as_deref() == Some(PUSH))
        );
        assert!(
            vars.iter()
                .all(|v| v.description.as_ref().is_some_and(|d| d.len() <= 200))
        );
    }
}
