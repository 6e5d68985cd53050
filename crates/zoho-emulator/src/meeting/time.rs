//! Time: a meeting's time zone, start times as clients send them, and times as Zoho writes
//! them.
//!
//! Time zones come from jiff's bundled copy of the IANA database (`tzdb-bundle-always`), so
//! the sandbox needs no `/usr/share/zoneinfo`; Zoho's `Asia/Calcutta` is a link there to
//! `Asia/Kolkata`. Instants are kept as milliseconds since the Unix epoch, as Zoho's answers
//! give them.

use std::ops::RangeInclusive;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// The years a start time may fall in (the end of a meeting must stay inside jiff's range).
pub(super) const YEARS: RangeInclusive<i16> = 1970..=9998;
/// Longest accepted `timezone`, in bytes.
pub(super) const MAX_TIMEZONE_LEN: usize = 64;
/// English month abbreviations, as Zoho writes them.
pub(super) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The time zone of an IANA name (`Asia/Kolkata`, `Asia/Calcutta`, `UTC`), compared without
/// regard to case; `None` for an unknown name.
pub(super) fn zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() || name.len() > MAX_TIMEZONE_LEN {
        return None;
    }
    TimeZone::get(name).ok()
}

/// UTC, the time zone of a meeting created without one.
pub(super) fn utc() -> TimeZone {
    TimeZone::UTC
}

/// Parses a start time into milliseconds since the epoch: Zoho's `"Jun 19, 2030 07:00 PM"`
/// read in `tz`, or ISO 8601 (`2030-06-19T19:00:00+05:30`; without an offset, read in `tz`).
/// A local time that a daylight-saving change skips is moved forward by the gap; one that
/// happens twice is the first of the two.
pub(super) fn parse_start_time(s: &str, tz: &TimeZone) -> Option<i64> {
    let instant = parse_zoho_time(s, tz).or_else(|| parse_iso_time(s, tz))?;
    let year = instant.to_zoned(TimeZone::UTC).year();
    YEARS.contains(&year).then(|| instant.as_millisecond())
}

/// Parses Zoho's `"Jun 19, 2030 07:00 PM"` in `tz`. The day and hour may have one or two
/// digits; a trailing zone abbreviation (`IST`, as Zoho's own answers end) is ignored: the
/// meeting's `timezone` decides.
fn parse_zoho_time(s: &str, tz: &TimeZone) -> Option<Timestamp> {
    let mut words = s.split_whitespace();
    let month_name = words.next()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))?;
    let day = digits(words.next()?.strip_suffix(',')?, 1, 2)?;
    let year = digits(words.next()?, 4, 4)?;
    let (hour, minute) = words.next()?.split_once(':')?;
    let (hour, minute) = (digits(hour, 1, 2)?, digits(minute, 2, 2)?);
    let pm = match words.next()? {
        half if half.eq_ignore_ascii_case("AM") => false,
        half if half.eq_ignore_ascii_case("PM") => true,
        _ => return None,
    };
    if let Some(abbreviation) = words.next()
        && !(abbreviation.len() <= 6 && abbreviation.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return None;
    }
    if words.next().is_some() || !(1..=12).contains(&hour) {
        return None;
    }
    let hour = hour % 12 + if pm { 12 } else { 0 };
    let civil = DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month + 1).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        0,
        0,
    )
    .ok()?;
    local(civil, tz)
}

/// Parses ISO 8601 / RFC 3339 with a time of day: with an offset (`Z`, `+05:30`) it is an
/// instant; without one it is a local time in `tz`.
fn parse_iso_time(s: &str, tz: &TimeZone) -> Option<Timestamp> {
    let s = s.trim();
    // A date alone is not a start time.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    if let Ok(instant) = s.parse::<Timestamp>() {
        return Some(instant);
    }
    // Without an offset only: jiff would read an offset it cannot use as a local time.
    let time = s.get(11..)?;
    if time.contains(['+', '-', 'Z', 'z', '[']) {
        return None;
    }
    local(s.parse::<DateTime>().ok()?, tz)
}

