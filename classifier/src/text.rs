//! Italian text to terms: lowercase, accents folded, stop words out, a light stemmer, word
//! unigrams and bigrams (`a_b`).

/// Words that say nothing about the office: articles, prepositions, pronouns, auxiliaries,
/// greetings and the formulas every PEC carries.
const STOP_WORDS: &[&str] = &[
    "a",
    "ad",
    "al",
    "alla",
    "alle",
    "allo",
    "ai",
    "agli",
    "all",
    "anche",
    "ancora",
    "avere",
    "ho",
    "ha",
    "hanno",
    "abbiamo",
    "avete",
    "c",
    "che",
    "chi",
    "ci",
    "come",
    "con",
    "cui",
    "da",
    "dal",
    "dalla",
    "dalle",
    "dai",
    "dagli",
    "dall",
    "de",
    "degli",
    "dei",
    "del",
    "della",
    "delle",
    "dello",
    "dell",
    "di",
    "e",
    "ed",
    "essere",
    "gli",
    "i",
    "il",
    "in",
    "io",
    "l",
    "la",
    "le",
    "lo",
    "ma",
    "mi",
    "mia",
    "mio",
    "miei",
    "mie",
    "ne",
    "nei",
    "nel",
    "nella",
    "nelle",
    "nello",
    "nell",
    "no",
    "non",
    "o",
    "per",
    "piu",
    "po",
    "qual",
    "quale",
    "quali",
    "quanto",
    "questa",
    "questo",
    "se",
    "si",
    "sia",
    "sono",
    "sta",
    "su",
    "sua",
    "sue",
    "sui",
    "sul",
    "sulla",
    "suo",
    "suoi",
    "ti",
    "tra",
    "fra",
    "tu",
    "un",
    "una",
    "uno",
    "vi",
    "voi",
    "noi",
    "loro",
    "era",
    "stato",
    "stata",
    "stati",
    "essa",
    "esso",
    "gia",
    "dopo",
    "prima",
    "poi",
    "cosi",
    "oltre",
    "presente",
    "scrivente",
    "sottoscritto",
    "sottoscritta",
    "gentili",
    "gentile",
    "signori",
    "spett",
    "spett.le",
    "buongiorno",
    "salve",
    "egregi",
    "cordiali",
    "distinti",
    "saluti",
    "saluto",
    "grazie",
    "cortese",
    "cortesemente",
    "attenzione",
    "c.a",
    "inps",
    "istituto",
    "sede",
    "chiedo",
    "chiede",
    "chiediamo",
    "vorrei",
    "prego",
    "allego",
    "allegato",
    "allegata",
    "inoltre",
    "pec",
    "r",
    "fwd",
    "re",
    "posta",
    "certificata",
    "oggetto",
    "nome",
    "conto",
];

/// Folds accented letters (and apostrophe-accents such as `e'`) to plain ASCII letters.
fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ä' => 'a',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ò' | 'ó' | 'ô' | 'ö' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        other => other,
    }
}

/// Lowercase, accents folded, everything that is not a letter or digit turned into a space.
pub fn normalise(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).map(fold).map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect()
}

/// A light Italian suffix stemmer: plural and gender endings, a few derivational suffixes, so
/// that `pensione`/`pensioni`, `contributo`/`contributi`/`contributiva` meet.
fn stem(word: &str) -> String {
    const SUFFIXES: &[&str] = &[
        "amento", "amenti", "imento", "imenti", "azione", "azioni", "mente", "abile", "ibile", "ista", "iste", "isti", "ivo", "iva", "ivi",
        "ive", "oso", "osa", "osi", "ose", "ale", "ali", "are", "ere", "ire", "ato", "ata", "ati", "ate", "uto", "uta", "uti", "ute",
        "ito", "ita", "iti", "ite", "i", "e", "a", "o",
    ];
    let chars = word.chars().count();
    for suffix in SUFFIXES {
        let s = suffix.chars().count();
        if word.ends_with(suffix) && chars >= s + 4 {
            return word[..word.len() - suffix.len()].to_string();
        }
    }
    word.to_string()
}

/// The terms of a text: stemmed words without stop words and numbers.
pub fn tokens(text: &str) -> Vec<String> {
    normalise(text)
        .split_whitespace()
        .filter(|w| w.chars().count() >= 2 && !w.chars().all(|c| c.is_ascii_digit()) && !STOP_WORDS.contains(w))
        .map(stem)
        .collect()
}

/// The features of a message: the subject's terms twice (it is written to say what the mail
/// is about), the body's once, and the bigrams of each.
pub fn features(subject: &str, body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let subject = tokens(subject);
    let body = tokens(body);
    for _ in 0..2 {
        out.extend(subject.iter().cloned());
        out.extend(subject.windows(2).map(|w| format!("{}_{}", w[0], w[1])));
    }
    out.extend(body.iter().cloned());
    out.extend(body.windows(2).map(|w| format!("{}_{}", w[0], w[1])));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_accents_drops_stop_words_and_stems() {
        assert_eq!(tokens("La Pensione è sospesa, perché?"), vec!["pension", "sospes", "perch"]);
        assert_eq!(tokens("pensioni"), tokens("pensione"));
        assert_eq!(tokens("NASpI 2025 n. 13"), vec!["nasp"]);
        assert_eq!(tokens("e' già"), Vec::<String>::new());
    }

    #[test]
    fn subject_counts_twice_and_bigrams_join_words() {
        let f = features("assegno unico", "figli");
        assert_eq!(f.iter().filter(|t| *t == "assegn").count(), 2);
        assert!(f.contains(&"assegn_unic".to_string()) && f.contains(&"figl".to_string()));
    }
}
