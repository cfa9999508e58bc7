//! The kinds of rows csmport imports, each described once: its columns and identity, its row
//! checks, how a row is decided against what the site holds, how requests are built, how a
//! task's failures are attributed and how entities are read back. The engine runs every kind
//! the same way; a kind is a description, not a pipeline. Uses `site`; used by `engine` and
//! `cmd`.

pub use crate::kind::Kind;

pub mod accounts;
pub mod columns;
pub mod customers;
pub mod deletes;
pub mod detail_fields;
pub mod details;
pub mod entitlements;
pub mod organizations;
pub mod products;
pub mod resolve;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use crate::error::Error;
use crate::map::CellError;
use crate::options::KindOptions;
use crate::read::RawRow;
use crate::row::{Found, Stage};
use crate::site::Site;
use crate::site::api::model::TaskStatusResponse;
use crate::site::client::{ApiError, Notify};

/// Something done with a kind's description, whichever it is (the engine's run of it).
pub trait WithDescription {
    type Output;
    fn with<K: Description>(self) -> Self::Output;
}

/// Does `f` with the description of `kind`: the one place a kind's name becomes its
/// description. A delete run of a record kind (`delete`) takes the delete description; detail
/// values are cleared by their own kinds (operation DELETE, backed up first).
pub fn describe<F: WithDescription>(kind: Kind, delete: bool, f: F) -> F::Output {
    if delete && deletes::deletable(kind) {
        return f.with::<deletes::Deletes>();
    }
    match kind {
        Kind::Customers => f.with::<customers::Customers>(),
        Kind::Organizations => f.with::<organizations::Organizations>(),
        Kind::CustomerAccounts => f.with::<accounts::CustomerAccounts>(),
        Kind::OrganizationAccounts => f.with::<accounts::OrganizationAccounts>(),
        Kind::DetailFields => f.with::<detail_fields::DetailFields>(),
        Kind::Products => f.with::<products::Products>(),
        Kind::Entitlements => f.with::<entitlements::Entitlements>(),
        Kind::CustomerDetails => f.with::<details::CustomerDetails>(),
        Kind::OrganizationDetails => f.with::<details::OrganizationDetails>(),
    }
}

/// How `delete` treats `kind` (None: `delete` does not take it by record).
pub fn delete_spec(kind: Kind) -> Option<&'static deletes::Spec> {
    match kind {
        Kind::Products => Some(&products::DELETE),
        Kind::Organizations => Some(&organizations::DELETE),
        Kind::Customers => Some(&customers::DELETE),
        Kind::Entitlements => Some(&entitlements::DELETE),
        Kind::DetailFields => Some(&detail_fields::DELETE),
        _ => None,
    }
}

