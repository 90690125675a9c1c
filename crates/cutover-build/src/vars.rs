//! `$NAME` and `${NAME}` references in buildspec paths
//! (`base-directory: $CODEBUILD_SRC_DIR/reports`, `files: [${IMAGE_FILE}]`).
//!
//! CodeBuild expands environment variables in artifact, report and cache
//! paths; Cutover does the same with the build's environment at the end of
//! the build. Expansion follows the shell: an unset variable expands to
//! nothing, and anything that is not a reference stays as written.

/// Whether `name` is a valid shell variable name.
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The names referenced by `text`, in order of appearance.
pub fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    scan(text, |piece| {
        if let Piece::Var(name) = piece
            && !out.iter().any(|n: &String| n == name)
        {
            out.push(name.to_owned());
        }
    });
    out
}

/// `text` with every reference replaced by `lookup(name)` (empty if `None`).
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    scan(text, |piece| match piece {
        Piece::Text(t) => out.push_str(t),
        Piece::Var(name) => out.push_str(&lookup(name).unwrap_or_default()),
    });
    out
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn scan<'a>(text: &'a str, mut f: impl FnMut(Piece<'a>)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let (name, end) = if bytes.get(i + 1) == Some(&b'{') {
                match text[i + 2..].find('}') {
                    Some(close) if is_var_name(&text[i + 2..i + 2 + close]) => {
                        (&text[i + 2..i + 2 + close], i + 3 + close)
                    }
                    _ => {
                        i += 1;
                        continue;
                    }
                }
            } else {
                let len = text[i + 1..]
                    .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                    .unwrap_or(text.len() - i - 1);
                let name = &text[i + 1..i + 1 + len];
                if !is_var_name(name) {
                    i += 1;
                    continue;
                }
                (name, i + 1 + len)
            };
            if start < i {
                f(Piece::Text(&text[start..i]));
            }
            f(Piece::Var(name));
            i = end;
            start = end;
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        f(Piece::Text(&text[start..]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "CODEBUILD_SRC_DIR" => Some("/src".into()),
            "FILE" => Some("imagedefinitions.json".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms_and_unset_to_nothing() {
        assert_eq!(expand("$CODEBUILD_SRC_DIR/reports", env), "/src/reports");
        assert_eq!(expand("${FILE}", env), "imagedefinitions.json");
        assert_eq!(expand("a/$NOPE/b", env), "a//b");
        assert_eq!(
            expand("cost $5 and ${not valid}", env),
            "cost $5 and ${not valid}"
        );
        assert_eq!(expand("$", env), "$");
    }

    #[test]
    fn lists_references_once() {
        assert_eq!(
            references("$A/${B}/$A-$1"),
            vec!["A".to_owned(), "B".to_owned()]
        );
        assert!(is_var_name("_X1"));
        assert!(!is_var_name("1X"));
        assert!(!is_var_name("A-B"));
    }
}
