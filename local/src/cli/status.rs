//! `status`: the running application's functions, queues and logs.

use std::process::ExitCode;

use anyhow::Result;
use eventkit_local::dead_letters;
use eventkit_local::stack::outputs;

use super::Located;

/// Prints the functions (up, crashed and restarted, invocations, errors), the queues
/// (visible, in flight, which are dead-letter queues), the stack's outputs and where the
/// logs are.
pub async fn status(located: &Located) -> Result<ExitCode> {
    let (app, clients) = located.reach().await?;
    println!(
        "stack {} ({}), template {}",
        app.stack,
        app.state(),
        app.template.display()
    );
    println!(
        "local cloud: {} and {}",
        app.endpoints.localstack, app.endpoints.dynamodb
    );
    println!("\nfunctions");
    for (logical, function) in &app.functions {
        let state = if app.kept {
            "stopped"
        } else if function.ready == function.environments {
            "up"
        } else {
            "starting"
        };
        let counts = function.counts;
        println!(
            "  {logical:<24} {state:<8} invocations {:<5} errors {:<4} crashes {:<3} \
             restarts {:<3} timeouts {}",
            counts.invocations, counts.errors, counts.crashes, counts.restarts, counts.timeouts
        );
        println!("  {:<24} log {}", "", function.log.display());
    }
    println!("\nqueues");
    for (logical, queue) in &app.queues {
        let depth = dead_letters::depth(&clients.sqs, queue).await?;
        let role = if app.dead_letter_queues.contains_key(logical) {
            "  (dead-letter queue)"
        } else {
            ""
        };
        println!(
            "  {logical:<24} visible {:<5} in flight {:<5}{role}",
            depth.visible, depth.in_flight
        );
    }
    if !app.outputs.is_empty() {
        println!("\noutputs");
        for line in outputs::describe(&app.outputs) {
            println!("{line}");
        }
    }
    println!("\nlogs in {}", app.logs.display());
    Ok(ExitCode::SUCCESS)
}
