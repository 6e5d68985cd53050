//! The file backend of the [token store](super): one JSON file, replaced atomically.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{
    BoxFuture, FORMAT_VERSION, ParseError, StoreError, StoredAccessToken, StoredRefreshToken,
    StoredState, TokenStore,
};
use crate::secret::Secret;

/// A [`TokenStore`] kept in one JSON file, as the top of `src/token/store.rs` describes.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    /// Serialises `update`s within this process; the lock file serialises processes.
    writer: tokio::sync::Mutex<()>,
}

// === impl FileStore ===

impl FileStore {
    /// Creates a store kept at `path`. Nothing is touched until the first `load` or `update`.
    pub fn new(path: PathBuf) -> Self {
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        Self {
            path,
            lock_path: PathBuf::from(lock_path),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns the path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the default store path: `$XDG_STATE_HOME/zoho-meeting-proxy/token.json`, else
    /// `$HOME/.local/state/zoho-meeting-proxy/token.json`, or `None` when neither is set.
    pub fn default_path() -> Option<PathBuf> {
        super::default_path_from(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
    }
}

impl TokenStore for FileStore {
    fn load(&self) -> BoxFuture<'_, Result<StoredState, StoreError>> {
        let path = self.path.clone();
        Box::pin(blocking(move || read_state(&path)))
    }

    fn update<'a>(
        &'a self,
        f: Box<dyn FnOnce(&mut StoredState) + Send + 'a>,
    ) -> BoxFuture<'a, Result<StoredState, StoreError>> {
        Box::pin(async move {
            let _writer = self.writer.lock().await;

            let (path, lock_path) = (self.path.clone(), self.lock_path.clone());
            let (lock, mut state) = blocking(move || lock_and_read(&path, &lock_path)).await?;

            // `f` is not 'static, so it runs here rather than on the blocking pool. If it
            // panics, `lock` is dropped (closing the lock file releases the lock) and nothing
            // has been written.
            f(&mut state);

            let path = self.path.clone();
            blocking(move || {
                write_state(&path, &state)?;
                // Closing the lock file releases the lock, after the new file is in place.
                drop(lock);
                Ok(state)
            })
            .await
        })
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn is_persistent(&self) -> bool {
        true
    }
}

// === on-disk format ===

/// Reads only the version, so a newer format is reported as such rather than as corrupt.
#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

/// The file as read. Unknown fields are rejected: a typo in a hand-edited file is an error,
/// not a silently dropped value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskState {
    #[expect(
        dead_code,
        reason = "checked by VersionProbe; listed so the field is allowed"
    )]
    version: u64,
    #[serde(default)]
    refresh_token: Option<DiskRefreshToken>,
    #[serde(default)]
    access_token: Option<DiskAccessToken>,
    #[serde(default)]
    mints: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskRefreshToken {
    token: Secret<String>,
    accounts_server: String,
    client_id: String,
    #[serde(default)]
    data_center: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    obtained_at: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiskAccessToken {
    token: Secret<String>,
    expires_at: u64,
    accounts_server: String,
    minted_by: String,
}

/// The file as written: borrows the state, and exposes each secret by name.
#[derive(Serialize)]
struct DiskStateOut<'a> {
    version: u64,
    refresh_token: Option<DiskRefreshTokenOut<'a>>,
    access_token: Option<DiskAccessTokenOut<'a>>,
    mints: &'a [u64],
}

#[derive(Serialize)]
struct DiskRefreshTokenOut<'a> {
    token: &'a str,
    accounts_server: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_center: Option<&'a str>,
    scopes: &'a [String],
    obtained_at: u64,
}

#[derive(Serialize)]
struct DiskAccessTokenOut<'a> {
    token: &'a str,
    expires_at: u64,
    accounts_server: &'a str,
    minted_by: &'a str,
}

impl From<DiskState> for StoredState {
    fn from(disk: DiskState) -> Self {
        Self {
            refresh_token: disk.refresh_token.map(|r| StoredRefreshToken {
                token: r.token,
                accounts_server: r.accounts_server,
                client_id: r.client_id,
                data_center: r.data_center,
                scopes: r.scopes,
                obtained_at: r.obtained_at,
            }),
            access_token: disk.access_token.map(|a| StoredAccessToken {
                token: a.token,
                expires_at: a.expires_at,
                accounts_server: a.accounts_server,
                minted_by: a.minted_by,
                lifetime: None,
            }),
            mints: disk.mints,
        }
    }
}

