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
        })
        .with_context(|| format!("no VmHWM in /proc/{pid}/status"))?;
    Ok(kilobytes * 1024)
}

/// The command line of `pid`, its arguments joined by spaces.
pub fn command_line(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_a_peak_rss() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert!(peak_rss_bytes(pid).unwrap() > 1024 * 1024);
        assert!(command_line(pid).is_some());
    }
}
