//! `pratica history INSTANCE` and `pratica audit verify [INSTANCE]`.

use std::io::Write;

use pratica_engine::audit;
use pratica_engine::store::{HistoryRow, Store};

/// One history entry as a timeline line: time, sequence, what, which step, who, details.
pub fn format_entry(h: &HistoryRow) -> String {
    let mut data = h.data.clone();
    if data.chars().count() > 160 {
        data = data.chars().take(157).collect::<String>() + "...";
    }
    let data = if data == "null" { String::new() } else { format!("  {data}") };
    format!(
        "{}  #{:<3} {:<22} {}{}{}",
        pratica_engine::clock::to_rfc3339(h.at),
        h.seq,
        h.kind,
        h.step.as_deref().unwrap_or("-"),
        h.actor.as_deref().map(|a| format!("  by {a}")).unwrap_or_default(),
        data
    )
}

/// Prints an instance's timeline.
pub async fn print_history(store: &Store, instance: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let row = store.instance(instance).await?;
    writeln!(out, "instance {} — {} v{} — {}", row.id, row.workflow, row.version, row.status)?;
    if let Some(key) = &row.business_key {
        writeln!(out, "business key {key}")?;
    }
    for h in store.history(instance).await? {
        writeln!(out, "{}", format_entry(&h))?;
    }
    Ok(())
}

/// Verifies the hash chains of one instance or all; returns how many are broken.
pub async fn verify(store: &Store, instance: Option<&str>, out: &mut impl Write) -> anyhow::Result<usize> {
    let ids = match instance {
        Some(id) => vec![id.to_string()],
        None => store.instance_ids().await?,
    };
    let mut broken = 0;
    for id in &ids {
        match audit::verify_instance(store, id).await? {
            Ok(()) => {
                if instance.is_some() {
                    writeln!(out, "ok  {id}: history intact")?;
                }
            }
            Err(b) => {
                broken += 1;
                writeln!(out, "TAMPERED  {id}: {b}")?;
            }
        }
    }
    writeln!(out, "{} instance(s) checked, {} intact, {} tampered", ids.len(), ids.len() - broken, broken)?;
    Ok(broken)
}
