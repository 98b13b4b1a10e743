//! Fictitious citizens and what the (sandbox) INPS archives know about them.
//!
//! Each citizen carries a [`Scenario`] saying which path of the NASpI process their
//! application should take, and archive data built to take it: contribution periods,
//! employment records (UNILAV / UniEmens), the pension and bank registries, an App IO
//! profile. The declaration they would file ([`Citizen::application`]) may disagree with the
//! archives on purpose (the `review` scenario).

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ids;

/// The path an application of this citizen is meant to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Every check passes: automatic payout from the start date.
    Clean,
    /// The archives disagree with the declaration (termination reason, missing employer
    /// returns): an operator reviews the case.
    Review,
    /// Resignation for just cause: the citizen is asked for documents, then an operator reviews.
    Documents,
    /// A clear ground for rejection (voluntary resignation, a pension, too few weeks).
    Rejected,
    /// Involuntarily unemployed and has not applied yet: the proactive notification finds them.
    Unclaimed,
}

/// The citizen's App IO profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppIo {
    /// On App IO, messages from INPS allowed.
    Enabled,
    /// On App IO, INPS messages turned off.
    SenderNotAllowed,
    /// Not on App IO.
    NoProfile,
}

/// Contributions paid for one period (a UniEmens summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContributionPeriod {
    pub from: NaiveDate,
    pub until: NaiveDate,
    pub weeks: u32,
    /// Taxable pay of the period, in euro.
    pub taxable_pay: f64,
}

/// One employment relationship as the UNILAV / UniEmens records have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmploymentRecord {
    pub employer_fiscal_code: String,
    pub employer_name: String,
    pub contract_type: String,
    pub start_date: NaiveDate,
    pub termination_date: Option<NaiveDate>,
    pub termination_reason: Option<String>,
}

/// What the citizen declares in the application, where it may differ from the archives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Declaration {
    /// Index in `employment` of the job whose end is the ground of the application.
    pub job: usize,
    pub termination_reason: String,
    pub termination_date: NaiveDate,
    #[serde(default)]
    pub work_abroad: bool,
    #[serde(default)]
    pub deadline_suspended: bool,
    #[serde(default)]
    pub new_activity: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Residence {
    pub address: String,
    pub postal_code: String,
    pub municipality: String,
    pub province: String,
}

/// A fictitious citizen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citizen {
    pub fiscal_code: String,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: NaiveDate,
    pub email: Option<String>,
    pub residence: Residence,
    /// The competent INPS office (4 digits).
    pub office: String,
    /// The IBAN registered to the citizen in the bank registry, if any.
    pub iban: Option<String>,
    pub scenario: Scenario,
    pub app_io: AppIo,
    #[serde(default)]
    pub contributions: Vec<ContributionPeriod>,
    #[serde(default)]
    pub weeks_already_used: u32,
    /// Months (`YYYY-MM`) whose employer returns are missing.
    #[serde(default)]
    pub missing_months: Vec<String>,
    #[serde(default)]
    pub employment: Vec<EmploymentRecord>,
    #[serde(default)]
    pub pension_in_payment: bool,
    #[serde(default)]
    pub active_employment: bool,
    pub declaration: Option<Declaration>,
}

fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

impl Citizen {
    /// `inps.contributions`: weeks and taxable pay from `from` (or `years` before `until`)
    /// to `until`. A period partly inside the window counts pro rata by days.
    pub fn contributions(&self, from: Option<NaiveDate>, until: NaiveDate, years: u32) -> Value {
        let start = from.unwrap_or_else(|| until.checked_sub_months(Months::new(12 * years)).unwrap_or(until));
        let (mut weeks, mut pay) = (0u32, 0.0f64);
        for p in &self.contributions {
            let (a, b) = (p.from.max(start), p.until.min(until));
            if a > b {
                continue;
            }
            let total = (p.until - p.from).num_days() + 1;
            let inside = (b - a).num_days() + 1;
            if inside >= total {
                weeks += p.weeks;
                pay += p.taxable_pay;
            } else {
                weeks += (u64::from(p.weeks) * inside as u64 / total as u64) as u32;
                pay += p.taxable_pay * inside as f64 / total as f64;
            }
        }
        let in_window = |m: &&String| date(&format!("{m}-01")).is_some_and(|d| d >= start.with_day(1).unwrap_or(start) && d <= until);
        let missing: Vec<&String> = self.missing_months.iter().filter(in_window).collect();
        json!({
            "weeks": weeks,
            "weeks_already_used": if from.is_some() { 0 } else { self.weeks_already_used.min(weeks) },
            "taxable_pay": round_cents(pay),
            "missing_months": missing,
        })
    }

