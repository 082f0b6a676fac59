//! `chronos2`: the command-line front end. Each subcommand parses its flags, calls into the
//! libraries and prints; an error becomes one line on stderr and exit code 1 (2 for usage
//! errors, from clap). A closed pipe (`chronos2 ... | head`) ends the program quietly.

mod commands;
mod common;
mod data_args;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Native Chronos-2 time-series forecasting.
#[derive(Parser)]
#[command(name = "chronos2", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Backtest(commands::backtest::Args),
    Bench(commands::bench::Args),
    Cache(commands::cache::Args),
    Compare(commands::compare::Args),
    Forecast(commands::forecast::Args),
    InitRandom(commands::init_random::Args),
    Inspect(commands::inspect::Args),
    Serve(commands::serve::Args),
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server shuts down gracefully on its own; every other command stops at once.
    if !matches!(cli.command, Command::Serve(_)) {
        stop_cleanly_on_signals();
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = match &cli.command {
        Command::Backtest(args) => commands::backtest::run(args, &mut out),
        Command::Bench(args) => commands::bench::run(args, &mut out),
        Command::Cache(args) => commands::cache::run(args, &mut out),
        Command::Compare(args) => commands::compare::run(args, &mut out),
        Command::Forecast(args) => commands::forecast::run(args, &mut out),
        Command::InitRandom(args) => commands::init_random::run(args, &mut out),
        Command::Inspect(args) => commands::inspect::run(args, &mut out),
        Command::Serve(args) => commands::serve::run(args, &mut out),
    }
    .and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            common::stderr_line(format_args!("error: {}", message(&error)));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: a cause whose text an outer
/// message already quotes (an OS error inside "cannot write x: <os error>") is not repeated.
fn message(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// On SIGINT or SIGTERM: removes what is half-written (temporary files, output folders this
/// run created and left empty), says in one line what was and was not written, and exits with
/// 128 + the signal's number, as shells expect.
#[cfg(unix)]
fn stop_cleanly_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return; // without a handler the default action (ending the process) still applies
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
            let undone = chronos2_backtest::written::undo_unfinished();
            common::stderr_line(format_args!("interrupted by {name}: stopped; {}", undone.describe()));
            std::process::exit(128 + signal);
        }
    });
}

#[cfg(not(unix))]
fn stop_cleanly_on_signals() {}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand's flags are consistent (no clashing names, valid defaults).
    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }

    /// An OS error quoted by its context is printed once.
    #[test]
    fn causes_are_printed_once() {
        let os = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        // The backtest's write error quotes its OS error and also chains it as its source.
        let error = anyhow::Error::new(chronos2_backtest::BacktestError::Write {
            path: "out/report.json".into(),
            source: os(),
        });
        assert_eq!(error.chain().count(), 2);
        assert_eq!(
            super::message(&error),
            "out/report.json: No such file or directory (os error 2)"
        );
        let chained = anyhow::Error::new(os()).context("cannot read x.csv");
        assert_eq!(
            super::message(&chained),
            "cannot read x.csv: No such file or directory (os error 2)"
        );
    }
}
