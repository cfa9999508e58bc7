//! The site: everything that talks to CSM. `api` holds every API fact (paths, limits, wire
//! types, unconfirmed values) once, shared with the sandbox; `client` does HTTP with pacing and
//! retries; `refs` and `resolve` turn the names rows use into ids and read entities back.
//! Used by the engine, the kinds and export; uses nothing of theirs.

pub mod api;
pub mod client;
pub mod refs;
pub mod resolve;
