//! The registry metadata's rules: immutable tags, references checked
//! before a manifest is stored, ECR's delete semantics, the GC mark.

use super::*;
use crate::Store;

fn repo(name: &str, m: TagMutability) -> RepositoryRow {
    RepositoryRow {
        name: name.into(),
        created_at_ms: 1,
        tag_mutability: m,
        scan_on_push: false,
        anonymous_pull: false,
        lifecycle_policy: None,
    }
}

fn manifest(digest: &str, layers: &[&str]) -> NewManifest {
    NewManifest {
        digest: digest.into(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 100,
        image_size: 10 * layers.len() as u64,
        artifact_type: None,
        subject: None,
        annotations: BTreeMap::new(),
        refs: layers
            .iter()
            .map(|l| (l.to_string(), RefKind::Blob))
            .collect(),
    }
}

#[allow(clippy::disallowed_methods)]
fn store(m: TagMutability) -> Store {
    let s = Store::open_in_memory().unwrap();
    s.with(|c| {
        create_repository(c, &repo("web", m))?;
        link_blob(c, "web", "sha256:l1", 10, 5)?;
        link_blob(c, "web", "sha256:l2", 10, 5)
    })
    .unwrap();
    s
}

#[test]
fn repositories_are_created_once_listed_in_order_and_deleted_only_empty_unless_forced() {
    let s = store(TagMutability::Mutable);
    s.with(|c| {
        assert!(matches!(
            create_repository(c, &repo("web", TagMutability::Mutable)),
            Err(StoreError::Conflict(_))
        ));
        create_repository(c, &repo("a/b", TagMutability::Immutable))?;
        let names: Vec<_> = list_repositories(c, None, 10)?
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["a/b", "web"]);
        let page: Vec<_> = list_repositories(c, Some("a/b"), 10)?
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(page, ["web"]);
        set_tag_mutability(c, "web", TagMutability::Immutable)?;
        set_scan_on_push(c, "web", true)?;
        let web = get_repository(c, "web")?.unwrap();
        assert_eq!(
            (web.tag_mutability, web.scan_on_push),
            (TagMutability::Immutable, true)
        );
        assert_eq!(
            put_manifest(
                c,
                "web",
                &manifest("sha256:m1", &["sha256:l1"]),
                Some("1"),
                9
            )?,
            PutOutcome::Stored
        );
        assert!(matches!(
            delete_repository(c, "web", false),
            Err(StoreError::Conflict(_))
        ));
        delete_repository(c, "web", true)?;
        assert!(get_repository(c, "web")?.is_none());
        assert!(list_images(c, "web")?.is_empty());
        Ok(())
    })
    .unwrap();
}

