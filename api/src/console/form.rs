//! Task forms from their JSON Schema (`schemas/<form>.schema.json`): the HTML fields, and
//! the posted values parsed back into typed JSON.
//!
//! | schema | field |
//! |---|---|
//! | `string` | text input (`pattern`, `minLength`, `maxLength`); a textarea when `maxLength` > 200 |
//! | `string` with `enum` | select |
//! | `string` with `format: date` | date input (`YYYY-MM-DD`) |
//! | `integer`, `number` | number input with `min`, `max` and `step` |
//! | `boolean` | checkbox (unchecked is `false`) |
//! | `array` of enum strings | a group of checkboxes |
//! | `array` of strings or numbers | a textarea, one item per line |
//! | `object` | a fieldset with a legend, its properties inside |
//!
//! Field names are `f.<path>` (dots between nesting levels); ids are `field-<path>` with
//! dashes. Errors are shown per field (`.field-error`, linked with `aria-describedby`).

use std::collections::BTreeMap;

use maud::{Markup, html};
use serde_json::{Map, Number, Value};

use super::i18n::Lang;

/// One field of a form.
#[derive(Debug, Clone)]
pub struct Field {
    /// The property names from the form's root.
    pub path: Vec<String>,
    pub label: String,
    pub description: Option<String>,
    pub required: bool,
    pub kind: Kind,
    schema: Value,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Text,
    TextArea,
    Date,
    Select(Vec<Value>),
    Integer,
    Number,
    Boolean,
    Choices(Vec<Value>),
    Lines(String),
    Object(Vec<Field>),
}

impl Field {
    /// The JSON pointer of the field's value.
    pub fn pointer(&self) -> String {
        self.path.iter().map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1"))).collect()
    }

    pub fn name(&self) -> String {
        format!("f.{}", self.path.join("."))
    }

    pub fn id(&self) -> String {
        let safe: Vec<String> =
            self.path.iter().map(|p| p.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect()).collect();
        format!("field-{}", safe.join("-"))
    }
}

/// The fields of an object schema, in the schema's property order.
pub fn fields(schema: &Value) -> Vec<Field> {
    fields_at(schema, &[])
}

fn fields_at(schema: &Value, prefix: &[String]) -> Vec<Field> {
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    properties
        .iter()
        .map(|(name, prop)| {
            let mut path = prefix.to_vec();
            path.push(name.clone());
            let kind = kind_of(prop, &path);
            Field {
                label: prop.get("title").and_then(Value::as_str).unwrap_or(name).to_string(),
                description: prop.get("description").and_then(Value::as_str).map(str::to_string),
                required: required.contains(&name.as_str()),
                kind,
                schema: prop.clone(),
                path,
            }
        })
        .collect()
}

fn type_of(schema: &Value) -> &str {
    match schema.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("string"),
        _ if schema.get("enum").is_some() => "enum",
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    }
}

fn kind_of(schema: &Value, path: &[String]) -> Kind {
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        return Kind::Select(options.clone());
    }
    match type_of(schema) {
        "integer" => Kind::Integer,
        "number" => Kind::Number,
        "boolean" => Kind::Boolean,
        "object" => Kind::Object(fields_at(schema, path)),
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            match items.get("enum").and_then(Value::as_array) {
                Some(options) => Kind::Choices(options.clone()),
                None => Kind::Lines(type_of(&items).to_string()),
            }
        }
        _ if schema.get("format").and_then(Value::as_str) == Some("date") => Kind::Date,
        _ if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|n| n > 200) => Kind::TextArea,
        _ => Kind::Text,
    }
}

/// Error messages by field pointer (`""` for the form as a whole).
pub type Errors = BTreeMap<String, Vec<String>>;

/// Parses the posted `f.*` values into JSON per the fields' types. Values that cannot be
/// converted (a word in a number field) are reported as errors on their field; empty inputs
/// are left out.
pub fn parse(fields: &[Field], posted: &[(String, String)], lang: Lang) -> (Value, Errors) {
    let mut errors = Errors::new();
    let value = parse_object(fields, posted, lang, &mut errors);
    (Value::Object(value), errors)
}

