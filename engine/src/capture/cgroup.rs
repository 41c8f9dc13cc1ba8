//! How many CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota.
//!
//! This is the default number of workers. Invariant: never less than 1, never more than the
//! affinity mask allows; a fractional quota rounds down (see [`available_cpus`]).

/// The number of CPUs this process may use: the `sched_getaffinity(2)` mask, capped by the CPU
/// quota of its cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us / cpu.cfs_period_us`, the smallest
/// along the cgroup's ancestry). A fractional quota is rounded *down* (1.5 CPUs → 1): more busy
/// threads than the quota gets the whole cgroup throttled for the rest of each period, which
/// stalls capture and overflows rings. Never less than 1.
pub fn available_cpus() -> usize {
    let affinity = affinity_cpus().unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let quota = cgroup_quota_cpus(std::path::Path::new("/"));
    let n = match quota {
        Some(q) => affinity.min(q),
        None => affinity,
    };
    n.max(1)
}

fn affinity_cpus() -> Option<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        let n = libc::CPU_COUNT(&set);
        (n > 0).then_some(n as usize)
    }
}

/// The cgroup CPU quota in whole CPUs (rounded down, at least 1), or `None` if unlimited.
/// `root` is the filesystem root (a test points it at a fake tree).
pub(crate) fn cgroup_quota_cpus(root: &std::path::Path) -> Option<usize> {
    let proc_cgroup = std::fs::read_to_string(root.join("proc/self/cgroup")).unwrap_or_default();
    let mut best: Option<f64> = None;
    let mut consider = |q: Option<f64>| {
        if let Some(q) = q {
            best = Some(best.map_or(q, |b: f64| b.min(q)));
        }
    };
    let cgroup_root = root.join("sys/fs/cgroup");
    for (controllers, path) in parse_proc_cgroup(&proc_cgroup) {
        if controllers.is_empty() {
            // cgroup v2 (unified); in a hybrid layout it is mounted at .../unified.
            for base in [cgroup_root.clone(), cgroup_root.join("unified")] {
                for dir in ancestry(&base, &path) {
                    let text = std::fs::read_to_string(dir.join("cpu.max")).ok();
                    consider(text.as_deref().and_then(parse_cpu_max));
                }
            }
        } else if controllers.contains(&"cpu") {
            let mounts = [
                controllers.join(","),
                "cpu,cpuacct".to_string(),
                "cpuacct,cpu".to_string(),
                "cpu".to_string(),
            ];
            for mount in mounts {
                let base = cgroup_root.join(&mount);
                for dir in ancestry(&base, &path) {
                    let quota = std::fs::read_to_string(dir.join("cpu.cfs_quota_us")).ok();
                    let period = std::fs::read_to_string(dir.join("cpu.cfs_period_us")).ok();
                    if let (Some(q), Some(p)) = (quota, period) {
                        consider(parse_cfs(&q, &p));
                    }
                }
            }
        }
    }
    best.map(|q| (q.floor() as usize).max(1))
}

/// `/proc/self/cgroup` lines `ID:CONTROLLERS:PATH` → (controllers, path). v2 has none.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<&str>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>();
            Some((controllers, path.to_string()))
        })
        .collect()
}

/// `base/path`, then each parent up to and including `base` (the process may see its own
/// cgroup as `/` inside a cgroup namespace, or the full path outside one).
fn ancestry(base: &std::path::Path, path: &str) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    let mut rel = std::path::PathBuf::from(path.trim_start_matches('/'));
    loop {
        dirs.push(base.join(&rel));
        if !rel.pop() {
            break;
        }
    }
    dirs.dedup();
    dirs
}

/// cgroup v2 `cpu.max`: `"max 100000"` (unlimited) or `"150000 100000"` (1.5 CPUs).
pub(crate) fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let quota = parts.next()?;
    let period: f64 = parts.next().map_or(Some(100_000.0), |p| p.parse().ok())?;
    if quota == "max" || period <= 0.0 {
        return None;
    }
    let quota: f64 = quota.parse().ok()?;
    (quota > 0.0).then(|| quota / period)
}

/// cgroup v1 `cpu.cfs_quota_us` (`-1` = unlimited) and `cpu.cfs_period_us`.
pub(crate) fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    let quota: i64 = quota.trim().parse().ok()?;
    let period: i64 = period.trim().parse().ok()?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_parsing() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("50000"), Some(0.5));
        assert_eq!(parse_cpu_max("garbage"), None);
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("200000\n", "100000\n"), Some(2.0));
    }

    fn fake_root(files: &[(&str, &str)]) -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tcp-sniffer-cgroup-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn cgroup_v2_quota_smallest_along_the_path() {
        let root = fake_root(&[
            ("proc/self/cgroup", "0::/kubepods/pod1/ctr\n"),
            ("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n"),
            ("sys/fs/cgroup/kubepods/pod1/cpu.max", "250000 100000\n"),
            ("sys/fs/cgroup/kubepods/cpu.max", "800000 100000\n"),
        ]);
        assert_eq!(cgroup_quota_cpus(&root), Some(2));
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn cgroup_v2_in_a_cgroup_namespace() {
        let root = fake_root(&[
            ("proc/self/cgroup", "0::/\n"),
            ("sys/fs/cgroup/cpu.max", "50000 100000\n"),
        ]);
        assert_eq!(
            cgroup_quota_cpus(&root),
            Some(1),
            "half a CPU still gets one worker"
        );
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn cgroup_v1_quota() {
        let root = fake_root(&[
            (
                "proc/self/cgroup",
                "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n",
            ),
            (
                "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
                "300000\n",
            ),
            (
                "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
                "100000\n",
            ),
        ]);
        assert_eq!(cgroup_quota_cpus(&root), Some(3));
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn cgroup_unlimited() {
        let root = fake_root(&[
            ("proc/self/cgroup", "0::/\n1:cpu:/\n"),
            ("sys/fs/cgroup/cpu.max", "max 100000\n"),
            ("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n"),
            ("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"),
        ]);
        assert_eq!(cgroup_quota_cpus(&root), None);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn cpus_at_least_one_and_at_most_affinity() {
        let n = available_cpus();
        assert!(n >= 1);
        assert!(n <= affinity_cpus().unwrap_or(usize::MAX));
    }
}
