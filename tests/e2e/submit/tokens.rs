//! issue 14, JWT: the tokens `spark-rest` signs expire (`exp`), and a real Spark REST gateway
//! behind `JWSFilter` refuses an expired one; `https://` gateways are checked against the
//! profile's `ca-file` (a TLS endpoint signed by a test CA, in front of the real gateway:
//! accepted with the CA file, refused without); a token about to travel in clear to another
//! host is warned about.

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cargo_stream_tests::client::Client;
use cargo_stream_tests::spark::SparkCluster;
use cargo_stream_tests::{jobs, run};
use sha2::{Digest as _, Sha256};

const MINUTE: Duration = Duration::from_secs(60);

/// 32 bytes, base64 without `+`, `/`, `-` or `_`, so that either alphabet reads it.
const SECRET: &str = "c2VjcmV0LWtleS1mb3ItY2FyZ28tc3RyZWFtLXRlc3RzMQ";

fn base64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// An HS256 token over `claims` (JSON), signed with [`SECRET`] as Spark decodes it.
fn token(claims: &str) -> String {
    let key: Vec<u8> = {
        // Standard base64 without padding (the secret has no `-`/`_`/`+`/`/`).
        const ABC: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bits: Vec<u32> = SECRET
            .bytes()
            .map(|c| ABC.find(c as char).unwrap() as u32)
            .collect();
        let mut out = Vec::new();
        for chunk in bits.chunks(4) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, v)| n | (v << (18 - 6 * i)));
            for i in 0..chunk.len() - 1 {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        out
    };
    assert_eq!(
        key, b"secret-key-for-cargo-stream-tests1",
        "the secret's bytes"
    );
    let input = format!(
        "{}.{}",
        base64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        base64url(claims.as_bytes())
    );
    let signature = base64url(&hmac_sha256(&key, input.as_bytes()));
    format!("{input}.{signature}")
}

