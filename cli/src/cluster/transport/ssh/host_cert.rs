//! OpenSSH host certificates (`PROTOCOL.certkeys` in OpenSSH's sources): a host key signed by a
//! certificate authority, with the names it is valid for (principals) and a validity window.
//! [`Certificate::parse`] reads one, [`Certificate::verify_signature`] checks the CA's signature
//! and [`Certificate::check_host`] the rest as OpenSSH's `sshkey_cert_check_host` does; which CA
//! is trusted for which host is `known_hosts.rs`'s business (`@cert-authority` lines).
//!
//! CA signatures: `ssh-ed25519`, `ecdsa-sha2-nistp{256,384,521}` and RSA with `rsa-sha2-256` or
//! `rsa-sha2-512` (OpenSSH's default `CASignatureAlgorithms`: SHA-1 `ssh-rsa` is refused), checked
//! with aws-lc-rs.

use aws_lc_rs::signature::{self, UnparsedPublicKey};

/// The suffix of every certificate key type name.
const CERT_SUFFIX: &str = "-cert-v01@openssh.com";
/// `SSH2_CERT_TYPE_HOST`.
const HOST_CERT: u32 = 2;

/// A reader of SSH wire-format fields (RFC 4251 section 5).
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8]) -> Wire<'a> {
        Wire { buf, pos: 0 }
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.bytes(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.bytes(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }

    fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.string()?).ok()
    }

    fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// The type name a public key blob starts with (`ssh-ed25519`, `ssh-ed25519-cert-v01@...`).
pub(super) fn blob_type(blob: &[u8]) -> Option<&str> {
    Wire::new(blob).text()
}

/// Whether a key type name is a certificate's.
pub(super) fn is_cert_type(name: &str) -> bool {
    name.ends_with(CERT_SUFFIX)
}

/// The plain key type of a host key algorithm: `ssh-rsa` for `rsa-sha2-512` and its
/// certificate, `ssh-ed25519` for `ssh-ed25519-cert-v01@openssh.com`, and so on.
pub(super) fn plain_type(algorithm: &str) -> &str {
    let plain = algorithm.strip_suffix(CERT_SUFFIX).unwrap_or(algorithm);
    match plain {
        "rsa-sha2-256" | "rsa-sha2-512" => "ssh-rsa",
        other => other,
    }
}

/// The number of wire strings holding the public key of a plain key type.
fn key_fields(plain_type: &str) -> Option<usize> {
    match plain_type {
        "ssh-ed25519" => Some(1),
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => Some(2),
        "ssh-rsa" => Some(2),
        "ssh-dss" => Some(4),
        _ => None,
    }
}

/// A parsed host (or user) certificate.
#[derive(Debug)]
pub(super) struct Certificate {
    /// The certified key as a plain public key blob (what a known_hosts line would hold).
    pub(super) plain: Vec<u8>,
    cert_type: u32,
    key_id: String,
    principals: Vec<String>,
    valid_after: u64,
    valid_before: u64,
    critical_options: usize,
    /// The CA's public key blob.
    pub(super) ca: Vec<u8>,
    /// The certificate up to (not including) the signature: what the CA signed.
    signed: Vec<u8>,
    signature: Vec<u8>,
}

impl Certificate {
    /// Reads a certificate blob, as a host presents it; `None` if it is not one or is damaged.
    pub(super) fn parse(blob: &[u8]) -> Option<Certificate> {
        let mut w = Wire::new(blob);
        let kind = w.text()?;
        let plain_kind = kind.strip_suffix(CERT_SUFFIX)?;
        let _nonce = w.string()?;
        let start = w.pos;
        for _ in 0..key_fields(plain_kind)? {
            w.string()?;
        }
        let mut plain = Vec::with_capacity(4 + plain_kind.len() + w.pos - start);
        plain.extend_from_slice(&(plain_kind.len() as u32).to_be_bytes());
        plain.extend_from_slice(plain_kind.as_bytes());
        plain.extend_from_slice(&blob[start..w.pos]);
        let _serial = w.u64()?;
        let cert_type = w.u32()?;
        let key_id = String::from_utf8_lossy(w.string()?).into_owned();
        let mut list = Wire::new(w.string()?);
        let mut principals = Vec::new();
        while !list.done() {
            principals.push(list.text()?.to_owned());
        }
        let valid_after = w.u64()?;
        let valid_before = w.u64()?;
        let critical_options = w.string()?.len();
        let _extensions = w.string()?;
        let _reserved = w.string()?;
        let ca = w.string()?.to_vec();
        let signed = blob[..w.pos].to_vec();
        let signature = w.string()?.to_vec();
        if !w.done() {
            return None;
        }
        Some(Certificate {
            plain,
            cert_type,
            key_id,
            principals,
            valid_after,
            valid_before,
            critical_options,
            ca,
            signed,
            signature,
        })
    }

