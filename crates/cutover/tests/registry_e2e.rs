//! The registry under `/v2/` of a real `cutover server`, spoken to with
//! raw HTTP: ECR's auth challenge and tokens, a chunked upload with an
//! out-of-order chunk refused, an upload resumed across a server restart,
//! an immutable re-push refused with nothing changed, pagination and
//! referrers, and hostile input.

mod common;

use common::registry::*;
use common::*;
use cutover_store::registry::TagMutability;

fn pushed_image(server: &Server, auth: &str, repo: &str, layer: &[u8]) -> (String, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = push_blob(server, auth, repo, config);
    let l = push_blob(server, auth, repo, layer);
    let manifest = image_manifest((&c, config.len()), &[(&l, layer.len())]);
    (digest(&manifest), manifest)
}

fn put_manifest(
    server: &Server,
    auth: &str,
    repo: &str,
    reference: &str,
    manifest: &[u8],
) -> Reply {
    request(
        server,
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Authorization", auth), ("Content-Type", OCI_MANIFEST)],
        manifest,
    )
}

#[test]
fn ecr_style_auth_challenges_and_refuses_what_it_must() {
    let server = Server::start();
    create_repository(&server, "private", TagMutability::Mutable, false);
    create_repository(&server, "public", TagMutability::Mutable, true);
    let auth = basic(&token(&server));
    let challenge = request(&server, "GET", "/v2/", &[], b"");
    assert_eq!(challenge.status, 401);
    assert!(
        challenge
            .header("WWW-Authenticate")
            .unwrap()
            .starts_with("Basic realm=")
    );
    assert_eq!(challenge.code(), "UNAUTHORIZED");
    assert_eq!(
        request(&server, "GET", "/v2/", &[("Authorization", &auth)], b"").status,
        200
    );
    for bad in [
        basic("nope"),
        basic(&format!("{}x", token(&server))),
        "Bearer x".into(),
        "Basic !!!".into(),
    ] {
        assert_eq!(
            request(&server, "GET", "/v2/", &[("Authorization", &bad)], b"").status,
            401,
            "{bad}"
        );
    }
    // Push always needs a token, even to a repository open to anonymous pulls.
    let d = digest(b"layer");
    for repo in ["private", "public"] {
        let push = request(
            &server,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &[],
            b"layer",
        );
        assert_eq!(push.status, 401);
    }
    // The wrong user name is refused too.
    use base64::Engine as _;
    let root = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("root:{}", token(&server)))
    );
    assert_eq!(
        request(&server, "GET", "/v2/", &[("Authorization", &root)], b"").status,
        401
    );
    let (digest_pub, manifest) = pushed_image(&server, &auth, "public", b"layer");
    assert_eq!(
        put_manifest(&server, &auth, "public", "1", &manifest).status,
        201
    );
    let (_, manifest) = pushed_image(&server, &auth, "private", b"layer");
    assert_eq!(
        put_manifest(&server, &auth, "private", "1", &manifest).status,
        201
    );
    // Anonymous pulls: only where allowed; an unknown repository looks the same as a closed one.
    let anon = request(&server, "GET", "/v2/public/manifests/1", &[], b"");
    assert_eq!(
        (anon.status, anon.header("Docker-Content-Digest")),
        (200, Some(digest_pub.as_str()))
    );
    assert_eq!(
        request(&server, "GET", "/v2/private/manifests/1", &[], b"").status,
        401
    );
    assert_eq!(
        request(&server, "GET", "/v2/nothere/manifests/1", &[], b"").status,
        401
    );
    assert_eq!(
        request(&server, "DELETE", "/v2/public/manifests/1", &[], b"").status,
        401
    );
    assert_eq!(
        request(&server, "GET", "/v2/_catalog", &[], b"").status,
        401
    );
    // A push to a repository nobody created is NAME_UNKNOWN, as on ECR.
    let unknown = request(
        &server,
        "POST",
        "/v2/nothere/blobs/uploads/",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (404, "NAME_UNKNOWN")
    );
}

