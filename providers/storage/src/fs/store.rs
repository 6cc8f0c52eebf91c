//! The blocking filesystem work for one tenant. Callers run it on tokio's blocking pool.
//!
//! Layout under the factory root, one folder per tenant:
//!
//! ```text
//! <root>/<tenant>/objects/<key>   the objects, one file per key, '/' = sub-directory
//! <root>/<tenant>/staging/        files being written, renamed into objects/ when complete
//! ```
//!
//! Staging lives next to `objects/` rather than inside it so that no key is reserved for
//! temp files and `list` cannot see a half-written object, and on the same filesystem so that
//! the final rename is atomic.
//!
//! Every path goes through a [`cap_std::fs::Dir`] opened on the tenant's folders, so a path
//! can never leave them, whatever a symlink on disk says. On top of that the engine never
//! follows a link at all: objects are the regular files it wrote itself, and a key whose path
//! meets a link is refused with a clear error rather than resolved.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use cap_std::fs::{Dir, Metadata, OpenOptions};
use switchyard_spi::{ErrorCode, ProviderError, TenantId};
use time::OffsetDateTime;

use crate::contract::{ObjectMeta, Page, rfc3339};
use crate::key::{self, ObjectKey};

const OBJECTS_DIR: &str = "objects";
const STAGING_DIR: &str = "staging";

/// How often `put` starts over when a concurrent `delete` prunes the directory it is writing
/// into. One retry is nearly always enough; the bound keeps a pathological race finite.
const PLACE_ATTEMPTS: usize = 4;

/// Makes staging names unique within the process; the process id separates processes
/// sharing a root, and `create_new` catches anything else.
static STAGING_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What sits at a key's path.
enum Entry {
    Absent,
    Object(Metadata),
    /// A directory: the key is a prefix of other objects, not an object itself.
    Directory,
    /// A socket, fifo or device: nothing the engine wrote.
    Foreign,
    /// A proper prefix of the key is an object, so nothing can exist below it.
    UnderObject(String),
}

/// One tenant's folders, opened as capabilities.
pub struct TenantStore {
    objects: Dir,
    staging: Dir,
}

impl TenantStore {
    /// Opens (creating if needed) the tenant's folders under `root`.
    pub fn open(root: &Dir, tenant: &TenantId) -> io::Result<Self> {
        root.create_dir_all(tenant.as_str())?;
        let tenant_dir = root.open_dir(tenant.as_str())?;
        tenant_dir.create_dir_all(OBJECTS_DIR)?;
        tenant_dir.create_dir_all(STAGING_DIR)?;
        Ok(TenantStore {
            objects: tenant_dir.open_dir(OBJECTS_DIR)?,
            staging: tenant_dir.open_dir(STAGING_DIR)?,
        })
    }

    pub fn put(&self, key: &ObjectKey, content: &[u8]) -> Result<ObjectMeta, ProviderError> {
        let (staged, meta) = self.stage(content)?;
        let placed = self.place(key, &staged);
        if placed.is_err()
            && let Err(e) = self.staging.remove_file(&staged)
        {
            tracing::warn!(file = %staged, error = %e, "could not remove a staged object");
        }
        placed?;
        describe(key.as_str(), content.len() as u64, &meta)
    }