    /// The key ID the CA gave it (`ssh-keygen -I`).
    pub(super) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks that the CA key in the certificate signed it, with an algorithm OpenSSH accepts
    /// by default; the reason otherwise.
    pub(super) fn verify_signature(&self) -> Result<(), String> {
        let mut sig = Wire::new(&self.signature);
        let (Some(sig_type), Some(sig_bytes)) = (sig.text(), sig.string()) else {
            return Err("its signature is damaged".into());
        };
        let mut ca = Wire::new(&self.ca);
        let ca_type = ca.text().unwrap_or_default();
        let bad = || format!("its {sig_type} signature by the CA does not verify");
        let verified = match ca_type {
            "ssh-ed25519" => {
                if sig_type != "ssh-ed25519" {
                    return Err(format!("a {ca_type} CA cannot make a {sig_type} signature"));
                }
                let key = ca.string().ok_or_else(bad)?;
                UnparsedPublicKey::new(&signature::ED25519, key).verify(&self.signed, sig_bytes)
            }
            "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => {
                if sig_type != ca_type {
                    return Err(format!("a {ca_type} CA cannot make a {sig_type} signature"));
                }
                let (algorithm, width): (&'static signature::EcdsaVerificationAlgorithm, usize) =
                    match ca_type {
                        "ecdsa-sha2-nistp256" => (&signature::ECDSA_P256_SHA256_FIXED, 32),
                        "ecdsa-sha2-nistp384" => (&signature::ECDSA_P384_SHA384_FIXED, 48),
                        _ => (&signature::ECDSA_P521_SHA512_FIXED, 66),
                    };
                let _curve = ca.string().ok_or_else(bad)?;
                let point = ca.string().ok_or_else(bad)?;
                let mut rs = Wire::new(sig_bytes);
                let fixed = match (rs.string(), rs.string()) {
                    (Some(r), Some(s)) if rs.done() => {
                        let (Some(r), Some(s)) = (fixed_width(r, width), fixed_width(s, width))
                        else {
                            return Err(bad());
                        };
                        [r, s].concat()
                    }
                    _ => return Err(bad()),
                };
                UnparsedPublicKey::new(algorithm, point).verify(&self.signed, &fixed)
            }
            "ssh-rsa" => {
                let params = match sig_type {
                    "rsa-sha2-256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "rsa-sha2-512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                    other => {
                        return Err(format!(
                            "it is signed with `{other}`, which OpenSSH no longer accepts for certificates (CASignatureAlgorithms)"
                        ));
                    }
                };
                let e = ca.string().ok_or_else(bad)?;
                let n = ca.string().ok_or_else(bad)?;
                signature::RsaPublicKeyComponents {
                    n: strip_zeros(n),
                    e: strip_zeros(e),
                }
                .verify(params, &self.signed, sig_bytes)
            }
            other => {
                return Err(format!(
                    "its CA key type `{other}` is not supported (ssh-ed25519, ecdsa-sha2-nistp256/384/521 and ssh-rsa are)"
                ));
            }
        };
        verified.map_err(|_| bad())
    }