#[test]
fn a_chunked_upload_refuses_an_out_of_order_chunk_and_verifies_the_digest() {
    let server = Server::start();
    create_repository(&server, "web", TagMutability::Mutable, false);
    let auth = basic(&token(&server));
    let a = [("Authorization", auth.as_str())];
    let start = request(&server, "POST", "/v2/web/blobs/uploads/", &a, b"");
    assert_eq!(start.status, 202);
    let location = start.header("Location").unwrap().to_string();
    let data: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    for (i, chunk) in data.chunks(10_000).enumerate().take(2) {
        let range = format!("{}-{}", i * 10_000, i * 10_000 + chunk.len() - 1);
        let r = request(
            &server,
            "PATCH",
            &location,
            &[a[0], ("Content-Range", &range)],
            chunk,
        );
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.header("Range"),
            Some(format!("0-{}", (i + 1) * 10_000 - 1).as_str())
        );
    }
    // A chunk past the end (a skipped one) is refused with 416 and the offset.
    let skipped = request(
        &server,
        "PATCH",
        &location,
        &[a[0], ("Content-Range", "25000-29999")],
        &data[25_000..],
    );
    assert_eq!(
        (skipped.status, skipped.header("Range")),
        (416, Some("0-19999"))
    );
    let replayed = request(
        &server,
        "PATCH",
        &location,
        &[a[0], ("Content-Range", "0-9999")],
        &data[..10_000],
    );
    assert_eq!(replayed.status, 416);
    let status = request(&server, "GET", &location, &a, b"");
    assert_eq!(
        (status.status, status.header("Range")),
        (204, Some("0-19999"))
    );
    let last = request(
        &server,
        "PATCH",
        &location,
        &[a[0], ("Content-Range", "20000-29999")],
        &data[20_000..],
    );
    assert_eq!(last.status, 202);
    let wrong = request(
        &server,
        "PUT",
        &format!("{location}?digest={}", digest(b"other")),
        &a,
        b"",
    );
    assert_eq!(
        (wrong.status, wrong.code().as_str()),
        (400, "DIGEST_INVALID")
    );
    let done = request(
        &server,
        "PUT",
        &format!("{location}?digest={}", digest(&data)),
        &a,
        b"",
    );
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    let blob = format!("/v2/web/blobs/{}", digest(&data));
    assert_eq!(done.header("Location"), Some(blob.as_str()));
    let got = request(&server, "GET", &blob, &a, b"");
    assert_eq!((got.status, got.body == data), (200, true));
    let part = request(
        &server,
        "GET",
        &blob,
        &[a[0], ("Range", "bytes=100-199")],
        b"",
    );
    assert_eq!((part.status, part.body.as_slice()), (206, &data[100..200]));
    assert_eq!(part.header("Content-Range"), Some("bytes 100-199/30000"));
    let head = request(&server, "HEAD", &blob, &a, b"");
    assert_eq!(
        (head.status, head.header("Content-Length")),
        (200, Some("30000"))
    );
    assert_eq!(
        request(
            &server,
            "GET",
            &blob,
            &[a[0], ("Range", "bytes=40000-")],
            b""
        )
        .status,
        416
    );
}

#[test]
fn an_upload_resumes_across_a_server_restart() {
    let mut server = Server::start();
    create_repository(&server, "web", TagMutability::Mutable, false);
    let auth = basic(&token(&server));
    let a = [("Authorization", auth.as_str())];
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = push_blob(&server, &auth, "web", config);
    let layer: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let location = request(&server, "POST", "/v2/web/blobs/uploads/", &a, b"")
        .header("Location")
        .unwrap()
        .to_string();
    let half = request(
        &server,
        "PATCH",
        &location,
        &[a[0], ("Content-Range", "0-99999")],
        &layer[..100_000],
    );
    assert_eq!(half.status, 202);
    server.kill9();
    server.spawn();
    let status = request(&server, "GET", &location, &a, b"");
    assert_eq!(
        (status.status, status.header("Range")),
        (204, Some("0-99999"))
    );
    let rest = request(
        &server,
        "PATCH",
        &location,
        &[a[0], ("Content-Range", "100000-199999")],
        &layer[100_000..],
    );
    assert_eq!(rest.status, 202);
    let l = digest(&layer);
    assert_eq!(
        request(&server, "PUT", &format!("{location}?digest={l}"), &a, b"").status,
        201
    );
    let manifest = image_manifest((&c, config.len()), &[(&l, layer.len())]);
    assert_eq!(
        put_manifest(&server, &auth, "web", "1", &manifest).status,
        201
    );
    let pulled = request(&server, "GET", "/v2/web/manifests/1", &a, b"");
    assert_eq!(pulled.body, manifest);
    assert_eq!(pulled.header("Content-Type"), Some(OCI_MANIFEST));
    assert_eq!(
        request(&server, "GET", &format!("/v2/web/blobs/{l}"), &a, b"").body,
        layer
    );
}

