//! The developer's commands around the host: `corral new` scaffolds a
//! component, `corral build` builds components in any language into the
//! files the manifest names.

pub(crate) mod build;
pub(crate) mod new;
