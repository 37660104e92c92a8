//! Logging to stderr with timestamps (journald keeps them; so does a terminal).

/// Sets up the logger at `level`; `SHOAL_LOG` (env_logger syntax) overrides it, e.g.
/// `SHOAL_LOG=shoal_core=debug`.
pub fn init(level: log::LevelFilter) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level).format_timestamp_millis().target(env_logger::Target::Stderr);
    if let Ok(spec) = std::env::var("SHOAL_LOG") {
        builder.parse_filters(&spec);
    }
    // A second init (tests) keeps the first logger. try_init sets log's max level from the filter.
    let _ = builder.try_init();
}
