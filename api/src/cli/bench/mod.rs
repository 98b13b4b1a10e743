//! `pratica bench`: the benchmark workloads of `docs/BENCHMARKS.md`, run against one or more
//! databases, printing one JSON line per result on standard output and a short summary on
//! standard error.
//!
//! | id | workload |
//! |----|----------|
//! | S  | raw storage limit with sqlx alone: single-row insert transactions (1 and 8 clients), rows/s at 100 rows per transaction |
//! | W1 | 1,000 instances × 10 `noop` steps, started as fast as possible; steps/s, and the ratio to S's batched row rate measured in the same run |
//! | W2 | 200 instances of a 3-step workflow one after the other; start-to-completion latency p50/p99 |
//! | W3 | 200 instances × 10 HTTP steps against an idempotency-aware sink; the engine (`pratica serve`, a child process) is killed with SIGKILL midway and restarted |
//! | W4 | 100,000 instances waiting on a human task; resident memory, office queue listing and business-key lookup times |
//! | P  | not run by default: W1 once, then the pieces of a worker pass timed one by one (µs per step) |
//!
//! Every workload runs on a fresh database: a new SQLite file (beside the one named by the
//! URL, or in a temporary directory) or a new PostgreSQL schema `bench_<uuid>`; all of them
//! are removed at the end. `--scale` multiplies the instance counts.

mod profile;
mod raw;
mod sink;
mod w1;
mod w2;
mod w3;
mod w4;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use pratica_engine::store;
use serde_json::{Map, Value, json};

/// The PostgreSQL measured when no `--db` is given.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `pratica bench` options.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Database to measure; repeat for several. `sqlite://FILE[?synchronous=full|normal]`: fresh
    /// files named after FILE are created beside it; `postgres://...`: a fresh schema
    /// `bench_<uuid>` per workload. Default: a temporary SQLite file (synchronous=full) and
    /// PostgreSQL at postgres://postgres@127.0.0.1:5432/test (skipped when unreachable).
    #[arg(long = "db")]
    pub db: Vec<String>,
    /// Workloads to run, comma-separated: S, W1, W2, W3, W4, and P (where a W1 step's time goes).
    #[arg(long, value_delimiter = ',', value_parser = parse_workload, default_value = "S,W1,W2,W3,W4")]
    pub workload: Vec<Workload>,
    /// Multiplies the instance counts (and shortens the raw measurements): 0.05 is a smoke run.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// W1: the engine batch sizes (jobs claimed and committed together) to try; the best is marked.
    #[arg(long, value_delimiter = ',', default_value = "64,256,1024")]
    pub batch: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    S,
    /// W1's profile: where a step's time goes.
    P,
    W1,
    W2,
    W3,
    W4,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::S => "S",
            Workload::P => "P",
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
        }
    }
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    match s.trim().to_ascii_uppercase().as_str() {
        "S" => Ok(Workload::S),
        "P" => Ok(Workload::P),
        "W1" => Ok(Workload::W1),
        "W2" => Ok(Workload::W2),
        "W3" => Ok(Workload::W3),
        "W4" => Ok(Workload::W4),
        other => Err(format!("unknown workload `{other}`: use S, W1, W2, W3, W4, P")),
    }
}

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Synchronous {
    Full,
    Normal,
}

impl Synchronous {
    fn name(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

/// A database to measure.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Fresh files `<stem>-<label>-<id>.db` in `dir`.
    Sqlite { dir: PathBuf, stem: String, synchronous: Synchronous },
    /// A fresh schema per workload in the database at `base` (a URL without `schema=`).
    Postgres { base: String },
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        if let Some(file) = path.strip_prefix("sqlite://").or_else(|| path.strip_prefix("sqlite:")) {
            let mut synchronous = Synchronous::Full;
            for p in &params {
                match *p {
                    "synchronous=full" | "synchronous=FULL" => synchronous = Synchronous::Full,
                    "synchronous=normal" | "synchronous=NORMAL" => synchronous = Synchronous::Normal,
                    other => anyhow::bail!("{url}: unsupported SQLite parameter `{other}` (use synchronous=full|normal)"),
                }
            }
            let file = Path::new(file);
            let dir = match file.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let stem = file.file_stem().and_then(|s| s.to_str()).filter(|s| !s.is_empty()).unwrap_or("bench").to_string();
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            Ok(Target::Sqlite { dir, stem, synchronous })
        } else if path.starts_with("postgres://") || path.starts_with("postgresql://") {
            let rest: Vec<&str> = params.into_iter().filter(|p| !p.starts_with("schema=")).collect();
            let base = if rest.is_empty() { path.to_string() } else { format!("{path}?{}", rest.join("&")) };
            Ok(Target::Postgres { base })
        } else {
            anyhow::bail!("unsupported database URL `{url}`: use sqlite://FILE or postgres://...")
        }
    }

    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Target::Sqlite { .. } => "sqlite",
            Target::Postgres { .. } => "postgres",
        }
    }

    /// The durability setting: SQLite's `synchronous`, PostgreSQL's `synchronous_commit`.
    pub(crate) fn synchronous(&self) -> &'static str {
        match self {
            Target::Sqlite { synchronous, .. } => synchronous.name(),
            Target::Postgres { .. } => "on",
        }
    }

    /// The same target with another SQLite `synchronous` setting.
    fn with_synchronous(&self, s: Synchronous) -> Target {
        match self {
            Target::Sqlite { dir, stem, .. } => Target::Sqlite { dir: dir.clone(), stem: stem.clone(), synchronous: s },
            other => other.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Sqlite { dir, synchronous, .. } => format!("SQLite in {} (synchronous={})", dir.display(), synchronous.name()),
            Target::Postgres { base } => format!("PostgreSQL at {}", redact(base)),
        }
    }
}

