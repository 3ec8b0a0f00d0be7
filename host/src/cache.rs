//! The precompiled-component cache: native code for a guest, keyed by the
//! wasm's hash and the engine's configuration, checked before it is used.
//!
//! An entry is `code | len(code) | crc32(code) | MAGIC`, where `code` is
//! `Engine::precompile_component`'s output. Loading maps the file, checks
//! the length and the checksum, and only then lets wasmtime map it for use
//! (`Component::deserialize_file`, which trusts its input): nothing is
//! copied, code pages are read in as they run, and the guest's initial
//! memory is mapped straight from the file. A truncated or damaged file is
//! detected and rebuilt. (The checksum guards against accidents, not
//! against someone who can write the cache directory: such a user can
//! already change anything the wfetch user runs.) The key is the SHA-256 of
//! the wasm bytes, wasmtime's compatibility hash (version, target,
//! settings), this crate's version and the entry format, so a stale entry
//! is never found for a different engine; the embedded guest's SHA-256 is
//! computed at build time.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::engine::DEFAULT_GUEST;

/// The end of an entry, and its format's name (also part of the key).
const MAGIC: &[u8; 8] = b"WFCACHE3";

/// Bytes after the code: its length (u64) and CRC-32 (u32), both
/// little-endian, then the magic.
const TRAILER: usize = 8 + 4 + MAGIC.len();

/// Where entries live, from the environment: `$WFETCH_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/wfetch`, else `$HOME/.cache/wfetch`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WFETCH_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("wfetch"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("wfetch"))
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Loaded from a valid cache entry.
    Hit,
    /// Compiled, and stored for next time.
    Stored,
    /// A corrupt or unusable entry was found, compiled anew and replaced.
    Rebuilt,
    /// Compiled; the cache could not be written (read-only, full...).
    Uncached,
}

/// The SHA-256 of [`DEFAULT_GUEST`], computed by build.rs.
const DEFAULT_GUEST_SHA256: &[u8; 32] = include_bytes!(concat!(env!("OUT_DIR"), "/default-guest.sha256"));

/// The SHA-256 of a guest's wasm bytes: the part of its cache key that
/// names the guest. The embedded guest's was computed when it was built,
/// so a start does not hash half a megabyte.
fn digest(wasm: &[u8]) -> [u8; 32] {
    if std::ptr::eq(wasm, DEFAULT_GUEST) {
        return *DEFAULT_GUEST_SHA256;
    }
    Sha256::digest(wasm).into()
}

