//! The engine and the loaded components: one `Engine` for the process, per
//! manifest entry the current version (one pre-instantiated component, which
//! hot swap may replace), and a fresh instance for every request, with memory
//! and time limits. A component may opt in to serving several requests from
//! one instance (`requests_per_instance`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline};

use crate::capability::auth::Identity;
use crate::core::artifacts::{ArtifactCache, Origin};
use crate::core::bindings::handler::{Event, Request, Response};
use crate::core::bindings::{Service, ServicePre};
use crate::core::instance::{ComponentContext, HostState};
use crate::core::manifest::Manifest;

/// Bytes of each pooled memory and table kept mapped between uses, when
/// the kernel can report which pages a guest dirtied (`PAGEMAP_SCAN`): only
/// those are reset, by copying, so a slot's next instance neither faults
/// them in again nor makes the kernel flush other threads' TLBs, as
/// `madvise` does. The bound covers what a handler typically touches.
const KEEP_RESIDENT_SCANNED: usize = 4 << 20;

/// The same, when dirty pages cannot be found: the first bytes of every slot
/// are zeroed whether they were touched or not, so keep this small.
const KEEP_RESIDENT_ZEROED: usize = 64 * 1024;

/// Decommits gathered before one flush, when a slot has dirtied more than it
/// keeps resident: one TLB flush covers the batch.
const DECOMMIT_BATCH: usize = 8;

/// How often the epoch advances: a running guest yields to the executor
/// once per tick, so a spinning one shares its worker thread.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How long a call waits for one of its component's instance slots
/// (`max_instances`) before it is refused as busy.
const INSTANCE_WAIT: Duration = Duration::from_secs(1);

/// At most this many instances of one version wait ready for a request.
const READY_MAX: usize = 2;

/// How a call into a component ended, when it did not return normally.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// It ran past its time limit.
    #[error("the component did not finish within {0} ms")]
    Timeout(u64),
    /// It tried to grow its memory past its cap.
    #[error("the component exceeded its memory limit of {0} MiB")]
    MemoryLimit(u32),
    /// It trapped (a panic, an out-of-bounds access...).
    #[error("the component failed: {0}")]
    Trap(String),
    /// The host could not instantiate it.
    #[error("the component could not start: {0}")]
    Instantiate(String),
    /// All of its `max_instances` slots stayed taken while the call waited.
    #[error("the component already runs {0} instances")]
    Busy(u32),
}

/// One version of a component, ready to run.
pub struct Loaded {
    /// Its context (name, grants, config, limits).
    pub context: Arc<ComponentContext>,
    /// The sha256 of its bytes.
    pub digest: String,
    /// Its pre-instantiated form, and the instances made ahead of requests.
    ready: Arc<ReadySet>,
}

/// Instances of one version made ahead of requests, so that a request's
/// critical path holds only its call. By default each serves exactly one
/// call and is then dropped, as an instance made for the request would be:
/// isolation is unchanged; what moves off the path is creating the store,
/// instantiating and, after the answer, dropping. A component with
/// `requests_per_instance` above 1 also gets back here the instances whose
/// calls ended well, until each has served that many.
struct ReadySet {
    engine: Engine,
    pre: ServicePre<HostState>,
    context: Arc<ComponentContext>,
    instances: std::sync::Mutex<Vec<Ready>>,
    /// How many to keep: one more each time a request finds none (traffic
    /// that outruns the set), up to [`READY_MAX`].
    target: AtomicUsize,
    /// The pool slots set aside for ready instances, shared by every version,
    /// so that making them never takes a slot a running request needs.
    slots: Arc<Semaphore>,
}

/// An instantiated instance waiting for a call.
struct Ready {
    store: Store<HostState>,
    service: Service,
    /// The calls it has served: 0 unless its component reuses instances.
    served: u32,
    _slot: OwnedSemaphorePermit,
}

impl ReadySet {
    /// A ready instance, if one is waiting; a miss raises the target.
    fn take(&self) -> Option<Ready> {
        let taken = self.instances.lock().expect("not poisoned").pop();
        if taken.is_none() {
            let _ = self
                .target
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| (t < READY_MAX).then_some(t + 1));
        }
        taken
    }

    /// Instantiates until the set holds its target, while ready slots last.
    async fn refill(self: Arc<Self>) {
        while self.instances.lock().expect("not poisoned").len() < self.target.load(Ordering::Relaxed) {
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                return;
            };
            let mut store = new_store(&self.engine, self.context.clone(), String::new(), None);
            match self.pre.instantiate_async(&mut store).await {
                Ok(service) => self.instances.lock().expect("not poisoned").push(Ready {
                    store,
                    service,
                    served: 0,
                    _slot: slot,
                }),
                Err(e) => {
                    // The request that finds none instantiates it itself and reports the error.
                    tracing::debug!(component = %self.context.name, error = %format!("{e:#}"), "could not make a ready instance");
                    return;
                }
            }
        }
    }
}

