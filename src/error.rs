//! Crate errors and the exit-code contract: module errors (thiserror) are gathered here and
//! mapped once, in `main`, to the documented exit codes. Leaf module; everything may use it.

use crate::map::MapError;
use crate::read::ReadError;
use crate::site::client::ApiError;

/// Every row succeeded.
pub const EXIT_OK: i32 = 0;
/// Some rows failed; the reports say which and why.
pub const EXIT_ROWS_FAILED: i32 = 1;
/// Usage, configuration or unreadable input: nothing (more) was sent.
pub const EXIT_USAGE: i32 = 2;
/// Authentication failed or the network is unusable.
pub const EXIT_AUTH_NETWORK: i32 = 3;
/// Interrupted (Ctrl-C); the reports cover the rows read so far.
pub const EXIT_INTERRUPTED: i32 = 4;
/// Another csmport is writing the same output (sysexits' EX_TEMPFAIL: try again later).
pub const EXIT_BUSY: i32 = 75;

/// The exit code of a run that decided every row it read: reading stopped early, some rows
/// failed, or all is well.
pub fn rows_exit_code(read_failed: bool, rows_failed: u64) -> i32 {
    if read_failed {
        EXIT_USAGE
    } else if rows_failed > 0 {
        EXIT_ROWS_FAILED
    } else {
        EXIT_OK
    }
}

/// A report or summary that could not be written (`engine::report`).
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write: {source}")]
pub struct ReportError {
    pub path: std::path::PathBuf,
    pub source: std::io::Error,
}

/// The run journal could not be used (`engine::journal`).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{}: {why}", path.display())]
    Refused {
        path: std::path::PathBuf,
        why: String,
    },
    #[error("{}: the run journal cannot be used: {source}", path.display())]
    Sql {
        path: std::path::PathBuf,
        source: rusqlite::Error,
    },
}

pub use crate::sandbox::SandboxError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{file}: {source}")]
    Map { file: String, source: MapError },
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("cannot reach the CSM API: {0}")]
    Network(String),
    /// The site answered, but not with anything usable (a 5xx, 429s past --slot-wait, a
    /// redirect, an answer past its cap): its fault, not the network's.
    #[error("the CSM site failed: {0}")]
    Site(String),
    #[error("{0}")]
    Api(String),
    /// A listing an export needs could not be read (refused or not there): exporting without
    /// it would leave people out without a word.
    #[error("{0}")]
    Unlisted(String),
    /// Another process holds the output's lock.
    #[error("{0}")]
    Busy(String),
    /// Ctrl-C stopped a command that is not a run (an export): what it did is said.
    #[error("{0}")]
    Interrupted(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::Read(_)
            | Error::Map { .. }
            | Error::Report(_)
            | Error::Sandbox(_)
            | Error::Journal(_)
            | Error::Api(_) => EXIT_USAGE,
            Error::Auth(_) | Error::Network(_) | Error::Site(_) | Error::Unlisted(_) => {
                EXIT_AUTH_NETWORK
            }
            Error::Busy(_) => EXIT_BUSY,
            Error::Interrupted(_) => EXIT_INTERRUPTED,
        }
    }

    /// Classifies an API error met before any row was sent (schema fetch and the like).
    pub fn from_setup(e: ApiError) -> Error {
        match &e {
            _ if e.missing_scope().is_some() => Error::Auth(e.explained()),
            _ if e.is_auth() => Error::Auth(format!(
                "{e}; check --access-token / CSM_ACCESS_TOKEN, or --email and --api-token / CSM_EMAIL and CSM_API_TOKEN"
            )),
            // No token at the start of a run: the credentials cannot be used (exit 3).
            ApiError::Renewal { .. } => Error::Auth(e.to_string()),
            ApiError::Network { .. } => Error::Network(e.to_string()),
            ApiError::Redirect { .. } | ApiError::TooLarge { .. } => Error::Site(e.to_string()),
            // A listing that cannot be trusted whole: what was read of the site is not what it
            // holds, so nothing built on it may go on (exit 3, as for an unreadable listing).
            ApiError::Listing { .. } => Error::Unlisted(e.to_string()),
            ApiError::Status { status: 404, .. } => Error::Api(format!(
                "{e}; is the cloud id right, and is Customer Service Management enabled on the site?"
            )),
            // The site's fault: failing, or rate-limiting past --slot-wait (exit 3).
            ApiError::Status { status, .. } if *status >= 500 || *status == 429 => {
                Error::Site(e.to_string())
            }
            _ => Error::Api(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let status = |s: u16| ApiError::Status {
            method: "GET",
            path: "customer/details".into(),
            status: s,
            message: "x".into(),
            attempts: 1,
            uncertain: false,
        };
        let net = ApiError::Network {
            method: "GET",
            path: "p".into(),
            message: "refused".into(),
            attempts: 8,
            uncertain: false,
        };
        let cases = [
            (Error::from_setup(status(401)), EXIT_AUTH_NETWORK),
            (Error::from_setup(status(403)), EXIT_AUTH_NETWORK),
            (Error::from_setup(net), EXIT_AUTH_NETWORK),
            (Error::from_setup(status(503)), EXIT_AUTH_NETWORK),
            (Error::from_setup(status(404)), EXIT_USAGE),
            (Error::Usage("x".into()), EXIT_USAGE),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }
}
