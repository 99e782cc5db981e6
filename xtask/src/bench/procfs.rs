//! What `/proc` tells about another process: its CPU time so far and its peak resident
//! memory. (Linux only, as is the bench.)

use std::fs;

use anyhow::{Context, Result};

/// `/proc/<pid>/stat` counts CPU time in clock ticks of `USER_HZ`, which Linux fixes at 100
/// in its ABI whatever the kernel's internal tick rate.
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU seconds of `pid` so far.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    cpu_seconds_in_stat(&stat)
}

/// User plus system CPU seconds in the text of a `/proc/<pid>/stat`.
fn cpu_seconds_in_stat(stat: &str) -> Result<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of stat(5), counted from the state, field 3.
    let ticks = |index: usize| -> Result<f64> {
        Ok(fields
            .get(index)
            .context("short /proc/<pid>/stat")?
            .parse::<u64>()? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
}

/// The peak resident set size of `pid` (`VmHWM`), in bytes.
pub fn peak_rss_bytes(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    peak_rss_in_status(&status).with_context(|| format!("no VmHWM in /proc/{pid}/status"))
}

/// The peak resident set size (`VmHWM`) in the text of a `/proc/<pid>/status`, in bytes.
fn peak_rss_in_status(status: &str) -> Option<u64> {
    let kilobytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })?;
    Some(kilobytes * 1024)
}

/// The command line of `pid`, its arguments joined by spaces.
pub fn command_line(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stat line whose command name holds a space and a `)`, as a process may name itself.
    const STAT: &str = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                        250 75 3 1 20 0 1 0 123 4096 300 18446744073709551615";

    #[test]
    fn cpu_time_is_user_plus_system_ticks_after_the_command_name() {
        // utime 250 + stime 75 ticks at 100 per second; the children's (3, 1) are not ours.
        assert_eq!(cpu_seconds_in_stat(STAT).unwrap(), 3.25);
        assert!(cpu_seconds_in_stat("4242 (cmd) S 1 2").is_err());
        assert!(cpu_seconds_in_stat("no parenthesis").is_err());
    }

    #[test]
    fn peak_rss_is_vmhwm_in_bytes() {
        let status = "Name:\tcmd\nVmPeak:\t  9000 kB\nVmHWM:\t    1536 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(peak_rss_in_status(status), Some(1536 * 1024));
        assert_eq!(peak_rss_in_status("Name:\tcmd\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_ok());
        assert!(peak_rss_bytes(pid).unwrap() > 1024 * 1024);
        assert!(command_line(pid).is_some_and(|line| !line.is_empty()));
    }
}
