//! The per-statement cost of running a component's SQL on its grant set's
//! own role, against the previous path in the same run: the host's pool,
//! with no role, no reset of the session on release and no check for a
//! schema change. `scripts/bench` starts a throwaway PostgreSQL and runs it
//! in release mode.
//!
//! One iteration is a read by primary key and an update of one row, each
//! through `Database::query` / `Database::execute`: on the host's
//! `Postgres` (the previous path) and on the handle `scoped` returns (the
//! component's role, its own pool, the session reset when the connection
//! goes back). Rounds alternate, so drift on a shared machine hits both.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{Stats, measure};

use corral::db::{Database, Postgres, PostgresOptions, Value};

const WARMUP: usize = 200;
const ITERATIONS: usize = 2_000;
const ROUNDS: usize = 3;

async fn cycle(db: &dyn Database, i: i64) {
    let id = Value::Integer(i % 100);
    let rows = db
        .query("SELECT id, body FROM bench_sql WHERE id = $1", std::slice::from_ref(&id))
        .await
        .expect("read");
    assert_eq!(rows.rows.len(), 1);
    let changed = db
        .execute("UPDATE bench_sql SET body = $1 WHERE id = $2", &[Value::Text(format!("body {i}")), id])
        .await
        .expect("update");
    assert_eq!(changed, 1);
}

fn main() -> anyhow::Result<()> {
    let url = std::env::var("CORRAL_TEST_PG_URL").map_err(|_| anyhow::anyhow!("CORRAL_TEST_PG_URL is not set: run scripts/bench"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let host = Arc::new(
            Postgres::connect(PostgresOptions {
                url,
                password_source: None,
                max_connections: 8,
                statement_timeout: Duration::from_secs(10),
            })
            .await?,
        );
        let tables: BTreeSet<String> = ["bench_sql".to_owned()].into();
        let scoped = host.clone().scoped("bench", &tables).await?;
        scoped.execute("DROP TABLE IF EXISTS bench_sql", &[]).await?;
        scoped
            .execute("CREATE TABLE bench_sql (id INT8 PRIMARY KEY, body TEXT NOT NULL)", &[])
            .await?;
        scoped
            .execute("INSERT INTO bench_sql SELECT g, 'body' FROM generate_series(0, 99) g", &[])
            .await?;

        let mut previous: Vec<Stats> = Vec::new();
        let mut role: Vec<Stats> = Vec::new();
        for _ in 0..ROUNDS {
            let mut i = 0;
            previous.push(
                measure(WARMUP, ITERATIONS, async || {
                    i += 1;
                    cycle(host.as_ref(), i).await
                })
                .await,
            );
            role.push(
                measure(WARMUP, ITERATIONS, async || {
                    i += 1;
                    cycle(scoped.as_ref(), i).await
                })
                .await,
            );
        }

        println!("read by key + update of one row through Database, {ITERATIONS} cycles after {WARMUP} warm-up, {ROUNDS} rounds");
        println!("{:<10} {:>10} {:>10} {:>10} {:>10}", "path", "round", "p50", "p90", "mean");
        for (name, stats) in [("host pool", &previous), ("role pool", &role)] {
            for (round, s) in stats.iter().enumerate() {
                println!("{name:<10} {round:>10} {:>10.2?} {:>10.2?} {:>10.2?}", s.p50, s.p90, s.mean);
            }
        }
        for (round, (p, r)) in previous.iter().zip(&role).enumerate() {
            println!(
                "round {round}: the role pool adds {:.1} µs at p50 ({:.2}x)",
                (r.p50.as_secs_f64() - p.p50.as_secs_f64()) * 1e6,
                r.p50.as_secs_f64() / p.p50.as_secs_f64()
            );
        }
        anyhow::Ok(())
    })
}