/// The cache file for `wasm` under `dir`.
pub fn entry_path(engine: &Engine, dir: &Path, wasm: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let engine_key = h.finish();
    let mut sha = Sha256::new();
    sha.update(digest(wasm));
    sha.update(engine_key.to_le_bytes());
    sha.update(env!("CARGO_PKG_VERSION").as_bytes());
    sha.update(MAGIC);
    let key = hex(&sha.finalize()[..16]);
    dir.join(format!("{key}.cwasm"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Load `wasm` through the cache in `dir`, compiling and storing on a miss.
pub fn load(engine: &Engine, dir: &Path, wasm: &[u8]) -> wasmtime::Result<(Component, Outcome)> {
    let path = entry_path(engine, dir, wasm);
    let found_bad = match hit(engine, &path) {
        Hit::Found(c) => return Ok((c, Outcome::Hit)),
        Hit::Missing => false,
        Hit::Bad(why) => {
            tracing::warn!("cache entry {} {why}; rebuilding", path.display());
            true
        }
    };
    let code = engine.precompile_component(wasm)?;
    // SAFETY: `code` was produced just now by this engine.
    let component = unsafe { Component::deserialize(engine, &code)? };
    let outcome = match store(&path, &code) {
        Ok(()) if found_bad => Outcome::Rebuilt,
        Ok(()) => Outcome::Stored,
        Err(e) => {
            tracing::warn!("cannot write cache entry {}: {e}", path.display());
            Outcome::Uncached
        }
    };
    Ok((component, outcome))
}

/// [`load`] when the entry is there and whole, without compiling or
/// writing anything otherwise (None: [`load`] will say why and rebuild).
pub fn load_hit(engine: &Engine, dir: &Path, wasm: &[u8]) -> Option<Component> {
    match hit(engine, &entry_path(engine, dir, wasm)) {
        Hit::Found(c) => Some(c),
        Hit::Missing | Hit::Bad(_) => None,
    }
}

/// What the cache holds at `path`.
enum Hit {
    Found(Component),
    /// Missing or unreadable: a plain miss.
    Missing,
    /// There, but damaged or refused by wasmtime.
    Bad(String),
}

fn hit(engine: &Engine, path: &Path) -> Hit {
    match entry_is_whole(path) {
        Err(_) => Hit::Missing,
        Ok(false) => Hit::Bad("is corrupt".into()),
        // SAFETY: the file holds exactly what `precompile_component` wrote
        // for this engine configuration (the key says so), its checksum
        // matches, so it is not truncated or altered by accident, and
        // entries are replaced by rename, never changed in place. wasmtime
        // checks the header and version again.
        Ok(true) => match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => Hit::Found(c),
            Err(e) => Hit::Bad(format!("unusable ({e})")),
        },
    }
}

/// Whether the entry at `path` holds its code whole. Read through a map,
/// so checking 1 MB costs no copy.
fn entry_is_whole(path: &Path) -> std::io::Result<bool> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the map is read-only and gone when this returns; entries are
    // replaced by rename, never written in place, so it does not change
    // under us.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(is_whole(&map))
}

/// Whether an entry's trailer holds: its magic, and its code's length and
/// checksum.
fn is_whole(entry: &[u8]) -> bool {
    let Some((code, trailer)) = entry.len().checked_sub(TRAILER).map(|n| entry.split_at(n)) else {
        return false;
    };
    let (len, rest) = trailer.split_at(8);
    let (sum, magic) = rest.split_at(4);
    magic == MAGIC && len == (code.len() as u64).to_le_bytes() && sum == crc32fast::hash(code).to_le_bytes()
}

/// Write an entry atomically (temp file + rename), so readers never see a
/// half-written one.
fn store(path: &Path, code: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id()
    ));
    let mut data = Vec::with_capacity(code.len() + TRAILER);
    data.extend_from_slice(code);
    data.extend_from_slice(&(code.len() as u64).to_le_bytes());
    data.extend_from_slice(&crc32fast::hash(code).to_le_bytes());
    data.extend_from_slice(MAGIC);
    std::fs::write(&tmp, &data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_guests_digest_is_its_sha256() {
        // The build-time shortcut against hashing the bytes now.
        let hashed: [u8; 32] = Sha256::digest(DEFAULT_GUEST).into();
        assert_eq!(digest(DEFAULT_GUEST), hashed);
    }

    #[test]
    fn an_entry_is_its_code_then_length_checksum_and_magic() {
        let code = b"\x7fELF and the rest of the code".to_vec();
        let dir = std::env::temp_dir().join(format!("wfetch-cache-unit-{}", std::process::id()));
        let path = dir.join("entry.cwasm");
        store(&path, &code).unwrap();
        let entry = std::fs::read(&path).unwrap();
        assert!(entry.starts_with(&code), "the code comes first, for wasmtime to map");
        assert!(is_whole(&entry));
        assert!(entry_is_whole(&path).unwrap());
        // Any damage is caught: a flipped byte, a lost byte, a wrong magic.
        for bad in [
            [&entry[..3], &[entry[3] ^ 1], &entry[4..]].concat(),
            entry[1..].to_vec(),
            [&entry[..entry.len() - 1], b"X"].concat(),
            Vec::new(),
        ] {
            assert!(!is_whole(&bad));
            std::fs::write(&path, &bad).unwrap();
            assert!(!entry_is_whole(&path).unwrap());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
