//! What counts as an ICCID (ITU-T E.118): 18 to 22 digits, optionally a trailing `F` filler,
//! the last digit a Luhn check digit over the others. A vendor id that is not one (a device
//! id, an order number) must never be stored as an ICCID.

/// True when `s` is a Luhn-valid ICCID of 18–22 digits (a trailing `F` filler allowed).
pub fn is_valid(s: &str) -> bool {
    let digits = s.strip_suffix(['F', 'f']).unwrap_or(s);
    (18..=22).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && luhn_ok(digits)
}

fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn iccids_need_length_digits_and_luhn() {
        assert!(is_valid("8944538532008160222"));
        assert!(is_valid("8944538532008160222F"));
        // A 16-digit device id is not an ICCID, even when its Luhn digit fits.
        assert!(!is_valid("9000024081603874"));
        assert!(!is_valid("8944538532008160223"));
        assert!(!is_valid("89445385320081602x2"));
        assert!(!is_valid(""));
    }
}
