//! How the report prints numbers: three significant figures, never in scientific notation.
//!
//! `table::num` fixes the decimals by magnitude for start-up times, which are never far below
//! 1 ms; the report also prints disk layers in MiB and ratios well under 1, where a fixed two
//! decimals would print 0.0039 as "0.00". This keeps three significant figures at any size.

/// `x` with three significant figures (all integer digits kept: 236536, 4448, 12.3, 0.00391).
/// Non-finite values print as words, never as `inf` or `NaN`.
pub fn sig(x: f64) -> String {
    if x.is_nan() {
        return "not a number".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "unbounded" } else { "-unbounded" }.into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).max(0) as usize;
    let s = format!("{x:.decimals$}");
    // Rounding can carry into the next decade (99.96 -> "100.0"): one decimal too many.
    let rounded: f64 = s.parse().unwrap_or(x);
    if decimals > 0 && rounded.abs().log10().floor() as i32 > magnitude {
        return format!("{x:.prec$}", prec = decimals - 1);
    }
    s
}

/// A setting as it was set (16 MiB, 4 threads): a whole number without decimals, anything
/// else as [`sig`].
pub fn whole(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e6 {
        format!("{x:.0}")
    } else {
        sig(x)
    }
}

/// An optional figure: "-" when it was not measured.
pub fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), sig)
}

/// A figure in `unit`: counts that came out whole print without decimals (3 kernels, not 3.00).
pub fn figure(x: Option<f64>, unit: &str) -> String {
    match x {
        Some(v) if COUNT_UNITS.contains(&unit) && v.fract() == 0.0 => format!("{v:.0}"),
        _ => opt(x),
    }
}

/// Units of figures that count things.
const COUNT_UNITS: &[&str] = &["count", "kernels", "threads"];

/// KiB to MiB.
pub fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// KiB to GiB.
pub fn gib(kib: f64) -> f64 {
    kib / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_figures_at_every_size() {
        assert_eq!(sig(236536.0), "236536");
        assert_eq!(sig(4448.187), "4448");
        assert_eq!(sig(400.0), "400");
        assert_eq!(sig(12.345), "12.3");
        assert_eq!(sig(1.0), "1.00");
        assert_eq!(sig(0.003906), "0.00391");
        assert_eq!(sig(-5.0), "-5.00");
        assert_eq!(sig(0.0), "0");
        assert_eq!(sig(99.96), "100");
        assert_eq!(sig(9.996), "10.0");
        assert_eq!(sig(f64::INFINITY), "unbounded");
        assert_eq!(sig(f64::NAN), "not a number");
        assert_eq!(opt(None), "-");
        assert_eq!(figure(Some(3.0), "kernels"), "3");
        assert_eq!(figure(Some(2.5), "kernels"), "2.50");
        assert_eq!(figure(Some(3.0), "MiB"), "3.00");
    }
}
