//! A throw-away certificate authority for HTTPS tests, made with the `openssl` command.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::command::{self, OPENSSL};
use crate::BedError;

/// The DNS name a [`TestCa`] server certificate holds besides its IP address. Nothing resolves
/// it: a client that wants to use it maps it itself (`curl --resolve origin.test:PORT:IP`).
pub const ORIGIN_DNS_NAME: &str = "origin.test";

/// How long each `openssl` run may take: milliseconds for EC keys.
const OPENSSL_LIMIT: Duration = Duration::from_secs(30);

/// The files [`make_test_ca`] made: a CA and one server certificate it signed, all PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCa {
    /// The CA certificate: what a client trusts (`curl --cacert`, a rustls root store).
    pub ca_pem: PathBuf,
    /// The server's certificate (the leaf alone; the CA signed it directly).
    pub cert_pem: PathBuf,
    /// The server's private key (PKCS #8, unencrypted).
    pub key_pem: PathBuf,
    /// The address the server certificate is for.
    pub server_ip: Ipv4Addr,
}

/// Makes a new test CA and a server certificate for `server_ip` (and [`ORIGIN_DNS_NAME`]) in
/// `dir`: `test-ca.pem` (with its key `test-ca-key.pem`), `origin-cert.pem` and
/// `origin-key.pem`, replacing any from an earlier call.
///
/// Both keys are EC P-256, both signatures ECDSA-SHA256, with the extensions rustls (webpki)
/// and OpenSSL want: the CA has `basicConstraints=critical,CA:TRUE,pathlen:0` and
/// `keyUsage=critical,keyCertSign,cRLSign`; the server certificate `CA:FALSE`,
/// `keyUsage=critical,digitalSignature`, `extendedKeyUsage=serverAuth` and
/// `subjectAltName=IP:<server_ip>,DNS:origin.test` (the common name plays no part). Valid from
/// now: the CA for 10 years, the server certificate for 825 days. `openssl verify -CAfile
/// test-ca.pem -purpose sslserver origin-cert.pem` accepts the pair.
pub fn make_test_ca(dir: &Path, server_ip: Ipv4Addr) -> Result<TestCa, BedError> {
    fs::create_dir_all(dir).map_err(|e| BedError::io(format!("cannot create {}", dir.display()), e))?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|e| BedError::io(format!("cannot write {}", path.display()), e))?;
        Ok::<_, BedError>(path)
    };
    // Own configuration files, so that the machine's openssl.cnf adds nothing.
    let ca_config = write(
        "test-ca.cnf",
        "[req]\n\
         distinguished_name = dn\n\
         x509_extensions = ca\n\
         prompt = no\n\
         [dn]\n\
         CN = Shoal test CA\n\
         [ca]\n\
         basicConstraints = critical, CA:TRUE, pathlen:0\n\
         keyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n"
            .to_owned(),
    )?;
    let server_config = write(
        "origin-cert.cnf",
        format!(
            "[req]\n\
             distinguished_name = dn\n\
             prompt = no\n\
             [dn]\n\
             CN = {ORIGIN_DNS_NAME}\n\
             [server]\n\
             basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature\n\
             extendedKeyUsage = serverAuth\n\
             subjectAltName = IP:{server_ip}, DNS:{ORIGIN_DNS_NAME}\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid:always\n"
        ),
    )?;
    let ca = TestCa {
        ca_pem: dir.join("test-ca.pem"),
        cert_pem: dir.join("origin-cert.pem"),
        key_pem: dir.join("origin-key.pem"),
        server_ip,
    };
    let ca_key = dir.join("test-ca-key.pem");
    let request = dir.join("origin-cert.csr");
    let openssl = command::find(OPENSSL)?;
    let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-sha256"];

    let mut make_ca = Command::new(&openssl);
    make_ca
        .args(["req", "-x509", "-config"])
        .arg(&ca_config)
        .args(new_key)
        .args(["-days", "3650", "-keyout"])
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca.ca_pem);
    command::run_ok(make_ca, OPENSSL_LIMIT)?;

    let mut make_request = Command::new(&openssl);
    make_request
        .args(["req", "-new", "-config"])
        .arg(&server_config)
        .args(new_key)
        .arg("-keyout")
        .arg(&ca.key_pem)
        .arg("-out")
        .arg(&request);
    command::run_ok(make_request, OPENSSL_LIMIT)?;

    // A serial number unique enough for a throw-away CA: the time in microseconds.
    let serial = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |t| t.as_micros());
    let mut sign = Command::new(&openssl);
    sign.args(["x509", "-req", "-sha256", "-days", "825", "-in"])
        .arg(&request)
        .arg("-CA")
        .arg(&ca.ca_pem)
        .arg("-CAkey")
        .arg(&ca_key)
        .args(["-set_serial", &format!("0x{serial:x}"), "-extensions", "server", "-extfile"])
        .arg(&server_config)
        .arg("-out")
        .arg(&ca.cert_pem);
    command::run_ok(sign, OPENSSL_LIMIT)?;
    let _ = fs::remove_file(&request);
    Ok(ca)
}
