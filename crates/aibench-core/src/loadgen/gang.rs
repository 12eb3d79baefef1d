//! Starting K client tasks together: one SLURM job, one task per node, one
//! experiment. Like an MPI program, the tasks meet before they start:
//!
//! 1. Rank 0 (the coordinator) listens on a TCP port and writes its
//!    `host:port` to `DIR/coordinator` (atomically; the folder is on the
//!    shared file system).
//! 2. Every rank (rank 0 too, over loopback) measures its clock's offset to
//!    the coordinator's, NTP-style: [`SAMPLES`] round trips, each asking the
//!    coordinator's time `t2` between the local send `t1` and receive `t4`;
//!    the offset is `t2 - (t1 + t4) / 2` from the sample with the shortest
//!    round trip, and it is right to within half that round trip (the
//!    bound), whatever the network's asymmetry.
//! 3. Each rank writes `DIR/ready-<rank>` (its host, offset and bound): the
//!    barrier on the shared file system.
//! 4. When all K are ready, rank 0 picks the start instant a little in the
//!    future (`lead_s`) on its own clock and writes `DIR/start`.
//! 5. Each rank reads it, converts it to its own clock (minus its offset),
//!    sleeps until then and starts sending. What it records ([`GangInfo`])
//!    lets a merge state the spread of start instants and the offset bound.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Round trips per offset estimate (the shortest one is used).
pub const SAMPLES: usize = 8;
/// How often a waiting rank looks for a file of the barrier.
const POLL: Duration = Duration::from_millis(5);

/// Where and who this task is in its gang.
#[derive(Debug, Clone)]
pub struct Gang {
    /// The barrier folder (shared by all tasks).
    pub dir: PathBuf,
    pub rank: u32,
    pub size: u32,
    /// How long to wait for the others before giving up.
    pub timeout_s: f64,
    /// How far ahead of the last arrival the coordinator sets the start.
    pub lead_s: f64,
    /// Test hook: this rank starts this many seconds late (a held-back task).
    pub hold_s: f64,
}

/// What a task records about its start, in the result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct GangInfo {
    pub rank: u32,
    pub size: u32,
    pub host: String,
    /// The common start instant, on the coordinator's clock (Unix seconds).
    pub start_unix: f64,
    /// When this task really started, on the coordinator's clock.
    pub started_unix: f64,
    /// The coordinator's clock minus this task's: added to a local time, it
    /// gives the coordinator's.
    pub clock_offset_s: f64,
    /// The offset is right to within this (half the shortest round trip).
    pub clock_offset_bound_s: f64,
    /// Seconds spent at the barrier, waiting for the others.
    pub waited_s: f64,
    /// How the offset was measured, in words.
    pub method: String,
}

#[derive(Serialize, Deserialize)]
struct Ready {
    rank: u32,
    host: String,
    clock_offset_s: f64,
    clock_offset_bound_s: f64,
}

#[derive(Serialize, Deserialize)]
struct Start {
    start_unix: f64,
}

