//! Capture timestamps: microseconds since the Unix epoch, formatted as RFC 3339 UTC.

use std::fmt;

/// A capture time in microseconds since 1970-01-01T00:00:00Z.
///
/// Packet timestamps come from the kernel or the capture file; they are not
/// guaranteed to be monotonic, so code comparing them uses saturating arithmetic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Builds a timestamp from seconds and microseconds (as in a pcap record header).
    pub fn from_secs_micros(secs: u64, micros: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000).saturating_add(micros))
    }

    /// Microseconds elapsed from `earlier` to `self`, or 0 if `earlier` is later.
    pub fn micros_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Milliseconds (fractional) elapsed from `earlier` to `self`, never negative.
    pub fn millis_since(self, earlier: Timestamp) -> f64 {
        self.micros_since(earlier) as f64 / 1000.0
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_micros() as u64)
    }
}

/// The length of [`Timestamp::rfc3339`]'s text: `2024-01-02T03:04:05.123456Z`.
pub const RFC3339_LEN: usize = 27;

/// `DIGIT_PAIRS[n]`: `n` (0–99) as two decimal digits. Formatting two digits per lookup
/// halves the divisions of a digit-by-digit loop (shared with the JSON writer).
pub(crate) static DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

impl Timestamp {
    /// `2024-01-02T03:04:05.123456Z` (what `Display` writes, without `fmt`).
    ///
    /// The date and time of day (`2024-01-02T03:04:05.`) is cached per thread for the last
    /// second formatted: messages come in bursts within one second, and the calendar
    /// arithmetic is the costly part. The microseconds take three two-digit lookups.
    #[inline]
    pub fn rfc3339(self) -> [u8; RFC3339_LEN] {
        thread_local! {
            /// The last second formatted on this thread and its `YYYY-MM-DDTHH:MM:SS.`.
            static LAST_SECOND: std::cell::Cell<(u64, [u8; 20])> =
                const { std::cell::Cell::new((u64::MAX, [0; 20])) };
        }
        let secs = self.0 / 1_000_000;
        let micros = (self.0 % 1_000_000) as usize;
        let (cached, mut prefix) = LAST_SECOND.get();
        if cached != secs {
            prefix = date_time_prefix(secs);
            LAST_SECOND.set((secs, prefix));
        }
        let mut buf = [0u8; RFC3339_LEN];
        buf[..20].copy_from_slice(&prefix);
        buf[20..22].copy_from_slice(&DIGIT_PAIRS[micros / 10_000]);
        buf[22..24].copy_from_slice(&DIGIT_PAIRS[micros / 100 % 100]);
        buf[24..26].copy_from_slice(&DIGIT_PAIRS[micros % 100]);
        buf[26] = b'Z';
        buf
    }

    /// Appends [`Timestamp::rfc3339`] to `out`.
    #[inline]
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rfc3339());
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` for `secs` since the epoch (years past 9999 are written as 9999).
#[cold]
fn date_time_prefix(secs: u64) -> [u8; 20] {
    let mut buf = *b"0000-00-00T00:00:00.";
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    put_digits(&mut buf, 0, 4, y.clamp(0, 9999) as u64);
    put_digits(&mut buf, 5, 2, u64::from(m));
    put_digits(&mut buf, 8, 2, u64::from(d));
    put_digits(&mut buf, 11, 2, rem / 3600);
    put_digits(&mut buf, 14, 2, (rem / 60) % 60);
    put_digits(&mut buf, 17, 2, rem % 60);
    buf
}

/// Writes `v` as `width` decimal digits (zero-padded) at `buf[at..]`.
fn put_digits(buf: &mut [u8], at: usize, width: usize, mut v: u64) {
    for i in (at..at + width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

impl fmt::Display for Timestamp {
    /// `2024-01-02T03:04:05.123456Z`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000;
        let micros = self.0 % 1_000_000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_micros() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T23:59:59.000001Z, a leap day.
        assert_eq!(
            Timestamp::from_secs_micros(1_709_251_199, 1).to_string(),
            "2024-02-29T23:59:59.000001Z"
        );
        assert_eq!(
            Timestamp::from_secs_micros(951_782_400, 999_999).to_string(),
            "2000-02-29T00:00:00.999999Z"
        );
    }

    #[test]
    fn fast_writer_matches_display() {
        for t in [
            0,
            1_709_251_199_000_001,
            951_782_400_999_999,
            4_102_444_800_123_456,
        ] {
            let mut out = Vec::new();
            Timestamp(t).write_rfc3339(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), Timestamp(t).to_string());
        }
        // The same second twice (the cached prefix), then across a second, a day and a
        // year boundary, and back in time.
        let base = 1_735_689_599_000_000; // 2024-12-31T23:59:59Z
        for t in [
            base,
            base + 7,
            base + 999_999,
            base + 1_000_000,
            base + 3,
            base,
        ] {
            let mut out = Vec::new();
            Timestamp(t).write_rfc3339(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), Timestamp(t).to_string());
        }
        // Every microsecond digit position, and seconds that alternate (the cache turns over).
        for i in 0..20_000u64 {
            let t = Timestamp(base + (i % 3) * 1_000_000 + i * 7_919 % 1_000_000);
            assert_eq!(&t.rfc3339()[..], t.to_string().as_bytes(), "{}", t.0);
        }
    }

    #[test]
    fn differences_never_go_negative() {
        assert_eq!(Timestamp(5).micros_since(Timestamp(9)), 0);
        assert_eq!(Timestamp(2500).millis_since(Timestamp(1000)), 1.5);
    }
}
