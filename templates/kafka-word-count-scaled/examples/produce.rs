//! `cargo run --example produce -- TOPIC [BROKERS] < lines.txt`: sends each line read from
//! standard input to TOPIC as one record (no key: the partitioner spreads them), then waits
//! until the broker has them all. Brokers default to `127.0.0.1:9092`.

use std::io::BufRead as _;
use std::time::Duration;

use cargo_stream_runtime::kafka::KafkaProducer;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(topic) = args.next() else {
        eprintln!("usage: cargo run --example produce -- TOPIC [BROKERS] < lines.txt");
        std::process::exit(2);
    };
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".to_owned());
    match produce(&topic, &brokers) {
        Ok(sent) => eprintln!("sent {sent} line(s) to `{topic}` at {brokers}"),
        Err(err) => {
            eprintln!("error: producing to `{topic}` at {brokers} failed: {err}");
            std::process::exit(1);
        }
    }
}

/// Sends every line of standard input; returns how many once the broker has them all.
fn produce(topic: &str, brokers: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let producer = KafkaProducer::new(brokers)?;
    let mut sent = 0u64;
    for line in std::io::stdin().lock().lines() {
        producer.send(topic, None, line?.as_bytes())?;
        sent += 1;
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(sent)
}
