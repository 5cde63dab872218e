//! What one component instance sees: the per-component context built when
//! the manifest loads, and the per-request state of its store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::capability::auth::Identity;
use crate::capability::db::Database;
use crate::capability::outbound::{Outbound, OutboundGrant};
use crate::core::backends::Backends;
use crate::core::bindings::GuestError;
use crate::core::manifest::{Grants, Limits};

/// Everything about a component that does not change between requests.
pub struct ComponentContext {
    /// The component's manifest name.
    pub name: String,
    /// What it may reach.
    pub grants: Grants,
    /// Its config values.
    pub config: BTreeMap<String, String>,
    /// Its limits.
    pub limits: Limits,
    /// The database as this component may use it (see [`Database::scoped`]).
    pub db: Arc<dyn Database>,
    /// The backends.
    pub backends: Arc<Backends>,
    /// One permit per instance that may run at once (`max_instances`).
    pub instances: Arc<tokio::sync::Semaphore>,
    /// Where its outbound HTTP may go, and how much of it at once.
    pub outbound: Arc<OutboundGrant>,
}

impl ComponentContext {
    /// The context of component `name`, with its instance and outbound caps.
    pub fn new(
        name: String,
        grants: Grants,
        config: BTreeMap<String, String>,
        limits: Limits,
        db: Arc<dyn Database>,
        backends: Arc<Backends>,
    ) -> ComponentContext {
        ComponentContext {
            outbound: Arc::new(OutboundGrant::new(name.clone(), grants.hosts.clone(), limits.max_outbound)),
            name,
            grants,
            config,
            instances: Arc::new(tokio::sync::Semaphore::new(limits.max_instances as usize)),
            limits,
            db,
            backends,
        }
    }
}

/// The data of one store: one request (or event batch) of one component.
pub struct HostState {
    /// The component being run.
    pub component: Arc<ComponentContext>,
    /// The request id, for logs.
    pub request_id: String,
    /// The verified caller, if any.
    pub identity: Option<Arc<Identity>>,
    /// The database as this request uses it (see [`Database::for_request`]).
    pub db: Arc<dyn Database>,
    /// Memory and instance caps for this store.
    pub limits: StoreLimits,
    /// Bytes of log messages written so far.
    pub log_bytes: usize,
    /// Log lines dropped past `max_log_bytes`.
    pub log_dropped: u64,
    /// When the call must have ended (its `timeout_ms`).
    pub deadline: std::time::Instant,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    /// The `wasi:http` grant check, made on the first outbound request.
    pub(crate) outbound: Option<Outbound>,
}

impl HostState {
    /// Fresh state for one call. WASI is there because Rust's standard
    /// library imports it; it grants no files, sockets or environment.
    pub fn new(component: Arc<ComponentContext>, request_id: String, identity: Option<Arc<Identity>>) -> HostState {
        let limits = StoreLimitsBuilder::new()
            .memory_size(component.limits.memory_mb as usize * 1024 * 1024)
            .trap_on_grow_failure(true)
            .build();
        HostState {
            deadline: std::time::Instant::now() + std::time::Duration::from_millis(component.limits.timeout_ms),
            db: component.db.clone().for_request(),
            component,
            request_id,
            identity,
            limits,
            log_bytes: 0,
            log_dropped: 0,
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            outbound: None,
        }
    }

    /// Makes state made ahead of a request (a ready instance's, or one an
    /// earlier call left) that request's: its id, its caller, its database
    /// session, its outbound grant check, and its time limit from now.
    pub fn begin_call(&mut self, request_id: String, identity: Option<Arc<Identity>>) {
        self.db = self.component.db.clone().for_request();
        self.outbound = None;
        self.request_id = request_id;
        self.identity = identity;
        self.deadline = std::time::Instant::now() + std::time::Duration::from_millis(self.component.limits.timeout_ms);
    }

    /// Closes a call whose instance serves again: its dropped log lines are
    /// reported now, and the next call has the whole log allowance.
    pub fn end_call(&mut self) {
        self.report_dropped_lines();
        self.log_bytes = 0;
        self.log_dropped = 0;
    }

    /// Whether the guest still holds a transaction (it never committed,
    /// rolled back or dropped it).
    pub fn holds_transaction(&mut self) -> bool {
        self.table
            .iter_mut()
            .any(|entry| entry.is::<crate::capability::db::TransactionHandle>())
    }

    fn report_dropped_lines(&self) {
        if self.log_dropped > 0 {
            tracing::warn!(
                component = %self.component.name,
                request_id = %self.request_id,
                dropped_lines = self.log_dropped,
                limit_bytes = self.component.limits.max_log_bytes,
                "dropped log lines past the component's log limit"
            );
        }
    }

    /// The resource table, for host resources such as transactions.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// `Ok` when `name` is in the granted set; otherwise logs the refusal and
    /// returns the `not-granted` error for the component.
    pub fn check_grant(&self, kind: &str, granted: impl Fn(&Grants) -> &BTreeSet<String>, name: &str) -> Result<(), GuestError> {
        if granted(&self.component.grants).contains(name) {
            return Ok(());
        }
        Err(self.refuse(
            kind,
            name,
            format!("{kind} \"{name}\" is not granted to component \"{}\"", self.component.name),
        ))
    }

    /// Logs a call refused for reaching outside the grants, and the error
    /// the component gets for it.
    pub fn refuse(&self, kind: &str, name: &str, message: String) -> GuestError {
        tracing::warn!(
            component = %self.component.name,
            request_id = %self.request_id,
            kind,
            name,
            "refused a call outside the component's grants"
        );
        GuestError::NotGranted(message)
    }
}

/// One line for the lines a request's log cap dropped, when the call ends.
impl Drop for HostState {
    fn drop(&mut self) {
        self.report_dropped_lines();
    }
}
