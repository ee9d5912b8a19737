//! Human durations for flags and annotations: `90s`, `10m`, `1h30m`, `500ms`.
//!
//! Annotation values come from tenants, so parsing never panics or wraps: every step is checked
//! arithmetic, and an ambiguous value (`1s1s1s`, a unit out of order) is refused rather than
//! reinterpreted.

use std::time::Duration;

/// Why a duration was refused. The message names the accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration; use e.g. 30s, 10m or 1h30m")]
    Syntax(String),
    #[error("{0:?} has unknown unit {1:?}; use h, m, s or ms")]
    Unit(String, String),
    #[error(
        "{0:?} repeats a unit or puts a smaller unit first; write each of h, m, s, ms once, largest first, e.g. 1h30m"
    )]
    Order(String),
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// The units, largest first. Each may appear once, in this order.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let syntax = || DurationError::Syntax(text.to_string());
    if text.is_empty() {
        return Err(syntax());
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    // Index into UNITS of the next unit allowed: each unit once, largest first.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(syntax());
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_string()))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                syntax()
            } else {
                DurationError::Unit(text.to_string(), unit.to_string())
            });
        };
        if index < next_unit {
            return Err(DurationError::Order(text.to_string()));
        }
        next_unit = index + 1;
        total_ms = n
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses and checks `min..=max`; the error names the bounds.
pub fn parse_within(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let range = || format!("use {} to {}", format(min), format(max));
    let d = parse(text).map_err(|e| format!("{e}; {}", range()))?;
    if d < min || d > max {
        return Err(format!("{:?} is out of range; {}", text.trim(), range()));
    }
    Ok(d)
}

/// The shortest form `parse` reads back: `1h30m`, `10s`, `500ms`.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        let size = u128::from(size);
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Spreads periodic work so many resources created together do not resync together: `d` plus
/// up to 10%. Saturates instead of overflowing, whatever `d` is.
pub fn jittered(d: Duration) -> Duration {
    fraction_of(d / 10, rand::random::<u16>() % 1001, 1000)
        .map(|extra| d.saturating_add(extra))
        .unwrap_or(Duration::MAX)
}

/// How long until this object's next resync slot. Each object resyncs at a fixed phase of the
/// interval, taken from `seed` (a hash of its identity), so resyncs spread evenly over the
/// interval instead of bunching where the objects were created or the controller started. Never
/// less than a tenth of the interval, so a reconcile just before its slot does not run twice.
pub fn slot_delay(seed: u64, interval: Duration, since_epoch: Duration) -> Duration {
    let period = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let phase = seed % period;
    let position = u64::try_from(since_epoch.as_millis() % u128::from(period)).unwrap_or(0);
    let mut delay = (phase + period - position) % period;
    if delay < period / 10 {
        delay = delay.saturating_add(period);
    }
    Duration::from_millis(delay)
}

/// `d * num / den` in integer nanoseconds, `None` past `Duration::MAX`.
pub fn fraction_of(d: Duration, num: u16, den: u16) -> Option<Duration> {
    let nanos = d.as_nanos().checked_mul(u128::from(num))? / u128::from(den.max(1));
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    // The remainder is below 1e9, so it fits a u32.
    let sub = u32::try_from(nanos % 1_000_000_000).ok()?;
    Some(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1h30m15s250ms"), Ok(Duration::from_millis(5_415_250)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse(" 2m "), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in [
            "", "10", "m", "-5m", "5d", "1.5h", "1s1s1s", "30s1m", "1m 30s", "s10",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(matches!(parse("1s1s1s"), Err(DurationError::Order(_))));
        assert!(matches!(parse("5d"), Err(DurationError::Unit(_, u)) if u == "d"));
    }

    #[test]
    fn huge_values_are_errors_not_panics() {
        for huge in [
            "18446744073709551615s",
            "18446744073709551615s1ms",
            "18446744073709551616s",
            "99999999999999999999999999h",
            "5124095576030431h",
            "5124095576030430h59m",
        ] {
            assert!(
                matches!(parse(huge), Err(DurationError::Overflow(_))),
                "{huge:?}: {:?}",
                parse(huge)
            );
        }
        // Large but representable in milliseconds.
        assert!(parse("99999999999h").is_ok());
    }

    #[test]
    fn bounds_name_the_range() {
        let min = Duration::from_secs(10);
        let max = Duration::from_secs(86_400);
        assert_eq!(parse_within("5m", min, max), Ok(Duration::from_secs(300)));
        let err = parse_within("99999999999h", min, max).unwrap_err();
        assert!(err.contains("10s to 24h"), "{err}");
        assert!(parse_within("9s", min, max).is_err());
        let overflow = parse_within("18446744073709551615s", min, max).unwrap_err();
        assert!(
            overflow.contains("too large") && overflow.contains("10s to 24h"),
            "{overflow}"
        );
        assert!(parse_within("24h", min, max).is_ok());
    }

    #[test]
    fn format_reads_back() {
        for d in [
            Duration::from_secs(10),
            Duration::from_secs(5400),
            Duration::from_millis(1500),
            Duration::from_secs(86_400),
        ] {
            assert_eq!(parse(&format(d)), Ok(d));
        }
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_saturates() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(100));
            assert!(j >= Duration::from_secs(100) && j <= Duration::from_secs(110));
        }
        assert_eq!(jittered(Duration::MAX), Duration::MAX);
        assert!(jittered(Duration::from_secs(u64::MAX / 2)) >= Duration::from_secs(u64::MAX / 2));
    }

    #[test]
    fn slots_spread_objects_evenly_and_come_round_every_interval() {
        let interval = Duration::from_secs(600);
        let now = Duration::from_secs(1_764_230_400);
        let mut buckets = [0usize; 10];
        for seed in 0..1000u64 {
            let seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let d = slot_delay(seed, interval, now);
            assert!(d >= interval / 10 && d <= interval + interval / 10, "{d:?}");
            // The slot after that is one interval later.
            assert_eq!(slot_delay(seed, interval, now + d), interval);
            let at = (now + d).as_secs() % 600;
            buckets[usize::try_from(at / 60).expect("small")] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (60..=140).contains(&b)),
            "{buckets:?}"
        );
        assert!(slot_delay(7, Duration::ZERO, now) >= Duration::ZERO);
    }

    #[test]
    fn fractions_are_exact_and_checked() {
        assert_eq!(
            fraction_of(Duration::from_secs(10), 1, 4),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(fraction_of(Duration::MAX, 2, 1), None);
    }
}