/// `GET path` on 127.0.0.1:`port` with `Authorization: Bearer token`: the status code.
fn status_with(port: &str, path: &str, token: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    stream.set_read_timeout(Some(MINUTE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A TLS endpoint on 127.0.0.1 (python3's `ssl`, certificate `cert`) in front of 127.0.0.1:
/// `upstream`; killed on drop.
struct TlsProxy {
    child: Child,
    port: u16,
}

const PROXY: &str = r#"
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
upstream = int(sys.argv[3])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(conn):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()
        return
    up = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pipe, args=(tls, up), daemon=True).start()
    pipe(up, tls)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

impl TlsProxy {
    fn start(cert: &Path, key: &Path, upstream: &str) -> TlsProxy {
        let mut child = Command::new("python3")
            .args(["-c", PROXY])
            .arg(cert)
            .arg(key)
            .arg(upstream)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the proxy's port");
        TlsProxy { child, port }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a certificate for 127.0.0.1 it signed, with `openssl`: (CA, cert, key).
fn test_ca(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=cargo-stream e2e CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn spark_rest_tokens_expire_and_travel_over_checked_tls() {
    let jar = jobs::finite();
    let jar = jar.to_str().unwrap();
    let cluster = SparkCluster::start(Some(SECRET));
    let rest_port = cluster.rest_url.rsplit(':').next().unwrap().to_owned();
    let path = "/v1/submissions/status/driver-20261129000000-0000";

    // Spark's JWSFilter checks `exp`: a token that expired is refused, one that has not is
    // taken (the submission is unknown: HTTP 200 with `success: false`).
    let t = now();
    let expired = token(&format!(
        r#"{{"sub":"cargo-stream","iat":{},"exp":{}}}"#,
        t - 600,
        t - 300
    ));
    let fresh = token(&format!(
        r#"{{"sub":"cargo-stream","iat":{t},"exp":{}}}"#,
        t + 300
    ));
    assert_eq!(status_with(&rest_port, path, &expired), 403);
    assert_eq!(status_with(&rest_port, path, &fresh), 200);

    // https:// in front of the gateway, with a certificate of a private CA.
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(tmp.path());
    let proxy = TlsProxy::start(&cert, &key, &rest_port);
    let client = Client::new();
    let base = |name: &str, extra: &str| {
        format!(
            "[clusters.{name}]\nkind = \"spark-rest\"\nmaster = \"https://127.0.0.1:{}\"\nmaster-ui = \"{}\"\njwt-secret-env = \"TEST_SPARK_JWT\"\ndriver-memory = \"256m\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n{extra}\n",
            proxy.port,
            cluster.ui_url,
            cluster.dir().join("jars").display()
        )
    };
    client.set_clusters(&format!(
        "{}{}",
        base("tls", &format!("ca-file = \"{}\"", ca.display())),
        base("untrusted", "")
    ));
    let submit = |cluster: &str| {
        run(
            client
                .cmd(&["submit", "-c", cluster, "--artifact", jar, "--wait"])
                .env("TEST_SPARK_JWT", SECRET),
            Duration::from_secs(180),
        )
    };
    let out = submit("untrusted");
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "a certificate error: {}",
        out.stderr
    );
    let out = submit("tls");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("FINISHED"), "{}", out.stderr);
    assert!(!out.stderr.contains("warning:"), "{}", out.stderr);
    // `logs` reads the worker's UI with the token too (an open UI here: it must still work).
    let log = run(
        client
            .cmd(&["logs", out.stdout.trim()])
            .env("TEST_SPARK_JWT", SECRET),
        MINUTE,
    )
    .success();
    assert!(
        log.stdout.contains("done after 3 batches"),
        "{}",
        log.stdout
    );
}

#[test]
fn a_token_for_a_plain_http_remote_gateway_is_warned_about() {
    let client = Client::new();
    let jar = client.dir().join("x.jar");
    client.set_clusters(&format!(
        "[clusters.far]\nkind = \"spark-rest\"\nmaster = \"spark://far-away.invalid:6066\"\njwt-secret-env = \"TEST_SPARK_JWT\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n\
         [clusters.near]\nkind = \"spark-rest\"\nmaster = \"spark://127.0.0.1:9\"\nmaster-ui = \"http://127.0.0.1:9\"\njwt-secret-env = \"TEST_SPARK_JWT\"\nupload = {{ to = \"dir\", path = \"{}\" }}\n",
        client.dir().join("up").display(),
        client.dir().join("up").display()
    ));
    // A bundle for `submit` to check: any zip with a manifest naming the job.
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&jar).unwrap());
    zip.start_file(
        "stream-manifest.json",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(br#"{"name":"x"}"#).unwrap();
    zip.finish().unwrap();
    let submit = |cluster: &str| {
        run(
            client
                .cmd(&["submit", "-c", cluster, "--artifact", jar.to_str().unwrap()])
                .env("TEST_SPARK_JWT", SECRET),
            MINUTE,
        )
    };
    let far = submit("far").failure();
    assert!(
        far.stderr.contains(
            "warning: cluster `far`: the JWT goes in clear to http://far-away.invalid:6066, http://far-away.invalid:8080 (plain HTTP)"
        ),
        "{}",
        far.stderr
    );
    assert!(far.stderr.contains("use `https://`"), "{}", far.stderr);
    let near = submit("near").failure();
    assert!(!near.stderr.contains("warning:"), "{}", near.stderr);
}

/// issue 14: the token goes with the web UI's requests too, not only the REST gateway's:
/// `list --cluster` reads the master's `/json/` from a UI that records what it is sent.
#[test]
fn the_token_goes_with_web_ui_requests_too() {
    let ui = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = ui.local_addr().unwrap().port();
    let request = std::thread::spawn(move || {
        let (mut conn, _) = ui.accept().unwrap();
        conn.set_read_timeout(Some(MINUTE)).unwrap();
        let mut head = Vec::new();
        let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let body = r#"{"workers":[],"activedrivers":[],"completeddrivers":[{"id":"driver-20260101000000-0007","state":"FINISHED"}]}"#;
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        head
    });
    let client = Client::new();
    client.set_clusters(&format!(
        "[clusters.near]\nkind = \"spark-rest\"\nmaster = \"spark://127.0.0.1:9\"\nmaster-ui = \"http://127.0.0.1:{port}\"\njwt-secret-env = \"TEST_SPARK_JWT\"\n"
    ));
    let out = run(
        client
            .cmd(&["list", "--cluster", "near", "--json"])
            .env("TEST_SPARK_JWT", SECRET),
        MINUTE,
    )
    .success();
    assert!(
        out.stdout.contains("driver-20260101000000-0007"),
        "{}",
        out.stdout
    );
    let head = request.join().unwrap();
    assert!(head[0].starts_with("GET /json/ "), "{head:?}");
    let token = head
        .iter()
        .find_map(|l| {
            let (name, value) = l.split_once(": ")?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| value.strip_prefix("Bearer "))?
        })
        .unwrap_or_else(|| panic!("no bearer token sent to the UI: {head:?}"));
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert_eq!(
        parts[0],
        base64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        "{token}"
    );
}