fn parse_object(fields: &[Field], posted: &[(String, String)], lang: Lang, errors: &mut Errors) -> Map<String, Value> {
    let mut out = Map::new();
    for field in fields {
        let name = field.name();
        let values: Vec<&str> = posted.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.as_str()).collect();
        let first = values.first().map(|v| v.trim()).unwrap_or("");
        let key = field.path.last().cloned().unwrap_or_default();
        let mut bad = |message: String| errors.entry(field.pointer()).or_default().push(message);
        let parsed = match &field.kind {
            Kind::Object(children) => {
                let inner = parse_object(children, posted, lang, errors);
                (!inner.is_empty()).then_some(Value::Object(inner))
            }
            Kind::Boolean => Some(Value::Bool(values.iter().any(|v| matches!(*v, "on" | "true" | "1")))),
            _ if first.is_empty() && !matches!(field.kind, Kind::Choices(_) | Kind::Lines(_)) => None,
            Kind::Text | Kind::TextArea | Kind::Date => Some(Value::String(values[0].to_string())),
            Kind::Select(options) => match options.iter().find(|o| option_value(o) == first) {
                Some(option) => Some(option.clone()),
                None => {
                    bad(lang.pick("Scegli uno dei valori proposti.", "Choose one of the listed values.").to_string());
                    None
                }
            },
            Kind::Integer => match first.parse::<i64>() {
                Ok(n) => Some(Value::Number(n.into())),
                Err(_) => {
                    bad(lang.pick("Inserisci un numero intero.", "Enter a whole number.").to_string());
                    None
                }
            },
            Kind::Number => match first.replace(',', ".").parse::<f64>().ok().and_then(Number::from_f64) {
                Some(n) => Some(Value::Number(n)),
                None => {
                    bad(lang.pick("Inserisci un numero (es. 1234,56).", "Enter a number (e.g. 1234.56).").to_string());
                    None
                }
            },
            Kind::Choices(options) => {
                let chosen: Vec<Value> = options.iter().filter(|o| values.contains(&option_value(o).as_str())).cloned().collect();
                (!chosen.is_empty()).then_some(Value::Array(chosen))
            }
            Kind::Lines(item_type) => {
                let mut items = Vec::new();
                for line in values.iter().flat_map(|v| v.lines()).map(str::trim).filter(|l| !l.is_empty()) {
                    let item = match item_type.as_str() {
                        "integer" => line.parse::<i64>().ok().map(|n| Value::Number(n.into())),
                        "number" => line.replace(',', ".").parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number),
                        _ => Some(Value::String(line.to_string())),
                    };
                    match item {
                        Some(item) => items.push(item),
                        None => bad(format!("{} `{line}`", lang.pick("Non è un numero:", "Not a number:"))),
                    }
                }
                (!items.is_empty()).then_some(Value::Array(items))
            }
        };
        if let Some(value) = parsed {
            out.insert(key, value);
        }
    }
    out
}

