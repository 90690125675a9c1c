//! Masking secret values in log lines.
//!
//! Values resolved from `env.parameter-store` and `env.secrets-manager` are
//! replaced by `***` wherever they appear in a line of output, longest
//! first so that a secret containing another is masked whole.

/// The secrets of one build.
#[derive(Debug, Clone, Default)]
pub(crate) struct Masker {
    secrets: Vec<String>,
}

impl Masker {
    pub(crate) fn new(values: impl IntoIterator<Item = String>) -> Masker {
        let mut secrets: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Masker { secrets }
    }

    pub(crate) fn mask(&self, line: &str) -> String {
        let mut out = line.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_longest_first() {
        let m = Masker::new([
            "hunter2".to_owned(),
            "hunter2-extended".to_owned(),
            String::new(),
        ]);
        assert_eq!(m.mask("pw=hunter2 and hunter2-extended"), "pw=*** and ***");
        assert_eq!(m.mask("nothing here"), "nothing here");
    }
}
