//! The per-statement cost of the database's own enforcement of a
//! component's grants, against the previous path in the same run: the
//! host's unscoped handle.
//!
//! - PostgreSQL: the grant set's own role and pool, one session per request
//!   reset when the request ends, and the check for a schema change, against
//!   the host's pool.
//! - SQLite: the authorizer installed and cleared around each statement,
//!   against the same pool with none.
//!
//! One iteration is one request's handle (`Database::for_request`), a read
//! by primary key and an update of one row through `Database::query` /
//! `Database::execute`. Rounds alternate, so
//! drift on a shared machine hits both. `scripts/bench` starts a throwaway
//! PostgreSQL and runs it in release mode.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{Stats, measure};

use corral::bench::{Database, Postgres, PostgresOptions, Sqlite, Value};

const WARMUP: usize = 200;
const ITERATIONS: usize = 2_000;
const ROUNDS: usize = 3;

/// One request: its own handle (on PostgreSQL's scoped path, the session
/// it keeps until the end, reset once after it), a read and an update.
async fn cycle(db: &Arc<dyn Database>, i: i64) {
    let db = db.clone().for_request();
    let id = Value::Integer(i % 100);
    let rows = db
        .query("SELECT id, body FROM bench_sql WHERE id = ?", std::slice::from_ref(&id))
        .await
        .expect("read");
    assert_eq!(rows.rows.len(), 1);
    let changed = db
        .execute(
            "UPDATE bench_sql SET body = ? WHERE id = ?",
            &[Value::Text(format!("body {i}")), id],
        )
        .await
        .expect("update");
    assert_eq!(changed, 1);
}

/// Creates the table through the scoped handle, then measures both paths.
async fn compare(backend: &str, host: Arc<dyn Database>, scoped: Arc<dyn Database>) -> anyhow::Result<()> {
    scoped.execute("DROP TABLE IF EXISTS bench_sql", &[]).await?;
    scoped
        .execute("CREATE TABLE bench_sql (id INT8 PRIMARY KEY, body TEXT NOT NULL)", &[])
        .await?;
    for id in 0..100 {
        scoped
            .execute("INSERT INTO bench_sql (id, body) VALUES (?, 'body')", &[Value::Integer(id)])
            .await?;
    }

    let mut previous: Vec<Stats> = Vec::new();
    let mut enforced: Vec<Stats> = Vec::new();
    for _ in 0..ROUNDS {
        let mut i = 0;
        previous.push(
            measure(WARMUP, ITERATIONS, async || {
                i += 1;
                cycle(&host, i).await
            })
            .await,
        );
        enforced.push(
            measure(WARMUP, ITERATIONS, async || {
                i += 1;
                cycle(&scoped, i).await
            })
            .await,
        );
    }

    println!("{backend}: read by key + update of one row through Database, {ITERATIONS} cycles after {WARMUP} warm-up, {ROUNDS} rounds");
    println!("{:<10} {:>10} {:>10} {:>10} {:>10}", "path", "round", "p50", "p90", "mean");
    for (name, stats) in [("unscoped", &previous), ("scoped", &enforced)] {
        for (round, s) in stats.iter().enumerate() {
            println!("{name:<10} {round:>10} {:>10.2?} {:>10.2?} {:>10.2?}", s.p50, s.p90, s.mean);
        }
    }
    for (round, (p, r)) in previous.iter().zip(&enforced).enumerate() {
        println!(
            "{backend} round {round}: enforcement adds {:.1} µs at p50 ({:.2}x)",
            (r.p50.as_secs_f64() - p.p50.as_secs_f64()) * 1e6,
            r.p50.as_secs_f64() / p.p50.as_secs_f64()
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let url = std::env::var("CORRAL_TEST_PG_URL").map_err(|_| anyhow::anyhow!("CORRAL_TEST_PG_URL is not set: run scripts/bench"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let tables: BTreeSet<String> = ["bench_sql".to_owned()].into();

        let dir = tempfile::tempdir()?;
        let sqlite: Arc<dyn Database> = Arc::new(Sqlite::open(&dir.path().join("bench.db")).await?);
        let scoped = sqlite.clone().scoped("bench", &tables).await?;
        compare("sqlite", sqlite, scoped).await?;

        let postgres: Arc<dyn Database> = Arc::new(
            Postgres::connect(PostgresOptions {
                url,
                password_source: None,
                max_connections: 8,
                statement_timeout: Duration::from_secs(10),
            })
            .await?,
        );
        let scoped = postgres.clone().scoped("bench", &tables).await?;
        compare("postgres", postgres, scoped).await
    })
}