    /// OpenSSH's checks of a host certificate for `host` (the name connected to, without a
    /// port) at `now` (seconds since the epoch): a host certificate, valid now, with `host`
    /// matching one of its principals (which may hold `*` and `?`), and no critical options.
    /// The reason, in OpenSSH's words, otherwise.
    pub(super) fn check_host(&self, host: &str, now: u64) -> Result<(), &'static str> {
        if self.cert_type != HOST_CERT {
            return Err("Certificate invalid: not a host certificate");
        }
        if now < self.valid_after {
            return Err("Certificate invalid: not yet valid");
        }
        if now >= self.valid_before {
            return Err("Certificate invalid: expired");
        }
        if self.principals.is_empty() {
            return Err("Certificate lacks principal list");
        }
        if !self
            .principals
            .iter()
            .any(|p| super::pattern::glob(p, host))
        {
            return Err("Certificate invalid: name is not a listed principal");
        }
        if self.critical_options != 0 {
            return Err("Certificate contains unsupported critical options");
        }
        Ok(())
    }

    /// Its principals, comma-separated, for messages.
    pub(super) fn principals(&self) -> String {
        self.principals.join(",")
    }
}

/// An SSH mpint without its leading zero bytes.
fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// An mpint as exactly `width` big-endian bytes (ECDSA's r and s), if it fits.
fn fixed_width(mpint: &[u8], width: usize) -> Option<Vec<u8>> {
    let bytes = strip_zeros(mpint);
    if bytes.len() > width {
        return None;
    }
    let mut out = vec![0; width - bytes.len()];
    out.extend_from_slice(bytes);
    Some(out)
}

#[cfg(test)]
pub(super) mod tests {
    use base64::Engine as _;

    use super::*;