impl<'a> From<&'a StoredState> for DiskStateOut<'a> {
    fn from(state: &'a StoredState) -> Self {
        Self {
            version: FORMAT_VERSION,
            refresh_token: state.refresh_token.as_ref().map(|r| DiskRefreshTokenOut {
                token: r.token.expose(),
                accounts_server: &r.accounts_server,
                client_id: &r.client_id,
                data_center: r.data_center.as_deref(),
                scopes: &r.scopes,
                obtained_at: r.obtained_at,
            }),
            access_token: state.access_token.as_ref().map(|a| DiskAccessTokenOut {
                token: a.token.expose(),
                expires_at: a.expires_at,
                accounts_server: &a.accounts_server,
                minted_by: &a.minted_by,
            }),
            mints: &state.mints,
        }
    }
}

// === helpers ===

/// Runs blocking file I/O off the async workers. A panic in `f` is a bug and is resumed.
async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Cancelled),
    }
}

/// Returns the directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Reads and decodes the store file; a missing file is the empty state.
fn read_state(path: &Path) -> Result<StoredState, StoreError> {
    let read_error = |source| StoreError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StoredState::default()),
        Err(e) => return Err(read_error(e)),
    };
    let mode = file.metadata().map_err(read_error)?.permissions().mode();
    if mode & 0o044 != 0 {
        tracing::warn!(
            path = %path.display(),
            "token store is readable by other users; it is rewritten with mode 0600 on the next update"
        );
    }
    // The buffer holds secrets: wipe it once decoded (best effort).
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes).map_err(read_error)?;
    decode(path, &bytes)
}

fn decode(path: &Path, bytes: &[u8]) -> Result<StoredState, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
        path: path.to_owned(),
        source: ParseError::from_json(&e),
    };
    let probe: VersionProbe = serde_json::from_slice(bytes).map_err(corrupt)?;
    if probe.version != FORMAT_VERSION {
        return Err(StoreError::UnsupportedVersion {
            path: path.to_owned(),
            version: probe.version,
        });
    }
    let disk: DiskState = serde_json::from_slice(bytes).map_err(corrupt)?;
    Ok(disk.into())
}

/// Makes sure the store's directory exists (creating it with mode 0700) and is not
/// world-writable, then takes the exclusive lock and reads the current state.
///
/// The returned file holds the lock until it is dropped.
fn lock_and_read(path: &Path, lock_path: &Path) -> Result<(File, StoredState), StoreError> {
    let dir = parent_dir(path);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::CreateDirectory {
            path: dir.to_owned(),
            source,
        })?;
    let dir_mode = fs::metadata(dir)
        .map_err(|source| StoreError::CreateDirectory {
            path: dir.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if dir_mode & 0o002 != 0 {
        return Err(StoreError::InsecureDirectory {
            path: dir.to_owned(),
        });
    }

    let lock_error = |source| StoreError::Lock {
        path: lock_path.to_owned(),
        source,
    };
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path)
        .map_err(lock_error)?;
    lock.lock().map_err(lock_error)?;

    let state = read_state(path)?;
    Ok((lock, state))
}

