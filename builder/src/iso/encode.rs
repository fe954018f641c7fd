//! Pure byte encoders shared by the ISO 9660, El Torito, FAT and GPT
//! writers: both-endian numbers, ISO dates, padded strings and CRC-32.
//! Civil dates come from `airlift_oci::civil_time`, the one calendar
//! of the workspace.

use airlift_oci::civil_time::civil;

/// 2048-byte logical sector of ISO 9660.
pub const SECTOR: u64 = 2048;

/// A `u16` in both byte orders (ISO 9660 7.2.3): little-endian first.
pub fn both16(v: u16) -> [u8; 4] {
    let l = v.to_le_bytes();
    let b = v.to_be_bytes();
    [l[0], l[1], b[0], b[1]]
}

/// A `u32` in both byte orders (ISO 9660 7.3.3): little-endian first.
pub fn both32(v: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&v.to_le_bytes());
    out[4..].copy_from_slice(&v.to_be_bytes());
    out
}

/// The 7-byte directory-record date (ISO 9660 9.1.5), UTC. Years outside
/// 1900..=2155 are clamped.
pub fn dir_date(epoch: i64) -> [u8; 7] {
    let c = civil(epoch);
    let year = c.year.clamp(1900, 2155);
    if year != c.year {
        let (m, d, h, mi, s) = if year == 1900 {
            (1, 1, 0, 0, 0)
        } else {
            (12, 31, 23, 59, 59)
        };
        return [(year - 1900) as u8, m, d, h, mi, s, 0];
    }
    [
        (year - 1900) as u8,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        0,
    ]
}

/// The 17-byte volume-descriptor date (ISO 9660 8.4.26.1), UTC.
pub fn vol_date(epoch: i64) -> [u8; 17] {
    let c = civil(epoch);
    let year = c.year.clamp(1, 9999);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}00",
        year, c.month, c.day, c.hour, c.minute, c.second
    );
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(text.as_bytes());
    out
}

/// The "not specified" volume-descriptor date: sixteen '0' and offset 0.
pub fn vol_date_unset() -> [u8; 17] {
    let mut out = [b'0'; 17];
    out[16] = 0;
    out
}

/// Copies `s` into `dst`, padding with `pad` (truncating if too long).
pub fn put_padded(dst: &mut [u8], s: &[u8], pad: u8) {
    for (i, b) in dst.iter_mut().enumerate() {
        *b = s.get(i).copied().unwrap_or(pad);
    }
}

/// UCS-2 big-endian encoding (Joliet). Characters outside the BMP are
/// encoded as UTF-16 surrogate pairs, which Joliet readers pass through.
pub fn ucs2be(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// Number of `unit`-sized blocks needed for `bytes`.
pub fn blocks(bytes: u64, unit: u64) -> u64 {
    bytes.div_ceil(unit)
}

/// CRC-32 (IEEE 802.3, reflected, as used by GPT): the tests' own check
/// of the CRCs the `gpt` crate writes.
#[cfg(test)]
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_endian_numbers() {
        assert_eq!(both16(0x1234), [0x34, 0x12, 0x12, 0x34]);
        assert_eq!(
            both32(0x0102_0304),
            [0x04, 0x03, 0x02, 0x01, 0x01, 0x02, 0x03, 0x04]
        );
    }

    #[test]
    fn iso_dates() {
        assert_eq!(dir_date(951_827_696), [100, 2, 29, 12, 34, 56, 0]);
        assert_eq!(&vol_date(951_827_696)[..16], b"2000022912345600");
        assert_eq!(vol_date(951_827_696)[16], 0);
        assert_eq!(&vol_date_unset()[..16], b"0000000000000000");
        assert_eq!(dir_date(-5_000_000_000)[0], 0);
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn ucs2_is_big_endian() {
        assert_eq!(ucs2be("Aé"), vec![0, 0x41, 0, 0xE9]);
    }
}