    pub fn get(&self, key: &ObjectKey) -> Result<(ObjectMeta, Vec<u8>), ProviderError> {
        let Entry::Object(_) = self.inspect(key)? else {
            return Err(missing(key));
        };
        let failure = |e| read_failure("get", key, e);
        let mut file = self.objects.open(key.as_str()).map_err(failure)?;
        let meta = file.metadata().map_err(failure)?;
        // Checked on the opened file too: the path may have changed since `inspect`.
        if !meta.is_file() {
            return Err(missing(key));
        }
        let mut content = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut content).map_err(failure)?;
        Ok((
            describe(key.as_str(), content.len() as u64, &meta)?,
            content,
        ))
    }

    pub fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ProviderError> {
        match self.inspect(key)? {
            Entry::Object(meta) => describe(key.as_str(), meta.len(), &meta),
            _ => Err(missing(key)),
        }
    }

    /// Objects whose key starts with `prefix` and sorts strictly after `cursor`, in key order.
    pub fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, ProviderError> {
        let mut walk = Walk {
            prefix,
            cursor,
            // One more than the page, to learn whether anything remains after it.
            want: limit + 1,
            found: Vec::new(),
        };
        walk.visit(&self.objects, "")
            .map_err(|e| ProviderError::internal(format!("list {prefix:?}: {e}")))?;
        let more = walk.found.len() > limit;
        walk.found.truncate(limit);
        let objects = walk
            .found
            .iter()
            .map(|(key, meta)| describe(key, meta.len(), meta))
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = more
            .then(|| objects.last().map(|o| o.key.clone()))
            .flatten();
        Ok(Page {
            objects,
            next_cursor,
        })
    }

    /// Removes the object and then its parent directories that became empty, so that a later
    /// `put` of a key equal to such a directory's path is not blocked by a leftover.
    pub fn delete(&self, key: &ObjectKey) -> Result<bool, ProviderError> {
        let Entry::Object(_) = self.inspect(key)? else {
            return Ok(false);
        };
        match self.objects.remove_file(key.as_str()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(read_failure("delete", key, e)),
        }
        for dir in key.ancestors().rev() {
            // Fails once a directory still holds something, which ends the pruning.
            if self.objects.remove_dir(dir).is_err() {
                break;
            }
        }
        Ok(true)
    }

    /// Whether the tenant's folders still exist and accept writes: stages an empty file and
    /// removes it again.
    pub fn probe(&self) -> Result<(), String> {
        let (staged, _) = self.stage(&[]).map_err(|e| e.detail)?;
        self.staging
            .remove_file(&staged)
            .map_err(|e| format!("cannot remove a probe file: {e}"))
    }

    /// Removes staged files older than `older_than`: leftovers of a process that died between
    /// writing and renaming. The age threshold spares the files of another instance of the
    /// same tenant that is writing right now (during a hot swap both run at once).
    pub fn sweep_staging(&self, older_than: Duration) -> io::Result<usize> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in self.staging.entries()? {
            let entry = entry?;
            let meta = entry.metadata()?;
            let age = now
                .duration_since(meta.modified()?.into_std())
                .unwrap_or_default();
            if meta.is_file() && age > older_than {
                entry.remove_file()?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Writes `content` to a new file in staging and flushes it to disk, so that once renamed
    /// the object survives a crash. Returns the staged name and the file's metadata.
    fn stage(&self, content: &[u8]) -> Result<(String, Metadata), ProviderError> {
        let failure =
            |e: io::Error| ProviderError::internal(format!("cannot stage an object: {e}"));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        let (name, mut file) = loop {
            let name = format!(
                "put-{}-{}.part",
                std::process::id(),
                STAGING_COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            match self.staging.open_with(&name, &options) {
                Ok(file) => break (name, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(failure(e)),
            }
        };
        let written = file
            .write_all(content)
            .and_then(|()| file.sync_all())
            .and_then(|()| file.metadata());
        match written {
            Ok(meta) => Ok((name, meta)),
            Err(e) => {
                // Best effort: the sweep at the next start removes what this leaves behind.
                let _ = self.staging.remove_file(&name);
                Err(failure(e))
            }
        }
    }

    /// Renames a staged file to `key`, creating parent directories. Directory pruning by a
    /// concurrent `delete` can remove a parent between its creation and the rename; the
    /// rename then fails with not-found and the whole step is simply repeated.
    fn place(&self, key: &ObjectKey, staged: &str) -> Result<(), ProviderError> {
        for _ in 0..PLACE_ATTEMPTS {
            match self.inspect(key)? {
                Entry::Absent | Entry::Object(_) => {}
                Entry::UnderObject(object) => {
                    return Err(conflict(format!(
                        "{:?} is an object, so no key can continue it with '/'",
                        object
                    )));
                }
                // An empty directory is a leftover and can go; a full one holds other objects.
                Entry::Directory => {
                    if self.objects.remove_dir(key.as_str()).is_err() {
                        return Err(conflict(format!(
                            "{:?} is the prefix of other objects ('{}/...'), so it cannot also be an object",
                            key.as_str(),
                            key.as_str()
                        )));
                    }
                }
                Entry::Foreign => {
                    return Err(conflict(format!(
                        "{:?} is occupied by something that is not an object",
                        key.as_str()
                    )));
                }
            }
            if let Some(parent) = key.parent() {
                match self.objects.create_dir_all(parent) {
                    Ok(()) => {}
                    // A concurrent delete pruning the same directories makes the creation
                    // fail either way: NotFound for a vanished ancestor, AlreadyExists when it
                    // saw the directory and then lost it. Looking again settles it; a file in
                    // the way is then reported by `inspect`.
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists
                        ) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(write_failure(key, e)),
                }
            }
            match self.staging.rename(staged, &self.objects, key.as_str()) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(write_failure(key, e)),
            }
        }
        Err(conflict(format!(
            "{:?} kept changing under concurrent writes and deletes",
            key.as_str()
        ))
        .with_retryable(true))
    }

    /// Looks at the key's path without following any link: each directory on the way, then
    /// the key itself.
    fn inspect(&self, key: &ObjectKey) -> Result<Entry, ProviderError> {
        let stat = |path: &str| match self.objects.symlink_metadata(path) {
            Ok(meta) if meta.is_symlink() => Err(through_link(key)),
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(read_failure("inspect", key, e)),
        };
        for dir in key.ancestors() {
            match stat(dir)? {
                None => return Ok(Entry::Absent),
                Some(meta) if meta.is_dir() => {}
                Some(_) => return Ok(Entry::UnderObject(dir.to_owned())),
            }
        }
        Ok(match stat(key.as_str())? {
            None => Entry::Absent,
            Some(meta) if meta.is_file() => Entry::Object(meta),
            Some(meta) if meta.is_dir() => Entry::Directory,
            Some(_) => Entry::Foreign,
        })
    }
}

/// A depth-first walk of `objects/` in key order that stops as soon as it has `want` objects.
///
/// Keys sort byte-wise, and every key below directory `d` starts with `d/`, so visiting each
/// directory's entries sorted by name (with `/` appended to sub-directories) yields keys in
/// order. Sub-directories that cannot hold a key matching the prefix, or a key after the
/// cursor, are skipped without being read.
struct Walk<'a> {
    prefix: &'a str,
    cursor: Option<&'a str>,
    want: usize,
    found: Vec<(String, Metadata)>,
}

