//! The local cloud listens on the loopback interface only: every listening socket on the
//! ports of `AWS_ENDPOINT_URL` (LocalStack) and `AWS_ENDPOINT_URL_DYNAMODB` (DynamoDB Local)
//! is bound to 127.0.0.1, as the kernel reports them (/proc/net/tcp and tcp6).

use std::fs;

/// The port of the URL in `variable` (`http://127.0.0.1:4566`).
fn port_of(variable: &str) -> u16 {
    let url = std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run with the local cloud's env (cargo xtask cloud env)")
    });
    url.rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("{variable}={url} names no port"))
}

/// The local addresses (hex, as the kernel writes them) of the sockets listening on `port`.
fn listeners(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((address, hex_port)) = local.rsplit_once(':') else {
                continue;
            };
            // 0A: LISTEN.
            if *state == "0A" && u16::from_str_radix(hex_port, 16) == Ok(port) {
                found.push(address.to_string());
            }
        }
    }
    found
}

/// 127.0.0.1 in /proc/net/tcp (little-endian hex), and ::1 in /proc/net/tcp6.
fn is_loopback(address: &str) -> bool {
    address == "0100007F" || address == "00000000000000000000000001000000"
}

#[test]
fn localstack_and_dynamodb_local_listen_on_loopback_only() {
    for variable in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"] {
        let port = port_of(variable);
        let addresses = listeners(port);
        assert!(
            !addresses.is_empty(),
            "nothing listens on port {port} ({variable}): is the local cloud up?"
        );
        assert!(
            addresses.iter().all(|address| is_loopback(address)),
            "port {port} ({variable}) listens beyond the loopback interface: {addresses:?}"
        );
    }
}