/// The table `export` writes of `kind` (one of `Kind::EXPORTED`): each kind's own `export`.
pub async fn export_table(
    reader: &crate::export::reader::Reader<'_>,
    kind: Kind,
) -> Result<crate::export::Table, Error> {
    match kind {
        Kind::Organizations => organizations::export::read(reader).await,
        Kind::Customers => customers::export::read(reader).await,
        Kind::Products => products::export::read(reader).await,
        Kind::Entitlements => entitlements::export::read(reader).await,
        Kind::DetailFields => detail_fields::export::read(reader).await,
        // The command line offers only `Kind::EXPORTED`; accounts and detail values are in
        // the profiles' tables.
        other => Err(Error::Usage(format!(
            "{} cannot be exported: export {}",
            other.as_str(),
            Kind::EXPORTED
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// What `export` writes for `kind`, kept in `spool` as it is read; its sheet.
pub async fn export_into(
    reader: &crate::export::reader::Reader<'_>,
    kind: Kind,
    spool: &crate::export::spool::Spool,
) -> Result<crate::export::spool::Sheet, Error> {
    let spooled = |e: crate::export::spool::SpoolError| Error::Usage(e.to_string());
    if let Some(sheet) = spool.done_sheet(kind).map_err(spooled)? {
        // Read to its end before a resumed export stopped; where its customers were found
        // is told as then, and nothing is listed again.
        reader.listed_before(spool)?;
        return Ok(sheet);
    }
    match kind {
        Kind::Customers => customers::export::read_into(reader, spool).await,
        Kind::Entitlements => entitlements::export::read_into(reader, spool).await,
        Kind::Organizations => organizations::export::read_into(reader, spool).await,
        other => {
            let table = export_table(reader, other).await?;
            spool.add_table(&table).map_err(spooled)
        }
    }
}

/// Every row of `kind` the site holds, read as `export` reads it (the backup of a delete uses
/// it for what a delete takes with it: a product's entitlements).
pub async fn read_table(
    client: &crate::site::client::Client,
    kind: Kind,
    service_desk: Option<String>,
) -> Result<crate::export::Table, Error> {
    let reader = crate::export::reader::Reader {
        client,
        settings: crate::export::reader::Settings {
            concurrency: 4,
            service_desk,
            allow_partial: false,
        },
        ids: None,
        query: &[],
        notify: &crate::site::client::Silent,
        found: Default::default(),
    };
    export_table(&reader, kind).await
}

/// What a kind is given to set itself up, once per run: the site (to read what rows are
/// checked against) and the input's header.
pub struct Setup<'a> {
    pub site: &'a Site,
    pub opts: KindOptions<'a>,
    pub header: &'a [String],
    /// The input, as the user named it (for messages).
    pub label: &'a str,
}

/// What a kind is given while a chunk of rows is decided and sent.
pub struct Cx<'a> {
    pub site: &'a Site,
    pub opts: KindOptions<'a>,
    pub log: &'a dyn Notify,
    /// Bulk tasks the chunk's rows depend on (organizations named by customers), journaled
    /// with the chunk and run under the same slot limit and pacing as every request.
    pub tasks: &'a dyn Prerequisites,
    pub seq: u64,
    /// When the chunk's tasks were last seen ended (reading back after them): a listing begun
    /// since has what they did. None: reading back is not after a task of the chunk.
    pub changed: Option<std::time::Instant>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Prerequisites: Send + Sync {
    /// Runs `call` as a bulk task to its end, for chunk `seq`. Err: why it did not end (yet),
    /// which leaves the rows that need it open.
    fn run_task<'a>(
        &'a self,
        seq: u64,
        what: String,
        call: Call,
    ) -> BoxFuture<'a, Result<TaskStatusResponse, String>>;
}

/// One HTTP request of a batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Call {
    pub method: Method,
    /// Relative to the CSM `api/v1` prefix.
    pub path: String,
    pub body: Body,
}

/// A request body, serialized once when the request is made. A batch holds its body until
/// its task ends (to send it again under its key), and JSON text is a fraction of the size of
/// a `serde_json::Value` tree: with a window of chunks in flight that is most of the memory
/// an import holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Body(Box<serde_json::value::RawValue>);

impl Body {
    pub fn of(body: &impl serde::Serialize) -> Body {
        Body(serde_json::value::to_raw_value(body).expect("a request body serializes"))
    }

    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The body as a tree, for tests and the rare caller that looks inside.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).expect("a body is JSON")
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        self.0.get() == other.0.get()
    }
}

impl From<serde_json::Value> for Body {
    fn from(v: serde_json::Value) -> Body {
        Body::of(&v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Method {
    Post,
    Put,
    /// A PUT whose repeat would not do the same (a rename, by the old name, answers 404 the
    /// second time): sent once; a lost answer is settled by reading the site.
    PutOnce,
    /// No body is sent.
    Delete,
}

/// How a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bulk request: sent under an `Idempotency-Key`, answered with a task whose terminal
    /// status says what happened to each item.
    Task,
    /// Synchronous calls, made in order, without a key: the answer is the result. A call whose
    /// answer was lost is settled by reading the site, never by sending it blindly again.
    Calls,
}

/// Requests that send some of the items given to `Description::requests`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub mode: Mode,
    /// `Task`: exactly one. `Calls`: one or more.
    pub calls: Vec<Call>,
    /// Indexes of the items it carries, in body order.
    pub items: Vec<usize>,
}

impl Request {
    pub fn task(path: &str, body: &impl serde::Serialize, items: Vec<usize>) -> Request {
        Request {
            mode: Mode::Task,
            calls: vec![Call {
                method: Method::Post,
                path: path.to_string(),
                body: Body::of(body),
            }],
            items,
        }
    }