fn option_value(option: &Value) -> String {
    match option {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A schema validation message in the console's language, for the usual kinds of error
/// (others keep the validator's English text).
pub fn localize(message: &str, lang: Lang) -> String {
    let after = |marker: &str| message.rsplit_once(marker).map(|(_, rest)| rest.trim().to_string());
    if message.contains(" is a required property") {
        lang.pick("Campo obbligatorio.", "This field is required.").to_string()
    } else if message.contains(" does not match ") {
        lang.pick("Il valore non ha il formato richiesto.", "The value does not have the required format.").to_string()
    } else if let Some(max) = after("greater than the maximum of") {
        format!("{} {max}.", lang.pick("Il valore massimo è", "The largest allowed value is"))
    } else if let Some(min) = after("less than the minimum of") {
        format!("{} {min}.", lang.pick("Il valore minimo è", "The smallest allowed value is"))
    } else if message.contains(" is longer than ") {
        lang.pick("Il testo è troppo lungo.", "The text is too long.").to_string()
    } else if message.contains(" is shorter than ") {
        lang.pick("Il testo è troppo corto.", "The text is too short.").to_string()
    } else if message.contains("is not a \"date\"") {
        lang.pick("Inserisci una data valida (AAAA-MM-GG).", "Enter a valid date (YYYY-MM-DD).").to_string()
    } else if message.contains(" is not one of ") {
        lang.pick("Scegli uno dei valori proposti.", "Choose one of the listed values.").to_string()
    } else if message.contains(" is not of type ") {
        lang.pick("Il valore non è del tipo richiesto.", "The value is not of the expected type.").to_string()
    } else {
        message.to_string()
    }
}

/// Assigns schema validation errors (JSON pointers) to the deepest field they concern, in
/// the console's language; an error about a missing required property goes to that
/// property's field.
pub fn assign_errors(fields: &[Field], validation: &[pratica_engine::schemas::FieldError], errors: &mut Errors, lang: Lang) {
    let mut pointers = Vec::new();
    collect_pointers(fields, &mut pointers);
    for e in validation {
        let mut target = e.field.clone();
        if let Some(missing) =
            e.message.strip_prefix('"').and_then(|m| m.split_once('"')).filter(|(_, rest)| rest.contains("required")).map(|(name, _)| name)
        {
            target = format!("{}/{}", e.field, missing);
        }
        let owner = pointers
            .iter()
            .filter(|p| target == **p || target.starts_with(&format!("{p}/")))
            .max_by_key(|p| p.len())
            .cloned()
            .unwrap_or_default();
        errors.entry(owner).or_default().push(localize(&e.message, lang));
    }
}

fn collect_pointers(fields: &[Field], out: &mut Vec<String>) {
    for field in fields {
        out.push(field.pointer());
        if let Kind::Object(children) = &field.kind {
            collect_pointers(children, out);
        }
    }
}

/// A field's label for the error summary.
pub fn label_of(fields: &[Field], pointer: &str) -> Option<(String, String)> {
    for field in fields {
        if field.pointer() == pointer {
            return Some((field.label.clone(), field.id()));
        }
        if let Kind::Object(children) = &field.kind
            && let Some(found) = label_of(children, pointer)
        {
            return Some(found);
        }
    }
    None
}

/// The fields as HTML, filled with `values` — or, after a refused submission, with exactly
/// what was typed (`posted`, non-empty) — with `errors` next to their fields.
pub fn render(fields: &[Field], values: &Value, posted: &[(String, String)], errors: &Errors, lang: Lang) -> Markup {
    html! { @for field in fields { (render_field(field, values, posted, errors, lang)) } }
}

fn render_field(field: &Field, values: &Value, posted: &[(String, String)], errors: &Errors, lang: Lang) -> Markup {
    let id = field.id();
    let name = field.name();
    let value = values.pointer(&field.pointer());
    let typed: Vec<&str> = posted.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.as_str()).collect();
    let was_posted = !posted.is_empty();
    let field_errors = errors.get(&field.pointer()).cloned().unwrap_or_default();
    let invalid = !field_errors.is_empty();
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let mut described = Vec::new();
    if field.description.is_some() {
        described.push(hint_id.clone());
    }
    if invalid {
        described.push(error_id.clone());
    }
    let described = (!described.is_empty()).then(|| described.join(" "));
    let text_value = match value {
        _ if was_posted => typed.join("\n"),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let checked_bool = if was_posted { typed.iter().any(|v| matches!(*v, "true" | "on" | "1")) } else { value == Some(&Value::Bool(true)) };
    let s = &field.schema;
    let num = |k: &str| s.get(k).and_then(Value::as_f64).map(|n| n.to_string());
    let required_mark = html! { @if field.required { span .required aria-hidden="true" { " *" } } };
    let hint = html! { @if let Some(d) = &field.description { p .hint id=(hint_id) { (d) } } };
    let error = html! {
        @if invalid {
            p .field-error id=(error_id) { span .visually-hidden { (lang.pick("Errore: ", "Error: ")) } (field_errors.join(" ")) }
        }
    };
    let class = if invalid { "field invalid" } else { "field" };
    match &field.kind {
        Kind::Object(children) => html! {
            fieldset .group id=(id) aria-describedby=[described] {
                legend { (field.label) (required_mark) }
                (hint) (error)
                @for child in children { (render_field(child, values, posted, errors, lang)) }
            }
        },
        Kind::Boolean => html! {
            div class=(format!("{class} checkbox")) {
                input type="checkbox" id=(id) name=(name) value="true" checked[checked_bool] aria-describedby=[described] aria-invalid=[invalid.then_some("true")];
                label for=(id) { (field.label) (required_mark) }
                (hint) (error)
            }
        },
        Kind::Choices(options) => html! {
            fieldset class=(class) id=(id) aria-describedby=[described] {
                legend { (field.label) (required_mark) }
                (hint) (error)
                @for (i, option) in options.iter().enumerate() {
                    @let v = option_value(option);
                    @let checked = if was_posted { typed.contains(&v.as_str()) } else { value.and_then(Value::as_array).is_some_and(|a| a.contains(option)) };
                    div .checkbox {
                        input type="checkbox" id=(format!("{id}-{i}")) name=(name) value=(v) checked[checked];
                        label for=(format!("{id}-{i}")) { (v) }
                    }
                }
            }
        },
        _ => html! {
            div class=(class) {
                label for=(id) { (field.label) (required_mark) }
                (hint) (error)
                @match &field.kind {
                    Kind::Select(options) => {
                        select id=(id) name=(name) required[field.required] aria-describedby=[described.clone()] aria-invalid=[invalid.then_some("true")] {
                            option value="" { "—" }
                            @for option in options {
                                @let v = option_value(option);
                                option value=(v) selected[v == text_value] { (v) }
                            }
                        }
                    },
                    Kind::TextArea => {
                        textarea id=(id) name=(name) rows="4" required[field.required] maxlength=[s.get("maxLength").and_then(Value::as_u64)] aria-describedby=[described.clone()] aria-invalid=[invalid.then_some("true")] { (text_value) }
                    },
                    Kind::Lines(_) => {
                        @let lines = if was_posted { text_value.clone() } else { value.and_then(Value::as_array).map(|a| a.iter().map(option_value).collect::<Vec<_>>().join("\n")).unwrap_or_default() };
                        textarea id=(id) name=(name) rows="3" aria-describedby=[described.clone()] aria-invalid=[invalid.then_some("true")] { (lines) }
                        p .hint { (lang.pick("Un valore per riga.", "One value per line.")) }
                    },
                    Kind::Integer | Kind::Number => {
                        input type="number" id=(id) name=(name) value=(text_value) required[field.required]
                            min=[num("minimum")] max=[num("maximum")] step=(if matches!(field.kind, Kind::Integer) { "1" } else { "any" })
                            inputmode=(if matches!(field.kind, Kind::Integer) { "numeric" } else { "decimal" })
                            aria-describedby=[described.clone()] aria-invalid=[invalid.then_some("true")];
                    },
                    Kind::Date => {
                        input type="date" id=(id) name=(name) value=(text_value) required[field.required] aria-describedby=[described.clone()] aria-invalid=[invalid.then_some("true")];
                    },
                    _ => {
                        input type="text" id=(id) name=(name) value=(text_value) required[field.required]
                            pattern=[s.get("pattern").and_then(Value::as_str)]
                            minlength=[s.get("minLength").and_then(Value::as_u64)] maxlength=[s.get("maxLength").and_then(Value::as_u64)]
                            aria-describedby=[described.clone()] aria-invalid=[invalid.then_some("true")];
                    },
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["iban"],
            "properties": {
                "iban": {"type": "string", "title": "IBAN", "pattern": "^IT"},
                "weeks": {"type": "integer", "minimum": 0, "maximum": 208},
                "amount": {"type": "number"},
                "ok": {"type": "boolean"},
                "start": {"type": "string", "format": "date"},
                "kind": {"enum": ["a", "b"]},
                "checks": {"type": "array", "items": {"type": "string"}},
                "notes": {"type": "string", "maxLength": 4000},
                "address": {"type": "object", "properties": {"city": {"type": "string"}}}
            }
        })
    }

    #[test]
    fn posted_values_become_typed_json_and_bad_numbers_are_field_errors() {
        let fields = fields(&schema());
        let posted: Vec<(String, String)> = [
            ("f.iban", "IT60X"),
            ("f.weeks", "52"),
            ("f.amount", "1234,5"),
            ("f.ok", "true"),
            ("f.start", ""),
            ("f.kind", "b"),
            ("f.checks", "x\r\n\r\ny"),
            ("f.address.city", "Roma"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (value, errors) = parse(&fields, &posted, Lang::En);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            value,
            json!({"iban": "IT60X", "weeks": 52, "amount": 1234.5, "ok": true, "kind": "b", "checks": ["x", "y"], "address": {"city": "Roma"}})
        );
        let (_, errors) = parse(&fields, &[("f.weeks".into(), "many".into())], Lang::En);
        assert!(errors["/weeks"][0].contains("whole number"));
    }

    #[test]
    fn fields_render_with_labels_and_errors_are_linked() {
        let fields = fields(&schema());
        let mut errors = Errors::new();
        let validation = [pratica_engine::schemas::FieldError { field: String::new(), message: "\"iban\" is a required property".into() }];
        assign_errors(&fields, &validation, &mut errors, Lang::It);
        assert_eq!(errors["/iban"], ["Campo obbligatorio."], "{errors:?}");
        let html = render(&fields, &json!({"weeks": 3}), &[], &errors, Lang::It).into_string();
        assert!(html.contains(r#"<label for="field-iban">IBAN"#), "{html}");
        assert!(html.contains(r#"aria-describedby="field-iban-error""#), "{html}");
        assert!(html.contains(r#"class="field-error" id="field-iban-error""#));
        assert!(html.contains(r#"type="date""#) && html.contains("<textarea") && html.contains("<fieldset"));
        assert!(html.contains(r#"value="3""#));
        assert_eq!(label_of(&fields, "/address/city").map(|(_, id)| id).as_deref(), Some("field-address-city"));
        // After a refused submission the form shows what was typed, even if it is not a number.
        let posted = [("f.weeks".to_string(), "many".to_string()), ("f.ok".to_string(), "true".to_string())];
        let html = render(&fields, &json!({}), &posted, &errors, Lang::En).into_string();
        assert!(html.contains(r#"value="many""#) && html.contains("checked"), "{html}");
        assert_eq!(localize("300 is greater than the maximum of 208", Lang::En), "The largest allowed value is 208.");
        assert_eq!(localize("\"x\" does not match \"^IT\"", Lang::It), "Il valore non ha il formato richiesto.");
    }
}