    pub(crate) fn decode(b64: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    // Made with OpenSSH 9's ssh-keygen: an ed25519 host key; CAs of each kind; certificates
    // valid from 2026-01-01 to 2027-01-01 (`-V 20260101000000Z:20270101000000Z`).
    pub(crate) const CA_ED: &str =
        "AAAAC3NzaC1lZDI1NTE5AAAAIGxYqZzs3/RkDP1RfH7qBxoOj6ZVWH2UlH8CXTAZwhc4";
    pub(crate) const HOST: &str =
        "AAAAC3NzaC1lZDI1NTE5AAAAIND7He62fywZmR1jrblTLoV8bqYMXx/vSy+74pze5P4J";
    /// `-s ca_ed -h -n 'host.example,*.wild.example'`.
    pub(crate) const H1: &str = "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIGUFm1uKVgJQ9OyIleI0CKi6mJ/pp58cDXP/BFCCA0ZMAAAAIND7He62fywZmR1jrblTLoV8bqYMXx/vSy+74pze5P4JAAAAAAAAAAAAAAACAAAAAmgxAAAAIgAAAAxob3N0LmV4YW1wbGUAAAAOKi53aWxkLmV4YW1wbGUAAAAAaVW5AAAAAABrNuyAAAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACBsWKmc7N/0ZAz9UXx+6gcaDo+mVVh9lJR/Al0wGcIXOAAAAFMAAAALc3NoLWVkMjU1MTkAAABA7lhSJ4JRAJJnsIh4tanRX300FIqlPzyYCw55OF4hsPyAxKPoRuenrPhkbOHSPiNkGBtVJ+LVzIMzkkRD0cm5BA==";
    /// `-s ca_ec (nistp256) -h -n host.example`.
    const H2: &str = "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIPVXozx8V6HhvK7hh6QH1rbRBTNp+T5TIhWYuNYBCZNIAAAAIND7He62fywZmR1jrblTLoV8bqYMXx/vSy+74pze5P4JAAAAAAAAAAAAAAACAAAAAmgyAAAAEAAAAAxob3N0LmV4YW1wbGUAAAAAaVW5AAAAAABrNuyAAAAAAAAAAAAAAAAAAAAAaAAAABNlY2RzYS1zaGEyLW5pc3RwMjU2AAAACG5pc3RwMjU2AAAAQQTASU3AX2J7mZw0ulHlDAjDf9/G2fKnHyzHBxg/5nVMT1ACs57y+2/bheeKCDsjALTYohqwUKWCS3ncWWLntJ58AAAAYwAAABNlY2RzYS1zaGEyLW5pc3RwMjU2AAAASAAAACA3dWQfe9cfsvV5N7IxBMtrkDVPzWpgIxrAedAwJDKaxQAAACA62FLuM6qPFD7UgFXgTsJRKlwexe6TX9PS1hmuArGXZw==";
    /// An ecdsa-nistp384 host key, `-s ca_rsa -t rsa-sha2-512 -h -n host.example`.
    const H3: &str = "AAAAKGVjZHNhLXNoYTItbmlzdHAzODQtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgkWMK0t69Yc50OL3C6I1FUToGMtLxuBBbqO6tghkpMvAAAAAIbmlzdHAzODQAAABhBC15BeNCoWd4/Dwy41B+awL5fYX4Kq6BzJJ1JE0hz321cvnIZIlzDTtj+nAdrop8dOpw9E0kiVJmytqqX89WVFyVE0NTUprOXYHjwKTLWZIMeyKq9hdkAfn388vuK0iGtwAAAAAAAAAAAAAAAgAAAAJoMwAAABAAAAAMaG9zdC5leGFtcGxlAAAAAGlVuQAAAAAAazbsgAAAAAAAAAAAAAAAAAAAARcAAAAHc3NoLXJzYQAAAAMBAAEAAAEBANniczHQBv0IhSg0HalTbqy/E2DIPeNnzrD2kYyHdOdE1VMzmgBZ57kyclagT/desXOvAHl80yAEjw/np/feWTVnNuJ7lsaZ0ZHl9CyAkYOB5FBquVLk0uVu6D0BBql1jqhj9uTEDaEx+8gsHdh7p+yzBRoiXqSGexLbtvMtzxwcp7P1g/x2mKl63Dlq25I5Di/9wsFxDXbRvPLwfKzPNlGuo0v6WYX3qrZMvDbMHcFCLcj1Uby9M8TiBFpW/cbHe5ftGkT4f/B+WjIm1D2dG/IKfBAlX8kYld8CLxP6Py8/uzZCb36f6h2NH1SN4yYilLE2z6SBMl21PPXo94fJWBEAAAEUAAAADHJzYS1zaGEyLTUxMgAAAQAce+F5oNrmT29Q4ebsGsTEf21NvHzEjthj4yWQu/j5e7ttNJEqZbIgNWplm4doKz+1eY9zuVF+xOhpma7XjhfPIDbWCYYDMfMCrBxf5/2pwTPa07rZDJy0QHHzHnQgACo8BPrEDqG06Oidee98h21MMWFsHgR8Gh+vdKJbSFRMV3NfpFqnsErTRvgJzVyy+p4XVRXSPvPFfSua3i3BdZH9pE9dyGV90Bbk7Hnu4rwM/sR6WkwZ6i/gqw0KzojJFe7i/+ag1YqzYyNEKmRfaU09MKULD5rN8LRG+kGdQp928KlsIQGWe+GKiJIfw6Y2TP5fHtG7+nvHW4XYBMTkivdS";
    /// A user certificate (`-s ca_ed -n host.example`, no `-h`).
    pub(crate) const U1: &str = "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIPGfoDfHoHx8kfXxwTF+UwQIZ95VXHB4CaLfQFDKj6wBAAAAIND7He62fywZmR1jrblTLoV8bqYMXx/vSy+74pze5P4JAAAAAAAAAAAAAAABAAAAAnUxAAAAEAAAAAxob3N0LmV4YW1wbGUAAAAAaVW5AAAAAABrNuyAAAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAAABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgbFipnOzf9GQM/VF8fuoHGg6PplVYfZSUfwJdMBnCFzgAAABTAAAAC3NzaC1lZDI1NTE5AAAAQPxWnn3xRIComivg3b2doHqZDxlgDCbmhgFRp0A9+mlgLdINJ5fOBuD6+gyaPXJrNDk2wmmfkCyKVQioq/tVJgI=";
    /// A host certificate without principals (`-s ca_ed -h`, no `-n`).
    const H4: &str = "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAICUfW+vR/NMW72d4dFjUatRwXaZ9pqVOjpTJpRPxidcOAAAAIND7He62fywZmR1jrblTLoV8bqYMXx/vSy+74pze5P4JAAAAAAAAAAAAAAACAAAAAmg0AAAAAAAAAABpVbkAAAAAAGs27IAAAAAAAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIGxYqZzs3/RkDP1RfH7qBxoOj6ZVWH2UlH8CXTAZwhc4AAAAUwAAAAtzc2gtZWQyNTUxOQAAAECsD6xiT2PaDgfqjcIQLgEUpbJaBXsSLYd6PujsSMSRMDsr9mzQYZGZe2pbePUqTLUm2DI5epAHp8lZsOO57PwP";
    /// 2026-06-01, inside the certificates' window.
    pub(crate) const JUNE_2026: u64 = 1_780_272_000;

    #[test]
    fn parses_what_ssh_keygen_signs() {
        let cert = Certificate::parse(&decode(H1)).unwrap();
        assert_eq!(cert.plain, decode(HOST));
        assert_eq!(cert.ca, decode(CA_ED));
        assert_eq!(cert.key_id(), "h1");
        assert_eq!(cert.principals(), "host.example,*.wild.example");
        assert_eq!(cert.valid_after, 1_767_225_600);
        assert!(Certificate::parse(&decode(HOST)).is_none());
        let mut cut = decode(H1);
        cut.pop();
        assert!(Certificate::parse(&cut).is_none());
    }

    #[test]
    fn ca_signatures_of_each_kind_verify() {
        for cert in [H1, H2, H3, U1, H4] {
            let cert = Certificate::parse(&decode(cert)).unwrap();
            assert_eq!(cert.verify_signature(), Ok(()), "{}", cert.key_id());
        }
        // One bit changed in what was signed (the key ID), or in the signature: refused.
        for at in [60, decode(H1).len() - 5] {
            let mut blob = decode(H1);
            blob[at] ^= 1;
            let cert = Certificate::parse(&blob).unwrap();
            assert!(cert.verify_signature().is_err(), "byte {at}");
        }
        let mut blob = decode(H3);
        let at = blob.len() - 30;
        blob[at] ^= 0x40;
        assert!(
            Certificate::parse(&blob)
                .unwrap()
                .verify_signature()
                .is_err()
        );
    }

    #[test]
    fn host_checks_follow_openssh() {
        let cert = Certificate::parse(&decode(H1)).unwrap();
        assert_eq!(cert.check_host("host.example", JUNE_2026), Ok(()));
        assert_eq!(cert.check_host("a.wild.example", JUNE_2026), Ok(()));
        assert_eq!(
            cert.check_host("other.example", JUNE_2026),
            Err("Certificate invalid: name is not a listed principal")
        );
        assert_eq!(
            cert.check_host("host.example", 1_767_225_599),
            Err("Certificate invalid: not yet valid")
        );
        assert_eq!(
            cert.check_host("host.example", 1_798_761_600),
            Err("Certificate invalid: expired")
        );
        let user = Certificate::parse(&decode(U1)).unwrap();
        assert_eq!(
            user.check_host("host.example", JUNE_2026),
            Err("Certificate invalid: not a host certificate")
        );
        let nameless = Certificate::parse(&decode(H4)).unwrap();
        assert_eq!(
            nameless.check_host("host.example", JUNE_2026),
            Err("Certificate lacks principal list")
        );
    }

    #[test]
    fn algorithms_map_to_key_types() {
        assert_eq!(plain_type("rsa-sha2-512"), "ssh-rsa");
        assert_eq!(plain_type("rsa-sha2-256-cert-v01@openssh.com"), "ssh-rsa");
        assert_eq!(
            plain_type("ssh-ed25519-cert-v01@openssh.com"),
            "ssh-ed25519"
        );
        assert_eq!(plain_type("ecdsa-sha2-nistp256"), "ecdsa-sha2-nistp256");
        assert!(is_cert_type(blob_type(&decode(H1)).unwrap()));
        assert!(!is_cert_type(blob_type(&decode(HOST)).unwrap()));
    }
}
