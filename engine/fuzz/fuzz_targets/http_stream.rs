//! Input = a script of client/server data, gaps, FINs and a close fed to one
//! `HttpConnection`; see `tcp_sniffer_fuzz::http_stream`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tcp_sniffer_fuzz::http_stream(data);
});
