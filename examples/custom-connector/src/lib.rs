//! An example custom connector: `iban`, which checks Italian IBANs.
//!
//! It is small on purpose: a connector is one type implementing
//! [`Connector`], registered under a name in a [`Registry`](pratica_engine::connector::Registry).
//! Workflows then call it as `call: iban.check`. `docs/CONNECTORS.md` walks through this file.
//!
//! # Operation `check`
//!
//! `with`:
//!
//! | field | meaning |
//! |---|---|
//! | `iban` | the IBAN, spaces and lower case allowed (`it60 x054 ...`) |
//! | `require_valid` | when `true`, an invalid IBAN is the business error `iban.invalid` instead of an output with `valid: false` (default `false`) |
//!
//! Output: `{valid, bank_code, branch_code, reason}`. `bank_code` (ABI) and `branch_code`
//! (CAB) are set only for a valid IBAN; `reason` is `null` for a valid IBAN, otherwise one
//! of `not_italian`, `length`, `characters`, `check_digits` (the ISO 13616 mod-97 check
//! failed) or `cin` (the Italian national check character does not match).
//!
//! # Errors
//!
//! All are fatal (retrying a pure computation cannot help), so a `catch` can match them:
//!
//! | code | when |
//! |---|---|
//! | `iban.invalid` | `require_valid: true` and the IBAN is not valid |
//! | `iban.invalid_input` | `with` is not an object with a string `iban` and an optional boolean `require_valid` |
//! | `iban.unknown_operation` | an operation other than `check` (`call: iban.verify`) |
//!
//! Messages never repeat the IBAN: they end up in the instance history, and an IBAN is
//! personal data that already sits in the step's input.
//!
//! The check is a pure function of its input, so the idempotency key, the attempt and the
//! deadline are not needed. A connector that changes another system must send
//! [`Invocation::idempotency_key`] downstream.

use pratica_engine::connector::{Connector, ConnectorError, ConnectorFuture, Invocation};
use serde_json::{Map, Value, json};

/// The `iban` connector. It has no configuration; a real one would hold its client and
/// settings here (built once, shared by every call).
#[derive(Debug, Clone, Copy, Default)]
pub struct IbanConnector;

impl Connector for IbanConnector {
    fn invoke<'a>(&'a self, call: &'a Invocation) -> ConnectorFuture<'a> {
        // Nothing here awaits; a connector that calls a service would `.await` inside.
        Box::pin(async move { invoke_check(call) })
    }
}

fn invoke_check(call: &Invocation) -> Result<Value, ConnectorError> {
    match call.operation.as_deref() {
        None | Some("check") => {}
        Some(other) => {
            return Err(ConnectorError::fatal(
                "iban.unknown_operation",
                format!("the iban connector has no operation `{other}` (known: check)"),
            ));
        }
    }
    let with = call.input.as_object().ok_or_else(|| invalid_input("`with` must be an object with an `iban` field"))?;
    if let Some(unknown) = with.keys().find(|k| !matches!(k.as_str(), "iban" | "require_valid")) {
        return Err(invalid_input(&format!("unknown field `{unknown}` (known: iban, require_valid)")));
    }
    let iban = with.get("iban").and_then(Value::as_str).ok_or_else(|| invalid_input("`iban` must be a string"))?;
    let require_valid = require_valid(with)?;
    let check = check_italian_iban(iban);
    if require_valid && let Some(reason) = check.reason {
        return Err(ConnectorError::fatal("iban.invalid", format!("the IBAN is not valid: {}", reason.describe())));
    }
    Ok(check.to_json())
}

fn require_valid(with: &Map<String, Value>) -> Result<bool, ConnectorError> {
    match with.get("require_valid") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid_input("`require_valid` must be true or false")),
    }
}

fn invalid_input(message: &str) -> ConnectorError {
    ConnectorError::fatal("iban.invalid_input", message)
}

/// The result of checking an IBAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbanCheck {
    /// ABI, the bank's code (5 digits); only for a valid IBAN.
    pub bank_code: Option<String>,
    /// CAB, the branch's code (5 digits); only for a valid IBAN.
    pub branch_code: Option<String>,
    /// Why the IBAN is not valid; `None` when it is.
    pub reason: Option<IbanProblem>,
}

impl IbanCheck {
    pub fn is_valid(&self) -> bool {
        self.reason.is_none()
    }

