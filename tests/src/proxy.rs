//! A TCP proxy on 127.0.0.1 that a test can take down and bring back, to make a real server
//! unreachable for a while: [`Proxy::cut`] closes every open connection and stops listening
//! (new connections are refused), [`Proxy::restore`] listens again on the same port.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running proxy to one address.
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    up: AtomicBool,
    listening: AtomicBool,
    stop: AtomicBool,
    connections: AtomicUsize,
    open: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// Forwards a free port of 127.0.0.1 to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            up: AtomicBool::new(true),
            listening: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            open: Mutex::new(Vec::new()),
        });
        let state = shared.clone();
        std::thread::spawn(move || accept_loop(Some(listener), port, target, &state));
        Proxy { port, shared }
    }

    /// How many connections it has taken so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Closes every open connection and stops listening: connections are refused until
    /// [`Proxy::restore`].
    pub fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        self.wait_listening(false);
        for stream in self.shared.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Listens again.
    pub fn restore(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
        self.wait_listening(true);
    }

    fn wait_listening(&self, listening: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.shared.listening.load(Ordering::SeqCst) != listening {
            assert!(Instant::now() < deadline, "the proxy did not switch");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for stream in self.shared.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(mut listener: Option<TcpListener>, port: u16, target: SocketAddr, state: &Shared) {
    while !state.stop.load(Ordering::SeqCst) {
        let up = state.up.load(Ordering::SeqCst);
        if up && listener.is_none() {
            // std sets SO_REUSEADDR: the port is taken again at once.
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => listener = Some(l),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        } else if !up && listener.is_some() {
            listener = None;
        }
        let Some(l) = &listener else {
            state.listening.store(false, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        state.listening.store(true, Ordering::SeqCst);
        l.set_nonblocking(true).unwrap();
        match l.accept() {
            Ok((client, _)) => {
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                state.connections.fetch_add(1, Ordering::SeqCst);
                let mut open = state.open.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                drop(open);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
