//! Reading a node's allocatable CPU quantity as millicores (what upstream's
//! `resource.Quantity.MilliValue` returns).

/// The value of a Kubernetes quantity in thousandths, rounded up, or `None`
/// when the text is not a quantity (or does not fit in an `i64`).
///
/// Accepts the serialised forms of the API: a signed decimal number with
/// optional fraction, followed by a decimal SI suffix (`n`, `u`, `m`, `k`,
/// `M`, `G`, `T`, `P`, `E`), a binary suffix (`Ki` … `Ei`) or an exponent
/// (`e3`, `E-2`).
pub(crate) fn milli_value(text: &str) -> Option<i64> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    // The value is digits / 10^fraction_len × scale; scale is 10^exp10 × 2^exp2.
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        exponent => (exponent.strip_prefix(['e', 'E'])?.parse().ok()?, 0),
    };
    // Thousandths: multiply by 10^3.
    let exp10 = exp10.checked_add(3)?.checked_sub(i32::try_from(fraction.len()).ok()?)?;
    let mut numerator = digits.checked_mul(1_i128.checked_shl(exp2)?)?;
    let mut denominator: i128 = 1;
    let power = 10_i128.checked_pow(exp10.unsigned_abs())?;
    if exp10 >= 0 {
        numerator = numerator.checked_mul(power)?;
    } else {
        denominator = power;
    }
    let mut value = numerator / denominator;
    if negative {
        value = -value;
    } else if numerator % denominator != 0 {
        value += 1;
    }
    i64::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::milli_value;

    #[test]
    fn cpu_quantities_in_millicores() {
        let cases = [
            ("4", Some(4000)),
            ("100m", Some(100)),
            ("1500m", Some(1500)),
            ("0.5", Some(500)),
            (".25", Some(250)),
            ("2.", Some(2000)),
            ("1k", Some(1_000_000)),
            ("1Ki", Some(1_024_000)),
            ("1e3", Some(1_000_000)),
            ("5E-1", Some(500)),
            ("+2", Some(2000)),
            ("0", Some(0)),
            ("0m", Some(0)),
            ("-1", Some(-1000)),
        ];
        for (text, want) in cases {
            assert_eq!(milli_value(text), want, "{text}");
        }
    }

    #[test]
    fn fractions_of_a_millicore_round_up() {
        assert_eq!(milli_value("1u"), Some(1));
        assert_eq!(milli_value("1n"), Some(1));
        assert_eq!(milli_value("0.0001"), Some(1));
        assert_eq!(milli_value("1500u"), Some(2));
    }

    #[test]
    fn malformed_quantities_are_rejected() {
        for text in ["", "m", "1x", "1.2.3", "abc", "1e", "1 m", "9e40"] {
            assert_eq!(milli_value(text), None, "{text}");
        }
    }
}
