//! The `shoal` binary: see `shoal help`.

use std::process::ExitCode;

use shoal::cli::{self, Cli};
use shoal::config::Config;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let command = match cli::parse(args.clone()) {
        Ok(c) => c,
        Err(e) => {
            // The usage of the command at fault (the program's, for an unknown one).
            eprintln!("shoal: {e}\n\n{}", cli::help(args.first().and_then(|a| a.to_str())));
            return ExitCode::from(2);
        }
    };
    match command {
        Cli::Help(topic) => {
            println!("{}", cli::help(topic.as_deref()));
            ExitCode::SUCCESS
        }
        Cli::Version => {
            // No config is read: the board is the one the binary was built for (else generic).
            println!(
                "shoal {} (protocol {}, target {}, board {})",
                env!("CARGO_PKG_VERSION"),
                shoal_core::wire::PROTOCOL_VERSION,
                shoal::board::BUILD_TARGET,
                shoal::board::default_board()
            );
            ExitCode::SUCCESS
        }
        Cli::Demo { boxes, port, seconds } => {
            shoal::logging::init(log::LevelFilter::Warn);
            match shoal::demo::run(boxes, port, seconds) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shoal demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cli::Status { url } => match shoal::status_cli::run(&url) {
            Ok(text) => {
                // Not `print!`, which panics when stdout is a pipe that closed (`| head`).
                let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("shoal status: {e}");
                ExitCode::FAILURE
            }
        },
        Cli::Prefill { channel, full, url, timeout } => {
            match shoal::prefill_cli::run(&channel, full, &url, timeout, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shoal prefill: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cli::Keygen { out, force } => match shoal::keys::generate_network_key(&out, force) {
            Ok(key) => {
                let fp = key.fingerprint();
                println!(
                    "wrote network key {} (fingerprint {:02x}{:02x}{:02x}{:02x}); copy it to every box of this deployment",
                    out.display(),
                    fp[0],
                    fp[1],
                    fp[2],
                    fp[3]
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("shoal keygen: {e}");
                ExitCode::FAILURE
            }
        },
        Cli::CheckConfig { config, board } => match Config::load_with_board(&config, board.as_deref()) {
            Ok(c) => {
                println!("{} is valid:\n{c:#?}", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("shoal check-config: {e}");
                ExitCode::FAILURE
            }
        },
        Cli::Run { config, key, state_dir, board } => {
            let (mut settings, path) = match cli::load_run_config(config, board.as_deref()) {
                Ok(loaded) => loaded,
                Err(e) => {
                    eprintln!("shoal run: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Some(key) = key {
                settings.network_key_file = key;
            }
            if let Some(dir) = state_dir {
                settings.state_dir = dir;
            }
            shoal::logging::init(settings.log_level);
            match shoal::daemon::run(settings, path) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    eprintln!("shoal run: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
