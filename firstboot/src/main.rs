//! `airlift-firstboot`: a shim that parses the command line and runs the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = airlift_firstboot::cli::Cli::parse();
    match airlift_firstboot::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