impl ReadySet {
    /// Keeps an instance that served `served` calls for the next one, while
    /// the set and the ready slots have room; otherwise it is dropped. Taken
    /// last in, first out, so the instance already warm serves next.
    fn put_back(&self, mut store: Store<HostState>, service: Service, served: u32) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return;
        };
        store.data_mut().end_call();
        let mut instances = self.instances.lock().expect("not poisoned");
        if instances.len() < READY_MAX {
            instances.push(Ready {
                store,
                service,
                served,
                _slot: slot,
            });
        }
    }
}

impl Loaded {
    /// The short form of its digest that responses carry (`x-corral-version`).
    pub fn version(&self) -> &str {
        &self.digest[..12]
    }
}

/// A manifest component and the version of it that new requests get.
/// Requests hold an `Arc<Loaded>`, so those in flight finish on the version
/// they started with when another one is swapped in.
pub struct Hosted {
    /// Its context (name, grants, config, limits).
    pub context: Arc<ComponentContext>,
    current: ArcSwap<Loaded>,
}

impl Hosted {
    /// The version serving new requests.
    pub fn current(&self) -> Arc<Loaded> {
        self.current.load_full()
    }

    /// Makes `next` the version new requests get; returns the one it replaced.
    pub fn swap(&self, next: Arc<Loaded>) -> Arc<Loaded> {
        self.current.swap(next)
    }
}

/// Runtime settings from the command line or environment.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// How many component instances may run at once.
    pub concurrency: u32,
    /// Where compiled components are cached.
    pub artifact_dir: std::path::PathBuf,
    /// A read-only folder of precompiled artifacts from the deployment
    /// package, searched after `artifact_dir`.
    pub packaged_artifacts: Option<std::path::PathBuf>,
}

/// The engine and every loaded component.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: ArtifactCache,
    components: BTreeMap<String, Arc<Hosted>>,
    /// One permit per instance slot, so a burst waits instead of failing.
    slots: Arc<Semaphore>,
    /// One permit per pool slot kept for ready instances.
    ready_slots: Arc<Semaphore>,
}

impl Runtime {
    /// Builds the engine (sized for `manifest`) and the linker, with no
    /// components yet: add them with [`Runtime::add`].
    pub fn new(manifest: &Manifest, options: &RuntimeOptions) -> anyhow::Result<Runtime> {
        let engine = engine(manifest, options.concurrency, None)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
        // Only the wasi:http interfaces: the rest of WASI p2 is already there.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
        Service::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(|e| anyhow::anyhow!("{e}"))?;
        let cache = ArtifactCache::new(&engine, options.artifact_dir.clone()).with_packaged(options.packaged_artifacts.clone());
        spawn_epoch_ticker(&engine);
        Ok(Runtime {
            engine,
            linker,
            cache,
            components: BTreeMap::new(),
            slots: Arc::new(Semaphore::new(options.concurrency as usize)),
            ready_slots: Arc::new(Semaphore::new(ready_slots(manifest))),
        })
    }

    /// Compiles `bytes` (or loads the cached artifact). Blocks for the
    /// length of a compile: call it off the async threads when serving.
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<(Component, String, Origin)> {
        self.cache.load(&self.engine, bytes)
    }

    /// The engine and artifact cache, for compiling on a blocking thread.
    pub fn compiler(&self) -> (Engine, ArtifactCache) {
        (self.engine.clone(), self.cache.clone())
    }

    /// The cached compiled form of the component with sha256 `digest`, if any.
    pub fn cached(&self, digest: &str) -> Option<(Component, Origin)> {
        self.cache.cached(&self.engine, digest)
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Keeps a component obtained elsewhere (a published artifact) in the writable cache.
    pub fn keep(&self, digest: &str, component: &Component) {
        self.cache.keep(digest, component)
    }

    /// Links `component` for `context`: it must fit the world.
    pub fn prepare(&self, context: Arc<ComponentContext>, component: &Component, digest: String) -> anyhow::Result<Loaded> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(ServicePre::new)
            .map_err(|e| anyhow::anyhow!("component \"{}\" does not fit the corral:host world: {e:?}", context.name))?;
        let ready = Arc::new(ReadySet {
            engine: self.engine.clone(),
            pre,
            context: context.clone(),
            instances: std::sync::Mutex::new(Vec::new()),
            target: AtomicUsize::new(1),
            slots: self.ready_slots.clone(),
        });
        Ok(Loaded { context, digest, ready })
    }

