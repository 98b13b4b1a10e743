//! Fictitious but VALID Italian identifiers for the seeded citizens: codici fiscali built from
//! name, birth date and place (DM 23/12/1976) and IBANs from bank, branch and account; the check
//! characters come from `pratica_engine::connector::identity`.

use chrono::{Datelike, NaiveDate};

use pratica_engine::connector::identity;

pub use pratica_engine::connector::identity::{is_valid_codice_fiscale, is_valid_iban};

fn letters(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_uppercase).filter(char::is_ascii_alphabetic)
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'A' | 'E' | 'I' | 'O' | 'U')
}

fn name_part(name: &str, first_name: bool) -> String {
    let consonants: Vec<char> = letters(name).filter(|c| !is_vowel(*c)).collect();
    if first_name && consonants.len() >= 4 {
        return [consonants[0], consonants[2], consonants[3]].iter().collect();
    }
    consonants.into_iter().chain(letters(name).filter(|c| is_vowel(*c))).chain(std::iter::repeat('X')).take(3).collect()
}

/// The codice fiscale of a person (no omocodia).
pub fn codice_fiscale(last_name: &str, first_name: &str, birth: NaiveDate, female: bool, place_code: &str) -> String {
    const MONTHS: [char; 12] = ['A', 'B', 'C', 'D', 'E', 'H', 'L', 'M', 'P', 'R', 'S', 'T'];
    let day = birth.day() + if female { 40 } else { 0 };
    let body = format!(
        "{}{}{:02}{}{:02}{}",
        name_part(last_name, false),
        name_part(first_name, true),
        birth.year() % 100,
        MONTHS[birth.month0() as usize],
        day,
        place_code
    );
    let check = identity::codice_fiscale_check_char(&body).unwrap_or('X');
    format!("{body}{check}")
}

/// An Italian IBAN from the bank (ABI), branch (CAB) and account number: the CIN and the
/// check digits computed with `pratica_engine::connector::identity`.
pub fn italian_iban(abi: &str, cab: &str, account: &str) -> String {
    let national = format!("{abi:0>5}{cab:0>5}{account:0>12}");
    let cin = identity::italian_cin(&national).unwrap_or('X');
    let bban = format!("{cin}{national}");
    let check = identity::iban_check_digits("IT", &bban).unwrap_or_else(|| "00".into());
    format!("IT{check}{bban}")
}

/// Whether `iban` is a valid Italian IBAN (27 characters, mod-97 and CIN).
pub fn is_valid_italian_iban(iban: &str) -> bool {
    iban.trim().to_uppercase().starts_with("IT") && is_valid_iban(iban)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codice_fiscale_vectors() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(codice_fiscale("Rossi", "Mario", d(1980, 1, 1), false, "H501"), "RSSMRA80A01H501U");
        assert_eq!(codice_fiscale("Bianchi", "Laura", d(1985, 8, 12), true, "F205"), "BNCLRA85M52F205I");
        assert!(is_valid_codice_fiscale("RSSMRA80A01H50MM"));
        assert!(!is_valid_codice_fiscale("RSSMRA80A01H501X"));
        assert!(!is_valid_codice_fiscale("SPNDNL80R13C555X"));
        // Four or more consonants in the first name: 1st, 3rd and 4th.
        assert_eq!(&codice_fiscale("Verdi", "Gianfranco", d(1970, 3, 5), false, "F839")[3..6], "GFR");
    }

    #[test]
    fn iban_vectors() {
        assert_eq!(italian_iban("05428", "11101", "000000123456"), "IT60X0542811101000000123456");
        assert_eq!(italian_iban("99999", "99999", "123456"), "IT87D9999999999000000123456");
        assert!(is_valid_italian_iban("IT89D0123456789000000000001"));
        assert!(!is_valid_italian_iban("IT60X0542811101000000123457"));
        assert!(!is_valid_italian_iban("IT61X0542811101000000123456"));
        assert!(!is_valid_italian_iban("IT65A0542811101000000123456"));
    }
}