    pub fn call(
        method: Method,
        path: String,
        body: &impl serde::Serialize,
        item: usize,
    ) -> Request {
        Request {
            mode: Mode::Calls,
            calls: vec![Call {
                method,
                path,
                body: Body::of(body),
            }],
            items: vec![item],
        }
    }
}

/// What to do with one row's item, decided against what the site holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<I> {
    /// Send it (with what deciding filled in, such as organization ids).
    Send(I),
    /// The site has it as the row gives it: nothing to send; the row succeeds with this id.
    Unchanged(Option<String>),
    /// It cannot be sent: the row fails with this reason.
    Refuse {
        stage: Stage,
        field: String,
        error: String,
    },
    /// It cannot be decided now (a read failed, a prerequisite is still being made): the row
    /// stays open for `resume`.
    Open(String),
    /// Nothing to do and nothing to report as done: the row is skipped with this reason (a
    /// delete of something the site does not have).
    Skip(String),
}

impl<I> Decision<I> {
    pub fn refuse(field: impl Into<String>, error: impl Into<String>) -> Decision<I> {
        Decision::Refuse {
            stage: Stage::Validate,
            field: field.into(),
            error: error.into(),
        }
    }
}

/// What makes two rows one entity: the key rows are compared by, the column to blame, and the
/// message for a later row (`{first}` stands for the first row's number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub key: String,
    pub field: String,
    pub message: String,
}

impl Identity {
    /// The usual message: "'shown' is already in row N; only the first row for a customer is
    /// sent (merge the rows)".
    pub fn named(key: String, field: &str, shown: &str, noun: &str) -> Identity {
        Identity {
            key,
            field: field.to_string(),
            message: format!(
                "duplicate: '{shown}' is already in row {{first}} of this file; only the first row for {noun} is sent (merge the rows)"
            ),
        }
    }
}

/// What a kind says of its input once it has opened it.
#[derive(Debug, Default)]
pub struct Opened {
    /// For the run log: what the header and the set-up came to.
    pub notes: Vec<String>,
    /// The columns `--ignore-unknown-columns` left out (said on the terminal and in the
    /// summary).
    pub ignored_columns: Vec<crate::map::UnknownColumn>,
    /// What became of each input column (summary.json `columns`); empty when every column is
    /// one of the kind's own (the engine then lists the header as imported).
    pub columns: Vec<crate::map::ColumnUse>,
}

/// What a run did besides its rows' outcomes, for the summary.
#[derive(Debug, Default)]
pub struct Did {
    /// Organizations made on the way (customers naming ones the site did not have).
    pub created_organizations: Vec<String>,
    /// Edits of what the site had (detail-field definitions), confirmed by the site's answer
    /// or by reading it back; in a dry run, those it would make.
    pub changes: Vec<String>,
    /// A backup of what the run removed (detail values cleared): its file and rows.
    pub backup: Option<(String, u64)>,
}

/// What a mapping's rules say of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Rules {
    /// A skip rule leaves the row out, for this reason.
    Skip(String),
    /// The row goes on; these cells are imported without their invalid values (columns
    /// marked `blank`): column or field, value, why, for warnings.csv.
    Keep(Vec<(String, String, String)>),
}

