//! Background processes of our own: started detached in their own process group with output
//! to a log file (never to the terminal that started them), recognised by pid and command
//! line, and stopped group-wide.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Starts `command` in a new process group (so a Ctrl-C in the starting terminal does not
/// reach it and `down` can stop its children too), with stdout and stderr appended to `log`.
pub fn spawn_detached(mut command: Command, log: &Path) -> Result<i32> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()?;
    Ok(i32::try_from(child.id())?)
}

/// Whether `pid` is alive and its command line contains `marker`.
pub fn is_ours(pid: i32, marker: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
        .unwrap_or(false)
        && !is_zombie(pid)
}

/// Whether process `pid` is alive and runs the program file `program` (its
/// `/proc/<pid>/exe`): a recorded pid that was reused by another program, or that belongs to
/// another checkout's build of the same tool, does not count. A program file replaced since
/// the process started (rebuilt, reinstalled) still counts: the kernel then names it
/// `<path> (deleted)`.
pub fn runs_program(pid: u32, program: &Path) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    let replaced = format!("{} (deleted)", program.display());
    fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|exe| exe == program || exe.as_os_str() == replaced.as_str())
        && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Sends SIGTERM to the process group led by `pid`, then SIGKILL if it has not exited
/// within ten seconds.
pub fn terminate_group(pid: i32) -> Result<()> {
    let group = Pid::from_raw(pid);
    killpg(group, Signal::SIGTERM).context("sending SIGTERM")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_alive(group) {
        if Instant::now() > deadline {
            let _ = killpg(group, Signal::SIGKILL);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn group_alive(group: Pid) -> bool {
    // Signal 0 checks for existence; zombies of the group leader count as gone.
    killpg(group, None).is_ok() && !is_zombie(group.as_raw())
}

/// Whether anything accepts connections on 127.0.0.1:`port`.
pub fn port_in_use(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The body of a GET on `url`, if it answered with 200.
pub fn http_get(url: &str) -> Option<String> {
    let mut response = agent().get(url).call().ok()?;
    if response.status() != 200 {
        return None;
    }
    response.body_mut().read_to_string().ok()
}

/// Whether an HTTP server answers on `url`, whatever the status.
pub fn http_answers(url: &str) -> bool {
    agent().get(url).call().is_ok()
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_counts_only_while_it_runs_the_recorded_program() {
        let Ok(this) = std::env::current_exe() else {
            return;
        };
        assert!(runs_program(std::process::id(), &this));
        // pid 1 is init (or the container's entry point), never this test binary.
        assert!(!runs_program(1, &this));
        assert!(!runs_program(std::process::id(), Path::new("/bin/true")));
    }

    #[test]
    fn a_process_whose_program_file_was_replaced_still_runs_it() {
        let Ok(sleep) = which("sleep") else {
            return;
        };
        let copy = std::env::temp_dir().join(format!("sleep-{}", std::process::id()));
        if fs::copy(&sleep, &copy).is_err() {
            return;
        }
        let Ok(mut child) = Command::new(&copy).arg("30").spawn() else {
            return;
        };
        let _ = fs::remove_file(&copy); // as a rebuild or `cargo install` replaces it
        let running = runs_program(child.id(), &copy);
        let other = runs_program(child.id(), &sleep);
        let _ = child.kill();
        let _ = child.wait();
        assert!(running, "the replaced program still counts");
        assert!(!other, "another program file does not");
    }

    fn which(program: &str) -> Result<std::path::PathBuf> {
        ["/bin", "/usr/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(program))
            .find(|path| path.is_file())
            .context("not found")
    }
}
