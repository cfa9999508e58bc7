//! The import engine, one module per stage: `intake` (read, map, validate), `plan` (chunks and
//! keys), `journal`, `send`, `track`, `reconcile`, `report`, with `progress` for the terminal
//! and the run log. Driven by `cmd`; uses `site` to talk to CSM.

pub mod intake;
pub mod journal;
pub mod plan;
pub mod progress;
pub mod reconcile;
pub mod report;
pub mod send;
pub mod track;