impl Gang {
    pub fn check(&self) -> Result<(), String> {
        if self.size == 0 || self.rank >= self.size {
            return Err(format!("gang: rank {} is not within a gang of {}", self.rank, self.size));
        }
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0 && self.timeout_s <= 86_400.0) {
            return Err(format!("gang: timeout_s: expected seconds in (0, 86400], got {}", self.timeout_s));
        }
        if !(self.lead_s.is_finite() && (0.0..=600.0).contains(&self.lead_s)) {
            return Err(format!("gang: lead_s: expected seconds in [0, 600], got {}", self.lead_s));
        }
        if !(self.hold_s.is_finite() && (0.0..=3600.0).contains(&self.hold_s)) {
            return Err(format!("gang: hold_s: expected seconds in [0, 3600], got {}", self.hold_s));
        }
        Ok(())
    }

    /// Meets the others and returns at the common start instant (or at
    /// once, late, if the instant has passed by the time it is read).
    pub async fn meet(&self) -> Result<GangInfo, String> {
        self.check()?;
        let me = self.clone();
        let mut info = tokio::task::spawn_blocking(move || me.barrier())
            .await
            .map_err(|e| format!("gang: the barrier task failed: {e}"))??;
        // Sleep to the instant on this task's own clock.
        let local_start = info.start_unix - info.clock_offset_s + self.hold_s;
        let wait = local_start - crate::clock::now();
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
        info.started_unix = crate::clock::now() + info.clock_offset_s;
        Ok(info)
    }

    fn deadline(&self, since: Instant) -> impl Fn(&str) -> Result<(), String> + '_ {
        move |what: &str| {
            if since.elapsed().as_secs_f64() > self.timeout_s {
                Err(format!(
                    "gang: rank {} of {}: gave up after {:.0} s waiting for {what}",
                    self.rank, self.size, self.timeout_s
                ))
            } else {
                Ok(())
            }
        }
    }

    fn barrier(&self) -> Result<GangInfo, String> {
        let t0 = Instant::now();
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("gang: cannot create {}: {e}", self.dir.display()))?;
        let host = crate::util::hostname();
        let server = if self.rank == 0 { Some(self.serve_time(&host)?) } else { None };
        let coordinator = self.wait_file("coordinator", t0, |_| true)?;
        let coordinator = String::from_utf8_lossy(&coordinator).trim().to_string();
        let (offset, bound) = measure_offset(&coordinator)?;
        let ready = Ready { rank: self.rank, host: host.clone(), clock_offset_s: offset, clock_offset_bound_s: bound };
        self.write(&format!("ready-{}", self.rank), &serde_json::to_vec(&ready).unwrap_or_default())?;
        if self.rank == 0 {
            self.wait_all_ready(t0)?;
            let start = Start { start_unix: crate::clock::now() + self.lead_s };
            self.write("start", &serde_json::to_vec(&start).unwrap_or_default())?;
        }
        let start = self.wait_file("start", t0, |b| serde_json::from_slice::<Start>(b).is_ok())?;
        let start: Start =
            serde_json::from_slice(&start).map_err(|e| format!("gang: {}/start: {e}", self.dir.display()))?;
        if let Some(s) = server {
            // Late ranks still measure their offsets while the others sleep.
            s.linger(Duration::from_secs_f64(self.lead_s + 5.0));
        }
        Ok(GangInfo {
            rank: self.rank,
            size: self.size,
            host,
            start_unix: start.start_unix,
            started_unix: 0.0,
            clock_offset_s: offset,
            clock_offset_bound_s: bound,
            waited_s: t0.elapsed().as_secs_f64(),
            method: format!(
                "TCP round trips to rank 0 at {coordinator}: offset from the shortest of {SAMPLES}, bound half its round trip"
            ),
        })
    }

    fn write(&self, name: &str, data: &[u8]) -> Result<(), String> {
        let path = self.dir.join(name);
        crate::util::atomic_write(&path, data, None).map_err(|e| format!("gang: cannot write {}: {e}", path.display()))
    }

    /// A rank that failed before the start (its spec, its dataset) says so
    /// in `failed-<rank>`: the others stop waiting for it.
    fn failed_rank(&self) -> Result<(), String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Ok(()) };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(rank) = name.strip_prefix("failed-") {
                let why = std::fs::read_to_string(e.path()).unwrap_or_default();
                return Err(format!("gang: rank {rank} failed before the start: {}", why.trim()));
            }
        }
        Ok(())
    }

    /// Tells the others this rank will not come (best effort).
    pub fn fail(&self, why: &str) {
        let _ = std::fs::create_dir_all(&self.dir);
        let _ = self.write(&format!("failed-{}", self.rank), why.as_bytes());
    }

    fn wait_file(&self, name: &str, t0: Instant, complete: impl Fn(&[u8]) -> bool) -> Result<Vec<u8>, String> {
        let path = self.dir.join(name);
        let over = self.deadline(t0);
        loop {
            self.failed_rank()?;
            if let Ok(b) = std::fs::read(&path)
                && !b.is_empty()
                && complete(&b)
            {
                return Ok(b);
            }
            over(&path.display().to_string())?;
            std::thread::sleep(POLL);
        }
    }

    fn wait_all_ready(&self, t0: Instant) -> Result<(), String> {
        let over = self.deadline(t0);
        loop {
            self.failed_rank()?;
            let missing: Vec<u32> = (0..self.size).filter(|r| !self.dir.join(format!("ready-{r}")).exists()).collect();
            if missing.is_empty() {
                return Ok(());
            }
            let shown: Vec<String> = missing.iter().take(10).map(|r| r.to_string()).collect();
            over(&format!("ranks {}{} to arrive", shown.join(", "), if missing.len() > 10 { ", ..." } else { "" }))?;
            std::thread::sleep(POLL);
        }
    }

    /// Rank 0's time service: answers each 1-byte request with its clock
    /// (an f64, little-endian).
    fn serve_time(&self, host: &str) -> Result<TimeServer, String> {
        let listener = TcpListener::bind(("0.0.0.0", 0)).map_err(|e| format!("gang: rank 0 cannot listen: {e}"))?;
        let port = listener.local_addr().map_err(|e| format!("gang: {e}"))?.port();
        // Others reach rank 0 by its node's name (resolvable on every node,
        // as registered URLs are), or its loopback when the name does not resolve.
        let addr =
            if crate::util::host_resolves(host) { format!("{host}:{port}") } else { format!("127.0.0.1:{port}") };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        listener.set_nonblocking(true).map_err(|e| format!("gang: {e}"))?;
        let handle = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        std::thread::spawn(move || answer(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        self.write("coordinator", addr.as_bytes())?;
        Ok(TimeServer { stop, handle: Some(handle) })
    }
}

struct TimeServer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl TimeServer {
    /// Keeps answering for a while in the background, then stops.
    fn linger(mut self, d: Duration) {
        let stop = self.stop.clone();
        let handle = self.handle.take();
        std::thread::spawn(move || {
            std::thread::sleep(d);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(h) = handle {
                let _ = h.join();
            }
        });
    }
}

fn answer(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut b = [0u8; 1];
    while s.read_exact(&mut b).is_ok() {
        if s.write_all(&crate::clock::now().to_le_bytes()).is_err() {
            break;
        }
    }
}

/// The coordinator's clock minus this one's, and its bound (seconds).
pub fn measure_offset(addr: &str) -> Result<(f64, f64), String> {
    use std::net::ToSocketAddrs;
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("gang: coordinator address '{addr}': {e}"))?
        .next()
        .ok_or_else(|| format!("gang: coordinator address '{addr}' resolves to nothing"))?;
    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(10))
        .map_err(|e| format!("gang: cannot reach the coordinator at {addr}: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..SAMPLES {
        let t1 = crate::clock::now();
        s.write_all(&[1]).map_err(|e| format!("gang: coordinator at {addr}: {e}"))?;
        let mut b = [0u8; 8];
        s.read_exact(&mut b).map_err(|e| format!("gang: coordinator at {addr}: {e}"))?;
        let t4 = crate::clock::now();
        let t2 = f64::from_le_bytes(b);
        let rtt = (t4 - t1).max(0.0);
        let offset = t2 - (t1 + t4) / 2.0;
        if best.is_none_or(|(_, r)| rtt < r) {
            best = Some((offset, rtt));
        }
    }
    let (offset, rtt) = best.unwrap_or((0.0, 0.0));
    Ok((offset, rtt / 2.0))
}