    /// `inps.employment`: the record of the job with this employer and start date.
    pub fn employment(&self, employer_fiscal_code: &str, start_date: Option<NaiveDate>) -> Value {
        let record =
            self.employment.iter().find(|r| r.employer_fiscal_code == employer_fiscal_code && start_date.is_none_or(|d| d == r.start_date));
        match record {
            Some(r) => json!({
                "found": true,
                "contract_type": r.contract_type,
                "start_date": r.start_date,
                "termination_date": r.termination_date,
                "termination_reason": r.termination_reason,
            }),
            None => not_found_employment(),
        }
    }

    /// `inps.registry`: pension and employment registries, and whether `iban` is the citizen's.
    pub fn registry(&self, iban: Option<&str>) -> Value {
        let normal = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
        let matches = match (iban, &self.iban) {
            (Some(given), Some(own)) => normal(given) == normal(own),
            _ => false,
        };
        json!({
            "pension_in_payment": self.pension_in_payment,
            "active_employment": self.active_employment,
            "iban_holder_match": matches,
        })
    }

    /// The termination that gives the right to NASpI: the declared job, else the latest ended one.
    pub fn terminated_job(&self) -> Option<&EmploymentRecord> {
        match &self.declaration {
            Some(d) => self.employment.get(d.job),
            None => self.employment.iter().filter(|r| r.termination_date.is_some()).max_by_key(|r| r.termination_date),
        }
    }

    /// The NASpI application this citizen would file on `application_date`
    /// (`naspi-application` schema). `None` without a declaration or a declared job.
    pub fn application(&self, application_id: &str, application_date: NaiveDate, channel: &str) -> Option<Value> {
        let d = self.declaration.as_ref()?;
        let job = self.employment.get(d.job)?;
        let end = d.termination_date;
        let job_json = |r: &EmploymentRecord, reason: &str, end: NaiveDate| {
            json!({
                "employer_fiscal_code": r.employer_fiscal_code,
                "employer_name": r.employer_name,
                "contract_type": r.contract_type,
                "start_date": r.start_date,
                "termination_date": end,
                "termination_reason": reason,
            })
        };
        let year_before = end.checked_sub_days(Days::new(365)).unwrap_or(end);
        let previous: Vec<Value> = self
            .employment
            .iter()
            .enumerate()
            .filter(|(i, r)| *i != d.job && r.termination_date.is_some_and(|t| t >= year_before && t <= end))
            .map(|(_, r)| job_json(r, r.termination_reason.as_deref().unwrap_or("fixed_term_expiry"), r.termination_date.unwrap_or(end)))
            .collect();
        let payment = match &self.iban {
            Some(iban) => json!({"method": "bank_account", "iban": iban}),
            None => json!({"method": "post_office_cash"}),
        };
        let mut applicant = json!({
            "fiscal_code": self.fiscal_code,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "birth_date": self.birth_date,
            "email": self.email.clone().unwrap_or_else(|| format!("{}@example.invalid", self.fiscal_code.to_lowercase())),
            "residence": self.residence,
        });
        if self.email.is_none() {
            applicant["email"] = json!(format!("{}.{}@posta.example", self.first_name.to_lowercase(), self.last_name.to_lowercase()));
        }
        Some(json!({
            "application_id": application_id,
            "application_date": application_date,
            "channel": channel,
            "office": self.office,
            "applicant": applicant,
            "employment": job_json(job, &d.termination_reason, end),
            "previous_jobs": previous,
            "payment": payment,
            "declarations": {
                "work_abroad": d.work_abroad,
                "deadline_suspended": d.deadline_suspended,
                "new_activity": d.new_activity,
            },
        }))
    }
}

/// `inps.employment` for a job the archives do not know.
pub fn not_found_employment() -> Value {
    json!({"found": false, "contract_type": null, "start_date": null, "termination_date": null, "termination_reason": null})
}

