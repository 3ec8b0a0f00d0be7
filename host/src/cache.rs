//! The precompiled-component cache: native code for a guest, keyed by the
//! wasm's hash and the engine's configuration, checked before it is used.
//!
//! An entry is `MAGIC | len(code) | crc32(code) | code`, where `code` is
//! `Engine::precompile_component`'s output. Loading checks the length and
//! the checksum before handing the bytes to `Component::deserialize`
//! (which trusts its input), so a truncated or damaged file is detected
//! and rebuilt. (The checksum guards against accidents, not against
//! someone who can write the cache directory: such a user can already
//! change anything the wfetch user runs.) The key is the SHA-256 of the
//! wasm bytes, wasmtime's compatibility hash (version, target, settings)
//! and this crate's version, so a stale entry is never found for a
//! different engine; the embedded guest's SHA-256 is computed at build
//! time.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::engine::DEFAULT_GUEST;

const MAGIC: &[u8; 8] = b"WFCACHE2";

/// Bytes between the magic and the code: its length and CRC-32, both
/// little-endian.
const HEADER: usize = 8 + 4;

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
    let key = hex(&sha.finalize()[..16]);
    dir.join(format!("{key}.cwasm"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Load `wasm` through the cache in `dir`, compiling and storing on a miss.
pub fn load(engine: &Engine, dir: &Path, wasm: &[u8]) -> wasmtime::Result<(Component, Outcome)> {
    let path = entry_path(engine, dir, wasm);
    let mut found_bad = false;
    if let Ok(bytes) = std::fs::read(&path) {
        match verified_code(&bytes) {
            Some(code) => {
                // SAFETY: `code` is exactly what `precompile_component` wrote
                // for this engine configuration (the key says so) and its
                // checksum matches, so it is not truncated or altered by
                // accident. wasmtime checks the header and version again.
                match unsafe { Component::deserialize(engine, code) } {
                    Ok(c) => return Ok((c, Outcome::Hit)),
                    Err(e) => {
                        tracing::warn!("cache entry {} unusable ({e}); rebuilding", path.display());
                        found_bad = true;
                    }
                }
            }
            None => {
                tracing::warn!("cache entry {} is corrupt; rebuilding", path.display());
                found_bad = true;
            }
        }
    }
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

/// The code of an entry whose length and checksum hold.
fn verified_code(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < HEADER {
        return None;
    }
    let (header, code) = rest.split_at(HEADER);
    let len = u64::from_le_bytes(header[..8].try_into().ok()?);
    let sum = u32::from_le_bytes(header[8..].try_into().ok()?);
    (len == code.len() as u64 && crc32fast::hash(code) == sum).then_some(code)
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
    let mut data = Vec::with_capacity(MAGIC.len() + HEADER + code.len());
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&(code.len() as u64).to_le_bytes());
    data.extend_from_slice(&crc32fast::hash(code).to_le_bytes());
    data.extend_from_slice(code);
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
}
