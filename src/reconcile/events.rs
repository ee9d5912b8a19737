//! Events as data, and texts cut to what the API server accepts. Pure.

use crate::reconcile::diff::Kind;

/// The events.k8s.io/v1 API refuses an Event whose `note` exceeds 1 kB (API reference, Event
/// v1 events.k8s.io: "maximal length of the note is 1kB"; the validation counts bytes).
pub const NOTE_MAX: usize = 1024;
/// metav1.Condition `message`: at most 32768 bytes (API reference, Condition).
pub const CONDITION_MESSAGE_MAX: usize = 32768;

/// One Event to publish about the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub warning: bool,
    pub reason: String,
    /// Already fitted to [`NOTE_MAX`].
    pub note: String,
    /// The AWS resource the event is about, when it is about exactly one (the Event's
    /// `related` object).
    pub related: Option<(Kind, String)>,
}

impl EventSpec {
    pub fn normal(reason: &str, note: impl AsRef<str>) -> Self {
        Self::new(false, reason, note.as_ref())
    }

    pub fn warning(reason: &str, note: impl AsRef<str>) -> Self {
        Self::new(true, reason, note.as_ref())
    }

    fn new(warning: bool, reason: &str, note: &str) -> Self {
        Self {
            warning,
            reason: reason.to_string(),
            note: fit(note, NOTE_MAX),
            related: None,
        }
    }

    pub fn about(mut self, kind: Kind, name: &str) -> Self {
        self.related = Some((kind, name.to_string()));
        self
    }
}

/// Joins `items` with `"; "` into at most `max` bytes. Whole items are kept while they fit; the
/// rest are counted in a closing "… and N more; see status" (or "… and N more" when the text
/// is the status). A single item too long on its own is cut on a character boundary.
pub fn fit_list(items: &[String], max: usize, see_status: bool) -> String {
    let suffix = |n: usize| {
        if n == 0 {
            String::new()
        } else if see_status {
            format!(" … and {n} more; see status")
        } else {
            format!(" … and {n} more")
        }
    };
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        let remaining = items.len() - i - 1;
        if out.len() + sep.len() + item.len() + suffix(remaining).len() <= max {
            out.push_str(sep);
            out.push_str(item);
            continue;
        }
        if i == 0 {
            let room = max.saturating_sub(suffix(remaining).len());
            out = fit(item, room);
            out.push_str(&suffix(remaining));
        } else {
            out.push_str(&suffix(items.len() - i));
        }
        return out;
    }
    out
}

/// Cuts `text` to at most `max` bytes on a character boundary, ending in "…" when cut.
pub fn fit(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let ellipsis = "…";
    let mut end = max.saturating_sub(ellipsis.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize, len: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{i:03}{}", "x".repeat(len - 3)))
            .collect()
    }

    #[test]
    fn short_lists_are_joined_whole() {
        assert_eq!(fit_list(&["a".into(), "b".into()], NOTE_MAX, true), "a; b");
        assert_eq!(fit_list(&[], NOTE_MAX, true), "");
    }

    #[test]
    fn long_lists_keep_whole_items_and_count_the_rest() {
        let list = items(40, 60);
        let note = fit_list(&list, NOTE_MAX, true);
        assert!(note.len() <= NOTE_MAX, "{}", note.len());
        let kept = list.iter().filter(|i| note.contains(i.as_str())).count();
        assert!(
            note.ends_with(&format!(" … and {} more; see status", 40 - kept)),
            "{note}"
        );
        assert!(kept >= 10, "kept {kept}");
        let message = fit_list(&list, 200, false);
        assert!(
            message.len() <= 200 && message.ends_with("more"),
            "{message}"
        );
    }

    #[test]
    fn one_huge_item_is_cut_on_a_char_boundary() {
        let huge = vec!["é".repeat(5000), "second".into()];
        let note = fit_list(&huge, NOTE_MAX, true);
        assert!(note.len() <= NOTE_MAX);
        assert!(note.ends_with(" … and 1 more; see status"), "{note}");
        let alone = fit_list(&huge[..1], NOTE_MAX, true);
        assert!(alone.len() <= NOTE_MAX && alone.ends_with('…'));
    }

    #[test]
    fn event_notes_always_fit() {
        let e = EventSpec::warning("InvalidSpec", "ü".repeat(3000));
        assert!(e.note.len() <= NOTE_MAX);
        assert!(e.warning);
        let small = EventSpec::normal("Created", "Created pipeline p").about(Kind::Pipeline, "p");
        assert_eq!(small.related, Some((Kind::Pipeline, "p".into())));
    }
}