    /// The connector's output.
    pub fn to_json(&self) -> Value {
        json!({
            "valid": self.is_valid(),
            "bank_code": self.bank_code,
            "branch_code": self.branch_code,
            "reason": self.reason.map(IbanProblem::code),
        })
    }

    fn invalid(reason: IbanProblem) -> Self {
        Self { bank_code: None, branch_code: None, reason: Some(reason) }
    }
}

/// Why an IBAN is not a valid Italian IBAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IbanProblem {
    /// It does not start with `IT`.
    NotItalian,
    /// It is not 27 characters long.
    Length,
    /// A character is not allowed where it stands.
    Characters,
    /// The ISO 13616 check digits (mod 97) do not match.
    CheckDigits,
    /// The Italian check character (CIN) does not match the bank, branch and account.
    Cin,
}

impl IbanProblem {
    /// A stable code, the output's `reason`.
    pub fn code(self) -> &'static str {
        match self {
            IbanProblem::NotItalian => "not_italian",
            IbanProblem::Length => "length",
            IbanProblem::Characters => "characters",
            IbanProblem::CheckDigits => "check_digits",
            IbanProblem::Cin => "cin",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            IbanProblem::NotItalian => "it is not an Italian IBAN (it must start with IT)",
            IbanProblem::Length => "an Italian IBAN has 27 characters",
            IbanProblem::Characters => "it has characters that are not allowed where they stand",
            IbanProblem::CheckDigits => "the check digits do not match (mod 97)",
            IbanProblem::Cin => "the CIN check character does not match the bank, branch and account",
        }
    }
}

/// Checks an Italian IBAN: `IT`, 2 check digits, the CIN letter, ABI (5 digits), CAB
/// (5 digits) and the account (12 letters or digits). Spaces are ignored, letters may be
/// lower case.
pub fn check_italian_iban(text: &str) -> IbanCheck {
    // Bound the work before normalising: nobody writes an IBAN with 100 characters.
    if text.len() > 100 {
        return IbanCheck::invalid(IbanProblem::Length);
    }
    let iban: Vec<u8> = text.bytes().filter(|b| *b != b' ').map(|b| b.to_ascii_uppercase()).collect();
    if !iban.starts_with(b"IT") {
        return IbanCheck::invalid(IbanProblem::NotItalian);
    }
    if iban.len() != 27 {
        return IbanCheck::invalid(IbanProblem::Length);
    }
    let (check_digits, cin, abi, cab, account) = (&iban[2..4], iban[4], &iban[5..10], &iban[10..15], &iban[15..27]);
    let well_formed = check_digits.iter().all(u8::is_ascii_digit)
        && cin.is_ascii_uppercase()
        && abi.iter().chain(cab).all(u8::is_ascii_digit)
        && account.iter().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if !well_formed {
        return IbanCheck::invalid(IbanProblem::Characters);
    }
    if mod97(&iban) != 1 {
        return IbanCheck::invalid(IbanProblem::CheckDigits);
    }
    if cin_of(&iban[5..27]) != cin {
        return IbanCheck::invalid(IbanProblem::Cin);
    }
    let code = |bytes: &[u8]| Some(String::from_utf8_lossy(bytes).into_owned());
    IbanCheck { bank_code: code(abi), branch_code: code(cab), reason: None }
}

/// ISO 13616: move the first four characters to the end, read letters as 10..35, and take
/// the number modulo 97 (digit by digit, so no big integers are needed).
fn mod97(iban: &[u8]) -> u32 {
    iban[4..].iter().chain(&iban[..4]).fold(0, |rest, &b| match b {
        b'0'..=b'9' => (rest * 10 + u32::from(b - b'0')) % 97,
        _ => (rest * 100 + u32::from(b - b'A') + 10) % 97,
    })
}