#[test]
fn an_immutable_tag_never_moves_and_a_refusal_changes_nothing() {
    let s = store(TagMutability::Immutable);
    s.with(|c| {
        assert_eq!(
            put_manifest(
                c,
                "web",
                &manifest("sha256:m1", &["sha256:l1"]),
                Some("1"),
                9
            )?,
            PutOutcome::Stored
        );
        // The same content again is fine.
        assert_eq!(
            put_manifest(
                c,
                "web",
                &manifest("sha256:m1", &["sha256:l1"]),
                Some("1"),
                10
            )?,
            PutOutcome::Stored
        );
        let refused = put_manifest(
            c,
            "web",
            &manifest("sha256:m2", &["sha256:l2"]),
            Some("1"),
            11,
        )?;
        assert_eq!(
            refused,
            PutOutcome::TagImmutable {
                current: "sha256:m1".into()
            }
        );
        assert!(get_image(c, "web", ImageRef::Digest("sha256:m2"))?.is_none());
        let one = get_image(c, "web", ImageRef::Tag("1"))?.unwrap();
        assert_eq!((one.digest.as_str(), one.pushed_at_ms), ("sha256:m1", 9));
        assert_eq!(put_tag(c, "web", "1", "sha256:m1", 12)?, PutOutcome::Stored);
        assert_eq!(
            put_manifest(
                c,
                "web",
                &manifest("sha256:m2", &["sha256:l2"]),
                Some("2"),
                11
            )?,
            PutOutcome::Stored
        );
        assert!(matches!(
            put_tag(c, "web", "1", "sha256:m2", 12)?,
            PutOutcome::TagImmutable { .. }
        ));
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_manifest_naming_what_the_repository_lacks_is_refused() {
    let s = store(TagMutability::Mutable);
    s.with(|c| {
        let m = manifest("sha256:m1", &["sha256:l1", "sha256:nope"]);
        assert_eq!(
            put_manifest(c, "web", &m, Some("1"), 9)?,
            PutOutcome::MissingReferences(vec!["sha256:nope".into()])
        );
        assert!(list_images(c, "web")?.is_empty());
        assert!(list_tags(c, "web", None, 10)?.is_empty());
        assert!(matches!(
            put_manifest(c, "nope", &m, None, 9),
            Err(StoreError::NotFound { .. })
        ));
        Ok(())
    })
    .unwrap();
}

#[test]
fn tags_page_and_images_list_their_tags_and_ecr_deletes_by_tag_or_digest() {
    let s = store(TagMutability::Mutable);
    s.with(|c| {
        put_manifest(
            c,
            "web",
            &manifest("sha256:m1", &["sha256:l1"]),
            Some("a"),
            9,
        )?;
        put_tag(c, "web", "b", "sha256:m1", 10)?;
        put_manifest(
            c,
            "web",
            &manifest("sha256:m2", &["sha256:l2"]),
            Some("c"),
            11,
        )?;
        assert_eq!(list_tags(c, "web", None, 2)?, ["a", "b"]);
        assert_eq!(list_tags(c, "web", Some("b"), 2)?, ["c"]);
        let images = list_images(c, "web")?;
        assert_eq!(images[0].tags, ["a", "b"]);
        assert_eq!(images[1].image_size, 10);
        // A tag among two: only the tag goes.
        assert_eq!(
            delete_image(c, "web", ImageRef::Tag("a"))?.as_deref(),
            Some("sha256:m1")
        );
        assert!(get_image(c, "web", ImageRef::Digest("sha256:m1"))?.is_some());
        // The last tag: the image goes too.
        delete_image(c, "web", ImageRef::Tag("b"))?;
        assert!(get_image(c, "web", ImageRef::Digest("sha256:m1"))?.is_none());
        assert_eq!(
            delete_image(c, "web", ImageRef::Digest("sha256:m2"))?.as_deref(),
            Some("sha256:m2")
        );
        assert!(list_tags(c, "web", None, 10)?.is_empty());
        assert_eq!(delete_image(c, "web", ImageRef::Tag("zzz"))?, None);
        Ok(())
    })
    .unwrap();
}

#[test]
fn the_mark_keeps_referenced_and_recently_linked_blobs_and_referrers_follow_subjects() {
    let s = store(TagMutability::Mutable);
    s.with(|c| {
        put_manifest(
            c,
            "web",
            &manifest("sha256:m1", &["sha256:l1"]),
            Some("1"),
            9,
        )?;
        let mut sig = manifest("sha256:sig", &[]);
        sig.subject = Some("sha256:m1".into());
        sig.artifact_type = Some("application/example".into());
        put_manifest(c, "web", &sig, None, 10)?;
        let refs = referrers(c, "web", "sha256:m1")?;
        assert_eq!(refs.len(), 1);
        assert_eq!(
            refs[0].artifact_type.as_deref(),
            Some("application/example")
        );
        let live = live_digests(c, 6)?;
        assert!(
            live.contains("sha256:l1") && live.contains("sha256:m1") && live.contains("sha256:sig")
        );
        assert!(
            !live.contains("sha256:l2"),
            "l2 was linked at 5, before the grace period"
        );
        assert!(live_digests(c, 5)?.contains("sha256:l2"));
        forget_blob(c, "sha256:l2")?;
        assert_eq!(linked_blob(c, "web", "sha256:l2")?, None);
        Ok(())
    })
    .unwrap();
}