/// A URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Everything the benchmark created, removed at the end.
#[derive(Default)]
pub(crate) struct Scratch {
    files: Mutex<Vec<PathBuf>>,
    dirs: Mutex<Vec<PathBuf>>,
    schemas: Mutex<Vec<(String, String)>>,
}

impl Scratch {
    /// A fresh database on `target` for `label`: a new SQLite file or a new PostgreSQL schema.
    pub(crate) fn fresh(&self, target: &Target, label: &str) -> FreshDb {
        let id = uuid::Uuid::now_v7().simple().to_string();
        match target {
            Target::Sqlite { dir, stem, synchronous } => {
                let path = dir.join(format!("{stem}-{}-{}.db", label.to_ascii_lowercase(), &id[id.len() - 12..]));
                self.files.lock().expect("scratch lock").push(path.clone());
                let url = format!("sqlite://{}?synchronous={}", path.display(), synchronous.name());
                FreshDb { url, sqlite_path: Some(path), pg_schema: None }
            }
            Target::Postgres { base } => {
                let schema = format!("bench_{id}");
                self.schemas.lock().expect("scratch lock").push((base.clone(), schema.clone()));
                let sep = if base.contains('?') { '&' } else { '?' };
                FreshDb { url: format!("{base}{sep}schema={schema}"), sqlite_path: None, pg_schema: Some(schema) }
            }
        }
    }

    /// A directory to remove at the end.
    pub(crate) fn add_dir(&self, dir: PathBuf) {
        self.dirs.lock().expect("scratch lock").push(dir);
    }

    async fn cleanup(&self) {
        let files = std::mem::take(&mut *self.files.lock().expect("scratch lock"));
        for f in files {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = f.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
        }
        let schemas = std::mem::take(&mut *self.schemas.lock().expect("scratch lock"));
        for (base, schema) in schemas {
            if let Err(e) = store::drop_postgres_schema(&base, &schema).await {
                eprintln!("bench: could not drop schema {schema}: {e}");
            }
        }
        let dirs = std::mem::take(&mut *self.dirs.lock().expect("scratch lock"));
        for d in dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A fresh database.
pub(crate) struct FreshDb {
    /// The URL `Store::connect` and `pratica serve --db` take.
    pub url: String,
    pub sqlite_path: Option<PathBuf>,
    pub pg_schema: Option<String>,
}

/// What every workload gets.
pub(crate) struct Ctx<'a> {
    pub target: &'a Target,
    pub scratch: &'a Scratch,
    pub scale: f64,
}

impl Ctx<'_> {
    /// `n` scaled, at least `min`.
    pub(crate) fn count(&self, n: usize, min: usize) -> usize {
        ((n as f64 * self.scale).round() as usize).max(min)
    }

    /// How long a raw measurement runs: `secs` at full scale, shorter for smoke runs.
    pub(crate) fn duration(&self, secs: f64) -> Duration {
        Duration::from_secs_f64(secs * self.scale.clamp(0.2, 1.0))
    }

    /// The fields every result line starts with.
    pub(crate) fn head(&self, workload: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("workload".into(), json!(workload));
        m.insert("backend".into(), json!(self.target.backend()));
        m.insert("synchronous".into(), json!(self.target.synchronous()));
        m
    }
}

/// Deploys a benchmark workflow, with the problems spelled out if it is refused.
pub(crate) async fn deploy(engine: &pratica_engine::runtime::Engine, source: &str) -> anyhow::Result<()> {
    match engine.deploy(source).await {
        Ok(_) => Ok(()),
        Err(pratica_engine::runtime::EngineError::Definition(problems)) => {
            let list: Vec<String> = problems.iter().map(|d| format!("{}: {}", d.code, d.message)).collect();
            anyhow::bail!("benchmark workflow refused: {}", list.join("; "))
        }
        Err(e) => Err(e.into()),
    }
}

