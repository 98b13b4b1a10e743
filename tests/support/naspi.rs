//! An independent implementation of the NASpI pre-processing decision (docs/PROCESSES.md,
//! ../shared/domain/inps.md §1-§3), written in Rust from the rules, not from the workflow, so
//! that tests can compare what `workflows/naspi-preprocessing.yaml` decides with what the
//! rules say: the table test (tests/runtime/naspi_rules.rs) and the end-to-end test with
//! 1,000 applications.
//!
//! Inputs are the workflow's own shapes: the application as the `naspi-application` schema
//! describes it, and the INPS archive answers as the `inps.*` operations return them.
//!
//! Rounding follows the workflow's documented rule: amounts are rounded to the cent (half away
//! from zero) after each figure (average pay, monthly amount, each month of the schedule).

use serde_json::Value;

/// Rule version the decision is made under (also recorded by the workflow).
pub const RULE_VERSION: &str = "naspi-2025.1 (D.Lgs. 22/2015; L. 234/2021; L. 207/2024; circ. INPS 25/2024, 25/2025, 4/2026, 98/2025)";

/// What the INPS archives answer for one application.
#[derive(Debug, Clone)]
pub struct Archives {
    /// `inps.contributions` for the 4 years before the termination:
    /// `{weeks, weeks_already_used, taxable_pay, missing_months}`.
    pub contributions: Value,
    /// `inps.employment` for the terminated job, then for each declared previous job, in the
    /// application's order: `{found, contract_type, start_date, termination_date, termination_reason}`.
    pub employment: Vec<Value>,
    /// `inps.registry`: `{pension_in_payment, active_employment, iban_holder_match}`; `None`
    /// when the registry could not be read.
    pub registry: Option<Value>,
    /// `inps.contributions` between an earlier voluntary exit and the termination (the 2025
    /// anti-abuse rule); only read when such an exit exists.
    pub weeks_since_exit: Option<Value>,
}

/// The yearly figures (INPS circolari 25/2024, 25/2025, 4/2026), by year of the application.
pub fn parameters(year: i32) -> Option<(f64, f64)> {
    match year {
        2024 => Some((1425.21, 1550.42)),
        2025 => Some((1436.61, 1562.82)),
        2026 => Some((1456.72, 1584.70)),
        _ => None,
    }
}

/// The figures of a case whose amount can be computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub average_monthly_pay: f64,
    /// `None` when no yearly parameters exist for the application year.
    pub monthly_amount: Option<f64>,
    pub useful_weeks: i64,
    pub duration_weeks: i64,
    pub duration_months: i64,
    pub reduction_from_month: i64,
    /// Monthly amounts, month 1 first.
    pub schedule: Vec<f64>,
    pub start_date: String,
    pub days_to_application: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every check passed: paid from `start_date`; the first instalment is one month.
    Payout { monthly_amount: f64, first_payment_cents: i64, figures: Figures },
    /// An operator of the office decides; `documents_requested` when the citizen is first
    /// asked for documents (just cause, work abroad).
    Review { failed_checks: Vec<String>, documents_requested: bool, figures: Figures },
    /// Clear grounds for rejection, in Italian as the citizen reads them.
    Rejected { reasons: Vec<String>, figures: Figures },
}

