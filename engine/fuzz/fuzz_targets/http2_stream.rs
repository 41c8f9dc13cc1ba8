//! Input = a script of client/server data, gaps, FINs and a close fed to one
//! `HttpConnection` after the HTTP/2 preface; see `tcp_sniffer_fuzz::http2_stream`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tcp_sniffer_fuzz::http2_stream(data);
});
