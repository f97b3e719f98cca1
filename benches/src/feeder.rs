//! A feeder byte-identical to `shared/bench/feeder.py` (same vocabulary, same `random.seed(1)`
//! draws, so the same 5,000-line chunk; same rate logic), for rates the Python one cannot send.

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Words in one chunk: 5,000 lines of 10 words.
pub const WORDS_PER_CHUNK: u64 = 50_000;

/// CPython's Mersenne Twister (`random.Random`), just enough for `seed(int)` + `choice`.
struct Mt19937 {
    mt: [u32; 624],
    idx: usize,
}

impl Mt19937 {
    fn init_genrand(s: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = s;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self { mt, idx: 624 }
    }

    /// `random.seed(n)` for a small non-negative int: `init_by_array([n])`.
    fn python_seed(n: u32) -> Self {
        let key = [n];
        let mut r = Self::init_genrand(19_650_218);
        let mt = &mut r.mt;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        r
    }

    fn next_u32(&mut self) -> u32 {
        if self.idx >= 624 {
            for k in 0..624 {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(k + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[k] = v;
            }
            self.idx = 0;
        }
        let mut y = self.mt[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random.choice` index for a sequence of length `n` (`_randbelow_with_getrandbits`).
    fn below(&mut self, n: u32) -> u32 {
        let k = 32 - n.leading_zeros();
        loop {
            let r = self.next_u32() >> (32 - k);
            if r < n {
                return r;
            }
        }
    }
}

/// The chunk feeder.py sends: `"\n".join(lines) + "\n"`, 5,000 lines of 10 words drawn with
/// `random.seed(1)` from `w0`..`w999`.
pub fn chunk() -> Vec<u8> {
    let mut rng = Mt19937::python_seed(1);
    let vocab: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
    let mut out = Vec::with_capacity(5000 * 45);
    for _ in 0..5000 {
        for w in 0..10 {
            if w > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(vocab[rng.below(1000) as usize].as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// Runs the feeder: listen on 127.0.0.1:`port`, accept one client, send `rate` words/s
/// (0 = as fast as possible) for `secs` seconds, print the same summary line as feeder.py.
pub fn run(port: u16, rate: f64, secs: f64) -> std::io::Result<()> {
    let chunk = chunk();
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let (mut c, _) = listener.accept()?;
    let t0 = Instant::now();
    let mut sent: u64 = 0;
    while t0.elapsed().as_secs_f64() < secs {
        if rate > 0.0 {
            let target = t0.elapsed().as_secs_f64() * rate;
            if sent as f64 >= target {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        }
        if c.write_all(&chunk).is_err() {
            break;
        }
        sent += WORDS_PER_CHUNK;
    }
    let el = t0.elapsed().as_secs_f64();
    println!(
        "FEEDER sent {sent} words in {el:.1}s = {:.0} w/s",
        sent as f64 / el
    );
    drop(c);
    Ok(())
}
