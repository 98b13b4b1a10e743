//! Italian identifier checks: the codice fiscale of natural persons (DM 23/12/1976 n. 13813,
//! check character and omocodia) and the IBAN (ISO 13616 mod-97, with the Italian national
//! check letter CIN for `IT` accounts).
//!
//! The algorithms are public functions, usable without the engine (the sandbox generates valid
//! fictitious citizens with them); the built-in connector `identity` exposes them to workflows:
//!
//! ```yaml
//! - id: formal_checks
//!   call: identity.check
//!   with: { fiscal_code: "${ .input.applicant.fiscal_code }", iban: "${ .input.payment.iban }" }
//! ```
//!
//! answers, for each identifier given, `{valid, code, reason, reason_en}`: `code` is a stable
//! machine code (`format`, `check_character`, `length`, `check_digits`, `cin`, ...) and
//! `reason` an Italian sentence for the citizen (`reason_en` for the operator); all three are
//! `null` when the identifier is valid. Identifiers not given (absent or `null`) are not in
//! the answer. An input that is not an object, or a value that is not a string, is the
//! business error `identity.invalid_input`.

use serde_json::{Map, Value, json};

use super::{Connector, ConnectorError, ConnectorFuture, Invocation};

/// Value of a character in an odd position (1st, 3rd, ... 1-based) for the codice fiscale
/// check character and the Italian CIN; digits share the value of the same-index letter.
fn odd_value(c: char) -> Option<u32> {
    const ODD: [u32; 26] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];
    match c {
        '0'..='9' => Some(ODD[(c as u8 - b'0') as usize]),
        'A'..='Z' => Some(ODD[(c as u8 - b'A') as usize]),
        _ => None,
    }
}

/// Value of a character in an even position: digits 0-9, letters A=0 ... Z=25.
fn even_value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some((c as u8 - b'0') as u32),
        'A'..='Z' => Some((c as u8 - b'A') as u32),
        _ => None,
    }
}

/// The odd/even weighted sum mod 26 as a letter, shared by the codice fiscale and the CIN.
fn odd_even_letter(chars: &str) -> Option<char> {
    let mut sum = 0u32;
    for (i, c) in chars.chars().enumerate() {
        sum += if i % 2 == 0 { odd_value(c)? } else { even_value(c)? };
    }
    Some((b'A' + (sum % 26) as u8) as char)
}

/// The check character (16th) of a codice fiscale from its first 15 characters (upper-case
/// letters and digits; omocodia letters allowed). `None` if `first15` is not 15 such characters.
pub fn codice_fiscale_check_char(first15: &str) -> Option<char> {
    if first15.chars().count() != 15 {
        return None;
    }
    odd_even_letter(first15)
}

/// Why an identifier is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierError {
    /// Stable machine code: `empty`, `length`, `format`, `month`, `day`, `check_character`
    /// (codice fiscale); `country`, `length`, `format`, `check_digits`, `cin` (IBAN).
    pub code: &'static str,
    /// For the citizen, in Italian.
    pub reason: String,
    /// For the operator, in English.
    pub reason_en: String,
}

impl IdentifierError {
    fn new(code: &'static str, reason: impl Into<String>, reason_en: impl Into<String>) -> Self {
        IdentifierError { code, reason: reason.into(), reason_en: reason_en.into() }
    }
}

impl std::fmt::Display for IdentifierError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.reason_en)
    }
}

impl std::error::Error for IdentifierError {}

/// Normalises an identifier as typed: spaces removed, upper case.
fn normalise(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase()
}

/// Omocodia letters replace digits at positions 7, 8, 10, 11, 13, 14, 15: L=0 ... V=9.
fn omocodia_digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some((c as u8 - b'0') as u32),
        _ => "LMNPQRSTUV".find(c).map(|i| i as u32),
    }
}