/// Prints one result line on standard output, with the machine's load average then (the
/// figures of a busy machine are not comparable with a quiet one's).
pub(crate) fn emit(mut line: Map<String, Value>) {
    if let Some(load) =
        std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().and_then(|x| x.parse::<f64>().ok()))
    {
        line.insert("loadavg_1m".into(), json!(load));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", Value::Object(line));
    let _ = out.flush();
}

/// Rounds for printing.
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The `q` quantile (0..=1) of sorted `values` (nearest rank).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A field of `/proc/self/status` in MiB (`VmRSS`, `VmHWM`), where there is one.
pub(crate) fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    let kib: f64 = line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (user + system) this process has used so far, where `/proc` tells.
pub(crate) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (USER_HZ = 100).
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs the benchmark. Fails only when nothing could be measured.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.scale > 0.0, "--scale must be positive");
    anyhow::ensure!(!args.batch.is_empty() && args.batch.iter().all(|b| *b > 0), "--batch needs positive sizes");
    let scratch = Scratch::default();
    // Interrupted or not, leave no scratch database behind.
    let result = tokio::select! {
        r = run_all(&args, &scratch) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    scratch.cleanup().await;
    result
}

async fn run_all(args: &BenchArgs, scratch: &Scratch) -> anyhow::Result<()> {
    let urls = if args.db.is_empty() {
        let dir = std::env::temp_dir().join(format!("pratica-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        scratch.add_dir(dir.clone());
        vec![format!("sqlite://{}?synchronous=full", dir.join("bench.db").display()), DEFAULT_POSTGRES.to_string()]
    } else {
        args.db.clone()
    };
    let mut targets = Vec::new();
    for url in &urls {
        let target = Target::parse(url)?;
        if let Target::Postgres { base } = &target {
            match tokio::time::timeout(Duration::from_secs(5), store::check_postgres(base)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    eprintln!("bench: PostgreSQL not reachable at {} ({e}); skipping it", redact(base));
                    continue;
                }
                Err(_) => {
                    eprintln!("bench: PostgreSQL not reachable at {} (timeout); skipping it", redact(base));
                    continue;
                }
            }
        }
        targets.push(target);
    }
    anyhow::ensure!(!targets.is_empty(), "no database to measure");
    let mut workloads = args.workload.clone();
    workloads.sort();
    workloads.dedup();
    eprintln!(
        "bench: workloads {} at scale {} on {} database(s)",
        workloads.iter().map(|w| w.name()).collect::<Vec<_>>().join(","),
        args.scale,
        targets.len()
    );
    let mut failures = 0;
    for target in &targets {
        eprintln!("bench: == {} ==", target.describe());
        let ctx = Ctx { target, scratch, scale: args.scale };
        for &w in &workloads {
            let outcome = match w {
                Workload::S => raw::run(&ctx).await,
                Workload::P => profile::run(&ctx).await,
                Workload::W1 => w1::run(&ctx, &args.batch).await,
                Workload::W2 => w2::run(&ctx).await,
                Workload::W3 => w3::run(&ctx).await,
                Workload::W4 => w4::run(&ctx).await,
            };
            if let Err(e) = outcome {
                failures += 1;
                eprintln!("bench: {} on {} failed: {e:#}", w.name(), target.backend());
                let mut line = ctx.head(w.name());
                line.insert("error".into(), json!(format!("{e:#}")));
                emit(line);
            }
        }
        // Sqlite targets also get a raw measurement at the other `synchronous` setting, so
        // S always covers FULL and NORMAL.
        if workloads.contains(&Workload::S)
            && let Target::Sqlite { synchronous, .. } = target
        {
            let other = if *synchronous == Synchronous::Full { Synchronous::Normal } else { Synchronous::Full };
            let other_target = target.with_synchronous(other);
            if !targets.iter().any(|t| matches!(t, Target::Sqlite { synchronous: s, .. } if *s == other)) {
                let ctx = Ctx { target: &other_target, scratch, scale: args.scale };
                if let Err(e) = raw::run(&ctx).await {
                    failures += 1;
                    eprintln!("bench: S on sqlite ({}) failed: {e:#}", other.name());
                }
            }
        }
    }
    if failures > 0 {
        eprintln!("bench: {failures} workload(s) failed (see the `error` lines)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let dir = std::env::temp_dir();
        let t = Target::parse(&format!("sqlite://{}/x.db?synchronous=normal", dir.display())).unwrap();
        assert!(matches!(t, Target::Sqlite { synchronous: Synchronous::Normal, ref stem, .. } if stem == "x"));
        let t = Target::parse("postgres://u@h/db?schema=abc&sslmode=disable").unwrap();
        assert!(matches!(t, Target::Postgres { ref base } if base == "postgres://u@h/db?sslmode=disable"));
        assert!(Target::parse("mysql://x").is_err());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
