//! The one integration-test binary: drives the real `csmport` binary against a real sandbox
//! process on 127.0.0.1:0. One binary keeps link time down.

mod accounts;
mod bad_input;
mod common;
mod corpus;
mod crm;
mod delete;
mod details;
mod engine;
mod entitlements;
mod export;
mod faults;
mod fields;
mod golden;
mod hostile;
mod hostile_site;
mod import;
mod nightly;
mod organizations;
mod plan;
mod products;
mod profiles;
mod prune;
mod real_site;
mod report;
mod resume;
mod retry;
mod sandbox;
mod sandbox_rules;
mod secrets;
mod status;
mod tokens;
mod validate;