impl Walk<'_> {
    /// Visits `dir`, whose keys all start with `base`.
    fn visit(&mut self, dir: &Dir, base: &str) -> io::Result<()> {
        let mut entries = Vec::new();
        for entry in dir.entries()? {
            let entry = entry?;
            // Names no key can produce (not UTF-8, a backslash...) were not written by the engine.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !key::is_valid_segment(&name) {
                continue;
            }
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // Links, sockets and fifos are not objects and are never followed.
            if file_type.is_dir() {
                entries.push((format!("{base}{name}/"), true, entry));
            } else if file_type.is_file() {
                entries.push((format!("{base}{name}"), false, entry));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, is_dir, entry) in entries {
            if self.found.len() >= self.want {
                break;
            }
            // An entry removed by a concurrent delete since it was read is simply not listed.
            if is_dir {
                if self.may_hold_matches(&path) {
                    match entry.open_dir() {
                        Ok(sub) => self.visit(&sub, &path)?,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    }
                }
            } else if path.starts_with(self.prefix) && self.cursor.is_none_or(|c| path.as_str() > c)
            {
                match entry.metadata() {
                    Ok(meta) => self.found.push((path, meta)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Whether some key starting with `dir_path` (which ends in '/') can match the prefix and
    /// sort after the cursor.
    fn may_hold_matches(&self, dir_path: &str) -> bool {
        let prefix_ok = dir_path.starts_with(self.prefix) || self.prefix.starts_with(dir_path);
        let cursor_ok = self
            .cursor
            .is_none_or(|c| dir_path > c || c.starts_with(dir_path));
        prefix_ok && cursor_ok
    }
}

fn describe(key: &str, size: u64, meta: &Metadata) -> Result<ObjectMeta, ProviderError> {
    let modified = meta
        .modified()
        .map_err(|e| ProviderError::internal(format!("{key:?} has no modification time: {e}")))?;
    Ok(ObjectMeta {
        key: key.to_owned(),
        size,
        modified_at: rfc3339(OffsetDateTime::from(modified.into_std()))?,
    })
}

fn missing(key: &ObjectKey) -> ProviderError {
    ProviderError::not_found(format!("no object with key {:?}", key.as_str()))
}

fn conflict(detail: String) -> ProviderError {
    ProviderError::new(ErrorCode::Conflict, detail)
}

fn through_link(key: &ObjectKey) -> ProviderError {
    ProviderError::invalid_param(
        "/key",
        format!(
            "{:?} leads through a symbolic link; this engine never follows links",
            key.as_str()
        ),
    )
}

/// An I/O error while reading: a path that vanished or stopped being a directory midway means
/// the object is not there; anything else is the engine's problem, not the caller's.
fn read_failure(action: &str, key: &ObjectKey, e: io::Error) -> ProviderError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => missing(key),
        _ => ProviderError::internal(format!("{action} {:?}: {e}", key.as_str())),
    }
}

/// An I/O error while placing an object: a path component that turned into a file midway is
/// a conflict with another write; anything else is the engine's problem.
fn write_failure(key: &ObjectKey, e: io::Error) -> ProviderError {
    match e.kind() {
        io::ErrorKind::NotADirectory
        | io::ErrorKind::AlreadyExists
        | io::ErrorKind::IsADirectory => conflict(format!(
            "{:?} collides with another object's path: {e}",
            key.as_str()
        )),
        _ => ProviderError::internal(format!("put {:?}: {e}", key.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    fn store() -> (tempfile::TempDir, TenantStore) {
        let root = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(root.path(), ambient_authority()).unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        (root, TenantStore::open(&dir, &tenant).unwrap())
    }

    #[test]
    fn sweep_removes_only_old_staged_files() {
        let (root, store) = store();
        let staging = root.path().join("acme").join(STAGING_DIR);
        let old = staging.join("put-1-1.part");
        std::fs::write(&old, b"orphan").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        std::fs::write(staging.join("put-1-2.part"), b"in flight").unwrap();

        assert_eq!(store.sweep_staging(Duration::from_secs(3600)).unwrap(), 1);
        assert!(!old.exists());
        assert!(staging.join("put-1-2.part").exists());
    }

    #[test]
    fn staged_files_never_show_in_objects() {
        let (root, store) = store();
        let key = ObjectKey::parse("a/b.txt", "/key").unwrap();
        store.put(&key, b"x").unwrap();
        let staging = root.path().join("acme").join(STAGING_DIR);
        assert_eq!(std::fs::read_dir(staging).unwrap().count(), 0);
        assert_eq!(
            std::fs::read(root.path().join("acme/objects/a/b.txt")).unwrap(),
            b"x"
        );
    }

    #[test]
    fn delete_prunes_emptied_directories_so_the_prefix_can_become_an_object() {
        let (root, store) = store();
        let nested = ObjectKey::parse("a/b/c", "/key").unwrap();
        store.put(&nested, b"1").unwrap();
        assert!(store.delete(&nested).unwrap());
        assert!(!root.path().join("acme/objects/a").exists());
        store
            .put(&ObjectKey::parse("a", "/key").unwrap(), b"2")
            .unwrap();
    }

    #[test]
    fn a_key_cannot_be_both_an_object_and_a_prefix_directory() {
        let (_root, store) = store();
        store
            .put(&ObjectKey::parse("a/b", "/key").unwrap(), b"1")
            .unwrap();
        let err = store
            .put(&ObjectKey::parse("a", "/key").unwrap(), b"2")
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
        let err = store
            .put(&ObjectKey::parse("a/b/c", "/key").unwrap(), b"3")
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
    }

    #[test]
    fn readers_never_see_a_partly_written_object() {
        let (_root, store) = store();
        let store = std::sync::Arc::new(store);
        let key = ObjectKey::parse("hot/doc", "/key").unwrap();
        let versions = [vec![b'a'; 256 * 1024], vec![b'b'; 128 * 1024]];
        store.put(&key, &versions[0]).unwrap();

        let writer = {
            let (store, key, versions) = (store.clone(), key.clone(), versions.clone());
            std::thread::spawn(move || {
                for round in 0..50 {
                    store.put(&key, &versions[round % 2]).unwrap();
                }
            })
        };
        while !writer.is_finished() {
            let (meta, content) = store.get(&key).unwrap();
            assert!(
                versions.contains(&content),
                "a torn read of {} bytes",
                content.len()
            );
            assert_eq!(meta.size, content.len() as u64);
        }
        writer.join().unwrap();
    }

    #[test]
    fn puts_survive_deletes_pruning_their_directory() {
        let (_root, store) = store();
        let store = std::sync::Arc::new(store);
        let churn = ObjectKey::parse("d/e/churn", "/key").unwrap();
        let steady = ObjectKey::parse("d/e/steady", "/key").unwrap();
        let deleter = {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    store.put(&churn, b"c").unwrap();
                    store.delete(&churn).unwrap();
                }
            })
        };
        for _ in 0..300 {
            store.put(&steady, b"s").unwrap();
            store.delete(&steady).unwrap();
        }
        deleter.join().unwrap();
    }
}