/// Checks a codice fiscale of a natural person: format (with omocodia letters), month letter,
/// day of birth (1-31, or 41-71 for women) and check character. Returns the normalised code.
pub fn check_codice_fiscale(text: &str) -> Result<String, IdentifierError> {
    let cf = normalise(text);
    if cf.is_empty() {
        return Err(IdentifierError::new("empty", "Il codice fiscale non è stato indicato.", "The fiscal code is missing."));
    }
    let chars: Vec<char> = cf.chars().collect();
    if chars.len() != 16 {
        return Err(IdentifierError::new(
            "length",
            format!("Il codice fiscale deve avere 16 caratteri, ne ha {}.", chars.len()),
            format!("A fiscal code has 16 characters, this one has {}.", chars.len()),
        ));
    }
    let letter = |i: usize| chars[i].is_ascii_uppercase();
    let digitish = |i: usize| omocodia_digit(chars[i]).is_some();
    let format_ok = (0..6).all(letter)
        && digitish(6)
        && digitish(7)
        && letter(8)
        && digitish(9)
        && digitish(10)
        && letter(11)
        && (12..15).all(digitish)
        && letter(15);
    if !format_ok {
        return Err(IdentifierError::new(
            "format",
            "Il codice fiscale non ha il formato corretto (6 lettere, 2 cifre, 1 lettera, 2 cifre, 1 lettera, 3 cifre, 1 lettera).",
            "The fiscal code does not have the format of a natural person's code.",
        ));
    }
    if !"ABCDEHLMPRST".contains(chars[8]) {
        return Err(IdentifierError::new(
            "month",
            format!("Il codice fiscale contiene una lettera del mese di nascita non valida ({}).", chars[8]),
            format!("The month letter {} is not one of A B C D E H L M P R S T.", chars[8]),
        ));
    }
    let day = omocodia_digit(chars[9]).unwrap_or(0) * 10 + omocodia_digit(chars[10]).unwrap_or(0);
    if !(1..=31).contains(&day) && !(41..=71).contains(&day) {
        return Err(IdentifierError::new(
            "day",
            format!("Il codice fiscale contiene un giorno di nascita non valido ({day:02})."),
            format!("The day of birth {day:02} is neither 01-31 nor 41-71."),
        ));
    }
    let first15: String = chars[..15].iter().collect();
    let expected = codice_fiscale_check_char(&first15).unwrap_or('?');
    if expected != chars[15] {
        return Err(IdentifierError::new(
            "check_character",
            "Il codice fiscale non è corretto: il carattere di controllo non corrisponde. Verifichi di averlo scritto esattamente come sulla tessera sanitaria.",
            format!("Wrong check character: {} expected, {} found.", expected, chars[15]),
        ));
    }
    Ok(cf)
}

/// Whether `text` is a valid codice fiscale of a natural person (see [`check_codice_fiscale`]).
pub fn is_valid_codice_fiscale(text: &str) -> bool {
    check_codice_fiscale(text).is_ok()
}

/// The Italian national check letter (CIN) of the 22 characters ABI (5 digits) + CAB
/// (5 digits) + account number (12 letters or digits). `None` if `abi_cab_account` is not 22
/// such characters.
pub fn italian_cin(abi_cab_account: &str) -> Option<char> {
    let bban = normalise(abi_cab_account);
    if bban.chars().count() != 22 {
        return None;
    }
    odd_even_letter(&bban)
}

/// `text` (letters and digits) moved and turned into digits as ISO 13616 asks, mod 97.
fn mod97(rearranged: &str) -> Option<u32> {
    let mut rest = 0u64;
    for c in rearranged.chars() {
        let v = match c {
            '0'..='9' => (c as u8 - b'0') as u64,
            'A'..='Z' => (c as u8 - b'A') as u64 + 10,
            _ => return None,
        };
        rest = if v >= 10 { (rest * 100 + v) % 97 } else { (rest * 10 + v) % 97 };
    }
    Some(rest as u32)
}

/// The two IBAN check digits for a country code and a BBAN (e.g. `"IT"`, `"X0542811101000000123456"`).
/// `None` if the country is not two letters or the BBAN holds other than letters and digits.
pub fn iban_check_digits(country: &str, bban: &str) -> Option<String> {
    let country = normalise(country);
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let bban = normalise(bban);
    if bban.is_empty() {
        return None;
    }
    let n = mod97(&format!("{bban}{country}00"))?;
    Some(format!("{:02}", 98 - n))
}

