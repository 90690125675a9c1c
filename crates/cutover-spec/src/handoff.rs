//! The files a build hands to a deploy in a pipeline.
//!
//! - `imagedefinitions.json` (the ECS standard deploy action; seed 002 names
//!   it `revision.json`): `[{"name": "<container>", "imageUri": "<image>"}]`,
//!   at most 100 KB, container names unique.
//! - `imageDetail.json` (the CodeDeployToECS blue/green action):
//!   `{"ImageURI": "<repo>@sha256:<digest>"}`; other fields are kept.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::{Document, suggest};
use crate::de::tolerant_vec;
use crate::diag::{Diagnostic, Parsed, SpecError};
use crate::doc::{Format, Path, quote};

/// CodePipeline refuses an `imagedefinitions.json` larger than this.
pub const MAX_IMAGE_DEFINITIONS_BYTES: usize = 100 * 1024;

/// One entry of `imagedefinitions.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDefinition {
    /// The container to update.
    pub name: String,
    /// Its new image.
    #[serde(rename = "imageUri")]
    pub image_uri: String,
}

/// The contents of `imageDetail.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDetail {
    /// The image that replaces the `<IMAGE1_NAME>` placeholder.
    pub image_uri: String,
    /// Any other fields (ECR source actions write `ImageTags`, `RegistryId`, ...).
    pub other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct ImageDefinitions(#[serde(deserialize_with = "tolerant_vec")] Vec<ImageDefinition>);

/// Reads `imagedefinitions.json`.
pub fn parse_image_definitions(
    file: &str,
    text: &str,
) -> Result<Parsed<Vec<ImageDefinition>>, SpecError> {
    if text.len() > MAX_IMAGE_DEFINITIONS_BYTES {
        return Err(SpecError {
            diagnostics: vec![Diagnostic::error(
                file,
                None,
                &Path::root(),
                format!(
                    "the file is {} bytes; CodePipeline accepts at most {MAX_IMAGE_DEFINITIONS_BYTES} (100 KB)",
                    text.len()
                ),
            )],
            warnings: Vec::new(),
        });
    }
    let doc = Document::parse(file, text, Format::for_file(file))?;
    let sink = doc.sink(false);
    let list = sink.read::<ImageDefinitions>(&Path::root()).map(|l| l.0);
    if let Some(list) = &list {
        if list.is_empty() {
            sink.error(&Path::root(), "must name at least one container image");
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, d) in list.iter().enumerate() {
            let at = Path::root().index(i);
            if d.name.trim().is_empty() {
                sink.error(&at.key("name"), "must not be empty");
            } else if let Some(first) = seen.get(d.name.as_str()) {
                sink.error(
                    &at.key("name"),
                    format!(
                        "duplicate container name {}, first used by {}",
                        quote(&d.name),
                        Path::root().index(*first)
                    ),
                );
            } else {
                seen.insert(&d.name, i);
            }
            if d.image_uri.trim().is_empty() {
                sink.error(&at.key("imageUri"), "must not be empty");
            }
        }
    }
    sink.finish(list)
}

/// Reads `imageDetail.json`.
pub fn parse_image_detail(file: &str, text: &str) -> Result<Parsed<ImageDetail>, SpecError> {
    let doc = Document::parse(file, text, Format::for_file(file))?;
    let sink = doc.sink(false);
    let detail = sink.read::<ImageDetail>(&Path::root());
    if let Some(d) = &detail
        && d.image_uri.trim().is_empty()
    {
        sink.error(&Path::root().key("ImageURI"), "must not be empty");
    }
    sink.finish(detail)
}

impl<'de> Deserialize<'de> for ImageDetail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ImageDetail;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ImageDetail, A::Error> {
                let mut image_uri = None;
                let mut other = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "ImageURI" {
                        image_uri = Some(map.next_value::<String>()?);
                    } else {
                        let v = map.next_value::<Value>()?;
                        other.insert(key, v);
                    }
                }
                let Some(image_uri) = image_uri else {
                    let hint = suggest("ImageURI", other.keys().map(String::as_str))
                        .map(|k| format!(" (found {}; the name is case-sensitive)", quote(k)))
                        .unwrap_or_default();
                    return Err(de::Error::custom(format!(
                        "missing field \"ImageURI\"{hint}"
                    )));
                };
                Ok(ImageDetail { image_uri, other })
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl Serialize for ImageDetail {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(1 + self.other.len()))?;
        m.serialize_entry("ImageURI", &self.image_uri)?;
        for (k, v) in &self.other {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
