//! TLS on TCP (rustls): the worker's certificate chain and key, and
//! optionally the CA whose client certificates it requires, read from PEM
//! files and reloaded when they change, without a restart.
//!
//! - The files are checked at start and the worker refuses to start on a bad
//!   set: no certificate, no key, a key that does not belong to the
//!   certificate (checked by signing with the key and verifying with the
//!   certificate), a certificate outside its validity period.
//! - Before each accepted connection, and every [`RELOAD_CHECK`], the files'
//!   identities (device, inode, size, modification time, through symlinks as
//!   Kubernetes Secret volumes swap them) are compared with the loaded ones.
//!   On a change the set is loaded again; a bad new set keeps the current one
//!   and is reported once (a rotation that writes the certificate and the
//!   key one after the other is taken when both are in place). Connections
//!   already open keep the session they negotiated.
//! - ALPN offers `h2` only (gRPC); TLS 1.2 and 1.3 with rustls' safe defaults.
//! - A connection whose first byte is not a TLS handshake record (an h2c
//!   client on the TLS port) is closed and counted, not handed to rustls.

use crate::log;
use rustls::server::AllowAnyAuthenticatedClient;
use rustls::{Certificate, PrivateKey, RootCertStore, ServerConfig, SignatureScheme};
use serde_json::json;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_rustls::TlsAcceptor;

/// How often the files are checked for a change when no connection arrives.
pub const RELOAD_CHECK: Duration = Duration::from_secs(5);
/// Longest a client may take from connecting to finishing its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of every TLS record carrying a handshake message.
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// How long before its end of validity the served certificate is warned about.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// What to say about a certificate valid until `not_after` at `now` (Unix
/// seconds): nothing, "expires soon" within [`EXPIRY_WARNING`], "expired".
pub fn expiry_state(now: i64, not_after: i64) -> Option<&'static str> {
    if now > not_after {
        Some("expired")
    } else if not_after - now <= EXPIRY_WARNING.as_secs() as i64 {
        Some("expires soon")
    } else {
        None
    }
}

/// Now as Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Where the certificate material is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the worker's certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
    /// PEM: the CA certificates client certificates must chain to; `None`:
    /// no client certificate is asked for (the token still is).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(self.cert.as_path()), Some(self.key.as_path()), self.client_ca.as_deref()].into_iter().flatten()
    }
}

/// One loaded set: what connections are accepted with.
struct Loaded {
    acceptor: TlsAcceptor,
    stamps: Vec<Stamp>,
    /// A short fingerprint of the leaf certificate, for logs.
    fingerprint: String,
    not_after: i64,
}

/// The stamps of a set that failed to load, so it is reported once.
struct State {
    loaded: Loaded,
    refused: Option<Vec<Stamp>>,
}

/// The worker's TLS configuration, reloaded when its files change.
pub struct Tls {
    files: TlsFiles,
    state: Mutex<State>,
}

/// A file's identity: any rewrite or replacement changes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    modified_ns: i128,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    })
}

fn stamps(files: &TlsFiles) -> Option<Vec<Stamp>> {
    files.paths().map(stamp).collect::<std::io::Result<Vec<_>>>().ok()
}

impl Tls {
    /// Loads the set at start; an error says which file is wrong and why.
    pub fn load(files: TlsFiles) -> Result<Tls, String> {
        let loaded = load(&files)?;
        log::info("tls certificate loaded", loaded.describe());
        Ok(Tls { files, state: Mutex::new(State { loaded, refused: None }) })
    }

