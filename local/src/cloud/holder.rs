//! Which local cloud holds a port: each folder's cloud (a checkout's `.local-cloud/`, the
//! per-user cache of an installed CLI) runs its services as processes recognisable by their
//! command line, started in their service folder. Found by the port they were told to use,
//! so that a second cloud reuses the first one's services instead of failing on the port,
//! and names that cloud's folder when it cannot.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use super::service::ServiceKind;

/// A service of some local cloud, found running on a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Its process.
    pub pid: i32,
    /// Which service it is.
    pub kind: ServiceKind,
    /// The local cloud's folder (a checkout's `.local-cloud/`, or the per-user cache).
    pub root: PathBuf,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (pid {}) of the local cloud in {}",
            self.kind.name(),
            self.pid,
            describe_root(&self.root)
        )
    }
}

/// A checkout's cloud is named by its checkout (`/work/app`, from `/work/app/.local-cloud`).
fn describe_root(root: &Path) -> String {
    match (root.file_name(), root.parent()) {
        (Some(name), Some(folder)) if name == ".local-cloud" => {
            format!("{} (its .local-cloud)", folder.display())
        }
        _ => root.display().to_string(),
    }
}

/// The local cloud service listening on `port` as it was told to, if any runs.
pub fn holder_of(port: u16) -> Option<Holder> {
    let entries = fs::read_dir("/proc").ok()?;
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find_map(|pid| service_on(pid, port))
}

fn service_on(pid: i32, port: u16) -> Option<Holder> {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|&byte| byte == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    let kind = [ServiceKind::LocalStack, ServiceKind::DynamoDbLocal]
        .into_iter()
        .find(|kind| {
            args.iter()
                .any(|arg| arg.contains(kind.command_line_marker()))
        })?;
    let listens = match kind {
        // Told by GATEWAY_LISTEN=127.0.0.1:<port> (see `Service::command`).
        ServiceKind::LocalStack => fs::read(format!("/proc/{pid}/environ"))
            .ok()?
            .split(|&byte| byte == 0)
            .any(|var| var == format!("GATEWAY_LISTEN=127.0.0.1:{port}").as_bytes()),
        // Told by `-port <port>`.
        ServiceKind::DynamoDbLocal => args
            .windows(2)
            .any(|pair| pair[0] == "-port" && pair[1] == port.to_string()),
    };
    if !listens {
        return None;
    }
    // Started in its service folder (DynamoDB Local in the unpacked package below it).
    let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    let service_dir = cwd
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == kind.name()))?;
    Some(Holder {
        pid,
        kind,
        root: service_dir.parent()?.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkouts_cloud_is_named_by_its_checkout() {
        assert_eq!(
            describe_root(Path::new("/work/app/.local-cloud")),
            "/work/app (its .local-cloud)"
        );
        assert_eq!(
            describe_root(Path::new("/home/me/.cache/eventkit-local")),
            "/home/me/.cache/eventkit-local"
        );
    }

    #[test]
    fn a_port_nothing_of_ours_listens_on_has_no_holder() {
        // Port 9 (discard) is never one of the local cloud's.
        assert_eq!(holder_of(9), None);
    }
}
