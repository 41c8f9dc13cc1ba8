fn main() { eprintln!("tcp-sniffer-webhook: not built yet"); std::process::exit(1); }
