//! `aibench.fs`: files and folders. Writes are atomic (temp file + rename).

use std::path::{Path, PathBuf};

use mlua::prelude::*;

use crate::binding::{Fallible, OpError, Opts};

/// An I/O error as an `err` table naming the path.
pub fn io_err(op: &str, path: &Path, e: &std::io::Error) -> OpError {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => "not_found",
        K::PermissionDenied => "permission",
        K::AlreadyExists => "exists",
        K::IsADirectory => "is_dir",
        K::NotADirectory => "not_dir",
        K::DirectoryNotEmpty => "not_empty",
        _ => "io",
    };
    OpError::new(kind, format!("{op} {}: {e}", path.display())).with("path", path.display().to_string())
}

/// The most `fs.read` reads (results, recipes, configuration, job files):
/// `/dev/zero` or a runaway file is an error, not all of memory.
const READ_MAX: u64 = 256 << 20;

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let too_big = || {
        std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {} MiB, the most fs.read reads", READ_MAX >> 20),
        )
    };
    let meta = f.metadata()?;
    if meta.is_file() && meta.len() > READ_MAX {
        return Err(too_big());
    }
    let mut out = Vec::with_capacity(if meta.is_file() { meta.len() as usize } else { 0 });
    f.take(READ_MAX + 1).read_to_end(&mut out)?;
    if out.len() as u64 > READ_MAX {
        return Err(too_big());
    }
    Ok(out)
}

