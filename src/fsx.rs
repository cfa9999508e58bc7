//! Folders and files csmport makes for the user (lowest layer, no neighbours): run folders are
//! private (0700: the journal holds every request body, the reports whole rows), and a file
//! written for the user (an export) gets the mode the user's umask gives, or keeps the mode of
//! the file it replaces.

use std::io;
use std::path::{Path, PathBuf};

/// Creates `path` and its missing parents, readable by the user alone (0700 on Unix; a
/// folder that exists keeps its mode).
pub fn private_dir(path: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

/// What a report csmport writes starts with, so that a spreadsheet opens it as UTF-8.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `path` opened for reading, past a leading UTF-8 byte-order mark (the csv crate reads one
/// as part of the first column's name).
pub fn open_text(path: &Path) -> io::Result<io::BufReader<std::fs::File>> {
    use std::io::BufRead;
    let mut r = io::BufReader::new(std::fs::File::open(path)?);
    if r.fill_buf()?.starts_with(UTF8_BOM) {
        r.consume(UTF8_BOM.len());
    }
    Ok(r)
}

/// A file of a run folder, made new for writing and readable by the user alone (0600 on
/// Unix). What `path` names before (a link planted there, an earlier run's file) is removed,
/// never written through: creating with `create_new` does not follow a link.
pub fn create_private(path: &Path) -> io::Result<std::fs::File> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a folder", path.display()),
            ));
        }
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    private_options().create_new(true).open(path)
}

/// A file of a run folder opened to add to (`run.log` on resume, a backup that grows), made
/// 0600 when new; a link at `path` is refused, not followed.
pub fn append_private(path: &Path) -> io::Result<std::fs::File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a file csmport made (a link or a folder): not written",
                path.display()
            ),
        ));
    }
    let mut o = private_options();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(O_NOFOLLOW);
    }
    o.open(path)
}

/// Writes `bytes` to a run folder's `path` whole: beside it (0600) and renamed into place.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // NamedTempFile makes its file 0600 and new (a link is never followed).
    write_beside(path, bytes, |_| Ok(None))
}

/// Writes `bytes` beside `path` (a new temporary file in its folder), syncs, gives it the mode
/// `mode` says (none: 0600 as made) and renames it into place.
fn write_beside(
    path: &Path,
    bytes: &[u8],
    mode: impl FnOnce(&Path) -> io::Result<Option<u32>>,
) -> io::Result<()> {
    use std::io::Write;
    let dir = folder_of(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    #[cfg(not(unix))]
    let _ = mode;
    #[cfg(unix)]
    if let Some(mode) = mode(dir)? {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The folder a file path is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn private_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// `O_NOFOLLOW` of the platform (std names no constant for it).
#[cfg(target_os = "linux")]
const O_NOFOLLOW: i32 = 0o400000;
#[cfg(all(unix, not(target_os = "linux")))]
const O_NOFOLLOW: i32 = 0x0100;

/// Writes `bytes` to `path` beside it and renames into place: a link at `path` is replaced,
/// never written through, and a reader never sees half a file. The file gets `mode_for`'s
/// mode.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_beside(path, bytes, |dir| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The mode of what `path` names now: a link is not followed for it.
            Ok(Some(match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_file() => m.permissions().mode() & 0o7777,
                _ => new_file_mode(dir)?,
            }))
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(None)
        }
    })
}

/// The mode a file replacing `target` should have: the mode `target` has, or (a new file)
/// what the user's umask gives a new file in its folder.
#[cfg(unix)]
pub fn mode_for(target: &Path) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(target) {
        return Ok(m.permissions().mode() & 0o7777);
    }
    new_file_mode(folder_of(target))
}

/// The mode the user's umask gives a new file in `dir`: the umask cannot be read without
/// changing it, so a new file shows it.
#[cfg(unix)]
fn new_file_mode(dir: &Path) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join(format!(".csmport-mode-{}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    let mode = f.metadata()?.permissions().mode() & 0o777;
    drop(f);
    std::fs::remove_file(&probe)?;
    Ok(mode)
}

/// An output being written: a lock file beside it (`.NAME.csmport-lock`) that the operating
/// system holds for this process (released when it ends, however it ends), naming the process
/// for whoever finds it taken. Removed when dropped.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    _file: std::fs::File,
}