    /// Whether `loaded` instantiates, in a fresh store with its own limits:
    /// what can be checked without the component's grants and config.
    pub async fn instantiates(&self, loaded: &Loaded) -> anyhow::Result<()> {
        self.run(loaded, format!("check-{}", loaded.version()), None, false, async |_, _| Ok(()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The check a version passes before it serves, at start-up and before
    /// a swap: its `init` runs in a fresh instance with the component's own
    /// limits (creating tables, checking config). The error is the
    /// component's own message, or why the call failed.
    pub async fn validate(&self, loaded: &Loaded) -> anyhow::Result<()> {
        let call_id = format!("init-{}", loaded.version());
        let outcome = self
            .run(loaded, call_id, None, false, async |store, bindings| {
                bindings.corral_host_handler().call_init(store).await
            })
            .await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(anyhow::anyhow!("{message}")),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        }
    }

    /// Adds a component, serving `loaded`.
    pub fn add(&mut self, loaded: Loaded) -> Arc<Hosted> {
        let hosted = Arc::new(Hosted {
            context: loaded.context.clone(),
            current: ArcSwap::from_pointee(loaded),
        });
        self.components.insert(hosted.context.name.clone(), hosted.clone());
        hosted
    }

    /// The component called `name`.
    pub fn component(&self, name: &str) -> Option<&Arc<Hosted>> {
        self.components.get(name)
    }

    /// Runs `handle-request` in a fresh instance of `component` (or a reused
    /// one, when the component opts in).
    pub async fn handle_request(
        &self,
        component: &Loaded,
        request: Request,
        identity: Option<Arc<Identity>>,
    ) -> Result<Response, CallError> {
        let request_id = request.request_id.clone();
        self.run(component, request_id, identity, true, async |store, bindings| {
            bindings.corral_host_handler().call_handle_request(store, &request).await
        })
        .await
    }

    /// Runs `handle-events` as `handle-request` runs; returns the ids that failed.
    pub async fn handle_events(&self, component: &Loaded, batch_id: String, events: Vec<Event>) -> Result<Vec<String>, CallError> {
        self.run(component, batch_id, None, true, async |store, bindings| {
            bindings.corral_host_handler().call_handle_events(store, &events).await
        })
        .await
    }

    /// A fresh store for one call of `component`, with its memory cap and
    /// time limit set.
    pub fn new_store(&self, component: &Loaded, request_id: String, identity: Option<Arc<Identity>>) -> Store<HostState> {
        new_store(&self.engine, component.context.clone(), request_id, identity)
    }

    /// A new instance of `component` in `store`.
    pub async fn instantiate(&self, component: &Loaded, store: &mut Store<HostState>) -> Result<Service, CallError> {
        component
            .ready
            .pre
            .instantiate_async(store)
            .await
            .map_err(|e| CallError::Instantiate(format!("{e:#}")))
    }

    /// Runs `call` in an instance of `component` within its limits. With
    /// `reusable`, an instance whose call ended well goes back to the ready
    /// set while it has served fewer than `requests_per_instance` calls.
    async fn run<T>(
        &self,
        component: &Loaded,
        request_id: String,
        identity: Option<Arc<Identity>>,
        reusable: bool,
        call: impl AsyncFnOnce(&mut Store<HostState>, &Service) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        let limit_ms = component.context.limits.timeout_ms;
        // The component's own slot first: a component at its cap queues on
        // its own permits, not on the ones other components need.
        let instances = &component.context.instances;
        let wait = INSTANCE_WAIT.min(Duration::from_millis(limit_ms));
        let _instance = match tokio::time::timeout(wait, instances.acquire()).await {
            Ok(permit) => permit.expect("the semaphore is never closed"),
            Err(_) => return Err(CallError::Busy(component.context.limits.max_instances)),
        };
        let slot = self.slots.clone().acquire_owned().await.expect("the semaphore is never closed");
        // A ready instance moves from its ready slot to this running one.
        let (mut store, service, served) = match component.ready.take() {
            Some(ready) => {
                let mut store = ready.store;
                store.data_mut().begin_call(request_id, identity);
                store.set_epoch_deadline(1);
                (store, Some(ready.service), ready.served)
            }
            None => (self.new_store(component, request_id, identity), None, 0),
        };
        // The epoch stops a guest that spins; the timeout stops one waiting on
        // a slow host call, and the deadline stops the backend statements.
        let limit = Duration::from_millis(limit_ms);
        let started = Instant::now();
        let outcome = {
            let work = async {
                let bindings = match service {
                    Some(service) => service,
                    None => self.instantiate(component, &mut store).await?,
                };
                let result = call(&mut store, &bindings).await.map_err(|e| classify(e, &component.context));
                Ok::<_, CallError>((bindings, result))
            };
            tokio::time::timeout(limit, crate::capability::backend::with_deadline(started + limit, work)).await
        };
        // Whatever finished at the deadline (a statement stopped there, say)
        // finished too late: the answer is a timeout either way.
        let (kept, result) = match outcome {
            Ok(Ok((bindings, result))) if started.elapsed() < limit => (Some(bindings), result),
            Ok(Err(e)) if started.elapsed() < limit => (None, Err(e)),
            _ => (None, Err(CallError::Timeout(limit_ms))),
        };
        // Only an instance whose call returned normally and left no
        // transaction open serves again: after a trap or a timeout its state
        // is not to be trusted.
        let served = served + 1;
        let reuse = kept.filter(|_| {
            reusable && result.is_ok() && served < component.context.limits.requests_per_instance && !store.data_mut().holds_transaction()
        });
        // Resetting the store's pool slot (or keeping the instance) and
        // making the next ready instance happen after the answer.
        let ready = component.ready.clone();
        tokio::spawn(async move {
            match reuse {
                Some(service) => ready.put_back(store, service, served),
                None => drop(store),
            }
            drop(slot);
            ready.refill().await;
        });
        result
    }
}

/// A fresh store for one call in `context`, with its memory cap and time
/// limit (counted from now; [`HostState::begin_call`] restarts it).
fn new_store(engine: &Engine, context: Arc<ComponentContext>, request_id: String, identity: Option<Arc<Identity>>) -> Store<HostState> {
    let mut store = Store::new(engine, HostState::new(context, request_id, identity));
    store.limiter(|s| &mut s.limits);
    // At every epoch tick the guest yields to the executor, so a guest that
    // spins cannot keep other requests off its worker thread; past its time
    // limit it traps. (Without a deadline the first call would trap.)
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|store| {
        if Instant::now() >= store.data().deadline {
            Err(Trap::Interrupt.into())
        } else {
            // Tokio's yield wakes the guest again only once the worker has
            // run the other ready tasks and polled for I/O and timers.
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        }
    });
    store
}

/// Pool slots kept for ready instances: [`READY_MAX`] per component.
fn ready_slots(manifest: &Manifest) -> usize {
    manifest.components.len().max(1) * READY_MAX
}

/// Instance slots in the pool: `concurrency` running, and the ready ones.
fn pool_slots(manifest: &Manifest, concurrency: u32) -> u32 {
    concurrency + ready_slots(manifest) as u32
}

fn classify(e: wasmtime::Error, context: &ComponentContext) -> CallError {
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return CallError::Timeout(context.limits.timeout_ms);
    }
    // One line for the log: the cause chain, then the guest backtrace.
    let text = format!("{e:?}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if text.contains("forcing trap when growing memory") {
        return CallError::MemoryLimit(context.limits.memory_mb);
    }
    CallError::Trap(text)
}

