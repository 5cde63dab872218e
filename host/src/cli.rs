//! The `corral` command: the local server, the Lambda function (both on
//! the same `App`) and the developer's commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::capability::auth::DevKeys;
use crate::core::backends::BackendsSpec;
use crate::core::manifest::Access;
use crate::core::registry::RegistrySpec;
use crate::core::registry::{Registry, RollbackTo, StoreLocation};
use crate::{App, AppOptions, Manifest};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use sha2::Digest as _;

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
    /// A read-only folder of precompiled components (`corral compile`),
    /// searched after the artifact directory: the deployment package's.
    #[arg(long, env = "CORRAL_PACKAGED_ARTIFACTS")]
    packaged_artifacts: Option<PathBuf>,
    /// Component instances that may run at once (default: 32; 4 under Lambda,
    /// which runs one invocation at a time).
    #[arg(long, env = "CORRAL_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: Option<u32>,
    /// Log as JSON lines.
    #[arg(long, env = "CORRAL_LOG_JSON")]
    log_json: bool,
    /// The component registry (`s3://BUCKET/PREFIX` or `dir:PATH`); replaces
    /// the store of `[backends.registry]`.
    #[arg(long, env = "CORRAL_STORE")]
    store: Option<String>,
    /// How often to check the registry for new versions, in seconds; replaces
    /// `check_seconds` of `[backends.registry]`.
    #[arg(long, env = "CORRAL_REGISTRY_CHECK_SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    registry_check_seconds: Option<u64>,
}