/// Replaces the store file atomically: unique temp file (mode 0600) in the same directory,
/// write, fsync, rename over the target, fsync the directory. The temp file is removed on
/// failure.
fn write_state(path: &Path, state: &StoredState) -> Result<(), StoreError> {
    let write_error = |source| StoreError::Write {
        path: path.to_owned(),
        source,
    };

    // The buffer holds secrets: wipe it once written (best effort; reserve up front so that
    // growing it leaves fewer copies behind).
    let mut bytes = Zeroizing::new(Vec::with_capacity(4096));
    serde_json::to_writer_pretty(&mut *bytes, &DiskStateOut::from(state))
        .map_err(|e| write_error(e.into()))?;
    bytes.push(b'\n');

    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map_or_else(|| "token.json".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));

    let replace = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    };
    if let Err(e) = replace() {
        // The temp file may not exist (create failed); nothing more to do either way.
        let _ = fs::remove_file(&tmp);
        return Err(write_error(e));
    }

    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_error)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    const REFRESH: &str = "1000.refresh.s3cr3t-refresh-value";
    const ACCESS: &str = "1000.access.s3cr3t-access-value";

    fn full_state() -> StoredState {
        StoredState {
            refresh_token: Some(StoredRefreshToken {
                token: Secret::from(REFRESH),
                accounts_server: "https://accounts.zoho.eu".to_owned(),
                client_id: "1000.CLIENTID".to_owned(),
                data_center: Some("eu".into()),
                scopes: vec![
                    "ZohoMeeting.meeting.ALL".to_owned(),
                    "ZohoMeeting.manageOrg.READ".to_owned(),
                ],
                obtained_at: 1_700_000_000_000,
            }),
            access_token: Some(StoredAccessToken {
                token: Secret::from(ACCESS),
                expires_at: 1_700_000_360_000,
                accounts_server: "https://accounts.zoho.eu".to_owned(),
                minted_by: "3f2a9c0d1e4b5a67".to_owned(),
                lifetime: None,
            }),
            mints: vec![1_700_000_000_000, 1_700_000_060_000],
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn push_mint(n: u64) -> Box<dyn FnOnce(&mut StoredState) + Send + 'static> {
        Box::new(move |s: &mut StoredState| s.mints.push(n))
    }

    /// Every message in the error's source chain, joined.
    fn chain(e: &(dyn std::error::Error + 'static)) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(e) = next {
            out.push_str(": ");
            out.push_str(&e.to_string());
            next = e.source();
        }
        out
    }

    #[tokio::test]
    async fn full_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("token.json"));
        let written = store.update(Box::new(|s| *s = full_state())).await.unwrap();
        assert_eq!(written, full_state());

        let loaded = FileStore::new(dir.path().join("token.json"))
            .load()
            .await
            .unwrap();
        assert_eq!(loaded, full_state());
        let refresh = loaded.refresh_token.unwrap();
        assert_eq!(refresh.token.expose(), REFRESH);
        assert_eq!(loaded.access_token.unwrap().token.expose(), ACCESS);
    }

    #[tokio::test]
    async fn file_is_pretty_versioned_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        FileStore::new(path.clone())
            .update(Box::new(|s| *s = full_state()))
            .await
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\n  \"version\": 1,"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["refresh_token"]["token"], REFRESH);
        assert_eq!(json["access_token"]["expires_at"], 1_700_000_360_000u64);
    }

    #[tokio::test]
    async fn missing_file_loads_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("not").join("yet").join("token.json"));
        assert_eq!(store.load().await.unwrap(), StoredState::default());
        // Loading creates nothing.
        assert!(!dir.path().join("not").exists());
    }

    #[tokio::test]
    async fn files_are_private_after_create_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state").join("zoho-meeting-proxy");
        let path = state_dir.join("token.json");
        let store = FileStore::new(path.clone());

        store.update(push_mint(1)).await.unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        assert_eq!(mode(&state_dir), 0o700);
        assert_eq!(mode(&state_dir.join("token.json.lock")), 0o600);

        store.update(push_mint(2)).await.unwrap();
        assert_eq!(mode(&path), 0o600);

        // A file someone loosened is still read, and tightened by the next update.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(store.load().await.unwrap().mints, vec![1, 2]);
        store.update(push_mint(3)).await.unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[tokio::test]
    async fn updates_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("token.json"));
        for n in 0..10 {
            store.update(push_mint(n)).await.unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["token.json", "token.json.lock"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reader_never_sees_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path().join("token.json")));
        store.update(Box::new(|s| *s = full_state())).await.unwrap();
        let done = Arc::new(AtomicBool::new(false));

        let reader = tokio::spawn({
            let (store, done) = (store.clone(), done.clone());
            async move {
                let (mut reads, mut last) = (0usize, 0usize);
                while !done.load(Ordering::Acquire) {
                    let state = store.load().await.unwrap();
                    assert!(state.mints.len() >= last, "mints went backwards");
                    assert_eq!(state.refresh_token, full_state().refresh_token);
                    last = state.mints.len();
                    reads += 1;
                }
                reads
            }
        });

        for n in 0..200 {
            store.update(push_mint(n)).await.unwrap();
        }
        done.store(true, Ordering::Release);
        let reads = reader.await.unwrap();
        assert!(reads > 0);
        assert_eq!(store.load().await.unwrap().mints.len(), 2 + 200);
    }

    #[tokio::test]
    async fn corrupt_file_is_reported_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        let garbage = b"{\"version\": 1, \"mints\": [1, 2,".as_slice();
        fs::write(&path, garbage).unwrap();
        let store = FileStore::new(path.clone());

        let err = store.load().await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(message.contains("fix or delete it"), "{message}");

        let called = Arc::new(AtomicBool::new(false));
        let err = store
            .update(Box::new({
                let called = called.clone();
                move |s| {
                    called.store(true, Ordering::SeqCst);
                    s.mints.push(3);
                }
            }))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(!called.load(Ordering::SeqCst));
        assert_eq!(fs::read(&path).unwrap(), garbage);
    }

    #[tokio::test]
    async fn corrupt_file_errors_do_not_quote_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        let store = FileStore::new(path.clone());
        // serde_json would say `invalid type: string "1000.leak…", expected …` here.
        for text in [
            r#"{"version": 1, "mints": "1000.leaked-secret"}"#,
            r#"{"version": 1, "refresh_token": "1000.leaked-secret"}"#,
            r#"{"version": 1, "1000.leaked-secret": 1}"#,
            r#"1000.leaked-secret"#,
            r#"["1000.leaked-secret"]"#,
        ] {
            fs::write(&path, text).unwrap();
            let err = store.load().await.unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
            let printed = format!("{} {err:?}", chain(&err));
            assert!(!printed.contains("leaked"), "{printed}");
            assert!(printed.contains("line 1"), "{printed}");
        }
    }

    #[tokio::test]
    async fn newer_format_version_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        fs::write(&path, r#"{"version": 2, "whatever": {"new": true}}"#).unwrap();
        let store = FileStore::new(path.clone());
        let err = store.load().await.unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedVersion { version: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("version 2"), "{err}");
        assert!(store.update(push_mint(1)).await.is_err());
        assert!(fs::read_to_string(&path).unwrap().contains("whatever"));
    }

    #[tokio::test]
    async fn world_writable_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let store = FileStore::new(shared.join("token.json"));

        let err = store.update(push_mint(1)).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::InsecureDirectory { path } if *path == shared),
            "{err:?}"
        );
        assert!(!shared.join("token.json").exists());
        assert!(!shared.join("token.json.lock").exists());

        // Sticky does not make it acceptable either.
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = store.update(push_mint(1)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InsecureDirectory { .. }),
            "{err:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path().join("token.json")));
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.update(push_mint(n)).await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let mut mints = store.load().await.unwrap().mints;
        mints.sort_unstable();
        assert_eq!(mints, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_on_one_file_lose_nothing() {
        // Two instances share no in-process mutex, only the lock file: like two processes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        let stores = [
            Arc::new(FileStore::new(path.clone())),
            Arc::new(FileStore::new(path.clone())),
        ];
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let store = stores[n as usize % 2].clone();
                tokio::spawn(async move { store.update(push_mint(n)).await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let mut mints = FileStore::new(path).load().await.unwrap().mints;
        mints.sort_unstable();
        assert_eq!(mints, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn panicking_update_writes_nothing_and_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        let store = Arc::new(FileStore::new(path.clone()));
        store.update(push_mint(1)).await.unwrap();
        let before = fs::read(&path).unwrap();

        let panicked = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .update(Box::new(|s| {
                        s.mints.push(2);
                        panic!("closure failed");
                    }))
                    .await
            }
        })
        .await;
        assert!(panicked.unwrap_err().is_panic());
        assert_eq!(fs::read(&path).unwrap(), before);

        // Neither the in-process mutex nor the file lock is left held.
        let after = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            store.update(push_mint(3)),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(after.mints, vec![1, 3]);
    }

    #[tokio::test]
    async fn debug_output_shows_no_secrets() {
        let state = full_state();
        let printed = format!("{state:?} {state:#?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(printed.contains("accounts.zoho.eu"));

        let memory = crate::token::store::MemoryStore::with_state(full_state());
        assert!(!format!("{memory:?}").contains("s3cr3t"));
    }

    #[test]
    fn file_store_describes_its_path() {
        let store = FileStore::new(PathBuf::from("/var/lib/zmp/token.json"));
        assert!(store.is_persistent());
        assert_eq!(store.path(), Path::new("/var/lib/zmp/token.json"));
        assert_eq!(store.describe(), "/var/lib/zmp/token.json");
    }

    #[test]
    fn error_messages_name_the_path_and_not_the_source() {
        let err = StoreError::Read {
            path: PathBuf::from("/s/token.json"),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(err.to_string(), "cannot read token store /s/token.json");
        assert!(err.source().is_some());
    }
}
