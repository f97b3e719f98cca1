//! SFTP upload throughput over loopback SSH, side by side in one run: the CLI's upload
//! (`cargo_stream::cluster::transport::ssh::Session::upload`: temporary name, sha256 checked by the host,
//! rename) against OpenSSH's `scp` of the same file to the same real sshd.
//!
//! `cargo run --release -p cargo-stream-bench --bin upload_bench -- [SIZE_MB] [ROUNDS]`
//! (default 200 MB, 5 rounds; needs root, for the throwaway sshd user). Each round uploads
//! the file once with each client, alternating which goes first, under a new remote name each
//! time (so that nothing is reused), and deletes the copies afterwards. Times include opening
//! the connection. Prints a markdown table, the medians and their ratio.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cargo_stream::cluster::profile::SshTarget;
use cargo_stream::cluster::stage::sha256_file;
use cargo_stream::cluster::transport::ssh::Session;
use cargo_stream::shell::{ColorChoice, Shell, Verbosity};
use cargo_stream_tests::sshd::Sshd;

/// Incompressible bytes (xorshift64*), so that no layer can shrink them.
fn write_file(path: &Path, size: u64) {
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            chunk.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    file.flush().unwrap();
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn ours(target: &SshTarget, file: &Path, sha256: &str, name: &str) -> Duration {
    let mut shell = Shell::new(Verbosity::Quiet, ColorChoice::Never);
    let start = Instant::now();
    let session = Session::connect(target).expect("connect");
    session
        .upload(&mut shell, file, "bench", name, sha256)
        .expect("upload");
    start.elapsed()
}

fn scp(sshd: &Sshd, file: &Path, name: &str) -> Duration {
    let start = Instant::now();
    let status = Command::new("scp")
        .args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            sshd.known_hosts().display()
        ))
        .arg("-i")
        .arg(sshd.identity_file())
        .args(["-P", &sshd.port().to_string()])
        .arg(file)
        .arg(format!("{}@127.0.0.1:bench/{name}", sshd.user()))
        .stdin(Stdio::null())
        .status()
        .expect("run scp");
    assert!(status.success(), "scp failed");
    start.elapsed()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size_mb: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let size = size_mb * 1_000_000;

    let sshd = Sshd::start();
    let file = sshd.scratch().join("payload.bin");
    write_file(&file, size);
    let sha256 = sha256_file(&file).unwrap();
    let target = SshTarget {
        host: "127.0.0.1".into(),
        port: sshd.port(),
        user: sshd.user().into(),
        identity_file: Some(sshd.identity_file()),
        known_hosts: sshd.known_hosts(),
    };
    let out = sshd.run_as_user("mkdir -p bench");
    assert!(out.status.success());
    let remote = sshd.home().join("bench");
    // One warm-up each (page cache, sshd's first fork), not counted.
    ours(&target, &file, &sha256, "warm-ours.bin");
    scp(&sshd, &file, "warm-scp.bin");

    let mb = |d: Duration| size as f64 / 1e6 / d.as_secs_f64();
    let (mut ours_rates, mut scp_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    println!("| round | ours (MB/s) | scp (MB/s) | ours/scp |");
    println!("|---:|---:|---:|---:|");
    for round in 0..rounds {
        let name = format!("r{round}");
        let (o, s) = if round % 2 == 0 {
            let o = ours(&target, &file, &sha256, &format!("{name}-ours.bin"));
            (o, scp(&sshd, &file, &format!("{name}-scp.bin")))
        } else {
            let s = scp(&sshd, &file, &format!("{name}-scp.bin"));
            (
                ours(&target, &file, &sha256, &format!("{name}-ours.bin")),
                s,
            )
        };
        ours_rates.push(mb(o));
        scp_rates.push(mb(s));
        ratios.push(mb(o) / mb(s));
        println!(
            "| {} | {:.0} | {:.0} | {:.2} |",
            round + 1,
            mb(o),
            mb(s),
            mb(o) / mb(s)
        );
        for entry in std::fs::read_dir(&remote).unwrap().flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let (o, s) = (median(&mut ours_rates), median(&mut scp_rates));
    println!();
    // Rounds run back to back, so each round's ratio is the fairer figure on a busy machine.
    println!(
        "{size_mb} MB over loopback SSH, medians of {rounds} rounds: ours {o:.0} MB/s (upload, sha256 checked by the host, rename), scp {s:.0} MB/s; ours/scp {:.2} (median of the rounds' ratios)",
        median(&mut ratios)
    );
}