#[test]
fn an_immutable_repush_is_refused_and_changes_nothing() {
    let server = Server::start();
    create_repository(&server, "web", TagMutability::Immutable, false);
    let auth = basic(&token(&server));
    let (d1, m1) = pushed_image(&server, &auth, "web", b"one");
    assert_eq!(put_manifest(&server, &auth, "web", "1", &m1).status, 201);
    assert_eq!(
        put_manifest(&server, &auth, "web", "1", &m1).status,
        201,
        "the same content again is fine"
    );
    let (d2, m2) = pushed_image(&server, &auth, "web", b"two");
    let refused = put_manifest(&server, &auth, "web", "1", &m2);
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (400, "TAG_INVALID")
    );
    let message = refused.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("already exists") && message.contains("immutable"),
        "{message}"
    );
    let a = [("Authorization", auth.as_str())];
    let now = request(&server, "HEAD", "/v2/web/manifests/1", &a, b"");
    assert_eq!(now.header("Docker-Content-Digest"), Some(d1.as_str()));
    assert_eq!(
        request(&server, "HEAD", &format!("/v2/web/manifests/{d2}"), &a, b"").status,
        404
    );
    assert_eq!(
        request(&server, "GET", "/v2/web/tags/list", &a, b"").json()["tags"],
        serde_json::json!(["1"])
    );
    // Another tag takes the new content.
    assert_eq!(put_manifest(&server, &auth, "web", "2", &m2).status, 201);
}

#[test]
fn tags_and_catalog_page_with_links_and_referrers_follow_subjects() {
    let server = Server::start();
    for r in ["a", "b", "c"] {
        create_repository(&server, r, TagMutability::Mutable, false);
    }
    let auth = basic(&token(&server));
    let a = [("Authorization", auth.as_str())];
    let (d, m) = pushed_image(&server, &auth, "a", b"layer");
    for tag in ["t1", "t2", "t3"] {
        assert_eq!(put_manifest(&server, &auth, "a", tag, &m).status, 201);
    }
    let page = request(&server, "GET", "/v2/a/tags/list?n=2", &a, b"");
    assert_eq!(page.json()["tags"], serde_json::json!(["t1", "t2"]));
    assert_eq!(
        page.header("Link"),
        Some("</v2/a/tags/list?n=2&last=t2>; rel=\"next\"")
    );
    let next = request(&server, "GET", "/v2/a/tags/list?n=2&last=t2", &a, b"");
    assert_eq!(
        (next.json()["tags"].clone(), next.header("Link")),
        (serde_json::json!(["t3"]), None)
    );
    let catalog = request(&server, "GET", "/v2/_catalog?n=2", &a, b"");
    assert_eq!(
        catalog.json()["repositories"],
        serde_json::json!(["a", "b"])
    );
    assert!(catalog.header("Link").unwrap().contains("last=b"));
    // A signature-like artifact naming the image as its subject.
    let empty = push_blob(&server, &auth, "a", b"{}");
    let sig = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": d, "size": m.len()},
    }))
    .unwrap();
    let pushed = put_manifest(&server, &auth, "a", &digest(&sig), &sig);
    assert_eq!(
        (pushed.status, pushed.header("OCI-Subject")),
        (201, Some(d.as_str()))
    );
    let referrers = request(&server, "GET", &format!("/v2/a/referrers/{d}"), &a, b"");
    assert_eq!(referrers.json()["manifests"][0]["digest"], digest(&sig));
    let filtered = request(
        &server,
        "GET",
        &format!("/v2/a/referrers/{d}?artifactType=x%2Fy"),
        &a,
        b"",
    );
    assert_eq!(filtered.json()["manifests"], serde_json::json!([]));
    assert_eq!(filtered.header("OCI-Filters-Applied"), Some("artifactType"));
    // Delete by tag, then by digest.
    assert_eq!(
        request(&server, "DELETE", "/v2/a/manifests/t1", &a, b"").status,
        202
    );
    assert_eq!(
        request(&server, "GET", "/v2/a/manifests/t1", &a, b"").status,
        404
    );
    assert_eq!(
        request(&server, "DELETE", &format!("/v2/a/manifests/{d}"), &a, b"").status,
        202
    );
    assert_eq!(
        request(&server, "GET", "/v2/a/tags/list", &a, b"").json()["tags"],
        serde_json::json!([])
    );
}

