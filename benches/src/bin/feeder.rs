//! `feeder PORT RATE SECONDS`: the Rust twin of `shared/bench/feeder.py` (same bytes, same rate
//! logic), for rates the Python feeder cannot send.

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 3 {
        eprintln!("usage: feeder PORT RATE SECONDS");
        std::process::exit(2);
    }
    let port: u16 = a[0].parse().expect("PORT");
    let rate: f64 = a[1].parse().expect("RATE");
    let secs: f64 = a[2].parse().expect("SECONDS");
    if let Err(e) = cargo_stream_bench::feeder::run(port, rate, secs) {
        eprintln!("feeder: {e}");
        std::process::exit(1);
    }
}
