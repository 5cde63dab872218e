//! The `corral` command: the local server and its helpers. (The Lambda
//! runtime uses the same `App`.)

// The Lambda handler future nests deeply (runtime, tower service, instrumented span).
#![recursion_limit = "256"]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use corral::auth::DevKeys;
use corral::manifest::{Access, BackendsSpec};
use corral::{App, AppOptions, Manifest};

#[derive(Parser)]
#[command(name = "corral", version, about = "Hosts REST resources written as WebAssembly components")]
struct Cli {
    /// Without a command, a process started by the Lambda runtime runs `lambda`.
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the host finds its components and keeps its state.
#[derive(Args)]
struct HostArgs {
    /// The manifest.
    #[arg(long, env = "CORRAL_MANIFEST", default_value = "corral.toml")]
    manifest: PathBuf,
    /// A backends file that replaces the manifest's `[backends]` table.
    #[arg(long, env = "CORRAL_BACKENDS")]
    backends: Option<PathBuf>,
    /// Where the embedded database, dev signing key and compiled components
    /// live (default: .corral, or /tmp/corral under Lambda, whose code folder is read-only).
    #[arg(long, env = "CORRAL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where compiled components are cached (default: DATA_DIR/artifacts).
    #[arg(long, env = "CORRAL_ARTIFACT_DIR")]
    artifact_dir: Option<PathBuf>,
    /// Component instances that may run at once (default: 32; 4 under Lambda,
    /// which runs one invocation at a time).
    #[arg(long, env = "CORRAL_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: Option<u32>,
    /// Log as JSON lines.
    #[arg(long, env = "CORRAL_LOG_JSON")]
    log_json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the manifest's components over HTTP.
    Serve {
        #[command(flatten)]
        host: HostArgs,
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, env = "CORRAL_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Serves Lambda invocations through the Lambda runtime API.
    Lambda {
        #[command(flatten)]
        host: HostArgs,
    },
    /// Prints a development token signed with the data directory's key.
    Token {
        /// The caller's subject.
        #[arg(long)]
        sub: String,
        /// A group the caller belongs to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// A display name.
        #[arg(long)]
        username: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// The data directory holding the signing key.
        #[arg(long, env = "CORRAL_DATA_DIR", default_value = ".corral")]
        data_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let command = match Cli::parse().command {
        Some(command) => command,
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => Cli::parse_from(["corral", "lambda"]).command.expect("lambda"),
        None => {
            Cli::parse_from(["corral", "--help"]);
            unreachable!("--help exits")
        }
    };
    match command {
        Command::Serve { host, listen } => {
            corral::logging::init(host.log_json);
            tokio::runtime::Runtime::new()?.block_on(serve(host, listen))
        }
        Command::Lambda { host } => {
            // CloudWatch Logs Insights queries JSON lines.
            corral::logging::init(true);
            tokio::runtime::Runtime::new()?.block_on(async {
                let app = load(&host, "/tmp/corral", 4, false).await?;
                corral::lambda::run(app)
                    .await
                    .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
            })
        }
        Command::Token {
            sub,
            groups,
            username,
            ttl,
            data_dir,
        } => {
            let keys = DevKeys::load_or_create(&data_dir).with_context(|| format!("reading the signing key in {}", data_dir.display()))?;
            println!("{}", keys.issue(&sub, username.as_deref(), &groups, ttl));
            Ok(())
        }
    }
}

/// Reads the manifest (and backends file), connects the backends and loads
/// every component: the work done once per process.
async fn load(host: &HostArgs, default_data_dir: &str, default_concurrency: u32, local_stream: bool) -> anyhow::Result<Arc<App>> {
    let env = |k: &str| std::env::var(k).ok();
    let mut manifest = Manifest::load(&host.manifest, env)?;
    if let Some(path) = &host.backends {
        manifest.backends = BackendsSpec::load(path, env)?;
    }
    let options = AppOptions {
        data_dir: host.data_dir.clone().unwrap_or_else(|| default_data_dir.into()),
        artifact_dir: host.artifact_dir.clone(),
        concurrency: host.concurrency.unwrap_or(default_concurrency),
        local_stream,
    };
    Ok(Arc::new(App::start(&manifest, &options).await?))
}

async fn serve(host: HostArgs, listen: SocketAddr) -> anyhow::Result<()> {
    let app = load(&host, ".corral", 32, true).await?;
    app.start_event_consumers();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("corral listening on http://{addr}");
    for (methods, path, component, access) in app.routes() {
        let who = if access == Access::Public { "public" } else { "caller" };
        println!("  {methods:<22} {path:<32} -> {component} ({who})");
    }
    corral::server::serve(listener, app, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
