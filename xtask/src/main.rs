//! Project automation for ecm, run as `cargo xtask <command>`.
//!
//! | command | does |
//! |---|---|
//! | `cargo xtask test` | the whole test suite: unit, integration and doc tests (and, once the `ecm` binary exists, the conformance scenarios) |
//! | `cargo xtask ci` | what CI runs: `cargo fmt --check`, clippy with `-D warnings`, then `test` |

// A command-line tool: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ci;
mod run;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ecm project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole test suite (the README's test command).
    Test,
    /// Run every CI step: formatting, lints, then the test suite.
    Ci,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test => ci::test(),
        Command::Ci => ci::ci(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}
