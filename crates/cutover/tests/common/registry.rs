//! Registry test helpers: repositories created and tokens minted through
//! the store of a running server (as ECR's CreateRepository and
//! GetAuthorizationToken will), and a raw HTTP/1.1 client whose requests
//! are exactly what the test writes.

use std::io::{Read, Write};
use std::net::TcpStream;

use cutover_registry::token::{SETTING, TokenKey};
use cutover_store::Store;
use cutover_store::access_keys::setting_or_insert;
use cutover_store::registry::{self as rows, RepositoryRow, TagMutability};

use super::Server;

/// The server's store, once the server answers (it binds its listener
/// before it has written its settings, and serves after).
fn store(server: &Server) -> Store {
    request(server, "GET", "/v2/", &[], b"");
    Store::open(&server.data_dir.join("state.db")).unwrap()
}

/// Creates repository `name` in the server's store.
#[allow(clippy::disallowed_methods)]
pub fn create_repository(
    server: &Server,
    name: &str,
    mutability: TagMutability,
    anonymous_pull: bool,
) {
    store(server)
        .with(|c| {
            rows::create_repository(
                c,
                &RepositoryRow {
                    name: name.into(),
                    created_at_ms: 0,
                    tag_mutability: mutability,
                    scan_on_push: false,
                    anonymous_pull,
                    lifecycle_policy: None,
                },
            )
        })
        .unwrap();
}

/// A registry token of the server's installation, valid for 12 hours.
#[allow(clippy::disallowed_methods)]
pub fn token(server: &Server) -> String {
    let setting = store(server)
        .with(|c| setting_or_insert(c, SETTING, ""))
        .unwrap();
    let key = TokenKey::parse(&setting).expect("the server wrote its token key at start");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    key.mint(now)
}

/// `Authorization: Basic base64(AWS:<token>)`.
pub fn basic(token: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("AWS:{token}"))
    )
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The spec error body's first code.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(server.addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.addr,
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer has a head");
    let text = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Pushes `bytes` as a blob of `repo` in one request; asserts 201.
pub fn push_blob(server: &Server, auth: &str, repo: &str, bytes: &[u8]) -> String {
    let d = digest(bytes);
    let r = request(
        server,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        &[("Authorization", auth)],
        bytes,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    d
}

/// An OCI image manifest of `config` and `layers` (digest, size).
pub fn image_manifest(config: (&str, usize), layers: &[(&str, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, s)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers,
    }))
    .unwrap()
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Whether registry client `tool` (podman, skopeo) is installed; when
/// `CUTOVER_CONTAINER_TESTS=1` (CI) a missing one fails the test, otherwise
/// the test is skipped.
pub fn client_or_skip(tool: &str) -> bool {
    let required = std::env::var("CUTOVER_CONTAINER_TESTS").is_ok_and(|v| v == "1");
    let present = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match present {
        true => true,
        false if required => panic!(
            "CUTOVER_CONTAINER_TESTS=1 but {tool} is missing: run scripts/setup-registry-clients.sh"
        ),
        false => {
            eprintln!("skipping: no {tool} (set CUTOVER_CONTAINER_TESTS=1 to require it)");
            false
        }
    }
}
