//! Health-check success codes, written as ALB's target groups write them: `"200"`,
//! `"200,302"`, `"200-299"`. One grammar, two ranges: HTTP status codes ([`Matcher`], a
//! health check's `matcher`, 100 to 599) and gRPC status codes ([`GrpcMatcher`], `grpcCode`,
//! 0 to 99). YAML may write a single code unquoted (`matcher: 200`). Shared by a stack's
//! `loadBalancer.healthCheck` and the data plane's `lb.yaml`.

use serde::{Deserialize, Serialize};

use crate::doc::quote;

/// Codes as written and the ranges they name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Codes {
    text: String,
    ranges: Vec<(u16, u16)>,
}

impl Codes {
    /// Parses `text` with every code within `lo..=hi`; `example` shows the form in errors.
    fn parse(text: String, lo: u16, hi: u16, what: &str, example: &str) -> Result<Self, String> {
        let bad = || format!("invalid {what} {}: expected {example}", quote(&text));
        let code = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (lo..=hi).contains(c))
        };
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let range = match part.split_once('-') {
                Some((a, b)) => (code(a).ok_or_else(bad)?, code(b).ok_or_else(bad)?),
                None => {
                    let c = code(part).ok_or_else(bad)?;
                    (c, c)
                }
            };
            if range.0 > range.1 {
                return Err(bad());
            }
            ranges.push(range);
        }
        Ok(Codes { text, ranges })
    }

    fn matches(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&code))
    }
}

/// HTTP success codes (100 to 599); the default is `200`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Matcher(Codes);

impl Matcher {
    /// The codes `lo` to `hi`, as `"lo-hi"`.
    pub fn range(lo: u16, hi: u16) -> Matcher {
        Matcher(Codes {
            text: format!("{lo}-{hi}"),
            ranges: vec![(lo, hi)],
        })
    }

    /// Whether `status` counts as success.
    pub fn matches(&self, status: u16) -> bool {
        self.0.matches(status)
    }

    /// The matcher as written.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher(Codes {
            text: "200".to_owned(),
            ranges: vec![(200, 200)],
        })
    }
}

impl TryFrom<String> for Matcher {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let example = "HTTP codes such as \"200\", \"200,302\" or \"200-299\"";
        Codes::parse(text, 100, 599, "matcher", example).map(Matcher)
    }
}

impl From<Matcher> for String {
    fn from(m: Matcher) -> String {
        m.0.text
    }
}

/// gRPC success codes (0 to 99); the default is `12` (`UNIMPLEMENTED`), ALB's: a gRPC server
/// answering the probe's path at all is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GrpcMatcher(Codes);

impl GrpcMatcher {
    /// Whether the gRPC `status` counts as success.
    pub fn matches(&self, status: u16) -> bool {
        self.0.matches(status)
    }

    /// The matcher as written.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }
}

impl Default for GrpcMatcher {
    fn default() -> Self {
        GrpcMatcher(Codes {
            text: "12".to_owned(),
            ranges: vec![(12, 12)],
        })
    }
}

impl TryFrom<String> for GrpcMatcher {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let example = "gRPC codes such as \"0\", \"0,12\" or \"0-99\"";
        Codes::parse(text, 0, 99, "grpcCode", example).map(GrpcMatcher)
    }
}

impl From<GrpcMatcher> for String {
    fn from(m: GrpcMatcher) -> String {
        m.0.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_grpc_codes_share_one_grammar_with_their_own_ranges() {
        let m = Matcher::try_from("200-299, 302".to_owned()).unwrap();
        assert!(m.matches(204) && m.matches(302) && !m.matches(301));
        assert_eq!(m.as_str(), "200-299, 302");
        for bad in ["299-200", "abc", "99", "600", "", "200-"] {
            let e = Matcher::try_from(bad.to_owned()).unwrap_err();
            assert!(e.starts_with("invalid matcher"), "{e}");
        }
        let g = GrpcMatcher::try_from("0,12-14".to_owned()).unwrap();
        assert!(g.matches(0) && g.matches(13) && !g.matches(1));
        for bad in ["100", "-1", "5-2", "x"] {
            let e = GrpcMatcher::try_from(bad.to_owned()).unwrap_err();
            assert!(e.starts_with("invalid grpcCode"), "{e}");
        }
        assert!(GrpcMatcher::default().matches(12));
        assert!(Matcher::range(200, 399).matches(302));
        assert_eq!(Matcher::range(200, 399).as_str(), "200-399");
    }
}
