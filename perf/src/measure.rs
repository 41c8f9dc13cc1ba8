//! Measuring child processes: wall time around `spawn` … `wait4`, CPU time and peak RSS from
//! the `rusage` of exactly that child, medians, and the small file helpers the `compare` and
//! `replay` subcommands share.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Resource use of one child process.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Wall-clock seconds from spawn to exit.
    pub wall_s: f64,
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Peak resident set size, KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
}

impl Sample {
    /// User + system seconds.
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// GNU time, used as a small parent process so a tool's peak RSS is its own.
const GNU_TIME: &str = "/usr/bin/time";

/// A command running `prog` under GNU time (when installed), which writes the tool's peak
/// RSS in KiB to `rss_file`. Needed because `ru_maxrss` from `wait4` includes the parent's
/// resident set at fork time (the kernel carries the old address space's high-water mark
/// across exec): a harness holding a truth file in memory would report its own size for
/// every tool. Arguments added to the returned command go to `prog`.
pub fn rss_command(prog: &Path, rss_file: &Path) -> Command {
    let _ = std::fs::remove_file(rss_file);
    if Path::new(GNU_TIME).exists() {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f").arg("%M").arg("-o").arg(rss_file).arg(prog);
        c
    } else {
        Command::new(prog)
    }
}

/// The peak RSS GNU time wrote, if it did.
pub fn read_rss(rss_file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(rss_file).ok()?;
    text.lines().rev().find_map(|l| l.trim().parse().ok())
}

/// Runs `cmd` to completion, measuring it with `wait4`. Returns the sample and the exit status
/// (`Err` text when killed by a signal or by the timeout).
pub fn measure(
    cmd: &mut Command,
    timeout: Duration,
) -> Result<(Sample, std::result::Result<i32, String>)> {
    let t0 = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
            // SAFETY: plain syscall; the child is not reaped yet, so `pid` still names it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for the child we spawned.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = loop {
        // SAFETY: pid is our unreaped child; pointers are valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = t0.elapsed().as_secs_f64();
    let _ = tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    drop(child); // already reaped by wait4; dropping a Child does not wait
    if r != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let s = Sample {
        wall_s: wall,
        user_s: tv(ru.ru_utime),
        sys_s: tv(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss as u64,
    };
    let exit = if timed_out {
        Err(format!("killed after {} s timeout", timeout.as_secs()))
    } else if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Err(format!("killed by signal {}", libc::WTERMSIG(status)))
    };
    Ok((s, exit))
}

/// Where a program is on `PATH` (or the path itself when it names an existing file).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

/// Median of `v` (mean of the two middle values for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Each field's own median over `runs`.
pub fn median_sample(runs: &[Sample]) -> Sample {
    Sample {
        wall_s: median(runs.iter().map(|s| s.wall_s).collect()),
        user_s: median(runs.iter().map(|s| s.user_s).collect()),
        sys_s: median(runs.iter().map(|s| s.sys_s).collect()),
        max_rss_kib: median(runs.iter().map(|s| s.max_rss_kib as f64).collect()) as u64,
    }
}

/// Workload letter from `<name>.meta.json` beside `file`, else the file name.
pub fn workload_of(file: &Path) -> String {
    let meta = file.with_extension("meta.json");
    if let Ok(text) = std::fs::read_to_string(&meta) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(w) = v.get("workload").and_then(|w| w.as_str()) {
                return w.to_string();
            }
        }
    }
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads `file` once so that runs start from a warm page cache.
pub fn warm_cache(file: &Path) -> Result<()> {
    let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// Removes `d` if present and creates it empty.
pub fn reset_dir(d: &Path) -> Result<()> {
    if d.exists() {
        std::fs::remove_dir_all(d).with_context(|| format!("cleaning {}", d.display()))?;
    }
    std::fs::create_dir_all(d)?;
    Ok(())
}

/// The last three lines of a stderr capture, joined with ` | `.
pub fn stderr_tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// CPU model, CPUs available and kernel release, as JSON.
pub fn machine_info() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    serde_json::json!({ "cpuModel": model, "cpusAvailable": cpus, "kernel": kernel })
}

/// Runs `prog args…` once under [`rss_command`] and [`measure`]: stdin from `/dev/null`, stdout
/// to `stdout`, stderr to `stderr_file`; the sample's peak RSS is the program's own (GNU time's
/// report) when available. `rss_file` is scratch space.
pub fn run_measured<I, S>(
    prog: &Path,
    args: I,
    stdout: Stdio,
    stderr_file: &Path,
    rss_file: &Path,
    timeout: Duration,
) -> Result<(Sample, std::result::Result<i32, String>)>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = rss_command(prog, rss_file);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(File::create(stderr_file)?);
    let (mut s, exit) = measure(&mut cmd, timeout)?;
    if let Some(kib) = read_rss(rss_file) {
        s.max_rss_kib = kib;
    }
    Ok((s, exit))
}

/// Unix time now, seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_reports_child_cpu_and_exit() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3",
        ])
        .stdout(Stdio::null());
        let (s, exit) = measure(&mut cmd, Duration::from_secs(60)).unwrap();
        assert_eq!(exit, Ok(3));
        assert!(s.wall_s > 0.0 && s.max_rss_kib > 0);
        let mut slow = Command::new("sleep");
        slow.arg("30");
        let (s, exit) = measure(&mut slow, Duration::from_millis(200)).unwrap();
        assert!(exit.is_err() && s.wall_s < 10.0);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
