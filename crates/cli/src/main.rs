//! `chronos2`: the command-line front end. Each subcommand parses its flags, calls into the
//! libraries and prints; an error becomes one line on stderr and exit code 1 (2 for usage
//! errors, from clap). A closed pipe (`chronos2 ... | head`) ends the program quietly.

mod commands;
mod common;

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
    Compare(commands::compare::Args),
    Forecast(commands::forecast::Args),
    InitRandom(commands::init_random::Args),
    Inspect(commands::inspect::Args),
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = match &cli.command {
        Command::Backtest(args) => commands::backtest::run(args, &mut out),
        Command::Bench(args) => commands::bench::run(args, &mut out),
        Command::Compare(args) => commands::compare::run(args, &mut out),
        Command::Forecast(args) => commands::forecast::run(args, &mut out),
        Command::InitRandom(args) => commands::init_random::run(args, &mut out),
        Command::Inspect(args) => commands::inspect::run(args, &mut out),
    }
    .and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand's flags are consistent (no clashing names, valid defaults).
    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
