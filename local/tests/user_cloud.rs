//! One local cloud per machine user: the installed CLI keeps its cloud in a per-user cache
//! folder, and a cloud another folder started (here: the one the tests run against, which
//! `cargo xtask cloud up` started from its checkout) is used as it is, named, never
//! installed again nor stopped from here. A port held by the wrong service of another
//! cloud is refused before anything is installed, naming that cloud's folder.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::*;

/// The port of the endpoint in `variable` (`http://127.0.0.1:4566`).
fn port_of(variable: &str) -> String {
    let url = std::env::var(variable).unwrap_or_default();
    url.rsplit(':')
        .next()
        .map(|port| port.trim_end_matches('/').to_string())
        .filter(|port| port.parse::<u16>().is_ok())
        .unwrap_or_else(|| panic!("{variable} names no port: {url:?}"))
}

/// `eventkit-local cloud ARGS` with its cache folder in `cache`.
fn cloud(cache: &PathBuf, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventkit-local"))
        .arg("cloud")
        .args(args)
        .env("EVENTKIT_LOCAL_CACHE_DIR", cache)
        .env_remove("EVENTKIT_LOCALSTACK_PORT")
        .env_remove("EVENTKIT_DYNAMODB_PORT")
        .output()
        .expect("eventkit-local runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The folder a line `... of the local cloud in <folder> ...` names.
fn folder_named(text: &str) -> PathBuf {
    let after = text
        .split("of the local cloud in ")
        .nth(1)
        .unwrap_or_else(|| panic!("no cloud's folder is named:\n{text}"));
    let folder = after
        .split([' ', ':', ';', '\n'])
        .next()
        .unwrap_or_default();
    PathBuf::from(folder)
}

#[test]
fn a_cloud_another_folder_started_is_used_and_named_never_installed_again_nor_stopped() {
    cloud_env();
    let localstack = port_of("AWS_ENDPOINT_URL");
    let dynamodb = port_of("AWS_ENDPOINT_URL_DYNAMODB");
    let cache = std::env::temp_dir().join(format!("user-cloud-{}", uuid::Uuid::new_v4()));
    let ports = [
        "--localstack-port",
        &localstack,
        "--dynamodb-port",
        &dynamodb,
    ];

    let up = cloud(&cache, &[&["up"][..], &ports[..]].concat());
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert!(
        said.contains(&format!("port {localstack} is held by localstack (pid "))
            && said.contains(&format!("port {dynamodb} is held by dynamodb-local (pid "))
            && said.contains(": using it"),
        "{said}"
    );
    let folder = folder_named(&said);
    assert!(
        folder.join("localstack").is_dir() || folder.join(".local-cloud/localstack").is_dir(),
        "the named folder holds that cloud: {}\n{said}",
        folder.display()
    );
    assert!(
        !cache.join("localstack/venv").exists() && !cache.join("dynamodb-local/package").exists(),
        "nothing is installed again"
    );

    let env = cloud(&cache, &[&["env"][..], &ports[..]].concat());
    assert!(
        text(&env).contains(&format!(
            "export AWS_ENDPOINT_URL=http://127.0.0.1:{localstack}\n"
        )),
        "{}",
        text(&env)
    );
    let status = cloud(&cache, &[&["status"][..], &ports[..]].concat());
    assert!(
        status.status.success() && text(&status).contains("localstack: localstack (pid "),
        "{}",
        text(&status)
    );

    let down = cloud(&cache, &[&["down"][..], &ports[..]].concat());
    assert!(
        down.status.success() && text(&down).contains("is not this cloud's to stop"),
        "{}",
        text(&down)
    );
    let health = format!("http://127.0.0.1:{localstack}/_localstack/health");
    let answered = Command::new("curl")
        .args(["-sf", "-o", "/dev/null", &health])
        .status()
        .expect("curl runs");
    assert!(answered.success(), "the other folder's cloud still runs");
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn a_port_held_by_the_wrong_service_of_another_cloud_is_refused_before_any_install() {
    cloud_env();
    let dynamodb = port_of("AWS_ENDPOINT_URL_DYNAMODB");
    let cache = std::env::temp_dir().join(format!("user-cloud-{}", uuid::Uuid::new_v4()));
    // LocalStack asked for on DynamoDB Local's port.
    let up = cloud(
        &cache,
        &[
            "up",
            "--localstack-port",
            &dynamodb,
            "--dynamodb-port",
            &dynamodb,
        ],
    );
    let said = text(&up);
    assert!(!up.status.success(), "{said}");
    assert!(
        said.contains(&format!("port {dynamodb} is held by dynamodb-local (pid "))
            && said.contains(
                "stop that cloud, or start localstack on another port with --localstack-port"
            ),
        "{said}"
    );
    assert!(!said.contains("xtask"), "{said}");
    assert!(
        !cache.join("localstack/venv").exists(),
        "nothing is installed"
    );
    let _ = std::fs::remove_dir_all(&cache);
}
