//! Fuzz drivers shared by the cargo-fuzz targets and by
//! `engine/tests/fuzz_regressions.rs` (which includes `drivers.rs` by path, so a
//! crash found here replays in a plain `cargo test` without libFuzzer).

mod drivers;

pub use drivers::{http2_stream, http_stream, http_stream_script, packets};
