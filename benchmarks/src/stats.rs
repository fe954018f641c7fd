//! Medians, ratios and number formatting for the tables.

/// The median of `xs` (the mean of the middle two for an even count);
/// `None` when empty. NaNs sort last.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// `a / b` as `1.23×`, or `n/a` when `b` is zero or either is missing.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => format!("{:.2}×", a / b),
        _ => "n/a".to_string(),
    }
}

/// A number with a sensible count of decimals for a table cell.
pub fn num(x: Option<f64>) -> String {
    match x {
        None => "n/a".to_string(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.3}"),
    }
}

/// Bytes as MiB, one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 20) as f64)
}

/// Each round's values, for the table's "rounds" cells: `1.2 / 1.3 / 1.1`.
pub fn rounds(xs: &[f64]) -> String {
    xs.iter()
        .map(|x| num(Some(*x)))
        .collect::<Vec<_>>()
        .join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn ratios_and_numbers() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50×");
        assert_eq!(ratio(Some(3.0), Some(0.0)), "n/a");
        assert_eq!(ratio(None, Some(1.0)), "n/a");
        assert_eq!(num(Some(1234.56)), "1235");
        assert_eq!(num(Some(12.345)), "12.3");
        assert_eq!(num(Some(1.2345)), "1.23");
        assert_eq!(num(Some(0.04123)), "0.041");
        assert_eq!(mib(3 << 20), "3.0");
        assert_eq!(rounds(&[1.0, 22.0]), "1.00 / 22.0");
    }
}