/// The Italian CIN over ABI + CAB + account (22 characters): characters in odd positions
/// (1st, 3rd, …) are converted with a table, even ones by their value (digits 0–9, letters
/// A=0…Z=25); the sum modulo 26 is the letter.
fn cin_of(bban: &[u8]) -> u8 {
    const ODD: [u32; 26] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];
    let sum: u32 = bban
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let value = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') };
            if i % 2 == 0 { ODD[value as usize] } else { value }
        })
        .sum();
    b'A' + (sum % 26) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Italian example IBAN of the ECBS/SWIFT registry.
    const VALID: &str = "IT60X0542811101000000123456";

    fn call(operation: Option<&str>, input: Value) -> Invocation {
        Invocation {
            connector: "iban".into(),
            operation: operation.map(String::from),
            input,
            idempotency_key: "i-1:check:1".into(),
            attempt: 1,
            deadline: None,
            instance_id: "i-1".into(),
            step_id: "check".into(),
            secrets: Default::default(),
            clock: Default::default(),
        }
    }

    fn run(operation: Option<&str>, input: Value) -> Result<Value, ConnectorError> {
        let connector = IbanConnector;
        let call = call(operation, input);
        poll_once(connector.invoke(&call))
    }

    /// The connector never awaits, so polling once completes it.
    fn poll_once(mut f: ConnectorFuture<'_>) -> Result<Value, ConnectorError> {
        let waker = std::task::Waker::noop();
        match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => panic!("the iban connector does not wait"),
        }
    }

    #[test]
    fn a_valid_iban_gives_bank_and_branch() {
        let check = check_italian_iban(VALID);
        assert_eq!(check, IbanCheck { bank_code: Some("05428".into()), branch_code: Some("11101".into()), reason: None });
        assert!(check_italian_iban("it60 x054 2811 1010 0000 0123 456").is_valid(), "spaces and lower case are accepted");
    }

    #[test]
    fn each_problem_has_its_reason() {
        let reason = |s: &str| check_italian_iban(s).reason;
        assert_eq!(reason("DE89370400440532013000"), Some(IbanProblem::NotItalian));
        assert_eq!(reason("IT60X054281110100000012345"), Some(IbanProblem::Length));
        assert_eq!(reason("IT60X05428111010000001234567"), Some(IbanProblem::Length));
        assert_eq!(reason("IT6OX0542811101000000123456"), Some(IbanProblem::Characters), "letter O in the check digits");
        assert_eq!(reason("IT60X05A2811101000000123456"), Some(IbanProblem::Characters), "letter in the ABI");
        assert_eq!(reason("IT60X0542811101000000123457"), Some(IbanProblem::CheckDigits));
        // Check digits recomputed so that mod 97 passes, with the wrong CIN letter.
        assert_eq!(reason("IT40S0542811101000000123456"), Some(IbanProblem::Cin));
        assert_eq!(reason(&"IT".repeat(60)), Some(IbanProblem::Length));
        assert_eq!(reason(""), Some(IbanProblem::NotItalian));
    }

    #[test]
    fn the_connector_returns_the_check_as_output() {
        assert_eq!(
            run(Some("check"), json!({"iban": VALID})).unwrap(),
            json!({"valid": true, "bank_code": "05428", "branch_code": "11101", "reason": null})
        );
        assert_eq!(
            run(None, json!({"iban": "IT60X0542811101000000123457", "require_valid": false})).unwrap(),
            json!({"valid": false, "bank_code": null, "branch_code": null, "reason": "check_digits"})
        );
    }

    #[test]
    fn require_valid_turns_an_invalid_iban_into_a_business_error_without_the_iban() {
        let err = run(Some("check"), json!({"iban": "IT40S0542811101000000123456", "require_valid": true})).unwrap_err();
        let ConnectorError::Fatal { code, message } = err else { panic!("a business error is fatal: {err:?}") };
        assert_eq!(code, "iban.invalid");
        assert!(message.contains("CIN") && !message.contains("0542811101"), "{message}");
        assert!(run(Some("check"), json!({"iban": VALID, "require_valid": true})).is_ok());
    }

    #[test]
    fn bad_input_and_unknown_operations_are_fatal_with_their_codes() {
        let code = |r: Result<Value, ConnectorError>| match r {
            Err(ConnectorError::Fatal { code, .. }) => code,
            other => panic!("expected a fatal error, got {other:?}"),
        };
        assert_eq!(code(run(Some("verify"), json!({"iban": VALID}))), "iban.unknown_operation");
        assert_eq!(code(run(Some("check"), json!("IT60X0542811101000000123456"))), "iban.invalid_input");
        assert_eq!(code(run(Some("check"), json!({"iban": 42}))), "iban.invalid_input");
        assert_eq!(code(run(Some("check"), json!({"iban": VALID, "require_valid": "yes"}))), "iban.invalid_input");
        assert_eq!(code(run(Some("check"), json!({"iban": VALID, "strict": true}))), "iban.invalid_input");
    }
}