/// Where the registry is: `--store`, else the backends file's or the
/// manifest's `[backends.registry]`.
#[derive(Args)]
struct StoreArgs {
    /// The component registry: `s3://BUCKET/PREFIX` or `dir:PATH`.
    #[arg(long, env = "CORRAL_STORE")]
    store: Option<String>,
    /// A backends file with a `[backends.registry]` table.
    #[arg(long, env = "CORRAL_BACKENDS")]
    backends: Option<PathBuf>,
    /// The manifest, whose `[backends.registry]` is used when neither of the above is given.
    #[arg(long, env = "CORRAL_MANIFEST", default_value = "corral.toml")]
    manifest: PathBuf,
    /// The key that seals published artifacts (`ssm:PARAMETER` or the key);
    /// replaces `artifact_key` of `[backends.registry]`.
    #[arg(long, env = "CORRAL_ARTIFACT_KEY", hide_env_values = true)]
    artifact_key: Option<String>,
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
        /// Swap in a component file when it changes on disk, and say when the
        /// manifest changed.
        #[arg(long)]
        watch: bool,
    },
    /// Serves Lambda invocations through the Lambda runtime API.
    Lambda {
        #[command(flatten)]
        host: HostArgs,
    },
    /// Checks a component (it compiles, fits the world and instantiates),
    /// uploads it to the registry and makes it the current version; prints
    /// its sha256.
    Publish {
        /// The component file.
        file: PathBuf,
        /// The name to publish it under (`wasm = "registry:NAME"`).
        #[arg(long)]
        component: String,
        /// Upload without the local check (the host still checks before serving it).
        #[arg(long)]
        no_validate: bool,
        /// Also compile it for this target (such as aarch64-unknown-linux-gnu)
        /// and publish the artifact beside it, sealed with the artifact key
        /// (repeatable).
        #[arg(long = "artifact-target")]
        artifact_targets: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Compiles every component file of the manifest for a target into a
    /// folder of artifacts that `--packaged-artifacts` reads: the
    /// deployment package's, so a new Lambda environment compiles nothing.
    Compile {
        /// The manifest.
        #[arg(long, env = "CORRAL_MANIFEST", default_value = "corral.toml")]
        manifest: PathBuf,
        /// The target triple of the host that loads them (default: this machine's architecture).
        #[arg(long)]
        target: Option<String>,
        /// Component instances the host runs at once (as its CORRAL_CONCURRENCY; 4 under Lambda).
        #[arg(long, env = "CORRAL_CONCURRENCY", default_value_t = 4)]
        concurrency: u32,
        /// The folder to write the artifacts to.
        #[arg(long)]
        out: PathBuf,
    },
    /// Scaffolds a records resource in the project in the current folder: its
    /// source in components/NAME, its manifest entry, and tests/NAME.sh.
    New {
        /// rust, python or js.
        #[arg(value_parser = ["rust", "python", "js"])]
        language: String,
        /// The component's name: a-z, 0-9, '_' and '-', starting with a letter.
        name: String,
        /// Where its routes are served (default: /NAME).
        #[arg(long)]
        mount: Option<String>,
        /// The table of its records (default: NAME, with '_' for '-').
        #[arg(long)]
        table: Option<String>,
    },
    /// Builds components (all that name a `source` folder, or those named)
    /// into the files their `wasm` names.
    Build {
        /// The components to build (default: all with a source).
        names: Vec<String>,
        /// The manifest.
        #[arg(long, env = "CORRAL_MANIFEST", default_value = "corral.toml")]
        manifest: PathBuf,
    },
    /// Prints the OpenAPI 3.1 document of every route the manifest serves.
    Openapi {
        /// The manifest.
        #[arg(long, env = "CORRAL_MANIFEST", default_value = "corral.toml")]
        manifest: PathBuf,
    },
    /// Lists the published versions of a component, oldest first; `*` marks the current one.
    Versions {
        /// The published name.
        component: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Makes an earlier version current again: the one before the current
    /// one, or the one given with --to.
    Rollback {
        /// The published name.
        component: String,
        /// A sha256 (or a unique prefix of one) of the version to go back to.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
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
        /// The signing key the hosts are given (`[backends.auth] signing_key`),
        /// instead of the one in the data directory.
        #[arg(long, env = "CORRAL_DEV_SIGNING_KEY", hide_env_values = true)]
        signing_key: Option<String>,
    },
}

/// Runs the command line's command.
pub fn main() -> anyhow::Result<()> {
    let command = match Cli::parse().command {
        Some(command) => command,
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => Cli::parse_from(["corral", "lambda"]).command.expect("lambda"),
        None => {
            Cli::parse_from(["corral", "--help"]);
            unreachable!("--help exits")
        }
    };
    match command {
        Command::Serve { host, listen, watch } => {
            crate::capability::log::init(host.log_json);
            tokio::runtime::Runtime::new()?.block_on(serve(host, listen, watch))
        }
        Command::Lambda { host } => {
            // CloudWatch Logs Insights queries JSON lines.
            crate::capability::log::init(true);
            tokio::runtime::Runtime::new()?.block_on(async {
                let (app, _) = load(&host, "/tmp/corral", 4, true).await?;
                crate::edge::lambda::run(app)
                    .await
                    .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
            })
        }
        Command::Publish {
            file,
            component,
            no_validate,
            artifact_targets,
            store,
        } => {
            crate::capability::log::init(false);
            tokio::runtime::Runtime::new()?.block_on(async {
                let registry = open_registry(&store).await?;
                let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
                if !no_validate {
                    crate::core::publish::check(&component, &bytes)
                        .await
                        .with_context(|| format!("{} cannot serve", file.display()))?;
                }
                let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
                // Artifacts first: a host that swaps to the version finds them.
                for target in &artifact_targets {
                    let code = crate::core::publish::precompile_for(&bytes, target)?;
                    registry.publish_artifact(&component, &sha256, target, code).await?;
                    eprintln!("published the {target} artifact of {component}");
                }
                let sha256 = registry.publish(&component, bytes).await?;
                eprintln!("published {component} to {}", registry.location());
                println!("{sha256}");
                Ok(())
            })
        }
        Command::Compile {
            manifest,
            target,
            concurrency,
            out,
        } => {
            crate::capability::log::init(false);
            compile(&manifest, target.as_deref(), concurrency, &out)
        }
        Command::New {
            language,
            name,
            mount,
            table,
        } => {
            use crate::devtools::build::Language;
            let language = match language.as_str() {
                "rust" => Language::Rust,
                "python" => Language::Python,
                _ => Language::JavaScript,
            };
            let new = crate::devtools::new::NewComponent {
                language,
                name: name.clone(),
                mount,
                table,
            };
            for file in crate::devtools::new::scaffold(Path::new("."), &new)? {
                println!("wrote {}", file.display());
            }
            println!("next: corral build {name} && tests/{name}.sh, or corral serve --watch");
            Ok(())
        }
        Command::Build { names, manifest } => {
            let manifest = Manifest::load(&manifest, |k| Some(std::env::var(k).unwrap_or_default()))?;
            crate::devtools::build::build(&manifest, &names)
        }
        Command::Openapi { manifest } => {
            // Deployment settings do not change the routes: unset variables read as empty.
            let manifest = Manifest::load(&manifest, |k| Some(std::env::var(k).unwrap_or_default()))?;
            let document = crate::core::openapi::document(&manifest).map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
        Command::Versions { component, store } => {
            crate::capability::log::init(false);
            tokio::runtime::Runtime::new()?.block_on(async {
                let registry = open_registry(&store).await?;
                let (doc, _) = registry.versions(&component).await?;
                anyhow::ensure!(
                    !doc.versions.is_empty(),
                    "nothing is published as {component} in {}",
                    registry.location()
                );
                for v in &doc.versions {
                    let mark = if doc.current.as_deref() == Some(v.sha256.as_str()) {
                        '*'
                    } else {
                        ' '
                    };
                    println!("{mark} {}  {}  {} bytes", v.sha256, v.published_at, v.size);
                }
                Ok(())
            })
        }
        Command::Rollback { component, to, store } => {
            crate::capability::log::init(false);
            tokio::runtime::Runtime::new()?.block_on(async {
                let registry = open_registry(&store).await?;
                let target = match &to {
                    Some(prefix) => RollbackTo::Version(prefix),
                    None => RollbackTo::Previous,
                };
                let sha256 = registry.rollback(&component, target).await?;
                eprintln!("{component} in {} is back at {}", registry.location(), &sha256[..12]);
                println!("{sha256}");
                Ok(())
            })
        }
        Command::Token {
            sub,
            groups,
            username,
            ttl,
            data_dir,
            signing_key,
        } => {
            let keys = match signing_key {
                Some(key) => DevKeys::from_configured(&key)?,
                None => DevKeys::load_or_create(&data_dir).with_context(|| format!("reading the signing key in {}", data_dir.display()))?,
            };
            println!("{}", keys.issue(&sub, username.as_deref(), &groups, ttl));
            Ok(())
        }
    }
}

/// Reads the manifest (and backends file), connects the backends and loads
/// every component: the work done once per process.
/// The app the host arguments describe, started, and the manifest it serves.
async fn load(host: &HostArgs, default_data_dir: &str, default_concurrency: u32, lambda: bool) -> anyhow::Result<(Arc<App>, Manifest)> {
    let env = |k: &str| std::env::var(k).ok();
    let mut manifest = Manifest::load(&host.manifest, env)?;
    if let Some(path) = &host.backends {
        manifest.backends = BackendsSpec::load(path, env)?;
    }
    // A deployed function must not accept tokens signed with a key that
    // sits in its own data folder unless the deployment says so.
    if lambda && manifest.backends.auth.is_none() {
        anyhow::bail!(
            "the Lambda host needs [backends.auth] in the backends file or manifest: kind = \"cognito\" with issuer and clients, \
             or kind = \"dev\" to accept development tokens (signed with its signing_key, or the key in the data directory)"
        );
    }
    if let Some(store) = &host.store {
        let check_seconds = manifest
            .backends
            .registry
            .as_ref()
            .map_or(RegistrySpec::DEFAULT_CHECK_SECONDS, |r| r.check_seconds);
        let artifact_key = manifest.backends.registry.as_ref().and_then(|r| r.artifact_key.clone());
        manifest.backends.registry = Some(RegistrySpec {
            store: store.clone(),
            check_seconds,
            artifact_key,
        });
    }
    if let (Some(seconds), Some(registry)) = (host.registry_check_seconds, manifest.backends.registry.as_mut()) {
        registry.check_seconds = seconds;
    }
    let options = AppOptions {
        data_dir: host.data_dir.clone().unwrap_or_else(|| default_data_dir.into()),
        artifact_dir: host.artifact_dir.clone(),
        packaged_artifacts: host.packaged_artifacts.clone(),
        concurrency: host.concurrency.unwrap_or(default_concurrency),
        local_stream: !lambda,
    };
    let app = Arc::new(App::start(&manifest, &options).await?);
    Ok((app, manifest))
}

async fn serve(host: HostArgs, listen: SocketAddr, watch: bool) -> anyhow::Result<()> {
    let (app, manifest) = load(&host, ".corral", 32, false).await?;
    app.start_event_consumers();
    if watch {
        crate::serve::watch::spawn(app.runtime_handle(), host.manifest.clone(), &manifest);
    }
    if let Some(hot_swap) = app.hot_swap().cloned() {
        // SIGHUP checks the registry now, as an S3 notification does on Lambda.
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("installing the SIGHUP handler")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                for (component, outcome) in hot_swap.check(None, true).await {
                    tracing::info!(component = %component, outcome = ?outcome, "reloaded on SIGHUP");
                }
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("corral listening on http://{addr}");
    for (methods, path, component, access) in app.routes() {
        let who = if access == Access::Public { "public" } else { "caller" };
        println!("  {methods:<22} {path:<32} -> {component} ({who})");
    }
    crate::edge::server::serve(listener, app.clone(), shutdown_signal()).await?;
    app.stop_event_consumers().await;
    tracing::info!("stopped");
    Ok(())
}

/// Writes `DIR/<sha256>.cwasm` for every component file of the manifest,
/// compiled for `target` by an engine configured as the host's.
fn compile(manifest_path: &std::path::Path, target: Option<&str>, concurrency: u32, out: &std::path::Path) -> anyhow::Result<()> {
    // Settings that only the running host needs (secrets, endpoints) do
    // not change the compiled code: unset variables read as empty here.
    let manifest = Manifest::load(manifest_path, |k| Some(std::env::var(k).unwrap_or_default()))?;
    let target = target.map_or_else(crate::core::registry::artifact::host_target, str::to_owned);
    let engine = crate::core::runtime::engine(&manifest, concurrency, Some(&target))?;
    let mut done = std::collections::BTreeSet::new();
    for (name, spec) in &manifest.components {
        let crate::core::manifest::WasmSource::File(path) = &spec.wasm else {
            eprintln!("{name}: from the registry, not packaged (publish it with --artifact-target {target})");
            continue;
        };
        let bytes = std::fs::read(path).with_context(|| format!("component \"{name}\": cannot read {}", path.display()))?;
        let digest = hex::encode(sha2::Sha256::digest(&bytes));
        let file = out.join(crate::core::artifacts::ArtifactCache::packaged_name(&digest));
        if !done.insert(digest) {
            continue;
        }
        crate::core::artifacts::precompile(&engine, &bytes, &file).with_context(|| format!("component \"{name}\": {}", path.display()))?;
        eprintln!("{name}: {} for {target}", file.display());
    }
    Ok(())
}

/// The registry named by `--store`, the backends file or the manifest,
/// with the artifact key of `--artifact-key` or of the same table.
async fn open_registry(args: &StoreArgs) -> anyhow::Result<Registry> {
    let env = |k: &str| std::env::var(k).ok();
    let spec = match &args.backends {
        Some(path) => BackendsSpec::load(path, env)?.registry,
        None if args.store.is_none() => {
            Manifest::load(&args.manifest, env)
                .context("no --store given, and the manifest cannot be read")?
                .backends
                .registry
        }
        None => None,
    };
    let store = match (&args.store, &spec) {
        (Some(store), _) => store.clone(),
        (None, Some(spec)) => spec.store.clone(),
        (None, None) if args.backends.is_some() => anyhow::bail!("the backends file has no [backends.registry]; pass --store"),
        (None, None) => anyhow::bail!("the manifest has no [backends.registry]; pass --store"),
    };
    let key_source = args.artifact_key.clone().or_else(|| spec.and_then(|s| s.artifact_key));
    let location = StoreLocation::parse(&store, std::path::Path::new(".")).map_err(|m| anyhow::anyhow!("--store {m}"))?;
    let needs_aws = matches!(location, StoreLocation::S3 { .. }) || key_source.as_deref().is_some_and(|k| k.starts_with("ssm:"));
    let aws = match needs_aws {
        true => Some(aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await),
        false => None,
    };
    let key = match &key_source {
        Some(value) => Some(crate::core::registry::artifact::resolve_key(value, aws.as_ref()).await?),
        None => None,
    };
    Ok(Registry::open(&location, aws.as_ref())?.with_artifact_key(key))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
