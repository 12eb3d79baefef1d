//! The discovery registry: `$AIBENCH_HOME/discover/<service>.json` lists every
//! running instance of a service (the MeluXina report's file-based registry, extended to
//! many instances). Writers take an exclusive lock on `<service>.lock`, read,
//! change and atomically replace the file, so concurrent registrations from
//! many jobs never lose or corrupt an entry. Folder 0700, files 0600.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One registered instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Instance {
    pub job_id: String,
    pub recipe_name: String,
    pub instance_id: String,
    pub node: String,
    pub host: String,
    pub ports: Vec<u16>,
    pub url: String,
    pub executor: String,
    /// RUNNING unless the registrant says otherwise.
    #[serde(default = "running")]
    pub status: String,
    /// When it registered (ISO-8601); now, unless given.
    #[serde(default = "crate::clock::now_iso")]
    pub registered_at: String,
    /// Anything else a registrant wants to record (metrics path, role...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn running() -> String {
    "RUNNING".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct ServiceFile {
    service: String,
    instances: Vec<Instance>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid service name '{0}': use letters, digits, '-', '_' and '.'")]
    BadName(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a registry file ({message}); remove it or run `aibench services clear`")]
    Corrupt { path: String, message: String },
}

pub struct Registry {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io { path: path.display().to_string(), source }
}

/// A service name (the rule of [`crate::util::check_name`], with room for
/// the suffixes aibench adds, such as a monitor's `-prometheus`).
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && !name.starts_with('.') && name.chars().all(crate::util::name_char)
}

impl Registry {
    /// The registry under an aibench home (`<home>/discover`), created 0700.
    pub fn open(home: &Path) -> Result<Registry, RegistryError> {
        let dir = home.join("discover");
        crate::util::create_dirs_in(home, &dir).map_err(io(&dir))?;
        Ok(Registry { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, service: &str) -> Result<PathBuf, RegistryError> {
        if !valid_service_name(service) {
            return Err(RegistryError::BadName(service.to_string()));
        }
        Ok(self.dir.join(format!("{service}.json")))
    }

    /// Takes the service's exclusive lock (released when the file is dropped).
    fn lock(&self, service: &str) -> Result<std::fs::File, RegistryError> {
        use std::os::unix::fs::OpenOptionsExt;
        let lock_path = self.dir.join(format!("{service}.lock"));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        Ok(lock)
    }

    /// Runs `f` on the service's instances under the exclusive lock and writes
    /// the result back (removing the file when no instance is left).
    fn update<R>(&self, service: &str, f: impl FnOnce(&mut Vec<Instance>) -> R) -> Result<R, RegistryError> {
        let path = self.file(service)?;
        let lock = self.lock(service)?;
        let mut instances = read_file(&path)?;
        let out = f(&mut instances);
        let result = if instances.is_empty() {
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io(&path)(e)),
            }
        } else {
            let body = ServiceFile { service: service.to_string(), instances };
            let text = serde_json::to_vec_pretty(&body).expect("serialisable");
            crate::util::atomic_write(&path, &text, Some(0o600)).map_err(io(&path))
        };
        let _ = lock.unlock();
        result.map(|_| out)
    }

    /// Adds an instance, replacing one with the same instance id.
    pub fn register(&self, service: &str, inst: Instance) -> Result<(), RegistryError> {
        self.update(service, |list| {
            list.retain(|i| i.instance_id != inst.instance_id);
            list.push(inst);
        })
    }

    /// Removes an instance; true when it was there.
    pub fn deregister(&self, service: &str, instance_id: &str) -> Result<bool, RegistryError> {
        self.update(service, |list| {
            let before = list.len();
            list.retain(|i| i.instance_id != instance_id);
            list.len() != before
        })
    }

    /// Removes the instances `keep` rejects; returns them.
    pub fn remove_where(
        &self,
        service: &str,
        mut drop: impl FnMut(&Instance) -> bool,
    ) -> Result<Vec<Instance>, RegistryError> {
        self.update(service, |list| {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(list).into_iter().partition(|i| drop(i));
            *list = kept;
            gone
        })
    }

    /// Sets the status of an instance.
    pub fn set_status(&self, service: &str, instance_id: &str, status: &str) -> Result<bool, RegistryError> {
        self.update(service, |list| match list.iter_mut().find(|i| i.instance_id == instance_id) {
            Some(i) => {
                i.status = status.to_string();
                true
            }
            None => false,
        })
    }

    /// The instances of a service (empty when none is registered).
    pub fn list(&self, service: &str) -> Result<Vec<Instance>, RegistryError> {
        read_file(&self.file(service)?)
    }