/// The instant of a local time in `tz`, resolving gaps and folds as described at
/// [`parse_start_time`].
fn local(civil: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    tz.to_ambiguous_zoned(civil)
        .compatible()
        .ok()
        .map(|zoned| zoned.timestamp())
}

/// An unsigned decimal of `min..=max` ASCII digits (no sign, no spaces).
fn digits(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Milliseconds since the epoch, seen in `tz`; the epoch for a value outside jiff's range
/// (the emulator never stores one).
fn zoned(ms: i64, tz: &TimeZone) -> Zoned {
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone())
}

/// Formats an instant as Zoho does, in `tz` with the zone's abbreviation:
/// `Jun 19, 2030 07:00 PM IST`.
pub(super) fn zoho_time(ms: i64, tz: &TimeZone) -> String {
    zoned(ms, tz).strftime("%b %d, %Y %I:%M %p %Z").to_string()
}

/// Formats an instant as the recording pages do, in `tz` with the zone's abbreviation:
/// `2023-08-18T10:46:28 IST`.
pub(super) fn recording_time(ms: i64, tz: &TimeZone) -> String {
    zoned(ms, tz).strftime("%Y-%m-%dT%H:%M:%S %Z").to_string()
}

/// Formats an instant as the SDK pages' `startDate`, in `tz` without the zone and with an
/// unpadded day: `Jan 4, 2024 07:00 PM`.
pub(super) fn start_date(ms: i64, tz: &TimeZone) -> String {
    zoned(ms, tz).strftime("%b %-d, %Y %I:%M %p").to_string()
}

/// The 12-hour clock time of an instant in `tz`: `07:00 PM`.
pub(super) fn clock_time(ms: i64, tz: &TimeZone) -> String {
    zoned(ms, tz).strftime("%I:%M %p").to_string()
}

/// The offset of `tz` from UTC at an instant, in milliseconds (`19800000` for IST).
pub(super) fn offset_ms(ms: i64, tz: &TimeZone) -> i64 {
    i64::from(zoned(ms, tz).offset().seconds()) * 1000
}

/// The calendar date of an instant in `tz`.
pub(super) fn local_date(ms: i64, tz: &TimeZone) -> Date {
    zoned(ms, tz).date()
}

