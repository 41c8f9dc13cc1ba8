fn main() { eprintln!("sniffer-perf: not built yet"); std::process::exit(1); }