/// A kind: everything the engine needs to know to import its rows.
pub trait Description: Sized + Send + Sync + 'static {
    /// One valid row, as the kind sends it. Kept in the journal with its batch.
    type Item: Clone
        + std::fmt::Debug
        + Send
        + Sync
        + serde::Serialize
        + serde::de::DeserializeOwned
        + 'static;

    /// Reads what rows are checked against (detail-field definitions, …) and maps the
    /// header's columns; a header that does not fit stops the run before anything is sent.
    fn open(setup: Setup<'_>) -> impl Future<Output = Result<Self, Error>> + Send;

    /// What the kind says of its input once open: notes, columns left out, column uses.
    fn opened(&self) -> Opened {
        Opened::default()
    }

    /// What the run did besides its rows' outcomes (organizations made on the way, edits of
    /// definitions, a backup), asked once at the end.
    fn did(&self) -> BoxFuture<'_, Did> {
        Box::pin(async { Did::default() })
    }

    /// What a mapping's rules say of a row, asked before `check`: left out by a skip rule
    /// (deleted records, agents), or kept with the cells it is imported without.
    fn rules(&self, _row: &RawRow) -> Rules {
        Rules::Keep(Vec::new())
    }

    /// Checks one row without the site: its item, or every problem in it.
    fn check(&self, row: &RawRow) -> Result<Self::Item, Vec<CellError>>;

    /// What makes two rows of the file the same thing (the later one is refused).
    fn identity(&self, item: &Self::Item) -> Vec<Identity>;

    /// How much of a request an item takes (detail operations count one each)…
    fn weight(&self, _item: &Self::Item) -> usize {
        1
    }

    /// …and how much a chunk of rows may hold: the rows of one chunk are decided together and
    /// journaled together.
    fn chunk_weight(&self, batch_size: usize) -> usize {
        batch_size
    }

    /// Decides each item against what the site holds, in order (one decision per item).
    fn decide<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: Vec<Self::Item>,
    ) -> impl Future<Output = Vec<Decision<Self::Item>>> + Send + 'a;

    /// The requests that send `items`, every item in exactly one request.
    fn requests(&self, items: &[Self::Item]) -> Vec<Request>;

    /// Every key a task failure's `entityId` may name an item by.
    fn keys(&self, item: &Self::Item) -> Vec<String>;

    /// For `entityId`s in a task's failures that match no key (ids the site made): the key
    /// each stands for.
    fn failure_keys<'a>(
        &'a self,
        _cx: &'a Cx<'a>,
        _ids: &'a [String],
    ) -> impl Future<Output = HashMap<String, String>> + Send + 'a {
        async { HashMap::new() }
    }

    /// The id a row reports once its item is applied: given in the row, or in a synchronous
    /// call's answer.
    fn id_of(&self, item: &Self::Item, answer: Option<&serde_json::Value>) -> Option<String>;

    /// Ids the site gave items a task applied, where the row did not give one (organizations
    /// by name). Best effort: only the report's id column depends on it.
    fn fill_ids<'a>(
        &'a self,
        _cx: &'a Cx<'a>,
        items: &'a [Self::Item],
    ) -> impl Future<Output = Vec<Option<String>>> + Send + 'a {
        async move { vec![None; items.len()] }
    }

    /// A resumed call that has no recorded answer is normally decided again from what the
    /// site holds. Where deciding again cannot tell "done by the lost call" from "never
    /// there" (a delete: the thing is gone either way, and would be reported skipped), the
    /// journaled items are read back first, and those the site shows done are closed so.
    const READ_BACK_UNANSWERED: bool = false;

    /// Reads the items back: whether the site has each as the row gives it.
    fn read_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: &'a [Self::Item],
    ) -> impl Future<Output = Result<Vec<Found>, ApiError>> + Send + 'a;
}

/// Every item's detail values are on the site: same name (case ignored) and the same values.
pub fn same_details(
    mine: &[crate::site::api::model::DetailValue],
    site: &[crate::site::api::model::DetailValue],
) -> bool {
    mine.iter().all(|d| {
        site.iter()
            .any(|s| s.name.eq_ignore_ascii_case(&d.name) && s.values == d.values)
    })
}
