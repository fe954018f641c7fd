//! `airlift`: a shim that parses the command line and runs the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    airlift_builder::logging::init();
    let cli = airlift_builder::cli::Cli::parse();
    match airlift_builder::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
