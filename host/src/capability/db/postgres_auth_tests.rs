//! Short-lived passwords on a real PostgreSQL, as with RDS IAM auth tokens:
//! every new connection logs in with a fresh one, so rotating the password
//! (an old token expiring) fails no request.
//!
//! Needs `CORRAL_TEST_PG_URL` (a superuser URL); `scripts/test` starts a
//! throwaway cluster and sets it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::capability::backend::BackendError;
use crate::capability::db::iam::PasswordSource;
use crate::capability::db::{Database, Postgres, PostgresOptions, Value};
use async_trait::async_trait;
use sqlx::{AssertSqlSafe, PgPool};

/// A password source whose password the test rotates, like tokens expiring.
struct Rotating {
    current: Mutex<String>,
    lifetime: Duration,
    made: AtomicUsize,
}

#[async_trait]
impl PasswordSource for Rotating {
    async fn password(&self) -> Result<String, BackendError> {
        self.made.fetch_add(1, Ordering::SeqCst);
        Ok(self.current.lock().unwrap().clone())
    }

    fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn for_user(&self, _user: &str) -> Arc<dyn PasswordSource> {
        Arc::new(Rotating {
            current: Mutex::new(self.current.lock().unwrap().clone()),
            lifetime: self.lifetime,
            made: AtomicUsize::new(0),
        })
    }
}

fn admin_url() -> String {
    std::env::var("CORRAL_TEST_PG_URL").expect("CORRAL_TEST_PG_URL is not set: run scripts/test, which starts PostgreSQL")
}

/// A login role with password `p0`, and a URL for it without a password.
async fn role(admin: &PgPool) -> (String, String) {
    let name = format!("rotating_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(AssertSqlSafe(format!("CREATE ROLE {name} LOGIN PASSWORD 'p0'")))
        .execute(admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin_url()).unwrap();
    url.set_username(&name).unwrap();
    url.set_password(None).unwrap();
    (name, url.to_string())
}

/// Changes the role's password and ends its sessions, as the pool's
/// connections would be recycled after the old token expired.
async fn rotate(admin: &PgPool, role: &str, password: &str) {
    sqlx::query(AssertSqlSafe(format!("ALTER ROLE {role} PASSWORD '{password}'")))
        .execute(admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(role)
        .execute(admin)
        .await
        .unwrap();
}

async fn connect(url: String, source: Arc<Rotating>) -> Postgres {
    Postgres::connect(PostgresOptions {
        url,
        password_source: Some(source),
        max_connections: 2,
        statement_timeout: Duration::from_secs(5),
    })
    .await
    .expect("connects with the first password")
}

async fn whoami(db: &Postgres) -> Result<String, BackendError> {
    let rows = db.query("SELECT current_user::text", &[]).await?;
    match &rows.rows[0][0] {
        Value::Text(user) => Ok(user.clone()),
        other => panic!("unexpected value {other:?}"),
    }
}

#[tokio::test]
async fn new_connections_log_in_with_a_fresh_password() {
    let admin = PgPool::connect(&admin_url()).await.expect("the test cluster is up");
    let (name, url) = role(&admin).await;
    let source = Arc::new(Rotating {
        current: Mutex::new("p0".into()),
        lifetime: Duration::from_millis(300),
        made: AtomicUsize::new(0),
    });
    let db = connect(url, source.clone()).await;
    assert_eq!(whoami(&db).await.unwrap(), name);
    for round in 1..=3 {
        let password = format!("p{round}");
        rotate(&admin, &name, &password).await;
        *source.current.lock().unwrap() = password;
        // Past two thirds of the lifetime the host replaces the password
        // before the pool opens a connection.
        tokio::time::sleep(source.lifetime).await;
        for _ in 0..5 {
            assert_eq!(whoami(&db).await.expect("no request fails across a rotation"), name);
        }
    }
    assert!(source.made.load(Ordering::SeqCst) >= 4, "a fresh password was made for each round");
}

/// The control: without a refresh (a lifetime longer than the test), the
/// first new connection after a rotation is refused, so the test above can
/// only pass because of the refresh.
#[tokio::test]
async fn a_stale_password_is_refused() {
    let admin = PgPool::connect(&admin_url()).await.expect("the test cluster is up");
    let (name, url) = role(&admin).await;
    let source = Arc::new(Rotating {
        current: Mutex::new("p0".into()),
        lifetime: Duration::from_secs(3600),
        made: AtomicUsize::new(0),
    });
    let db = connect(url, source.clone()).await;
    assert_eq!(whoami(&db).await.unwrap(), name);
    rotate(&admin, &name, "p1").await;
    *source.current.lock().unwrap() = "p1".into();
    let err = whoami(&db).await.expect_err("the old password no longer logs in");
    assert!(matches!(err, BackendError::Unavailable(_)), "{err:?}");
}
