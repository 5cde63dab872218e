//! The `corral` command: the local server and its helpers. (The Lambda
//! runtime uses the same `App`.)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use corral::auth::DevKeys;
use corral::manifest::{Access, BackendsSpec};
use corral::{App, AppOptions, Manifest};

#[derive(Parser)]
#[command(name = "corral", version, about = "Hosts REST resources written as WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the manifest's components over HTTP.
    Serve {
        /// The manifest.
        #[arg(long, env = "CORRAL_MANIFEST", default_value = "corral.toml")]
        manifest: PathBuf,
        /// A backends file that replaces the manifest's `[backends]` table.
        #[arg(long, env = "CORRAL_BACKENDS")]
        backends: Option<PathBuf>,
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, env = "CORRAL_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the embedded database, dev signing key and compiled components live.
        #[arg(long, env = "CORRAL_DATA_DIR", default_value = ".corral")]
        data_dir: PathBuf,
        /// Where compiled components are cached (default: DATA_DIR/artifacts).
        #[arg(long, env = "CORRAL_ARTIFACT_DIR")]
        artifact_dir: Option<PathBuf>,
        /// Component instances that may run at once.
        #[arg(long, env = "CORRAL_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
        concurrency: u32,
        /// Log as JSON lines.
        #[arg(long, env = "CORRAL_LOG_JSON")]
        log_json: bool,
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
    match Cli::parse().command {
        Command::Serve { manifest, backends, listen, data_dir, artifact_dir, concurrency, log_json } => {
            corral::logging::init(log_json);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(serve(manifest, backends, listen, AppOptions { data_dir, artifact_dir, concurrency }))
        }
        Command::Token { sub, groups, username, ttl, data_dir } => {
            let keys = DevKeys::load_or_create(&data_dir).with_context(|| format!("reading the signing key in {}", data_dir.display()))?;
            println!("{}", keys.issue(&sub, username.as_deref(), &groups, ttl));
            Ok(())
        }
    }
}

async fn serve(manifest_path: PathBuf, backends: Option<PathBuf>, listen: SocketAddr, options: AppOptions) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let mut manifest = Manifest::load(&manifest_path, env)?;
    if let Some(path) = backends {
        manifest.backends = BackendsSpec::load(&path, env)?;
    }
    let app = Arc::new(App::start(&manifest, &options).await?);
    app.start_event_consumers();
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
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
