//! Start times: parsing what clients send and formatting what Zoho answers.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds in a day.
pub(super) const MS_PER_DAY: i64 = 86_400_000;
/// The years a start time may fall in.
pub(super) const YEARS: std::ops::RangeInclusive<i64> = 1970..=9999;
/// English month abbreviations, as Zoho writes them.
pub(super) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses a start time in Zoho's format or ISO 8601 into milliseconds since the epoch.
pub(super) fn parse_start_time(s: &str) -> Option<i64> {
    parse_zoho_time(s).or_else(|| parse_iso_time(s))
}

/// Parses Zoho's `"Jun 19, 2030 07:00 PM"` as UTC. The day and hour may have one or two
/// digits; a trailing zone abbreviation (`IST`, `UTC`) is ignored.
pub(super) fn parse_zoho_time(s: &str) -> Option<i64> {
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
    if let Some(zone) = words.next()
        && !(zone.len() <= 6 && zone.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return None;
    }
    if words.next().is_some() || !(1..=12).contains(&hour) {
        return None;
    }
    let hour = hour % 12 + if pm { 12 } else { 0 };
    let month = u32::try_from(month + 1).ok()?;
    epoch_ms(i64::from(year), month, day, hour, minute, 0, 0)
}

/// Parses ISO 8601 / RFC 3339 `YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM|±HHMM]`; without an
/// offset the time is UTC.
pub(super) fn parse_iso_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if !s.is_ascii()
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(13) != Some(&b':')
    {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let year = digits(s.get(0..4)?, 4, 4)?;
    let month = digits(s.get(5..7)?, 2, 2)?;
    let day = digits(s.get(8..10)?, 2, 2)?;
    let hour = digits(s.get(11..13)?, 2, 2)?;
    let minute = digits(s.get(14..16)?, 2, 2)?;
    let mut rest = s.get(16..)?;
    let mut second = 0;
    let mut millis = 0;
    if let Some(after) = rest.strip_prefix(':') {
        second = digits(after.get(0..2)?, 2, 2)?;
        rest = after.get(2..)?;
        if let Some(after) = rest.strip_prefix('.') {
            let len = after.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return None;
            }
            let frac = after.get(..len.min(3))?;
            millis = digits(frac, 1, 3)? * 10u32.pow(3 - u32::try_from(frac.len()).ok()?);
            rest = after.get(len..)?;
        }
    }
    let offset_minutes: i64 = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let zone = rest.get(1..)?;
            let (h, m) = zone
                .split_once(':')
                .unwrap_or((zone.get(..2)?, zone.get(2..)?));
            let (h, m) = (digits(h, 2, 2)?, digits(m, 2, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * i64::from(h * 60 + m)
        }
    };
    let local = epoch_ms(i64::from(year), month, day, hour, minute, second, millis)?;
    let utc = local.checked_sub(offset_minutes * 60_000)?;
    let end_of_years = days_from_civil(YEARS.end() + 1, 1, 1) * MS_PER_DAY;
    (0..end_of_years).contains(&utc).then_some(utc)
}

/// Milliseconds since the epoch of a UTC civil time, checking every field's range.
pub(super) fn epoch_ms(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
) -> Option<i64> {
    if !YEARS.contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
        || millis > 999
    {
        return None;
    }
    let seconds = i64::from(hour * 3600 + minute * 60 + second);
    Some(days_from_civil(year, month, day) * MS_PER_DAY + seconds * 1000 + i64::from(millis))
}

