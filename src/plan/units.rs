//! Memory sizes on the command line: a number with a binary unit (64G, 512M, 1.5T, 800KiB).
//!
//! A bare number is refused rather than read as bytes or MiB: `--host-mem 64` is as likely
//! to mean 64 GiB as 64 bytes, and a capacity plan built on the wrong one is silently wrong.

/// Why a size did not parse; the message names the flag and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{flag} {value:?}: give a positive number with a binary unit: K, M, G or T (KiB, MiB, GiB, TiB), e.g. 64G or 512M"
)]
pub struct SizeError {
    pub flag: String,
    pub value: String,
}

/// Parses `value` (of `flag`, for the error) into KiB.
pub fn parse_kib(flag: &str, value: &str) -> Result<f64, SizeError> {
    let err = || SizeError {
        flag: flag.to_string(),
        value: value.to_string(),
    };
    let v = value.trim();
    let split = v.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(err)?;
    let (num, unit) = v.split_at(split);
    let scale = match unit.to_ascii_uppercase().as_str() {
        "K" | "KI" | "KIB" => 1.0,
        "M" | "MI" | "MIB" => 1024.0,
        "G" | "GI" | "GIB" => 1024.0 * 1024.0,
        "T" | "TI" | "TIB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let n: f64 = num.trim().parse().map_err(|_| err())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(err());
    }
    Ok(n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units_are_kib_multiples() {
        assert_eq!(parse_kib("--host-mem", "64G"), Ok(64.0 * 1024.0 * 1024.0));
        assert_eq!(parse_kib("--host-mem", "512M"), Ok(512.0 * 1024.0));
        assert_eq!(parse_kib("--host-mem", "1T"), Ok(1024.0f64.powi(3)));
        assert_eq!(parse_kib("--host-mem", "1.5GiB"), Ok(1.5 * 1024.0 * 1024.0));
        assert_eq!(parse_kib("--host-mem", "800k"), Ok(800.0));
        assert_eq!(parse_kib("--host-mem", " 2 Gi "), Ok(2.0 * 1024.0 * 1024.0));
    }

    #[test]
    fn bare_numbers_and_other_units_are_refused_naming_the_flag() {
        for bad in [
            "64", "64GB", "64X", "G", "-1G", "0M", "", "nanG", "infG", "1e400G",
        ] {
            let e = parse_kib("--workload-mem", bad).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with("--workload-mem") && msg.contains("K, M, G or T"),
                "{bad}: {msg}"
            );
        }
    }
}