/// `inps.contributions` for a fiscal code the archives do not know.
pub fn no_contributions() -> Value {
    json!({"weeks": 0, "weeks_already_used": 0, "taxable_pay": 0.0, "missing_months": []})
}

/// `inps.registry` for a fiscal code the archives do not know.
pub fn unknown_registry() -> Value {
    json!({"pension_in_payment": false, "active_employment": false, "iban_holder_match": false})
}

/// A municipality: cadastral code, name, province, postal code, competent INPS office.
struct Place {
    code: &'static str,
    name: &'static str,
    province: &'static str,
    cap: &'static str,
    office: &'static str,
}

const PLACES: [Place; 6] = [
    Place { code: "H501", name: "Roma", province: "RM", cap: "00185", office: "7000" },
    Place { code: "F205", name: "Milano", province: "MI", cap: "20121", office: "4900" },
    Place { code: "F839", name: "Napoli", province: "NA", cap: "80133", office: "5100" },
    Place { code: "L219", name: "Torino", province: "TO", cap: "10121", office: "8100" },
    Place { code: "A944", name: "Bologna", province: "BO", cap: "40121", office: "1300" },
    Place { code: "G273", name: "Palermo", province: "PA", cap: "90133", office: "5500" },
];

/// Input of [`make_citizen`]: who, where, and which path.
pub struct Spec<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub female: bool,
    pub birth_date: NaiveDate,
    /// Index into the sandbox's municipalities (Roma, Milano, Napoli, Torino, Bologna, Palermo).
    pub place: usize,
    pub scenario: Scenario,
    pub app_io: AppIo,
    pub with_email: bool,
    /// The last day of the job the application is about.
    pub termination_date: NaiveDate,
    /// Average monthly pay of the job, in euro.
    pub monthly_pay: f64,
    /// A number making bank accounts and employers distinct.
    pub serial: u32,
}

/// Builds a citizen whose archives make an application take `spec.scenario`'s path.
pub fn make_citizen(spec: &Spec<'_>) -> Citizen {
    let place = &PLACES[spec.place % PLACES.len()];
    let fiscal_code = ids::codice_fiscale(spec.last_name, spec.first_name, spec.birth_date, spec.female, place.code);
    let employer_fiscal_code = format!("{:011}", 10_000_000_000u64 + u64::from(spec.serial) * 7919 % 9_000_000_000);
    let end = spec.termination_date;
    let start = end.checked_sub_months(Months::new(36)).unwrap_or(end);
    let weeks = 156;
    let mut contributions =
        vec![ContributionPeriod { from: start, until: end, weeks, taxable_pay: round_cents(spec.monthly_pay * f64::from(weeks) / 4.33) }];
    let (mut archive_reason, mut declared_reason) = ("dismissal".to_string(), "dismissal".to_string());
    let (mut pension, mut missing) = (false, vec![]);
    match spec.scenario {
        Scenario::Clean | Scenario::Unclaimed => {}
        Scenario::Review => {
            if spec.serial.is_multiple_of(2) {
                // Declared a dismissal; the UNILAV record says the fixed term expired.
                archive_reason = "fixed_term_expiry".into();
            } else {
                missing = vec![end.format("%Y-%m").to_string()];
            }
        }
        Scenario::Documents => {
            archive_reason = "just_cause_resignation".into();
            declared_reason = "just_cause_resignation".into();
        }
        Scenario::Rejected => match spec.serial % 3 {
            0 => {
                archive_reason = "voluntary_resignation".into();
                declared_reason = "voluntary_resignation".into();
            }
            1 => pension = true,
            _ => {
                let short_start = end.checked_sub_days(Days::new(60)).unwrap_or(end);
                contributions = vec![ContributionPeriod {
                    from: short_start,
                    until: end,
                    weeks: 8,
                    taxable_pay: round_cents(spec.monthly_pay * 8.0 / 4.33),
                }];
            }
        },
    }
    let job = EmploymentRecord {
        employer_fiscal_code,
        employer_name: EMPLOYERS[spec.serial as usize % EMPLOYERS.len()].to_string(),
        contract_type: if archive_reason == "fixed_term_expiry" { "fixed_term".into() } else { "permanent".into() },
        start_date: contributions[0].from,
        termination_date: Some(end),
        termination_reason: Some(archive_reason),
    };
    let iban = ids::italian_iban("99999", &format!("{:05}", 10_000 + spec.serial % 90_000), &format!("{:012}", 100_000 + spec.serial));
    let email = spec.with_email.then(|| format!("{}.{}@posta.example", ascii_lower(spec.first_name), ascii_lower(spec.last_name)));
    Citizen {
        fiscal_code,
        first_name: spec.first_name.into(),
        last_name: spec.last_name.into(),
        birth_date: spec.birth_date,
        email,
        residence: Residence {
            address: format!("Via {} {}", STREETS[spec.serial as usize % STREETS.len()], 1 + spec.serial % 120),
            postal_code: place.cap.into(),
            municipality: place.name.into(),
            province: place.province.into(),
        },
        office: place.office.into(),
        iban: Some(iban),
        scenario: spec.scenario,
        app_io: spec.app_io,
        contributions,
        weeks_already_used: 0,
        missing_months: missing,
        employment: vec![job],
        pension_in_payment: pension,
        active_employment: false,
        // Unclaimed citizens have not applied yet, but can: the declaration is what they would file.
        declaration: Some(Declaration {
            job: 0,
            termination_reason: declared_reason,
            termination_date: end,
            work_abroad: false,
            deadline_suspended: false,
            new_activity: false,
        }),
    }
}

