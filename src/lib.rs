//! csmport moves customer data in and out of Atlassian Customer Service Management in bulk.
//!
//! The import pipeline, one module per stage:
//! `read` → `map` (with `validate` and `schema`) → `plan` → `send` (with `client`) → `track` →
//! `reconcile` → `report`. `api` holds the wire types shared with `sandbox`, the local CSM
//! emulator. `cmd` has one file per subcommand; `error` maps failures to exit codes.

pub mod api;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod error;
pub mod export;
pub mod intake;
pub mod journal;
pub mod map;
pub mod mapfile;
pub mod plan;
pub mod progress;
pub mod read;
pub mod reconcile;
pub mod refs;
pub mod report;
pub mod resolve;
pub mod sandbox;
pub mod schema;
pub mod send;
pub mod track;
pub mod validate;
