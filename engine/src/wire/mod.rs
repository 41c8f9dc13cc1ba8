//! Packet decoding: link layer, IPv4/IPv6, TCP. (Being written: see CONTRACT below.)
//!
//! CONTRACT (do not change the public names without telling the integrator):
//! `LinkType::from_pcap(i32) -> Option<LinkType>`,
//! `decode_tcp(LinkType, &[u8]) -> Result<TcpSegment<'_>, DecodeError>`,
//! `DecodeStats { fn record(&mut self, &DecodeError); fn merge(&mut self, &DecodeStats) }`.
