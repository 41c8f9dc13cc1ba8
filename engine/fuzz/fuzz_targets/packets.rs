//! Input = length-prefixed frames pushed through a pipeline `Worker`; see
//! `tcp_sniffer_fuzz::packets`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tcp_sniffer_fuzz::packets(data);
});