fn text(lua: &Lua, bytes: Vec<u8>) -> LuaResult<LuaString> {
    lua.create_string(bytes)
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "read",
        lua.create_function(|lua, path: String| -> LuaResult<Fallible<LuaString>> {
            match read_capped(Path::new(&path)) {
                Ok(b) => Ok(Ok(text(lua, b)?)),
                Err(e) => Ok(Err(io_err("read", Path::new(&path), &e))),
            }
        })?,
    )?;
    t.set(
        "write",
        lua.create_function(
            |lua, (path, data, opts): (String, LuaString, Option<LuaTable>)| -> LuaResult<Fallible<bool>> {
                let mut o = Opts::new(lua, "fs.write", opts);
                let mode: Option<u32> = o.get("mode")?;
                let mkdir: bool = o.get("mkdir")?.unwrap_or(false);
                o.finish()?;
                let p = Path::new(&path);
                if mkdir
                    && let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty())
                    && let Err(e) = aibench_core::util::create_dirs(parent)
                {
                    return Ok(Err(io_err("mkdir", parent, &e)));
                }
                Ok(aibench_core::util::atomic_write(p, &data.as_bytes(), mode)
                    .map(|_| true)
                    .map_err(|e| io_err("write", p, &e)))
            },
        )?,
    )?;
    t.set(
        "rescue",
        lua.create_function(|_, (name, data): (String, LuaString)| -> LuaResult<Fallible<String>> {
            Ok(aibench_core::util::rescue_write(&name, &data.as_bytes())
                .map(|p| p.display().to_string())
                .map_err(|e| io_err("rescue", &aibench_core::util::aibench_home().join("rescued"), &e)))
        })?,
    )?;
    t.set(
        "append",
        lua.create_function(|_, (path, data): (String, LuaString)| -> LuaResult<Fallible<bool>> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let p = Path::new(&path);
            let r = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(aibench_core::util::file_mode(p))
                .open(p)
                .and_then(|mut f| f.write_all(&data.as_bytes()));
            Ok(r.map(|_| true).map_err(|e| io_err("append", p, &e)))
        })?,
    )?;
    t.set(
        "same_file",
        lua.create_function(|_, (a, b): (String, String)| {
            use std::os::unix::fs::MetadataExt;
            Ok(match (std::fs::metadata(&a), std::fs::metadata(&b)) {
                (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
                _ => false,
            })
        })?,
    )?;
    t.set("exists", lua.create_function(|_, path: String| Ok(Path::new(&path).exists()))?)?;
    t.set("is_dir", lua.create_function(|_, path: String| Ok(Path::new(&path).is_dir()))?)?;
    t.set(
        "mkdir",
        lua.create_function(|_, path: String| -> LuaResult<Fallible<bool>> {
            let p = Path::new(&path);
            Ok(aibench_core::util::create_dirs(p).map(|_| true).map_err(|e| io_err("mkdir", p, &e)))
        })?,
    )?;
    t.set(
        "writable",
        lua.create_function(|_, path: String| -> LuaResult<Fallible<bool>> {
            let p = Path::new(&path);
            Ok(aibench_core::util::check_writable(p).map(|_| true).map_err(|e| io_err("write", p, &e)))
        })?,
    )?;
    t.set(
        "list",
        lua.create_function(|lua, path: String| -> LuaResult<Fallible<LuaTable>> {
            let p = Path::new(&path);
            let rd = match std::fs::read_dir(p) {
                Ok(rd) => rd,
                Err(e) => return Ok(Err(io_err("list", p, &e))),
            };
            let mut names: Vec<String> =
                rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            let t = lua.create_sequence_from(names)?;
            t.set_metatable(Some(lua.array_metatable()))?;
            Ok(Ok(t))
        })?,
    )?;
    t.set(
        "remove",
        lua.create_function(|lua, (path, opts): (String, Option<LuaTable>)| -> LuaResult<Fallible<bool>> {
            let mut o = Opts::new(lua, "fs.remove", opts);
            let recursive: bool = o.get("recursive")?.unwrap_or(false);
            o.finish()?;
            let p = Path::new(&path);
            let r = match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() && recursive => std::fs::remove_dir_all(p),
                Ok(m) if m.is_dir() => std::fs::remove_dir(p),
                Ok(_) => std::fs::remove_file(p),
                Err(e) => Err(e),
            };
            Ok(r.map(|_| true).map_err(|e| io_err("remove", p, &e)))
        })?,
    )?;
    t.set(
        "tmpdir",
        lua.create_function(|_, prefix: Option<String>| -> LuaResult<Fallible<String>> {
            let prefix = prefix.unwrap_or_else(|| "aibench-".into());
            match aibench_core::util::make_tmpdir(&prefix) {
                Ok(d) => Ok(Ok(d.display().to_string())),
                Err(e) => Ok(Err(io_err("tmpdir", &std::env::temp_dir(), &e))),
            }
        })?,
    )?;
    t.set(
        "stat",
        lua.create_function(|lua, path: String| -> LuaResult<Fallible<LuaTable>> {
            let p = Path::new(&path);
            match std::fs::metadata(p) {
                Ok(m) => {
                    let t = lua.create_table()?;
                    t.set("size", m.len())?;
                    t.set("is_dir", m.is_dir())?;
                    t.set("is_file", m.is_file())?;
                    let mtime = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_secs_f64());
                    t.set("mtime", mtime)?;
                    use std::os::unix::fs::PermissionsExt;
                    t.set("mode", m.permissions().mode() & 0o7777)?;
                    Ok(Ok(t))
                }
                Err(e) => Ok(Err(io_err("stat", p, &e))),
            }
        })?,
    )?;
    t.set(
        "join",
        lua.create_function(|_, parts: LuaVariadic<String>| {
            let mut p = PathBuf::new();
            for part in parts.iter() {
                p.push(part);
            }
            Ok(p.display().to_string())
        })?,
    )?;
    t.set(
        "dirname",
        lua.create_function(|_, path: String| {
            Ok(match Path::new(&path).parent() {
                Some(d) if !d.as_os_str().is_empty() => d.display().to_string(),
                _ => ".".to_string(),
            })
        })?,
    )?;
    t.set(
        "basename",
        lua.create_function(|_, path: String| {
            Ok(Path::new(&path).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
        })?,
    )?;
    t.set(
        "abspath",
        lua.create_function(|_, path: String| {
            Ok(aibench_core::util::absolute(Path::new(&path)).display().to_string())
        })?,
    )?;
    t.set(
        "cwd",
        lua.create_function(|_, ()| Ok(std::env::current_dir().map_err(LuaError::external)?.display().to_string()))?,
    )?;
    Ok(t)
}
