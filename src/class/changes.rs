//! Which class watch events are changes worth reconciling the class's users for. Pure.
//!
//! A watch relists now and then (a restart, an expired resource version), and every class comes
//! back as an `InitApply`. Re-reconciling every user of every class then would read all of AWS
//! for nothing, so a class is a change only when its spec or its default marking differ from
//! what was last seen. Whether a class *was* the default is remembered here too: an edit that
//! removes the annotation must still reach the resources that named no class.

use std::collections::{BTreeMap, BTreeSet};

use super::ClassChange;
use crate::api::{BranchPipelineClass, BranchPipelineClassSpec};

/// What the class watch has seen, by class name.
#[derive(Debug, Default)]
pub struct Seen {
    classes: BTreeMap<String, (BranchPipelineClassSpec, bool)>,
    /// The names listed since the relist began; `None` outside a relist.
    relisting: Option<BTreeSet<String>>,
    /// Whether the first listing has completed. Before that every resource is reconciled
    /// anyway, by its own watch.
    listed: bool,
}

impl Seen {
    /// A relist begins.
    pub fn relist_started(&mut self) {
        self.relisting = Some(BTreeSet::new());
    }

    /// A class was added or changed (`listing`: it came from a relist).
    pub fn applied(&mut self, class: &BranchPipelineClass, listing: bool) -> Option<ClassChange> {
        let name = class.metadata.name.clone().unwrap_or_default();
        if listing && let Some(names) = self.relisting.as_mut() {
            names.insert(name.clone());
        }
        let now = (class.spec.clone(), class.is_default());
        let before = self.classes.insert(name.clone(), now.clone());
        let changed = match &before {
            Some(before) => *before != now,
            None => !listing || self.listed,
        };
        changed.then(|| ClassChange {
            name,
            default_before_or_now: now.1 || before.is_some_and(|b| b.1),
        })
    }

    /// A class was deleted.
    pub fn deleted(&mut self, class: &BranchPipelineClass) -> ClassChange {
        let name = class.metadata.name.clone().unwrap_or_default();
        let before = self.classes.remove(&name);
        ClassChange {
            default_before_or_now: class.is_default() || before.is_some_and(|b| b.1),
            name,
        }
    }

    /// A relist completed: the classes it did not list were deleted while the watch was down.
    pub fn relist_done(&mut self) -> Vec<ClassChange> {
        self.listed = true;
        let Some(listed) = self.relisting.take() else {
            return Vec::new();
        };
        let gone: Vec<String> = self
            .classes
            .keys()
            .filter(|name| !listed.contains(*name))
            .cloned()
            .collect();
        gone.into_iter()
            .map(|name| {
                let (_, default) = self.classes.remove(&name).unwrap_or_default();
                ClassChange {
                    name,
                    default_before_or_now: default,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DEFAULT_CLASS_ANNOTATION, StageTemplate};

    fn class(name: &str, default: bool, buildspec: &str) -> BranchPipelineClass {
        let mut c = BranchPipelineClass::new(
            name,
            BranchPipelineClassSpec {
                templates: vec![StageTemplate {
                    name: "t".into(),
                    buildspec: Some(buildspec.into()),
                    ..StageTemplate::default()
                }],
                ..BranchPipelineClassSpec::default()
            },
        );
        if default {
            c.metadata.annotations = Some(
                [(DEFAULT_CLASS_ANNOTATION.to_string(), "true".to_string())]
                    .into_iter()
                    .collect(),
            );
        }
        c
    }

    fn change(name: &str, default: bool) -> Option<ClassChange> {
        Some(ClassChange {
            name: name.into(),
            default_before_or_now: default,
        })
    }

    #[test]
    fn the_first_listing_is_quiet_and_later_edits_are_changes() {
        let mut seen = Seen::default();
        seen.relist_started();
        assert_eq!(seen.applied(&class("a", false, "v1"), true), None);
        assert!(seen.relist_done().is_empty());
        assert_eq!(
            seen.applied(&class("a", false, "v1"), false),
            None,
            "a write that leaves the spec alone (a label) changes no render"
        );
        assert_eq!(
            seen.applied(&class("a", false, "v2"), false),
            change("a", false)
        );
        assert_eq!(
            seen.applied(&class("b", false, "v1"), false),
            change("b", false),
            "a new class may be the one a resource waits for"
        );
    }

    #[test]
    fn losing_the_default_mark_still_concerns_the_unnamed() {
        let mut seen = Seen::default();
        seen.applied(&class("a", true, "v1"), false);
        assert_eq!(
            seen.applied(&class("a", false, "v1"), false),
            change("a", true)
        );
        assert_eq!(
            seen.applied(&class("a", false, "v2"), false),
            change("a", false)
        );
        seen.applied(&class("a", true, "v2"), false);
        assert_eq!(
            seen.deleted(&class("a", false, "v2")),
            change("a", true).unwrap()
        );
    }

    #[test]
    fn a_relist_reports_only_what_changed_or_vanished_meanwhile() {
        let mut seen = Seen::default();
        seen.relist_started();
        seen.applied(&class("same", false, "v1"), true);
        seen.applied(&class("edited", false, "v1"), true);
        seen.applied(&class("gone", true, "v1"), true);
        seen.relist_done();

        seen.relist_started();
        assert_eq!(seen.applied(&class("same", false, "v1"), true), None);
        assert_eq!(
            seen.applied(&class("edited", false, "v2"), true),
            change("edited", false)
        );
        assert_eq!(
            seen.applied(&class("new", false, "v1"), true),
            change("new", false)
        );
        assert_eq!(seen.relist_done(), vec![change("gone", true).unwrap()]);
        assert!(seen.relist_done().is_empty());
    }
}