    /// Names of services that have a registry file, sorted.
    pub fn services(&self) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let e = e.map_err(io(&self.dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(s) = name.strip_suffix(".json")
                && valid_service_name(s)
            {
                out.push(s.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every service's instances, reading past files that cannot be read:
    /// those are reported, so one damaged file does not hide the others.
    pub fn scan(&self) -> Result<Scan, RegistryError> {
        let mut out = Scan::default();
        for service in self.services()? {
            match self.list(&service) {
                Ok(list) => out.services.push((service, list)),
                Err(RegistryError::Corrupt { path, message }) => out.corrupt.push(Corrupt { service, path, message }),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Moves a service file that cannot be read aside, to
    /// `<service>.json.corrupt-<UTC time>`, keeping it for inspection.
    /// Returns the new path (None when the file reads fine or is gone).
    pub fn quarantine(&self, service: &str) -> Result<Option<PathBuf>, RegistryError> {
        let path = self.file(service)?;
        let lock = self.lock(service)?;
        let r = match read_file(&path) {
            Err(RegistryError::Corrupt { .. }) => {
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
                let dest = self.dir.join(format!("{service}.json.corrupt-{stamp}"));
                std::fs::rename(&path, &dest).map(|_| Some(dest)).map_err(io(&path))
            }
            _ => Ok(None),
        };
        let _ = lock.unlock();
        r
    }

    /// Removes a service's file (all its instances). Works on a corrupt file
    /// too (that is how one recovers from it).
    pub fn clear(&self, service: &str) -> Result<Cleared, RegistryError> {
        let path = self.file(service)?;
        let lock = self.lock(service)?;
        let read = read_file(&path);
        let corrupt = matches!(read, Err(RegistryError::Corrupt { .. }));
        let entries = read.map(|l| l.len()).unwrap_or(0);
        let r = match std::fs::remove_file(&path) {
            Ok(()) => Ok(Cleared { entries, file: Some(path.clone()), corrupt }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Cleared::default()),
            Err(e) => Err(io(&path)(e)),
        };
        let _ = lock.unlock();
        r
    }
}

/// What [`Registry::scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    pub services: Vec<(String, Vec<Instance>)>,
    pub corrupt: Vec<Corrupt>,
}

/// A service file that is not a registry file.
#[derive(Debug, Clone, Serialize)]
pub struct Corrupt {
    pub service: String,
    pub path: String,
    pub message: String,
}

/// What [`Registry::clear`] removed.
#[derive(Debug, Default)]
pub struct Cleared {
    pub entries: usize,
    pub file: Option<PathBuf>,
    /// The file could not be read (its entries are not counted).
    pub corrupt: bool,
}

/// Reads a service file: the current format, or the MeluXina report's single-instance object.
fn read_file(path: &Path) -> Result<Vec<Instance>, RegistryError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let corrupt = |m: String| RegistryError::Corrupt { path: path.display().to_string(), message: m };
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if v.get("instances").is_some() {
        let f: ServiceFile = serde_json::from_value(v).map_err(|e| corrupt(e.to_string()))?;
        return Ok(f.instances);
    }
    // The MeluXina report's format: {"job_id", "recipe_name", "instance_id", "node", "ports"}.
    let s =
        |k: &str| v.get(k).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).unwrap_or_default();
    let ports: Vec<u16> = v.get("ports").and_then(|p| serde_json::from_value(p.clone()).ok()).unwrap_or_default();
    if s("node").is_empty() {
        return Err(corrupt("no 'instances' list and no 'node'".into()));
    }
    let node = s("node");
    let url = ports.first().map(|p| format!("http://{node}:{p}")).unwrap_or_default();
    Ok(vec![Instance {
        job_id: s("job_id"),
        recipe_name: s("recipe_name"),
        instance_id: s("instance_id"),
        host: node.clone(),
        node,
        ports,
        url,
        executor: "slurm".into(),
        status: "RUNNING".into(),
        registered_at: String::new(),
        extra: Default::default(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, port: u16) -> Instance {
        Instance {
            job_id: format!("job-{id}"),
            recipe_name: "vllm-sim".into(),
            instance_id: id.into(),
            node: "n1".into(),
            host: "n1".into(),
            ports: vec![port],
            url: format!("http://n1:{port}"),
            executor: "local".into(),
            status: "RUNNING".into(),
            registered_at: "2026-11-27T00:00:00Z".into(),
            extra: Default::default(),
        }
    }

    #[test]
    fn register_list_deregister_and_permissions() {
        let home = tempfile::tempdir().unwrap();
        let r = Registry::open(home.path()).unwrap();
        r.register("vllm", inst("a", 1)).unwrap();
        r.register("vllm", inst("b", 2)).unwrap();
        r.register("vllm", inst("a", 3)).unwrap();
        let l = r.list("vllm").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l.iter().find(|i| i.instance_id == "a").unwrap().ports, vec![3]);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(r.dir()), 0o700);
        assert_eq!(mode(&r.dir().join("vllm.json")), 0o600);
        assert!(r.deregister("vllm", "a").unwrap());
        assert!(!r.deregister("vllm", "a").unwrap());
        assert_eq!(r.services().unwrap(), vec!["vllm".to_string()]);
        assert_eq!(r.clear("vllm").unwrap().entries, 1);
        assert!(r.services().unwrap().is_empty());
        assert!(matches!(r.register("../x", inst("c", 1)), Err(RegistryError::BadName(_))));
    }

    #[test]
    fn a_corrupt_service_file_is_reported_and_can_be_cleared() {
        let home = tempfile::tempdir().unwrap();
        let r = Registry::open(home.path()).unwrap();
        r.register("vllm", inst("a", 1)).unwrap();
        std::fs::write(r.dir().join("vllm.json"), b"{ not json").unwrap();
        assert!(matches!(r.list("vllm"), Err(RegistryError::Corrupt { .. })));
        assert!(
            matches!(r.register("vllm", inst("b", 2)), Err(RegistryError::Corrupt { .. })),
            "never overwrite what we cannot read"
        );
        let c = r.clear("vllm").unwrap();
        assert_eq!((c.entries, c.corrupt), (0, true));
        assert_eq!(c.file.unwrap(), r.dir().join("vllm.json"));
        assert!(r.list("vllm").unwrap().is_empty());
        r.register("vllm", inst("b", 2)).unwrap();
        assert_eq!(r.list("vllm").unwrap().len(), 1);
    }

    #[test]
    fn concurrent_registrations_keep_every_instance() {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().to_path_buf();
        let threads: Vec<_> = (0..50)
            .map(|i| {
                let p = path.clone();
                std::thread::spawn(move || {
                    Registry::open(&p).unwrap().register("svc", inst(&format!("i{i}"), 8000 + i as u16)).unwrap()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(Registry::open(&path).unwrap().list("svc").unwrap().len(), 50);
    }

    #[test]
    fn reads_the_seed_format_and_reports_corruption() {
        let home = tempfile::tempdir().unwrap();
        let r = Registry::open(home.path()).unwrap();
        std::fs::write(
            r.dir().join("vllm.json"),
            r#"{"job_id": "3757043", "recipe_name": "vllm-server", "instance_id": "a1b2", "node": "mel2013", "ports": [8000]}"#,
        )
        .unwrap();
        let l = r.list("vllm").unwrap();
        assert_eq!(l[0].url, "http://mel2013:8000");
        std::fs::write(r.dir().join("bad.json"), "{not json").unwrap();
        let e = r.list("bad").unwrap_err().to_string();
        assert!(e.contains("bad.json: not a registry file"), "{e}");
        r.clear("bad").unwrap();
        assert!(r.list("bad").unwrap().is_empty(), "clear recovers a corrupt file");
    }

    #[test]
    fn scan_reads_past_a_corrupt_file_and_quarantine_moves_it_aside() {
        let home = tempfile::tempdir().unwrap();
        let r = Registry::open(home.path()).unwrap();
        r.register("vllm", inst("a", 1)).unwrap();
        std::fs::write(r.dir().join("broken.json"), "{broken").unwrap();
        let s = r.scan().unwrap();
        assert_eq!(s.services.len(), 1);
        assert_eq!(s.services[0].0, "vllm");
        assert_eq!(s.corrupt.len(), 1);
        assert_eq!(s.corrupt[0].service, "broken");
        assert!(s.corrupt[0].message.contains("key must be a string"), "{}", s.corrupt[0].message);
        assert!(r.quarantine("vllm").unwrap().is_none(), "a good file stays");
        let moved = r.quarantine("broken").unwrap().unwrap();
        assert!(moved.file_name().unwrap().to_string_lossy().starts_with("broken.json.corrupt-"));
        assert_eq!(std::fs::read_to_string(&moved).unwrap(), "{broken");
        assert_eq!(r.services().unwrap(), vec!["vllm".to_string()]);
        assert!(r.scan().unwrap().corrupt.is_empty());
    }
}
