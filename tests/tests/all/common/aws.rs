//! The AWS side of a host: a PostgreSQL database of its own on the cluster
//! `CORRAL_TEST_PG_URL` names, and a name prefix for the DynamoDB tables and
//! SQS queues of the emulator at `CORRAL_TEST_MOTO_URL` (`scripts/test`
//! starts both).

use std::process::Command;

use super::run_async;

/// What a test run needs for the AWS backends.
const START_SERVICES: &str = "run scripts/test, which starts PostgreSQL and moto";

/// The PostgreSQL database and AWS name prefix of one host; the database is
/// dropped with the host.
#[derive(Clone)]
pub struct AwsResources {
    /// The superuser URL of the test cluster.
    admin_url: String,
    /// The host's own database.
    database: String,
    /// Put before every DynamoDB table and SQS queue name.
    pub prefix: String,
    /// The moto endpoint.
    pub moto_url: String,
}

/// A required environment variable of the AWS-side tests.
fn service_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("{name} is not set: {START_SERVICES}"),
    }
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base
        .find("://")
        .unwrap_or_else(|| panic!("CORRAL_TEST_PG_URL is not a URL: {url}"))
        + 3;
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

async fn admin_connection(admin_url: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to CORRAL_TEST_PG_URL ({e}); is the cluster up? {START_SERVICES}"
            )
        })
}

impl AwsResources {
    /// A fresh database and name prefix.
    pub fn create() -> AwsResources {
        let admin_url = service_env("CORRAL_TEST_PG_URL");
        let moto_url = service_env("CORRAL_TEST_MOTO_URL");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("t_{id}");
        let prefix = format!("t{}-", &id[..16]);
        let (url, name) = (admin_url.clone(), database.clone());
        run_async(async move {
            let mut admin = admin_connection(&url).await;
            sqlx::Executor::execute(
                &mut admin,
                sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")),
            )
            .await
            .unwrap_or_else(|e| panic!("cannot create the database {name}: {e}"));
        });
        AwsResources {
            admin_url,
            database,
            prefix,
            moto_url,
        }
    }

    /// The URL of this host's own database.
    pub fn database_url(&self) -> String {
        with_database(&self.admin_url, &self.database)
    }

    /// The backends file for this database and prefix.
    pub fn backends_file(&self) -> String {
        let url = self.database_url();
        let prefix = &self.prefix;
        format!(
            "[backends.db]\nkind = \"postgres\"\nurl = \"{url}\"\n\n\
             [backends.cache]\nkind = \"dynamodb\"\nprefix = \"{prefix}\"\ncreate_missing = true\n\n\
             [backends.queue]\nkind = \"sqs\"\nprefix = \"{prefix}\"\ncreate_missing = true\n"
        )
    }

    /// Gives `command` the emulator's AWS settings and nothing from the
    /// caller's AWS configuration (profiles, tokens, per-service endpoints).
    pub fn configure(&self, command: &mut Command) {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command.envs(moto_env(&self.moto_url));
    }

    /// Drops the database. The emulator's tables and queues stay: their
    /// names are unique, and the emulator lives only as long as the run.
    /// Runs in `Host`'s `Drop`, also while a failed test unwinds, so it
    /// warns instead of panicking: a panic there would abort every test.
    pub fn remove(&self) {
        let (url, name) = (self.admin_url.clone(), self.database.clone());
        let dropped = run_async(async move {
            use sqlx::Connection as _;
            let mut admin = sqlx::PgConnection::connect(&url).await?;
            sqlx::Executor::execute(
                &mut admin,
                sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")),
            )
            .await
            .map(drop)
        });
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.database);
        }
    }
}

/// The AWS settings that point a `corral` process at moto, and nowhere else.
pub fn moto_env(moto_url: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", moto_url),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The moto endpoint of the AWS-side tests; panics when it is not set.
pub fn moto_url() -> String {
    service_env("CORRAL_TEST_MOTO_URL")
}
