//! Private network namespaces and loud skips for the live-capture tests.

use std::io::Write;
use std::process::Command;

/// Skips loudly, or fails when `CI` is set. Written straight to stderr, past the test
/// harness's output capture, so it shows even though the test "passes". `what` names the
/// kind of test ("live capture", "live HTTP").
pub fn skip(what: &str, reason: &str) {
    if super::is_ci() {
        panic!("{what} test cannot run, and CI is set so it may not skip: {reason}");
    }
    let bar = "!".repeat(80);
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\n!!! SKIPPED {what} test: {reason}\n\
         !!! (run as root after scripts/install-deps.sh; with CI set this is a failure)\n{bar}"
    );
}

/// Moves the calling thread into a new, empty network namespace. Threads and processes it
/// starts afterwards inherit the namespace; the kernel removes it when the last one ends.
pub fn enter_new_netns() -> Result<(), String> {
    // SAFETY: plain syscall; affects only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET) failed: {} (needs CAP_SYS_ADMIN)",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The calling thread's id (names its network namespace for `ip link set ... netns`).
pub fn gettid() -> i64 {
    // SAFETY: plain syscall.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Runs a command in the calling thread's network namespace; Err with its stderr on failure.
pub fn sh(program: &str, args: &str) -> Result<(), String> {
    let out = Command::new(program)
        .args(args.split_whitespace())
        .output()
        .map_err(|e| format!("cannot run `{program} {args}`: {e} (is it installed?)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {args}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs an `ip` (iproute2) command in the calling thread's network namespace.
pub fn ip(args: &str) -> Result<(), String> {
    sh("ip", args)
}
