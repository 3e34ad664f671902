//! Test certificates made with the `openssl` command: a CA, leaves it
//! signs (for the worker and for clients), and TLS clients that trust it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A CA's certificate and key in `dir`.
pub struct Ca {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A leaf certificate and its key.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("the openssl command runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Ca {
    pub fn new(dir: &Path, name: &str) -> Ca {
        let (cert, key) = (format!("{name}.crt"), format!("{name}.key"));
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &cert,
                "-days",
                "30",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Ca { cert: dir.join(cert), key: dir.join(key) }
    }

    /// A leaf for `localhost`/127.0.0.1 named `name`, valid for `days` (negative: expired).
    pub fn issue(&self, dir: &Path, name: &str, usage: &str, days: i32) -> Leaf {
        let (cert, key, csr) = (format!("{name}.crt"), format!("{name}.key"), format!("{name}.csr"));
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-addext",
                &format!("extendedKeyUsage={usage}"),
            ],
        );
        let (ca_cert, ca_key) = (self.cert.to_str().unwrap(), self.key.to_str().unwrap());
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                ca_cert,
                "-CAkey",
                ca_key,
                "-set_serial",
                &format!("{}", 1000 + name.len() as u32 * 7 + u32::from(name.as_bytes()[name.len() - 1])),
                "-days",
                &days.to_string(),
                "-copy_extensions",
                "copy",
                "-out",
                &cert,
            ],
        );
        Leaf { cert: dir.join(cert), key: dir.join(key) }
    }

    pub fn server(&self, dir: &Path, name: &str) -> Leaf {
        self.issue(dir, name, "serverAuth", 30)
    }

    pub fn client(&self, dir: &Path, name: &str) -> Leaf {
        self.issue(dir, name, "clientAuth", 30)
    }
}

pub fn der_certs(path: &Path) -> Vec<rustls::Certificate> {
    let pem = std::fs::read(path).unwrap();
    rustls_pemfile::certs(&mut pem.as_slice()).unwrap().into_iter().map(rustls::Certificate).collect()
}

fn der_key(path: &Path) -> rustls::PrivateKey {
    let pem = std::fs::read(path).unwrap();
    rustls_pemfile::read_all(&mut pem.as_slice())
        .unwrap()
        .into_iter()
        .find_map(|item| match item {
            rustls_pemfile::Item::PKCS8Key(k) | rustls_pemfile::Item::ECKey(k) | rustls_pemfile::Item::RSAKey(k) => {
                Some(rustls::PrivateKey(k))
            }
            _ => None,
        })
        .expect("a key")
}

/// A TLS client trusting `ca`, offering ALPN h2, with `identity` as its
/// client certificate when given.
pub fn connector(ca: &Path, identity: Option<&Leaf>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in der_certs(ca) {
        roots.add(&cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_safe_defaults().with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder.with_single_cert(der_certs(&leaf.cert), der_key(&leaf.key)).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Writes `from`'s files over `to`'s the way a rotation does: each through
/// a temporary file and a rename, so a reader never sees half a file.
pub fn rotate(from: &Leaf, to: &Leaf) {
    for (source, target) in [(&from.key, &to.key), (&from.cert, &to.cert)] {
        let staged = target.with_extension("staged");
        std::fs::copy(source, &staged).unwrap();
        std::fs::rename(&staged, target).unwrap();
    }
}
