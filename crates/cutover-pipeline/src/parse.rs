//! Reading a pipeline declaration: JSON (or YAML) text to [`Pipeline`], with
//! every problem reported as a [`Diagnostic`](cutover_spec::Diagnostic)
//! naming the file, line, column and field path, like every other file
//! Cutover reads.
//!
//! Two shapes are accepted: the output of `aws codepipeline get-pipeline`
//! (`{"pipeline": {...}, "metadata": {...}}`, metadata ignored) and a bare
//! pipeline object. The text is read by `cutover-spec`'s located-document
//! layer ([`cutover_spec::doc`]): every type error is reported where it
//! happened, unknown fields are warnings (AWS adds fields all the time), and
//! then [`crate::validate`] checks the structure and reports every semantic
//! error at once.

use cutover_spec::diag::{Parsed, SpecError};
use cutover_spec::doc::{Document, Format, Path, Sink};

use crate::model::Pipeline;

pub(crate) use cutover_spec::doc::quote;

/// Parses a pipeline file: JSON when `file` ends in `.json`, YAML otherwise.
///
/// `file` is used only in messages.
pub fn parse_pipeline(file: &str, text: &str) -> Result<Parsed<Pipeline>, SpecError> {
    let doc = Document::parse(file, text, Format::for_file(file))?;
    let sink = doc.sink(false);
    let pipeline = read_pipeline(&sink, &Path::root());
    sink.finish(pipeline)
}

/// Reads and validates the pipeline at `at` of a document being read: the
/// whole file, or one entry of `pipelines:` in `stack.yaml`. Every problem is
/// recorded in `sink`; `None` when the pipeline could not be read at all.
pub fn read_pipeline(sink: &Sink<'_>, at: &Path) -> Option<Pipeline> {
    let keys = sink.keys(at);
    let body = if keys.iter().any(|k| k == "pipeline") {
        for key in keys.iter().filter(|k| *k != "pipeline" && *k != "metadata") {
            sink.warning(
                &at.key(key),
                format!("unknown field {}, ignored", quote(key)),
            );
        }
        at.key("pipeline")
    } else {
        at.clone()
    };
    let pipeline = sink.read::<Pipeline>(&body)?;
    crate::validate::validate(&pipeline, &body, sink);
    Some(pipeline)
}

/// The path of the pipeline object of a document read with
/// [`read_pipeline`] at `at`: `at.pipeline` for the `get-pipeline` shape.
pub fn pipeline_path(sink: &Sink<'_>, at: &Path) -> Path {
    if sink.keys(at).iter().any(|k| k == "pipeline") {
        at.key("pipeline")
    } else {
        at.clone()
    }
}
