//! Bindings generated from `wit/corral.wit` (world `service`).
//!
//! Host interfaces live under `bindings::corral::host`, the exported handler
//! under `bindings::exports::corral::host::handler`.

wit_bindgen::generate!({
    world: "service",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "corral_sdk::bindings",
});
