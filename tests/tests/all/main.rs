//! The end-to-end tests, one binary: the real `corral` binary, real
//! components and real HTTP, one module per area (`students::...`,
//! `lambda::...`). `common` holds the harnesses they share.

mod common;

mod advising;
mod alma;
mod alma_stack;
mod cache_layout;
mod cache_set_if;
mod change_stream;
mod cors;
mod dead_letter;
mod event_sourcing;
mod fuzz;
mod hostile;
mod hostile_db;
mod hostile_sql;
mod hot_swap;
mod init_once;
mod isolation;
mod jwt;
mod lambda;
mod notes;
mod openapi;
mod precompiled;
mod scaffold;
mod students;
