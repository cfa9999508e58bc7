//! Folders and files csmport makes for the user (lowest layer, no neighbours): run folders are
//! private (0700: the journal holds every request body, the reports whole rows), and a file
//! written for the user (an export) gets the mode the user's umask gives, or keeps the mode of
//! the file it replaces.

use std::io;
use std::path::Path;

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

/// Writes `bytes` to `path` beside it and renames into place: a link at `path` is replaced,
/// never written through, and a reader never sees half a file. The file gets `mode_for`'s
/// mode.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode of what `path` names now: a link is not followed for it.
        let mode = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_file() => m.permissions().mode() & 0o7777,
            _ => new_file_mode(dir)?,
        };
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The mode a file replacing `target` should have: the mode `target` has, or (a new file)
/// what the user's umask gives a new file in its folder.
#[cfg(unix)]
pub fn mode_for(target: &Path) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(target) {
        return Ok(m.permissions().mode() & 0o7777);
    }
    new_file_mode(
        target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
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

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
}