fn ascii_lower(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphabetic).collect::<String>().to_lowercase()
}

const EMPLOYERS: [&str; 6] = [
    "Logistica Tiberina S.r.l.",
    "Officine Meccaniche Lombarde S.p.A.",
    "Ristorazione Partenopea S.r.l.",
    "Tessile Sabauda S.r.l.",
    "Servizi Emiliani Soc. Coop.",
    "Conserve del Golfo S.r.l.",
];

const STREETS: [&str; 6] = ["Garibaldi", "Mazzini", "Cavour", "Roma", "Verdi", "dei Mille"];

/// The citizens the sandbox starts with, with dates relative to `today`: two clean cases,
/// three for review (two by the archives, one for documents), three rejections, two people
/// who have not applied (proactive notification), and spares for trying things by hand.
pub fn seeded_citizens(today: NaiveDate) -> Vec<Citizen> {
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or(today);
    let ago = |days: u64| today.checked_sub_days(Days::new(days)).unwrap_or(today);
    use AppIo::*;
    use Scenario::*;
    let specs: Vec<Spec<'static>> = vec![
        Spec {
            first_name: "Mario",
            last_name: "Rossi",
            female: false,
            birth_date: d(1980, 1, 1),
            place: 0,
            scenario: Clean,
            app_io: Enabled,
            with_email: true,
            termination_date: ago(30),
            monthly_pay: 1800.0,
            serial: 1,
        },
        Spec {
            first_name: "Laura",
            last_name: "Bianchi",
            female: true,
            birth_date: d(1985, 8, 12),
            place: 1,
            scenario: Clean,
            app_io: NoProfile,
            with_email: true,
            termination_date: ago(28),
            monthly_pay: 1350.0,
            serial: 2,
        },
        Spec {
            first_name: "Giuseppe",
            last_name: "Esposito",
            female: false,
            birth_date: d(1976, 4, 23),
            place: 2,
            scenario: Review,
            app_io: Enabled,
            with_email: true,
            termination_date: ago(25),
            monthly_pay: 1600.0,
            serial: 4,
        },
        Spec {
            first_name: "Francesca",
            last_name: "Romano",
            female: true,
            birth_date: d(1990, 11, 3),
            place: 0,
            scenario: Documents,
            app_io: Enabled,
            with_email: true,
            termination_date: ago(22),
            monthly_pay: 1500.0,
            serial: 5,
        },
        Spec {
            first_name: "Antonio",
            last_name: "Colombo",
            female: false,
            birth_date: d(1972, 6, 15),
            place: 3,
            scenario: Rejected,
            app_io: SenderNotAllowed,
            with_email: true,
            termination_date: ago(26),
            monthly_pay: 1700.0,
            serial: 6,
        },
        Spec {
            first_name: "Giulia",
            last_name: "Ricci",
            female: true,
            birth_date: d(1961, 2, 27),
            place: 4,
            scenario: Rejected,
            app_io: Enabled,
            with_email: true,
            termination_date: ago(24),
            monthly_pay: 2100.0,
            serial: 7,
        },
        Spec {
            first_name: "Marco",
            last_name: "Ferrari",
            female: false,
            birth_date: d(1968, 9, 9),
            place: 0,
            scenario: Clean,
            app_io: Enabled,
            with_email: true,
            termination_date: ago(27),
            monthly_pay: 2600.0,
            serial: 9,
        },
        Spec {
            first_name: "Sofia",
            last_name: "Greco",
            female: true,
            birth_date: d(1993, 5, 30),
            place: 5,
            scenario: Review,
            app_io: NoProfile,
            with_email: true,
            termination_date: ago(23),
            monthly_pay: 1250.0,
            serial: 11,
        },
        Spec {
            first_name: "Elena",
            last_name: "De Luca",
            female: true,
            birth_date: d(1998, 7, 18),
            place: 2,
            scenario: Rejected,
            app_io: NoProfile,
            with_email: true,
            termination_date: ago(21),
            monthly_pay: 1100.0,
            serial: 8,
        },
        Spec {
            first_name: "Luca",
            last_name: "Bruno",
            female: false,
            birth_date: d(1987, 12, 2),
            place: 0,
            scenario: Unclaimed,
            app_io: Enabled,
            with_email: true,
            termination_date: ago(20),
            monthly_pay: 1450.0,
            serial: 12,
        },
        Spec {
            first_name: "Chiara",
            last_name: "Gallo",
            female: true,
            birth_date: d(1991, 3, 14),
            place: 1,
            scenario: Unclaimed,
            app_io: NoProfile,
            with_email: true,
            termination_date: ago(40),
            monthly_pay: 1300.0,
            serial: 13,
        },
        Spec {
            first_name: "Paolo",
            last_name: "Conti",
            female: false,
            birth_date: d(1983, 10, 21),
            place: 0,
            scenario: Clean,
            app_io: Enabled,
            with_email: true,
            termination_date: ago(15),
            monthly_pay: 1550.0,
            serial: 14,
        },
        Spec {
            first_name: "Alessandro",
            last_name: "Mancini",
            female: false,
            birth_date: d(1979, 1, 19),
            place: 0,
            scenario: Review,
            app_io: Enabled,
            with_email: true,
            termination_date: ago(19),
            monthly_pay: 1700.0,
            serial: 16,
        },
    ];
    specs.iter().map(make_citizen).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_citizens_have_valid_identifiers_and_their_scenarios() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let citizens = seeded_citizens(today);
        let mut seen = std::collections::BTreeSet::new();
        for c in &citizens {
            assert!(ids::is_valid_codice_fiscale(&c.fiscal_code), "{}", c.fiscal_code);
            assert!(ids::is_valid_italian_iban(c.iban.as_deref().unwrap()), "{:?}", c.iban);
            assert!(seen.insert(c.fiscal_code.clone()), "unique fiscal codes");
        }
        assert_eq!(citizens[0].fiscal_code, "RSSMRA80A01H501U");
        let rossi = &citizens[0];
        let job = rossi.terminated_job().unwrap();
        let c = rossi.contributions(None, job.termination_date.unwrap(), 4);
        assert_eq!(c["weeks"], 156);
        assert_eq!(c["missing_months"], json!([]));
        assert_eq!(rossi.employment(&job.employer_fiscal_code, Some(job.start_date))["found"], true);
        assert_eq!(rossi.registry(rossi.iban.as_deref())["iban_holder_match"], true);
        assert_eq!(rossi.registry(Some("IT60X0542811101000000123456"))["iban_holder_match"], false);
        let app = rossi.application("NASPI-2026-000001", today, "online").unwrap();
        assert_eq!(app["applicant"]["fiscal_code"], "RSSMRA80A01H501U");
        assert!(citizens.iter().any(|c| c.scenario == Scenario::Unclaimed && c.application("x", today, "online").is_some()));
    }

    #[test]
    fn a_window_counts_periods_pro_rata() {
        let d = |m, day| NaiveDate::from_ymd_opt(2025, m, day).unwrap();
        let mut c = seeded_citizens(d(6, 1)).remove(0);
        c.contributions = vec![ContributionPeriod { from: d(1, 1), until: d(12, 31), weeks: 52, taxable_pay: 36500.0 }];
        let half = c.contributions(Some(d(7, 2)), d(12, 31), 4);
        assert_eq!(half["weeks"], 26);
        assert_eq!(half["weeks_already_used"], 0);
    }
}
