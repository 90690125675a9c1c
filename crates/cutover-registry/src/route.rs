//! The `/v2/` path grammar: a repository name holds slashes, so a path is
//! read from its end (`.../manifests/<ref>`, `.../blobs/uploads/<id>`).
//! Nothing is percent-decoded: an encoded character in a name breaks the
//! name grammar and is refused there.

/// What a `/v2/` path names. The name is unchecked (see
/// [`crate::check_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags {
        /// The repository.
        name: &'a str,
    },
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// The repository.
        name: &'a str,
        /// A tag or a digest.
        reference: &'a str,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// The repository.
        name: &'a str,
        /// The digest.
        digest: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/`: start an upload.
    Uploads {
        /// The repository.
        name: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload {
        /// The repository.
        name: &'a str,
        /// The upload's id.
        id: &'a str,
    },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers {
        /// The repository.
        name: &'a str,
        /// The subject's digest.
        digest: &'a str,
    },
}

/// Reads a request path; `None` when it names nothing under `/v2/`.
pub fn parse(path: &str) -> Option<Route<'_>> {
    let rest = path
        .strip_prefix("/v2/")
        .or_else(|| (path == "/v2").then_some(""))?;
    if rest.is_empty() {
        return Some(Route::Base);
    }
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    // `<name>/<a>/<b>` with `<a>/<b>` from the end; the name is what is left.
    let (head, last) = rest.rsplit_once('/')?;
    let (name_and, kind) = head.rsplit_once('/').map_or(("", head), |(n, k)| (n, k));
    let name = name_and;
    match (kind, last) {
        ("tags", "list") => Some(Route::Tags { name }),
        ("blobs", "uploads") => Some(Route::Uploads { name }),
        ("uploads", id) if name.ends_with("/blobs") || name == "blobs" => {
            let name = name.strip_suffix("blobs")?.strip_suffix('/')?;
            if id.is_empty() {
                Some(Route::Uploads { name })
            } else {
                Some(Route::Upload { name, id })
            }
        }
        ("manifests", reference) => Some(Route::Manifest { name, reference }),
        ("blobs", digest) => Some(Route::Blob { name, digest }),
        ("referrers", digest) => Some(Route::Referrers { name, digest }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_from_their_end() {
        assert_eq!(parse("/v2/"), Some(Route::Base));
        assert_eq!(parse("/v2"), Some(Route::Base));
        assert_eq!(parse("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            parse("/v2/a/b/tags/list"),
            Some(Route::Tags { name: "a/b" })
        );
        assert_eq!(
            parse("/v2/a/manifests/b/manifests/v1"),
            Some(Route::Manifest {
                name: "a/manifests/b",
                reference: "v1"
            })
        );
        assert_eq!(
            parse("/v2/web/blobs/uploads/"),
            Some(Route::Uploads { name: "web" })
        );
        assert_eq!(
            parse("/v2/web/blobs/uploads"),
            Some(Route::Uploads { name: "web" })
        );
        assert_eq!(
            parse("/v2/x/web/blobs/uploads/abc"),
            Some(Route::Upload {
                name: "x/web",
                id: "abc"
            })
        );
        assert_eq!(
            parse("/v2/web/blobs/sha256:00"),
            Some(Route::Blob {
                name: "web",
                digest: "sha256:00"
            })
        );
        assert_eq!(
            parse("/v2/web/referrers/sha256:00"),
            Some(Route::Referrers {
                name: "web",
                digest: "sha256:00"
            })
        );
        // Hostile or unknown paths name nothing or an unchecked name the
        // grammar then refuses.
        assert_eq!(parse("/v2/web/other/x"), None);
        assert_eq!(parse("/v1/web/manifests/x"), None);
        assert_eq!(parse("/v2/web"), None);
        assert_eq!(
            parse("/v2/../../etc/manifests/x"),
            Some(Route::Manifest {
                name: "../../etc",
                reference: "x"
            })
        );
        assert_eq!(
            parse("/v2/manifests/x"),
            Some(Route::Manifest {
                name: "",
                reference: "x"
            })
        );
    }
}
