//! Floats spelled as Go's `strconv.FormatFloat(v, 'f' | 'e', -1, 64)` spells them: the
//! shortest digits that read back as the same float. Rust finds the same shortest digits, but
//! when the float lies exactly halfway between two shortest candidates Go takes the one with an
//! even last digit, and Rust may take the other; this module settles those ties Go's way, then
//! lays the digits out itself.

/// The sign, the shortest significant digits, and the decimal exponent of the first digit
/// (`v = ±d.ddd × 10^exp`), for a finite `v`. Zero is `("0", 0)`.
pub(crate) fn shortest(v: f64) -> (bool, String, i32) {
    let negative = v.is_sign_negative();
    let v = v.abs();
    if v == 0.0 {
        return (negative, "0".to_string(), 0);
    }
    let (digits, exp) = split(&format!("{v:e}"));
    let (digits, exp) = settle_tie(v, digits, exp);
    (negative, digits, exp)
}

/// The digits of Rust's shortest spelling, or of the even neighbour when `v` is an exact tie.
fn settle_tie(v: f64, digits: String, exp: i32) -> (String, i32) {
    // A tie needs the exact value to have one digit more than the shortest spelling; a float
    // with more than 10 binary fraction digits, or from 1e19 up, has far more digits than that.
    let n = digits.len();
    if n < 15 || v >= 1e19 || (v * 1024.0).fract() != 0.0 {
        return (digits, exp);
    }
    let (exact, exact_exp) = split(&format!("{v:.40e}"));
    if exact_exp != exp {
        return (digits, exp);
    }
    let tail = exact.get(n..).unwrap_or("");
    let is_tie = tail.starts_with('5') && tail.get(1..).unwrap_or("").bytes().all(|b| b == b'0');
    if !is_tie {
        return (digits, exp);
    }
    let lower = exact.get(..n).unwrap_or("").to_string();
    let last_even = lower.bytes().last().is_some_and(|b| b % 2 == 0); // b'0' is even
    let (candidate, candidate_exp) = if last_even {
        (lower, exp)
    } else {
        increment(&lower, exp)
    };
    // Take it only if it reads back as the same float (it does for a tie inside the interval).
    let reread: Option<f64> = format!("{}e{}", with_point(&candidate), candidate_exp)
        .parse()
        .ok();
    if reread == Some(v) {
        (candidate, candidate_exp)
    } else {
        (digits, exp)
    }
}

/// `d.ddde±x` into ("dddd", x), trailing zeros of the digits removed.
fn split(text: &str) -> (String, i32) {
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (digits, exp.parse().unwrap_or(0))
}

/// The digit string plus one in its last place (with the exponent moving on a carry).
fn increment(digits: &str, exp: i32) -> (String, i32) {
    let mut bytes: Vec<u8> = digits.bytes().collect();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b = b.saturating_add(1);
            let mut s = String::from_utf8(bytes).unwrap_or_default();
            while s.len() > 1 && s.ends_with('0') {
                s.pop();
            }
            return (s, exp);
        }
    }
    ("1".to_string(), exp.saturating_add(1))
}

fn with_point(digits: &str) -> String {
    match digits.split_at_checked(1) {
        Some((first, rest)) if !rest.is_empty() => format!("{first}.{rest}"),
        _ => digits.to_string(),
    }
}

/// Positional notation ('f').
pub(crate) fn fixed(negative: bool, digits: &str, exp: i32) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if exp >= n.saturating_sub(1) {
        out.push_str(digits);
        let zeros = usize::try_from(exp.saturating_sub(n.saturating_sub(1))).unwrap_or(0);
        out.extend(std::iter::repeat_n('0', zeros));
    } else if exp >= 0 {
        let split = usize::try_from(exp.saturating_add(1)).unwrap_or(0);
        let (int, frac) = digits.split_at_checked(split).unwrap_or((digits, ""));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str("0.");
        let zeros = usize::try_from(exp.saturating_neg().saturating_sub(1)).unwrap_or(0);
        out.extend(std::iter::repeat_n('0', zeros));
        out.push_str(digits);
    }
    out
}

/// Exponent notation ('e'): `d.ddde±xx`.
pub(crate) fn exponent(negative: bool, digits: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!(
        "{}{}e{sign}{:02}",
        if negative { "-" } else { "" },
        with_point(digits),
        exp.unsigned_abs()
    )
}

#[cfg(test)]
// The exact binary values are the point of these tests.
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let (n, d, e) = shortest(v);
        fixed(n, &d, e)
    }

    #[test]
    fn positional_spellings() {
        for (v, text) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e21, "1000000000000000000000"),
            (1e-7, "0.0000001"),
            (0.06666666666666667, "0.06666666666666667"),
            (5e-324, &format!("0.{}5", "0".repeat(323))),
        ] {
            assert_eq!(f(v), text, "{v:e}");
        }
    }

    #[test]
    fn ties_go_to_the_even_digit() {
        assert_eq!(f(188217972652763.625), "188217972652763.62");
        // The other way round: the even digit is the upper one.
        assert_eq!(f(188217972652763.875), "188217972652763.88");
    }
}