/// The engine of a host serving `manifest` with `concurrency` instances, or
/// one with exactly the same configuration that compiles for `target` (a
/// target triple) instead of this machine: its artifacts are what that host
/// loads. An explicit target also leaves out the CPU features found on this
/// machine, so the artifacts run on every CPU of that architecture.
pub(crate) fn engine(manifest: &Manifest, concurrency: u32, target: Option<&str>) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    // `CORRAL_PERFMAP=1` names compiled guest functions for `perf report`
    // (in /tmp/perf-PID.map), so a profile shows where a guest spends time.
    if std::env::var_os("CORRAL_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if let Some(target) = target {
        config
            .target(target)
            .map_err(|e| anyhow::anyhow!("cannot compile for {target}: {e}"))?;
    }
    let mut pool = PoolingAllocationConfig::default();
    let n = pool_slots(manifest, concurrency);
    let keep_resident = if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes);
        KEEP_RESIDENT_SCANNED
    } else {
        KEEP_RESIDENT_ZEROED
    };
    pool.total_component_instances(n)
        .total_core_instances(n * 8)
        .total_memories(n * 2)
        .total_tables(n * 8)
        .total_stacks(n)
        .max_memory_size(manifest.max_memory_bytes())
        // Reset reused slots in place instead of unmapping them: a fresh
        // instance then takes no page faults on the pages a request touches.
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(keep_resident)
        .decommit_batch_size(DECOMMIT_BATCH);
    let mut pooled = config.clone();
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            // The pool reserves its address space up front; where that is not
            // allowed, allocate per instance instead of refusing to start.
            tracing::warn!(error = %e, "pooling allocator unavailable, allocating instances on demand");
            Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot create the engine: {e}"))
        }
    }
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("corral-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
