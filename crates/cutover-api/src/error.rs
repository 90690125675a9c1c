//! The body of every error answer: `{"error": {"message", "diagnostics",
//! "warnings"}}`, diagnostics being located problems of a rejected file.

use cutover_spec::diag::Diagnostic;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiErrorBody {
    /// What went wrong.
    pub error: ApiErrorDetail,
}

/// The content of an error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiErrorDetail {
    /// One line for people.
    pub message: String,
    /// For a rejected file (422): every error found.
    #[serde(default)]
    #[schema(value_type = Vec<crate::schema::DiagnosticSchema>)]
    pub diagnostics: Vec<Diagnostic>,
    /// For a rejected file: the warnings found with the errors.
    #[serde(default)]
    #[schema(value_type = Vec<crate::schema::DiagnosticSchema>)]
    pub warnings: Vec<Diagnostic>,
}

/// One diagnostic as the compiler-style line users grep for:
/// `file:line:col: path: message`, leaving out what is unknown.
pub fn render_diagnostic(d: &Diagnostic) -> String {
    let mut loc = d.file.clone();
    if let Some(line) = d.line {
        loc.push_str(&format!(":{line}"));
        if let Some(col) = d.column {
            loc.push_str(&format!(":{col}"));
        }
    }
    match (loc.is_empty(), d.path.is_empty()) {
        (true, true) => d.message.clone(),
        (true, false) => format!("{}: {}", d.path, d.message),
        (false, true) => format!("{loc}: {}", d.message),
        (false, false) => format!("{loc}: {}: {}", d.path, d.message),
    }
}

impl ApiErrorDetail {
    /// The message, then each diagnostic and warning on its own line.
    pub fn render(&self) -> String {
        let mut out = self.message.clone();
        for d in &self.diagnostics {
            out.push_str("\n  ");
            out.push_str(&render_diagnostic(d));
        }
        for d in &self.warnings {
            out.push_str("\n  warning: ");
            out.push_str(&render_diagnostic(d));
        }
        out
    }
}