/// The barrier folder's conventional place in a job folder.
pub fn dir_in(job_dir: &Path) -> PathBuf {
    job_dir.join("gang")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gang(dir: &Path, rank: u32, size: u32, hold_s: f64) -> Gang {
        Gang { dir: dir.to_path_buf(), rank, size, timeout_s: 20.0, lead_s: 0.3, hold_s }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ranks_start_together_and_state_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut tasks = Vec::new();
        for rank in (0..4).rev() {
            let g = gang(dir.path(), rank, 4, 0.0);
            // Ranks arrive at different times: the start waits for the last.
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100 * rank as u64)).await;
                g.meet().await
            }));
        }
        let mut infos = Vec::new();
        for t in tasks {
            infos.push(t.await.unwrap().unwrap());
        }
        let start = infos[0].start_unix;
        assert!(infos.iter().all(|i| i.start_unix == start), "one start instant for all");
        let spread = infos.iter().map(|i| i.started_unix).fold(f64::MIN, f64::max)
            - infos.iter().map(|i| i.started_unix).fold(f64::MAX, f64::min);
        assert!(spread < 0.05, "start spread {spread} s");
        for i in &infos {
            // One machine, one clock: the offset is within its own bound (plus scheduling noise).
            assert!(i.clock_offset_s.abs() <= i.clock_offset_bound_s + 0.002, "{i:?}");
            assert!(i.clock_offset_bound_s < 0.05, "{i:?}");
            assert!(i.started_unix >= start - 0.005, "started before the instant: {i:?}");
        }
        // Rank 3 arrived ~300 ms after rank 0: rank 0 waited for it.
        let r0 = infos.iter().find(|i| i.rank == 0).unwrap();
        assert!(r0.waited_s >= 0.25, "{r0:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_back_rank_starts_late() {
        let dir = tempfile::tempdir().unwrap();
        let a = gang(dir.path(), 0, 2, 0.0);
        let b = gang(dir.path(), 1, 2, 0.5);
        let (x, y) = tokio::join!(a.meet(), b.meet());
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(y.started_unix - x.started_unix > 0.45, "{x:?} {y:?}");
    }

    #[tokio::test]
    async fn a_missing_rank_is_named_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = gang(dir.path(), 0, 3, 0.0);
        g.timeout_s = 0.5;
        let e = g.meet().await.unwrap_err();
        assert!(e.contains("ranks 1, 2"), "{e}");
    }

    #[tokio::test]
    async fn a_rank_that_failed_stops_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let g = gang(dir.path(), 0, 2, 0.0);
        gang(dir.path(), 1, 2, 0.0).fail("dataset.path: no such file");
        let t = Instant::now();
        let e = g.meet().await.unwrap_err();
        assert!(e.contains("rank 1 failed before the start: dataset.path: no such file"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "did not wait for the timeout");
    }

    #[test]
    fn bad_places_are_refused() {
        let d = Path::new("/tmp");
        assert!(gang(d, 3, 3, 0.0).check().unwrap_err().contains("rank 3"));
        let mut g = gang(d, 0, 1, 0.0);
        g.lead_s = f64::NAN;
        assert!(g.check().unwrap_err().contains("lead_s"));
    }
}