/// Checks an IBAN: letters and digits only, the country's length (27 for Italy), the mod-97
/// check digits and, for Italian IBANs, the CIN. Returns the normalised IBAN (no spaces).
pub fn check_iban(text: &str) -> Result<String, IdentifierError> {
    let iban = normalise(text);
    if iban.is_empty() {
        return Err(IdentifierError::new("empty", "L'IBAN non è stato indicato.", "The IBAN is missing."));
    }
    if !iban.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        return Err(IdentifierError::new(
            "format",
            "L'IBAN contiene caratteri non ammessi: sono ammesse solo lettere e cifre.",
            "The IBAN holds characters other than letters and digits.",
        ));
    }
    let chars: Vec<char> = iban.chars().collect();
    if chars.len() < 5 || !chars[0].is_ascii_uppercase() || !chars[1].is_ascii_uppercase() {
        return Err(IdentifierError::new(
            "format",
            "L'IBAN deve iniziare con la sigla del paese (per l'Italia IT) seguita da due cifre di controllo.",
            "An IBAN starts with a two-letter country code and two check digits.",
        ));
    }
    let country: String = chars[..2].iter().collect();
    if country == "IT" && chars.len() != 27 {
        return Err(IdentifierError::new(
            "length",
            format!("Un IBAN italiano ha 27 caratteri, quello indicato ne ha {}.", chars.len()),
            format!("An Italian IBAN has 27 characters, this one has {}.", chars.len()),
        ));
    }
    if chars.len() > 34 {
        return Err(IdentifierError::new(
            "length",
            format!("Un IBAN ha al massimo 34 caratteri, quello indicato ne ha {}.", chars.len()),
            format!("An IBAN has at most 34 characters, this one has {}.", chars.len()),
        ));
    }
    if !chars[2].is_ascii_digit() || !chars[3].is_ascii_digit() {
        return Err(IdentifierError::new(
            "format",
            "Dopo la sigla del paese l'IBAN deve avere due cifre di controllo.",
            "The IBAN's check digits (3rd and 4th characters) are not digits.",
        ));
    }
    if country == "IT" {
        let cin_ok = chars[4].is_ascii_uppercase();
        let numbers_ok = chars[5..15].iter().all(char::is_ascii_digit);
        if !cin_ok || !numbers_ok {
            return Err(IdentifierError::new(
                "format",
                "L'IBAN italiano deve contenere, dopo IT e le due cifre di controllo, una lettera (CIN), il codice ABI (5 cifre), il CAB (5 cifre) e il numero di conto (12 caratteri).",
                "An Italian IBAN is IT, two check digits, the CIN letter, ABI (5 digits), CAB (5 digits) and the account (12 characters).",
            ));
        }
    }
    let rearranged: String = chars[4..].iter().chain(chars[..4].iter()).collect();
    if mod97(&rearranged) != Some(1) {
        return Err(IdentifierError::new(
            "check_digits",
            "L'IBAN non è corretto: le cifre di controllo non corrispondono. Verifichi di averlo copiato esattamente dall'estratto conto o dall'app della banca.",
            "The IBAN fails the mod-97 check: a character is wrong or two are swapped.",
        ));
    }
    if country == "IT" {
        let bban: String = chars[5..].iter().collect();
        let expected = italian_cin(&bban).unwrap_or('?');
        if expected != chars[4] {
            return Err(IdentifierError::new(
                "cin",
                "L'IBAN non è corretto: il carattere di controllo nazionale (CIN) non corrisponde alle coordinate bancarie.",
                format!("Wrong Italian check letter (CIN): {} expected, {} found.", expected, chars[4]),
            ));
        }
    }
    Ok(iban)
}

/// Whether `text` is a valid IBAN (see [`check_iban`]).
pub fn is_valid_iban(text: &str) -> bool {
    check_iban(text).is_ok()
}

