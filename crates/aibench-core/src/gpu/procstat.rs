//! A process group's CPU time and resident memory, from /proc: what the job
//! agent exports for the service it runs, whatever that service measures.

/// CPU seconds (user + system) and resident bytes of every process in
/// process group `pgid`, and how many processes it has.
pub fn group_usage(pgid: i32) -> (f64, u64, u32) {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let (mut cpu, mut rss, mut n) = (0.0, 0u64, 0u32);
    let Ok(dir) = std::fs::read_dir("/proc") else { return (0.0, 0, 0) };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // After the command name (in parentheses, which may hold spaces).
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields from 3 on: state(3) ppid(4) pgrp(5) ... utime(14) stime(15) ... rss(24).
        if f.len() < 22 || f[2].parse::<i32>().ok() != Some(pgid) {
            continue;
        }
        let num = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
        cpu += (num(11) + num(12)) / tick;
        rss += f[21].parse::<u64>().unwrap_or(0) * page;
        n += 1;
    }
    (cpu, rss, n)
}

/// The service's usage as Prometheus text (`aibench_service_*`).
pub fn render(pgid: i32, labels: &str) -> String {
    let (cpu, rss, n) = group_usage(pgid);
    format!(
        "# HELP aibench_service_cpu_seconds_total CPU time of the service's process group (user + system).\n\
         # TYPE aibench_service_cpu_seconds_total counter\n\
         aibench_service_cpu_seconds_total{{{labels}}} {cpu}\n\
         # HELP aibench_service_resident_memory_bytes Resident memory of the service's process group.\n\
         # TYPE aibench_service_resident_memory_bytes gauge\n\
         aibench_service_resident_memory_bytes{{{labels}}} {rss}\n\
         # HELP aibench_service_processes Processes in the service's process group.\n\
         # TYPE aibench_service_processes gauge\n\
         aibench_service_processes{{{labels}}} {n}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_process_group() {
        // SAFETY: getpgrp has no preconditions.
        let pgid = unsafe { libc::getpgrp() };
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let (cpu, rss, n) = group_usage(pgid);
        assert!(n >= 1 && rss > 1 << 20 && cpu > 0.0, "{cpu} {rss} {n}");
        let text = render(pgid, "instance_id=\"x\"");
        let fams = crate::prom::expfmt::parse(&text).unwrap();
        assert!(crate::prom::expfmt::family(&fams, "aibench_service_resident_memory_bytes").unwrap().total() > 0.0);
    }
}
