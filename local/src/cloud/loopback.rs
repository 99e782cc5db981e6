//! Keeping DynamoDB Local on the loopback interface. The jar has no option for the address
//! it listens on and binds every interface; a small preload library, compiled on first use
//! with the C compiler that links Rust programs here anyway, turns its `bind` to the
//! wildcard address into a bind to 127.0.0.1. (LocalStack needs none: its hypercorn server
//! honours `GATEWAY_LISTEN`.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The preload library's source: `bind` to 0.0.0.0 becomes `bind` to 127.0.0.1; any other
/// address is passed through unchanged.
const SOURCE: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (!real_bind) {
        real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    }
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in copy;
        memcpy(&copy, addr, sizeof copy);
        if (copy.sin_addr.s_addr == htonl(INADDR_ANY)) {
            copy.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *)&copy, sizeof copy);
        }
    }
    return real_bind(fd, addr, len);
}
"#;

/// The compiled library in `dir`, built now unless it is there for this source.
pub fn preload_library(dir: &Path) -> Result<PathBuf> {
    let library = dir.join("loopback-bind.so");
    let source = dir.join("loopback-bind.c");
    if library.is_file() && fs::read_to_string(&source).is_ok_and(|text| text == SOURCE) {
        return Ok(library);
    }
    fs::create_dir_all(dir)?;
    fs::write(&source, SOURCE).with_context(|| format!("writing {}", source.display()))?;
    let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .output()
        .context("running the C compiler (cc) for the loopback-only bind library")?;
    if !output.status.success() {
        bail!(
            "compiling {} failed: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(library)
}