fn report(result: Result<String, IdentifierError>) -> Value {
    match result {
        Ok(normalised) => json!({"valid": true, "normalised": normalised, "code": null, "reason": null, "reason_en": null}),
        Err(e) => json!({"valid": false, "normalised": null, "code": e.code, "reason": e.reason, "reason_en": e.reason_en}),
    }
}

/// The `identity.check` answer for an input `{fiscal_code?, iban?}`.
pub fn check(input: &Value) -> Result<Value, ConnectorError> {
    let Some(object) = input.as_object() else {
        return Err(ConnectorError::fatal("identity.invalid_input", "identity.check needs an object with `fiscal_code` and/or `iban`"));
    };
    let mut out = Map::new();
    for (field, checker) in
        [("fiscal_code", check_codice_fiscale as fn(&str) -> Result<String, IdentifierError>), ("iban", check_iban as fn(&str) -> _)]
    {
        match object.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                out.insert(field.to_string(), report(checker(text)));
            }
            Some(other) => {
                return Err(ConnectorError::fatal("identity.invalid_input", format!("`{field}` must be a string, not {other}")));
            }
        }
    }
    if let Some(unknown) = object.keys().find(|k| *k != "fiscal_code" && *k != "iban") {
        return Err(ConnectorError::fatal("identity.invalid_input", format!("unknown field `{unknown}` (known: fiscal_code, iban)")));
    }
    Ok(Value::Object(out))
}

/// The built-in `identity` connector: `identity.check` (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityConnector;

