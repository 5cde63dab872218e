//! Bindings generated from `wit/corral.wit` (world `resource`).
//!
//! Host interfaces live under `bindings::corral::host`, the exported handler
//! under `bindings::exports::corral::host::handler`.

wit_bindgen::generate!({
    // The package has one world, `resource`; leaving it implicit avoids
    // spelling a name that is also a WIT keyword.
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "corral_sdk::bindings",
});
