//! The `zoho-meeting-proxy` executable: parses the command line and hands over to the library.
//! Exit codes: 0 ok, 1 runtime failure, 2 usage error (from clap), 78 bad configuration.

use std::process::ExitCode;

use clap::Parser;
use zoho_meeting_proxy::cli::{self, Cli};

fn main() -> ExitCode {
    zoho_meeting_proxy::telemetry::install_panic_hook();
    let cli = Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", cli::report(&error));
            ExitCode::from(error.exit_code())
        }
    }
}