impl Connector for IdentityConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        Box::pin(async move {
            match call.operation.as_deref() {
                Some("check") | None => check(&call.input),
                Some(other) => {
                    Err(ConnectorError::fatal("identity.unknown_operation", format!("identity has no operation `{other}` (known: check)")))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codice_fiscale_vectors_of_the_domain_notes() {
        assert_eq!(codice_fiscale_check_char("RSSMRA80A01H501"), Some('U'));
        assert!(is_valid_codice_fiscale("RSSMRA80A01H501U"));
        assert!(is_valid_codice_fiscale("BNCLRA85M52F205I"));
        // Omocodia: the last digit of the place code 1 -> M, check character recomputed.
        assert!(is_valid_codice_fiscale("RSSMRA80A01H50MM"));
        assert_eq!(check_codice_fiscale("RSSMRA80A01H501X").unwrap_err().code, "check_character");
        // The App IO sandbox example matches the format but its check character is T.
        assert_eq!(codice_fiscale_check_char("SPNDNL80R13C555"), Some('T'));
        assert!(!is_valid_codice_fiscale("SPNDNL80R13C555X"));
        assert!(is_valid_codice_fiscale("SPNDNL80R13C555T"));
    }

    #[test]
    fn codice_fiscale_is_normalised_and_checked_for_shape() {
        assert_eq!(check_codice_fiscale(" rssmra80a01h501u ").unwrap(), "RSSMRA80A01H501U");
        assert_eq!(check_codice_fiscale("").unwrap_err().code, "empty");
        assert_eq!(check_codice_fiscale("RSSMRA80A01H501").unwrap_err().code, "length");
        assert_eq!(check_codice_fiscale("RSSMRA80A01H5010").unwrap_err().code, "format");
        assert_eq!(check_codice_fiscale("RSSMRA80Z01H501U").unwrap_err().code, "month");
        assert_eq!(check_codice_fiscale("RSSMRA80A35H501U").unwrap_err().code, "day");
        assert_eq!(check_codice_fiscale("RSSMRA80A01H50€U").unwrap_err().code, "format");
        assert_eq!(codice_fiscale_check_char("RSSMRA80A01H50"), None);
        assert_eq!(codice_fiscale_check_char("RSSMRA80A01H50-"), None);
    }

    #[test]
    fn every_omocode_of_a_valid_code_is_valid() {
        // Replace digits right to left (positions 15, 14, 13, 11, 10, 8, 7) and recompute.
        let base: Vec<char> = "RSSMRA80A01H501U".chars().collect();
        let mut code = base.clone();
        for pos in [14usize, 13, 12, 10, 9, 7, 6] {
            let d = code[pos].to_digit(10).unwrap() as usize;
            code[pos] = "LMNPQRSTUV".chars().nth(d).unwrap();
            let first15: String = code[..15].iter().collect();
            code[15] = codice_fiscale_check_char(&first15).unwrap();
            let text: String = code.iter().collect();
            assert!(is_valid_codice_fiscale(&text), "{text}");
        }
    }

    #[test]
    fn iban_vectors_of_the_domain_notes() {
        assert!(is_valid_iban("IT60X0542811101000000123456"));
        assert!(is_valid_iban("IT87D9999999999000000123456"));
        assert!(is_valid_iban("IT89D0123456789000000000001"));
        assert!(is_valid_iban("it60 x054 2811 1010 0000 0123 456"));
        assert_eq!(check_iban("IT60X0542811101000000123457").unwrap_err().code, "check_digits");
        assert_eq!(check_iban("IT61X0542811101000000123456").unwrap_err().code, "check_digits");
        // Passes mod-97 but the CIN should be X.
        let wrong_cin = check_iban("IT65A0542811101000000123456").unwrap_err();
        assert_eq!(wrong_cin.code, "cin");
        assert!(wrong_cin.reason_en.contains("X expected"), "{wrong_cin}");
    }

    #[test]
    fn iban_parts_compute_as_published() {
        assert_eq!(italian_cin("0542811101000000123456"), Some('X'));
        assert_eq!(italian_cin("9999999999000000123456"), Some('D'));
        assert_eq!(italian_cin("0123456789000000000001"), Some('D'));
        assert_eq!(italian_cin("054281110100000012345"), None);
        assert_eq!(iban_check_digits("IT", "X0542811101000000123456").as_deref(), Some("60"));
        assert_eq!(iban_check_digits("IT", "D9999999999000000123456").as_deref(), Some("87"));
        assert_eq!(iban_check_digits("IT", "A0542811101000000123456").as_deref(), Some("65"));
        // A foreign IBAN (the ISO 13616 example) is checked by mod-97 only.
        assert!(is_valid_iban("GB82WEST12345698765432"));
        assert_eq!(iban_check_digits("GB", "WEST12345698765432").as_deref(), Some("82"));
        assert_eq!(iban_check_digits("1T", "X0542811101000000123456"), None);
    }

    #[test]
    fn iban_shape_errors() {
        assert_eq!(check_iban("").unwrap_err().code, "empty");
        assert_eq!(check_iban("IT60X054281110100000012345").unwrap_err().code, "length");
        assert_eq!(check_iban("IT60X0542811101000000123456-").unwrap_err().code, "format");
        assert_eq!(check_iban("ITXXX0542811101000000123456").unwrap_err().code, "format");
        assert_eq!(check_iban("IT6050542811101000000123456").unwrap_err().code, "format");
        assert_eq!(check_iban("12").unwrap_err().code, "format");
    }

    #[test]
    fn connector_answer() {
        let out = check(&json!({"fiscal_code": "RSSMRA80A01H501X", "iban": "IT60X0542811101000000123456"})).unwrap();
        assert_eq!(out["fiscal_code"]["valid"], json!(false));
        assert_eq!(out["fiscal_code"]["code"], json!("check_character"));
        assert_eq!(
            out["iban"],
            json!({"valid": true, "normalised": "IT60X0542811101000000123456", "code": null, "reason": null, "reason_en": null})
        );
        assert_eq!(check(&json!({"iban": null})).unwrap(), json!({}));
        assert!(matches!(check(&json!({"iban": 3})), Err(ConnectorError::Fatal { .. })));
        assert!(matches!(check(&json!({"name": "x"})), Err(ConnectorError::Fatal { .. })));
        assert!(matches!(check(&json!("RSSMRA80A01H501U")), Err(ConnectorError::Fatal { .. })));
    }
}
