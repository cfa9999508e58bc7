//! The import engine, the same for every kind, one module per stage: `run` (the run: reader,
//! dispatcher, emitter), `plan` (chunks), `journal`, `send` (decide, send, with `track` and
//! `reconcile`), `report`, with `progress` for the terminal and the run log, and `intake` for
//! `validate`'s offline checks. Every row change goes through `row::step`. Driven by `cmd`;
//! uses `kinds` for what differs between kinds and `site` to talk to CSM.

pub mod backup;
pub mod damage;
pub mod export;
pub mod html;
pub mod intake;
pub mod interrupt;
pub mod journal;
pub mod keys;
pub mod plan;
pub mod progress;
pub mod prune;
pub mod reconcile;
pub mod report;
pub mod reread;
pub mod run;
pub mod send;
pub mod status;
pub mod steps;
pub mod track;
pub mod validate;
pub mod validation;