/// An unsigned decimal of `min..=max` ASCII digits (no sign, no spaces).
pub(super) fn digits(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days in a month of the proleptic Gregorian calendar.
pub(super) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, <https://howardhinnant.github.io/date_algorithms.html>).
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day count since 1970-01-01
/// (Hinnant's `civil_from_days`).
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats milliseconds since the epoch as Zoho does, in UTC: `Jun 19, 2030 07:00 PM`.
pub(super) fn zoho_time(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let name = MONTHS
        .get(usize::try_from(month).unwrap_or(1) - 1)
        .copied()
        .unwrap_or("Jan");
    format!("{name} {day:02}, {year} {}", clock_time(ms))
}

/// The 12-hour clock time of milliseconds since the epoch, in UTC: `07:00 PM`.
pub(super) fn clock_time(ms: i64) -> String {
    let minutes = ms.rem_euclid(MS_PER_DAY) / 60_000;
    let (hour, minute) = (minutes / 60, minutes % 60);
    let half = if hour < 12 { "AM" } else { "PM" };
    let hour = if hour % 12 == 0 { 12 } else { hour % 12 };
    format!("{hour:02}:{minute:02} {half}")
}

/// The current time in milliseconds since the epoch.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::meeting::testing::*;

    #[test]
    fn parses_zoho_start_times_as_utc() {
        let june = 1_908_126_000_000;
        for s in [
            "Jun 19, 2030 07:00 PM",
            "jun 19, 2030 7:00 pm",
            "  Jun 19, 2030   07:00 PM IST ",
            "Jun 19, 2030 07:00 PM UTC",
        ] {
            assert_eq!(parse_start_time(s), Some(june), "{s}");
        }
        assert_eq!(
            parse_start_time("Jan 4, 2024 12:00 AM"),
            Some(1_704_326_400_000)
        );
        assert_eq!(
            parse_start_time("Jan 04, 2024 12:30 PM"),
            Some(1_704_371_400_000)
        );
        assert_eq!(
            parse_start_time("Feb 29, 2028 11:59 PM"),
            Some(1_835_481_540_000)
        );
        assert_eq!(parse_start_time("Jan 01, 1970 12:00 AM"), Some(0));
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
            "Jun 19, 30 07:00 PM",
            "Jun +9, 2030 07:00 PM",
            "Jun 19, 2030 07:00 PM GMT+5",
            "Jun 19, 2030 07:00 PM IST extra",
            "Jun 19, 2030 07:00 XM",
        ] {
            assert_eq!(parse_start_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_iso_start_times_with_offsets() {
        let june = 1_908_126_000_000;
        for s in [
            "2030-06-19T19:00:00Z",
            "2030-06-19T19:00Z",
            "2030-06-19T19:00",
            "2030-06-19 19:00:00",
            "2030-06-19t19:00:00z",
            "2030-06-20T00:30:00+05:30",
            "2030-06-20T00:30:00+0530",
            "2030-06-19T14:00:00.000-05:00",
        ] {
            assert_eq!(parse_start_time(s), Some(june), "{s}");
        }
        assert_eq!(parse_start_time("2030-06-19T19:00:00.5Z"), Some(june + 500));
        assert_eq!(
            parse_start_time("2030-06-19T19:00:00.123456Z"),
            Some(june + 123)
        );
        assert_eq!(
            parse_start_time("2000-02-29T00:00:00Z"),
            Some(951_782_400_000)
        );
        for bad in [
            "2030-06-19",
            "2030-06-19T",
            "2030-6-19T19:00:00Z",
            "2030-06-19T19:00:60Z",
            "2030-06-19T24:00:00Z",
            "2030-13-01T00:00:00Z",
            "2030-06-31T00:00:00Z",
            "2030-06-19T19:00:00.Z",
            "2030-06-19T19:00:00+5:30",
            "2030-06-19T19:00:00+24:00",
            "2030-06-19T19:00:00 UTC",
            "1970-01-01T00:30:00+01:00",
            "+2030-06-19T19:00:00Z",
            "2030-06-19T19:00:00Zjunk",
            "2030-06-19T19:é0:00Z",
        ] {
            assert_eq!(parse_start_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
        let mut expected = (1970, 1, 1);
        for days in 0..days_from_civil(2101, 1, 1) {
            let date = civil_from_days(days);
            assert_eq!(date, expected, "{days}");
            assert_eq!(days_from_civil(date.0, date.1, date.2), days);
            expected = if expected.2 < days_in_month(expected.0, expected.1) {
                (expected.0, expected.1, expected.2 + 1)
            } else if expected.1 < 12 {
                (expected.0, expected.1 + 1, 1)
            } else {
                (expected.0 + 1, 1, 1)
            };
        }
    }

    #[test]
    fn formats_zoho_times_and_iso() {
        assert_eq!(zoho_time(1_908_126_000_000), "Jun 19, 2030 07:00 PM");
        assert_eq!(zoho_time(0), "Jan 01, 1970 12:00 AM");
        assert_eq!(zoho_time(1_704_371_400_000), "Jan 04, 2024 12:30 PM");
        assert_eq!(zoho_time(MS_PER_DAY - 60_000), "Jan 01, 1970 11:59 PM");
        assert_eq!(iso(1_908_126_000_000), "2030-06-19T19:00:00Z");
        // Every rendering parses back to the same minute.
        for ms in [0, 951_782_400_000, 1_908_126_000_000, 253_402_300_740_000] {
            assert_eq!(parse_start_time(&zoho_time(ms)), Some(ms));
            assert_eq!(
                parse_start_time(&format!("{} UTC", zoho_time(ms))),
                Some(ms)
            );
            assert_eq!(parse_start_time(&iso(ms)), Some(ms));
        }
    }
}
