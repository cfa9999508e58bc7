//! csmport moves customer data in and out of Atlassian Customer Service Management in bulk.
//!
//! `cmd` has one file per subcommand and turns arguments into options; `engine` runs an import
//! stage by stage (intake → plan → journal → send → track → reconcile → report); `site` talks to
//! CSM (`site::api` holds the wire types shared with `sandbox`, the local CSM emulator); `read`
//! turns files into rows; `error` maps failures to exit codes.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod crm;
pub mod engine;
pub mod error;
pub mod export;
pub mod kinds;
pub mod map;
pub mod mapfile;
pub mod options;
pub mod profile;
pub mod read;
pub mod row;
pub mod sandbox;
pub mod schema;
pub mod site;
pub mod validate;