/// Why an output's lock was not had.
#[derive(Debug)]
pub enum LockRefused {
    /// Another process holds it: what its lock file says of it.
    Held {
        lock: PathBuf,
        holder: String,
    },
    Io(PathBuf, io::Error),
}

impl OutputLock {
    /// Takes the lock of `output`; `Ok((lock, Some(note)))` when a lock file a process that
    /// is gone left behind was taken over.
    pub fn take(output: &Path) -> Result<(OutputLock, Option<String>), LockRefused> {
        use std::io::{Read, Seek, Write};
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = folder_of(output).join(format!(".{name}.csmport-lock"));
        let io_err = |e| LockRefused::Io(path.clone(), e);
        let mut tries = 0;
        let mut file = loop {
            tries += 1;
            // A link planted under the lock's name is refused, never written through.
            let mut o = private_options();
            o.read(true).create(true).truncate(false);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.custom_flags(O_NOFOLLOW);
            }
            let mut file = o.open(&path).map_err(io_err)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    let holder = match text.trim() {
                        "" => "another csmport".to_string(),
                        text => text.to_string(),
                    };
                    return Err(LockRefused::Held { lock: path, holder });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
            }
            // The holder before us removes the file as it lets go: a lock on a file no
            // longer under the name holds nothing.
            if same_file(&file, &path) || tries >= 5 {
                break file;
            }
        };
        let mut before = String::new();
        let _ = file.read_to_string(&mut before);
        let note = (!before.trim().is_empty()).then(|| {
            format!(
                "took over the lock {} left by {} (no longer running)",
                path.display(),
                before.trim()
            )
        });
        let me = format!(
            "process {} (csmport export, started {})",
            std::process::id(),
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
        );
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        file.write_all(me.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok((OutputLock { path, _file: file }, note))
    }
}

/// Removes an SQLite working file and the companions SQLite may have left beside it.
pub fn remove_sqlite(path: &Path) {
    let _ = std::fs::remove_file(path);
    for ext in ["-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::File, path: &Path) -> bool {
    path.exists()
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held: a process waiting on it finds it gone and makes its own.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_link_planted_as_the_lock_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".o.csv.csmport-lock")).unwrap();
        assert!(matches!(
            OutputLock::take(&dir.path().join("o.csv")),
            Err(LockRefused::Io(..))
        ));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    }

    #[test]
    fn run_folders_are_private_and_files_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/r1");
        private_dir(&run).unwrap();
        let mode = std::fs::metadata(&run).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let f = dir.path().join("export.csv");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(mode_for(&f).unwrap(), 0o640);
        // A new file: whatever the umask gives, never the execute bits.
        let m = mode_for(&dir.path().join("new.csv")).unwrap();
        assert_eq!(m & 0o111, 0);
        assert!(
            !dir.path()
                .join(format!(".csmport-mode-{}", std::process::id()))
                .exists()
        );
    }
    #[test]
    fn run_files_are_private_and_never_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.txt");
        std::fs::write(&target, "theirs").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for (name, how) in [("made.csv", 0), ("whole.json", 1), ("log.txt", 2)] {
            let p = dir.path().join(name);
            std::os::unix::fs::symlink(&target, &p).unwrap();
            match how {
                0 => {
                    use std::io::Write;
                    create_private(&p).unwrap().write_all(b"ours").unwrap();
                }
                1 => write_private(&p, b"ours").unwrap(),
                _ => {
                    let e = append_private(&p).unwrap_err();
                    assert!(e.to_string().contains("not a file csmport made"), "{e}");
                    std::fs::remove_file(&p).unwrap();
                    use std::io::Write;
                    append_private(&p).unwrap().write_all(b"ours").unwrap();
                    append_private(&p).unwrap().write_all(b"+more").unwrap();
                }
            }
            assert!(std::fs::symlink_metadata(&p).unwrap().is_file(), "{name}");
            assert_eq!(mode(&p), 0o600, "{name}");
            assert!(std::fs::read_to_string(&p).unwrap().starts_with("ours"));
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs");
        }
    }
}