    /// The acceptor for the next connection, after taking a changed set.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.check_for_change();
        self.state.lock().unwrap_or_else(|p| p.into_inner()).loaded.acceptor.clone()
    }

    /// The leaf certificate's end of validity (Unix seconds).
    pub fn not_after(&self) -> i64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).loaded.not_after
    }

    /// Loads the files again if any of them changed; true when a new set was taken.
    pub fn check_for_change(&self) -> bool {
        let Some(now) = stamps(&self.files) else {
            // A file is missing for a moment (being replaced): keep the set.
            return false;
        };
        {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.loaded.stamps == now || state.refused.as_ref() == Some(&now) {
                return false;
            }
        }
        // Loaded outside the lock: parsing and the key check take a moment.
        let outcome = load(&self.files);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(loaded) => {
                log::info("tls certificate reloaded", loaded.describe());
                state.loaded = loaded;
                state.refused = None;
                true
            }
            Err(problem) => {
                log::warn(
                    "tls certificate change refused; the current one stays",
                    json!({ "problem": problem, "current": state.loaded.fingerprint }),
                );
                state.refused = Some(now);
                false
            }
        }
    }
}

impl Loaded {
    fn describe(&self) -> serde_json::Value {
        json!({ "fingerprint": self.fingerprint, "not_after": self.not_after })
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<rustls_pemfile::Item>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{what} {}: cannot read it: {e}", path.display()))?;
    rustls_pemfile::read_all(&mut BufReader::new(file)).map_err(|e| format!("{what} {}: not PEM: {e}", path.display()))
}

fn certificates(path: &Path, what: &str) -> Result<Vec<Certificate>, String> {
    let certs: Vec<Certificate> = read_pem(path, what)?
        .into_iter()
        .filter_map(|item| match item {
            rustls_pemfile::Item::X509Certificate(der) => Some(Certificate(der)),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("{what} {}: no CERTIFICATE block in it", path.display()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKey, String> {
    let mut keys = read_pem(path, "--tls-key")?.into_iter().filter_map(|item| match item {
        rustls_pemfile::Item::PKCS8Key(der) | rustls_pemfile::Item::RSAKey(der) | rustls_pemfile::Item::ECKey(der) => {
            Some(PrivateKey(der))
        }
        _ => None,
    });
    let key = keys.next().ok_or_else(|| {
        format!("--tls-key {}: no PRIVATE KEY block in it (PKCS#8, RSA or EC; not encrypted)", path.display())
    })?;
    if keys.next().is_some() {
        return Err(format!("--tls-key {}: more than one private key in it", path.display()));
    }
    Ok(key)
}

fn load(files: &TlsFiles) -> Result<Loaded, String> {
    // Stamped before reading: a change while reading is seen next time.
    let stamps = stamps(files).ok_or_else(|| {
        let missing = files.paths().find(|p| std::fs::metadata(p).is_err()).unwrap_or(&files.cert);
        format!("{}: cannot read it", missing.display())
    })?;
    let chain = certificates(&files.cert, "--tls-cert")?;
    let key = private_key(&files.key)?;
    let leaf = &chain[0].0;
    check_key_matches(leaf, &key).map_err(|problem| {
        format!("--tls-key {} and --tls-cert {}: {problem}", files.key.display(), files.cert.display())
    })?;
    let (not_before, not_after) = validity(leaf)
        .ok_or_else(|| format!("--tls-cert {}: the certificate's validity could not be read", files.cert.display()))?;
    let now = unix_now();
    if now > not_after {
        return Err(format!(
            "--tls-cert {}: the certificate expired {} s ago (not after {not_after}, Unix time)",
            files.cert.display(),
            now - not_after
        ));
    }
    if now < not_before {
        return Err(format!(
            "--tls-cert {}: the certificate is not valid yet (not before {not_before}, Unix time)",
            files.cert.display()
        ));
    }
    let builder = ServerConfig::builder().with_safe_defaults();
    let builder = match &files.client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(path, "--tls-client-ca")? {
                roots.add(&cert).map_err(|e| format!("--tls-client-ca {}: {e:?}", path.display()))?;
            }
            builder.with_client_cert_verifier(AllowAnyAuthenticatedClient::new(roots))
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain.clone(), key)
        .map_err(|e| format!("--tls-cert {}: {e}", files.cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let fingerprint = blake3::hash(leaf).to_hex()[..16].to_owned();
    Ok(Loaded { acceptor: TlsAcceptor::from(Arc::new(config)), stamps, fingerprint, not_after })
}

/// Signs a fixed message with `key` and verifies it with the certificate's
/// public key: rustls itself would only find a mismatch at the first
/// handshake, which every client would then fail.
fn check_key_matches(leaf: &[u8], key: &PrivateKey) -> Result<(), String> {
    let signing = rustls::sign::any_supported_type(key)
        .map_err(|_| "the key is not an RSA, ECDSA (P-256, P-384) or Ed25519 key".to_owned())?;
    let offered = [
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384,
        SignatureScheme::ED25519,
        SignatureScheme::RSA_PSS_SHA256,
    ];
    let signer = signing.choose_scheme(&offered).ok_or_else(|| "the key supports no usable scheme".to_owned())?;
    let algorithm: &webpki::SignatureAlgorithm = match signer.scheme() {
        SignatureScheme::ECDSA_NISTP256_SHA256 => &webpki::ECDSA_P256_SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384 => &webpki::ECDSA_P384_SHA384,
        SignatureScheme::ED25519 => &webpki::ED25519,
        _ => &webpki::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    };
    const PROBE: &[u8] = b"tandem-worker: does this key belong to this certificate?";
    let signature = signer.sign(PROBE).map_err(|e| format!("signing with the key failed: {e}"))?;
    let cert = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("the certificate is malformed: {e:?}"))?;
    cert.verify_signature(algorithm, PROBE, &signature)
        .map_err(|_| "the key does not belong to the certificate (its first CERTIFICATE block)".to_owned())
}

/// The certificate's validity as Unix seconds (notBefore, notAfter), read
/// from its DER: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
/// [0] version, serialNumber, signature, issuer, validity SEQUENCE {
/// notBefore, notAfter }, ... }, ... }.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (tag, certificate, _) = der_element(der)?;
    let (tbs_tag, mut tbs, _) = der_element(certificate)?;
    if tag != 0x30 || tbs_tag != 0x30 {
        return None;
    }
    let (first, _, rest) = der_element(tbs)?;
    if first == 0xA0 {
        tbs = rest; // the explicit version
    }
    for _ in 0..3 {
        tbs = der_element(tbs)?.2; // serial, signature algorithm, issuer
    }
    let (validity_tag, validity, _) = der_element(tbs)?;
    if validity_tag != 0x30 {
        return None;
    }
    let (before_tag, before, rest) = der_element(validity)?;
    let (after_tag, after, _) = der_element(rest)?;
    Some((der_time(before_tag, before)?, der_time(after_tag, after)?))
}

/// One DER element: (tag, contents, what follows).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn der_time(tag: u8, text: &[u8]) -> Option<i64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let (year, rest) = match (tag, text.len()) {
        (0x17, 13) => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (0x18, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day, hour, minute, second) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_time_forms() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(der_time(0x18, b"20261202141142Z"), Some(1_796_220_702));
        assert_eq!(der_time(0x18, b"99991231235959Z"), Some(253_402_300_799));
        assert_eq!(der_time(0x17, b"701301000000Z"), None);
        assert_eq!(der_time(0x17, b"7001010000000"), None);
        assert_eq!(der_time(0x05, b""), None);
    }

    #[test]
    fn warns_within_a_week_of_expiry_and_after_it() {
        let week = EXPIRY_WARNING.as_secs() as i64;
        assert_eq!(expiry_state(0, week + 1), None);
        assert_eq!(expiry_state(0, week), Some("expires soon"));
        assert_eq!(expiry_state(10, 10), Some("expires soon"));
        assert_eq!(expiry_state(11, 10), Some("expired"));
    }

    #[test]
    fn refuses_truncated_der() {
        assert_eq!(validity(&[]), None);
        assert_eq!(validity(&[0x30, 0x82, 0xff]), None);
        assert_eq!(validity(&[0x30, 0x03, 0x30, 0x01]), None);
        assert_eq!(der_element(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
    }
}