impl Outcome {
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Payout { .. } => "payout",
            Outcome::Review { .. } => "review",
            Outcome::Rejected { .. } => "rejected",
        }
    }

    pub fn figures(&self) -> &Figures {
        match self {
            Outcome::Payout { figures, .. } | Outcome::Review { figures, .. } | Outcome::Rejected { figures, .. } => figures,
        }
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
pub fn day_number(date: &str) -> i64 {
    let y: i64 = date[0..4].parse().expect("year");
    let m: i64 = date[5..7].parse().expect("month");
    let d: i64 = date[8..10].parse().expect("day");
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `YYYY-MM-DD` date of a day number.
pub fn date_of(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn flag(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

fn number(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Age in whole years on `on` of someone born on `birth` (both `YYYY-MM-DD`).
pub fn age(birth: &str, on: &str) -> i64 {
    let years: i64 = on[0..4].parse::<i64>().unwrap() - birth[0..4].parse::<i64>().unwrap();
    if on[5..] < birth[5..] { years - 1 } else { years }
}

/// The monthly schedule: `amount` for the first months, then -3% a month compounding.
pub fn schedule(amount: f64, months: i64, reduction_from_month: i64) -> Vec<f64> {
    (1..=months)
        .map(|n| {
            let k = (n - reduction_from_month + 1).max(0);
            let mut factor = 1.0f64;
            for _ in 0..k {
                factor *= 0.97;
            }
            cents(amount * factor)
        })
        .collect()
}

/// The figures of an application (whatever the outcome).
pub fn figures(app: &Value, archives: &Archives) -> Figures {
    let c = &archives.contributions;
    let weeks = number(c, "/weeks");
    let useful_weeks = (weeks - number(c, "/weeks_already_used")) as i64;
    let average_monthly_pay = if weeks > 0.0 { cents(number(c, "/taxable_pay") / weeks * 4.33) } else { 0.0 };
    let application = text(app, "/application_date");
    let year: i32 = application[0..4].parse().unwrap_or(0);
    let monthly_amount = parameters(year).map(|(threshold, cap)| {
        let raw = if average_monthly_pay <= threshold {
            0.75 * average_monthly_pay
        } else {
            0.75 * threshold + 0.25 * (average_monthly_pay - threshold)
        };
        cents(raw.min(cap))
    });
    let duration_weeks = (useful_weeks / 2).clamp(0, 104);
    // Month n is the n-th period of 30.4375 days from the start; the last may be partial.
    let duration_months = (duration_weeks * 7 * 10_000).div_euclid(304_375) + i64::from((duration_weeks * 7 * 10_000) % 304_375 != 0);
    let reduction_from_month = if age(text(app, "/applicant/birth_date"), application) >= 55 { 8 } else { 6 };
    let termination = day_number(text(app, "/employment/termination_date"));
    let filed = day_number(application);
    let start = if filed <= termination + 8 { termination + 8 } else { filed + 1 };
    Figures {
        average_monthly_pay,
        monthly_amount,
        useful_weeks,
        duration_weeks,
        duration_months,
        reduction_from_month,
        schedule: monthly_amount.map(|a| schedule(a, duration_months, reduction_from_month)).unwrap_or_default(),
        start_date: date_of(start),
        days_to_application: filed - termination,
    }
}

/// The date of the latest voluntary exit from a permanent job in the 12 months before the
/// termination, when the termination is from 2025 on (L. 207/2024).
pub fn earlier_voluntary_exit(app: &Value, archives: &Archives) -> Option<String> {
    let end = day_number(text(app, "/employment/termination_date"));
    if end < day_number("2025-01-01") {
        return None;
    }
    archives
        .employment
        .iter()
        .skip(1)
        .filter(|r| {
            flag(r, "/found")
                && text(r, "/contract_type") == "permanent"
                && matches!(text(r, "/termination_reason"), "voluntary_resignation" | "consensual_termination")
                && !text(r, "/termination_date").is_empty()
                && day_number(text(r, "/termination_date")) >= end - 365
        })
        .map(|r| text(r, "/termination_date").to_string())
        .max()
}

/// What the rules decide for `app` given the archives' answers.
pub fn expected_outcome(app: &Value, archives: &Archives) -> Outcome {
    let figures = figures(app, archives);
    let c = &archives.contributions;
    let gaps = c.pointer("/missing_months").and_then(Value::as_array).map_or(0, Vec::len);
    let reason = text(app, "/employment/termination_reason");
    let work_abroad = flag(app, "/declarations/work_abroad");
    let suspended = flag(app, "/declarations/deadline_suspended");
    let registry = archives.registry.clone().unwrap_or(Value::Null);
    let exit = earlier_voluntary_exit(app, archives);
    let weeks_after_exit = archives.weeks_since_exit.as_ref().map(|w| number(w, "/weeks") as i64);

    let mut reasons = Vec::new();
    if reason == "voluntary_resignation" {
        reasons.push("Le dimissioni volontarie non danno diritto alla NASpI (art. 3 D.Lgs. 22/2015).".to_string());
    }
    if reason == "consensual_termination" {
        reasons.push("La risoluzione consensuale del rapporto di lavoro, fuori dalla procedura di conciliazione (art. 7 L. 604/1966) o dal rifiuto di un trasferimento, non dà diritto alla NASpI (art. 3 D.Lgs. 22/2015).".to_string());
    }
    if registry.get("pension_in_payment") == Some(&Value::Bool(true)) {
        reasons.push("Risulta già in pagamento una pensione, incompatibile con la NASpI.".to_string());
    }
    if figures.days_to_application > 68 && !suspended {
        reasons.push(format!(
            "La domanda è stata presentata {} giorni dopo la cessazione, oltre il termine di 68 giorni.",
            figures.days_to_application
        ));
    }
    if figures.useful_weeks < 13 && gaps == 0 && !work_abroad {
        reasons.push(format!(
            "Risultano {} settimane di contribuzione utile negli ultimi 4 anni; ne servono almeno 13.",
            figures.useful_weeks
        ));
    }
    if let Some(exit) = &exit {
        let after = weeks_after_exit.unwrap_or(0);
        if after < 13 && gaps == 0 {
            reasons.push(format!(
                "Dopo le dimissioni volontarie del {exit} risultano {after} settimane di contribuzione; ne servono almeno 13 (L. 207/2024)."
            ));
        }
    }
    if !reasons.is_empty() {
        return Outcome::Rejected { reasons, figures };
    }

    let mut failed = Vec::new();
    if !pratica_engine::connector::identity::is_valid_codice_fiscale(text(app, "/applicant/fiscal_code")) {
        failed.push("fiscal_code_invalid");
    }
    if let Some(iban) = app.pointer("/payment/iban").and_then(Value::as_str)
        && !pratica_engine::connector::identity::is_valid_iban(iban)
    {
        failed.push("iban_invalid");
    }
    let terminated = archives.employment.first().cloned().unwrap_or(Value::Null);
    if !flag(&terminated, "/found") {
        failed.push("termination_not_found");
    } else {
        if text(&terminated, "/termination_date") != text(app, "/employment/termination_date") {
            failed.push("termination_date_mismatch");
        }
        if text(&terminated, "/termination_reason") != reason {
            failed.push("termination_reason_mismatch");
        }
    }
    if reason == "just_cause_resignation" {
        failed.push("just_cause_evidence");
    }
    if figures.days_to_application > 68 && suspended {
        failed.push("deadline_suspended");
    }
    if gaps > 0 {
        failed.push("missing_contributions");
    }
    if work_abroad {
        failed.push("work_abroad");
    }
    if flag(app, "/declarations/new_activity") || registry.get("active_employment") == Some(&Value::Bool(true)) {
        failed.push("new_activity");
    }
    if registry.get("iban_holder_match") == Some(&Value::Bool(false)) {
        failed.push("iban_holder");
    }
    if archives.registry.is_none() {
        failed.push("registry_unavailable");
    }
    if figures.monthly_amount.is_none() {
        failed.push("parameters_unknown");
    }
    let documents_requested = reason == "just_cause_resignation" || work_abroad;
    if !failed.is_empty() || documents_requested {
        return Outcome::Review { failed_checks: failed.into_iter().map(String::from).collect(), documents_requested, figures };
    }
    let monthly_amount = figures.monthly_amount.expect("checked above");
    Outcome::Payout { monthly_amount, first_payment_cents: (monthly_amount * 100.0).round() as i64, figures }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for d in ["1970-01-01", "2024-02-29", "2025-03-31", "2025-06-07", "2026-12-31"] {
            assert_eq!(date_of(day_number(d)), d);
        }
        assert_eq!(day_number("2025-06-07") - day_number("2025-03-31"), 68);
        assert_eq!(age("1970-06-10", "2025-06-09"), 54);
        assert_eq!(age("1970-06-10", "2025-06-10"), 55);
    }

    #[test]
    fn worked_example_schedule() {
        let s = schedule(1259.56, 18, 6);
        assert_eq!(s[4], 1259.56);
        assert_eq!(s[5], 1221.77);
        assert_eq!(s[6], 1185.12);
        assert_eq!(s[7], 1149.57);
        assert_eq!(s[17], 847.72);
        let s = schedule(1259.56, 18, 8);
        assert_eq!(s[6], 1259.56);
        assert_eq!(s[7], 1221.77);
        assert_eq!(s[17], 900.97);
    }
}