#[test]
fn hostile_input_is_refused_and_the_server_stays_up() {
    let server = Server::start();
    create_repository(&server, "web", TagMutability::Mutable, false);
    let auth = basic(&token(&server));
    let a = [("Authorization", auth.as_str())];
    let long = "a".repeat(300);
    for path in [
        "/v2/../../etc/blobs/uploads/".to_string(),
        "/v2/web/..%2F..%2Fetc/blobs/uploads/".into(),
        "/v2/%2e%2e/blobs/uploads/".into(),
        "/v2/we%00b/blobs/uploads/".into(),
        format!("/v2/{long}/blobs/uploads/"),
        "/v2/Web/blobs/uploads/".into(),
    ] {
        let r = request(&server, "POST", &path, &a, b"");
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
        assert_ne!(r.status, 202, "{path}");
    }
    assert_eq!(
        request(&server, "POST", "/v2/web/blobs/uploads/../x", &a, b"").status / 100,
        4
    );
    // Bad digests.
    for d in ["sha256:short", "md5:abc", "sha256:../../x", "nocolon"] {
        let r = request(
            &server,
            "POST",
            &format!("/v2/web/blobs/uploads/?digest={d}"),
            &a,
            b"x",
        );
        assert_eq!(r.status / 100, 4, "{d}");
    }
    let wrong = request(
        &server,
        "POST",
        &format!("/v2/web/blobs/uploads/?digest={}", digest(b"y")),
        &a,
        b"x",
    );
    assert_eq!(wrong.code(), "DIGEST_INVALID");
    // Upload ids that are not ours.
    for id in ["..", "not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let r = request(
            &server,
            "GET",
            &format!("/v2/web/blobs/uploads/{id}"),
            &a,
            b"",
        );
        assert_eq!(r.status, 404, "{id}");
    }
    // A bad Content-Range.
    let location = request(&server, "POST", "/v2/web/blobs/uploads/", &a, b"")
        .header("Location")
        .unwrap()
        .to_string();
    for range in ["abc", "5-1", "-", "1-2-3"] {
        let r = request(
            &server,
            "PATCH",
            &location,
            &[a[0], ("Content-Range", range)],
            b"xy",
        );
        assert!(r.status == 400 || r.status == 416, "{range}: {}", r.status);
    }
    // An oversized manifest, and a manifest that is not one.
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    assert_eq!(
        put_manifest(&server, &auth, "web", "big", &huge).status,
        400
    );
    assert_eq!(
        put_manifest(&server, &auth, "web", "junk", b"\0\0\0").code(),
        "MANIFEST_INVALID"
    );
    assert_eq!(
        put_manifest(&server, &auth, "web", "..%2F..", b"{}").status,
        400
    );
    // Still serving, nothing written outside the registry's directory.
    assert_eq!(request(&server, "GET", "/v2/", &a, b"").status, 200);
    assert!(
        !server.data_dir.join("etc").exists() && !server.data_dir.join("registry/etc").exists()
    );
}

#[test]
fn cutover_registry_gc_sweeps_what_nothing_references() {
    let server = Server::start();
    create_repository(&server, "web", TagMutability::Mutable, false);
    let auth = basic(&token(&server));
    let (_, manifest) = pushed_image(&server, &auth, "web", b"kept");
    assert_eq!(
        put_manifest(&server, &auth, "web", "1", &manifest).status,
        201
    );
    // A refused manifest's bytes are stored before its references are
    // checked: an orphan nothing links, swept at once.
    let orphan = image_manifest((&digest(b"absent"), 6), &[]);
    assert_eq!(
        put_manifest(&server, &auth, "web", "2", &orphan).code(),
        "MANIFEST_BLOB_UNKNOWN"
    );
    let report = server.json(&["registry", "gc"]);
    assert_eq!(report["blobsDeleted"], 1, "{report}");
    assert_eq!(report["bytesFreed"], orphan.len());
    let a = [("Authorization", auth.as_str())];
    assert_eq!(
        request(&server, "GET", "/v2/web/manifests/1", &a, b"").body,
        manifest
    );
    assert_eq!(server.json(&["registry", "gc"])["blobsDeleted"], 0);
}