/// The current time in milliseconds since the epoch.
pub(super) fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        zone(name).unwrap()
    }

    /// 2030-06-19T19:00:00Z.
    const JUNE_UTC: i64 = 1_908_126_000_000;
    /// 2030-06-19T19:00:00+05:30.
    const JUNE_IST: i64 = JUNE_UTC - 19_800_000;

    #[test]
    fn resolves_zone_names_with_the_bundled_database() {
        for name in [
            "Asia/Kolkata",
            "Asia/Calcutta",
            "asia/calcutta",
            "UTC",
            "America/New_York",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
            "Europe/London",
        ] {
            assert!(zone(name).is_some(), "{name}");
        }
        for bad in [
            "",
            "Asia/Atlantis",
            "Asia Kolkata",
            "/Asia",
            "IST",
            "+05:30",
            "Asia/Kolkata\n",
            &"A".repeat(65),
        ] {
            assert!(zone(bad).is_none(), "{bad:?}");
        }
        // The link and its target are the same zone.
        assert_eq!(
            offset_ms(JUNE_UTC, &tz("Asia/Calcutta")),
            offset_ms(JUNE_UTC, &tz("Asia/Kolkata"))
        );
    }

    #[test]
    fn reads_zoho_start_times_in_the_meeting_time_zone() {
        let ist = tz("Asia/Calcutta");
        for s in [
            "Jun 19, 2030 07:00 PM",
            "jun 19, 2030 7:00 pm",
            "  Jun 19, 2030   07:00 PM IST ",
            // The abbreviation is ignored: the meeting's time zone decides.
            "Jun 19, 2030 07:00 PM UTC",
        ] {
            assert_eq!(parse_start_time(s, &ist), Some(JUNE_IST), "{s}");
        }
        assert_eq!(
            parse_start_time("Jun 19, 2030 07:00 PM", &utc()),
            Some(JUNE_UTC)
        );
        assert_eq!(
            parse_start_time("Jan 4, 2024 12:00 AM", &utc()),
            Some(1_704_326_400_000)
        );
        assert_eq!(
            parse_start_time("Jan 04, 2024 12:30 PM", &utc()),
            Some(1_704_371_400_000)
        );
        assert_eq!(
            parse_start_time("Feb 29, 2028 11:59 PM", &utc()),
            Some(1_835_481_540_000)
        );
        assert_eq!(parse_start_time("Jan 01, 1970 12:00 AM", &utc()), Some(0));
        for bad in [
            "",
            "Jun 19 2030 07:00 PM",
            "June 19, 2030 07:00 PM",
            "Jun 19, 2030 07:00",
            "Jun 19, 2030 00:00 AM",
            "Jun 19, 2030 13:00 PM",
            "Jun 19, 2030 07:60 PM",
            "Jun 19, 2030 07:0 PM",
            "Jun 0, 2030 07:00 PM",
            "Feb 29, 2030 07:00 PM",
            "Feb 29, 2100 07:00 PM",
            "Jun 19, 1969 07:00 PM",
            "Jun 19, 9999 07:00 PM",
            "Jun 19, 30 07:00 PM",
            "Jun +9, 2030 07:00 PM",
            "Jun 19, 2030 07:00 PM GMT+5",
            "Jun 19, 2030 07:00 PM IST extra",
            "Jun 19, 2030 07:00 XM",
        ] {
            assert_eq!(parse_start_time(bad, &utc()), None, "{bad}");
        }
        // Just after the epoch in UTC is before it in New York.
        assert_eq!(
            parse_start_time("Jan 01, 1970 12:30 AM", &tz("America/New_York")),
            Some(5 * 3_600_000 + 1_800_000)
        );
        assert_eq!(
            parse_start_time("Jan 01, 1970 12:30 AM", &tz("Asia/Kolkata")),
            None
        );
    }

    #[test]
    fn reads_new_york_summer_and_winter_with_their_own_offsets() {
        let ny = tz("America/New_York");
        // EDT, UTC-4.
        assert_eq!(
            parse_start_time("Jun 19, 2030 03:00 PM", &ny),
            Some(JUNE_UTC)
        );
        // EST, UTC-5: 2030-01-15T20:00:00Z.
        let january = 1_894_737_600_000;
        assert_eq!(
            parse_start_time("Jan 15, 2030 03:00 PM", &ny),
            Some(january)
        );
        assert_eq!(zoho_time(JUNE_UTC, &ny), "Jun 19, 2030 03:00 PM EDT");
        assert_eq!(zoho_time(january, &ny), "Jan 15, 2030 03:00 PM EST");
        assert_eq!(offset_ms(JUNE_UTC, &ny), -14_400_000);
        assert_eq!(offset_ms(january, &ny), -18_000_000);
        // 02:30 on 2030-03-10 does not exist in New York: it is read as 03:30 EDT.
        assert_eq!(
            parse_start_time("Mar 10, 2030 02:30 AM", &ny).map(|ms| zoho_time(ms, &ny)),
            Some("Mar 10, 2030 03:30 AM EDT".to_owned())
        );
        // 01:30 on 2030-11-03 happens twice: the first (EDT) is meant.
        assert_eq!(
            parse_start_time("Nov 03, 2030 01:30 AM", &ny).map(|ms| zoho_time(ms, &ny)),
            Some("Nov 03, 2030 01:30 AM EDT".to_owned())
        );
    }

    #[test]
    fn reads_iso_start_times_with_an_offset_or_in_the_meeting_time_zone() {
        let ist = tz("Asia/Kolkata");
        for s in [
            "2030-06-19T19:00:00Z",
            "2030-06-19T19:00Z",
            "2030-06-19t19:00:00z",
            "2030-06-20T00:30:00+05:30",
            "2030-06-19T14:00:00.000-05:00",
        ] {
            assert_eq!(parse_start_time(s, &ist), Some(JUNE_UTC), "{s}");
            assert_eq!(parse_start_time(s, &utc()), Some(JUNE_UTC), "{s}");
        }
        // Without an offset: local time in the meeting's zone.
        for s in [
            "2030-06-19T19:00:00",
            "2030-06-19T19:00",
            "2030-06-19 19:00:00",
        ] {
            assert_eq!(parse_start_time(s, &utc()), Some(JUNE_UTC), "{s}");
            assert_eq!(parse_start_time(s, &ist), Some(JUNE_IST), "{s}");
        }
        assert_eq!(
            parse_start_time("2030-06-19T19:00:00.5Z", &utc()),
            Some(JUNE_UTC + 500)
        );
        assert_eq!(
            parse_start_time("2000-02-29T00:00:00Z", &utc()),
            Some(951_782_400_000)
        );
        // A leap second is read as the last second of its minute, as jiff does.
        assert_eq!(
            parse_start_time("2030-06-19T19:00:60Z", &utc()),
            Some(JUNE_UTC + 59_000)
        );
        for bad in [
            "2030-06-19",
            "2030-06-19T",
            "2030-6-19T19:00:00Z",
            "2030-06-19T24:00:00Z",
            "2030-13-01T00:00:00Z",
            "2030-06-31T00:00:00Z",
            "2030-06-19T19:00:00+5:30",
            "2030-06-19T19:00:00 UTC",
            "1970-01-01T00:30:00+01:00",
            "9999-06-19T19:00:00Z",
            "+2030-06-19T19:00:00Z",
            "2030-06-19T19:00:00Zjunk",
            "2030-06-19T19:é0:00Z",
            "\u{e9}\u{e9}\u{e9}\u{e9}-01-01T00:00",
        ] {
            assert_eq!(parse_start_time(bad, &utc()), None, "{bad}");
        }
    }

    #[test]
    fn formats_times_with_the_zone_abbreviation_and_offset() {
        let ist = tz("Asia/Calcutta");
        assert_eq!(zoho_time(JUNE_IST, &ist), "Jun 19, 2030 07:00 PM IST");
        assert_eq!(offset_ms(JUNE_IST, &ist), 19_800_000);
        assert_eq!(clock_time(JUNE_IST, &ist), "07:00 PM");
        assert_eq!(zoho_time(JUNE_UTC, &utc()), "Jun 19, 2030 07:00 PM UTC");
        assert_eq!(offset_ms(JUNE_UTC, &utc()), 0);
        assert_eq!(zoho_time(0, &utc()), "Jan 01, 1970 12:00 AM UTC");
        assert_eq!(
            zoho_time(1_704_371_400_000, &utc()),
            "Jan 04, 2024 12:30 PM UTC"
        );
        assert_eq!(clock_time(86_400_000 - 60_000, &utc()), "11:59 PM");
        // The recording and SDK pages' formats: 1692335788703 is the recording page's start.
        assert_eq!(
            recording_time(1_692_335_788_703, &ist),
            "2023-08-18T10:46:28 IST"
        );
        assert_eq!(start_date(1_704_375_000_000, &ist), "Jan 4, 2024 07:00 PM");
        // The same instant is a different date in Kolkata and New York.
        let late = JUNE_UTC + 4 * 3_600_000 + 1_800_000; // 23:30 UTC
        assert_eq!(local_date(late, &ist).to_string(), "2030-06-20");
        assert_eq!(
            local_date(late, &tz("America/New_York")).to_string(),
            "2030-06-19"
        );
        // Every rendering parses back to the same minute, in its own zone.
        for (ms, name) in [
            (0, "UTC"),
            (951_782_400_000, "Asia/Kolkata"),
            (JUNE_UTC, "America/New_York"),
            (1_894_737_600_000, "America/New_York"),
            (253_370_764_740_000, "UTC"),
        ] {
            let zone = tz(name);
            assert_eq!(
                parse_start_time(&zoho_time(ms, &zone), &zone),
                Some(ms),
                "{ms} {name}"
            );
        }
    }
}
