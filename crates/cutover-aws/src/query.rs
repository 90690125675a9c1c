//! AWS's query protocol, as STS speaks it: a form-encoded `POST /` whose
//! `Action` names the operation, answered in XML (`<{Op}Response>` around
//! `<{Op}Result>`, AWS's `xmlNamespace`), refusals in `<ErrorResponse>`.
//!
//! Only STS uses it among the services Cutover answers, and only
//! `GetCallerIdentity`, so the XML is written here directly: three
//! escaped text elements do not justify an XML crate.

use crate::protocol::AwsError;

/// STS's XML namespace and API version, from its model.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// STS's API version.
pub const STS_VERSION: &str = "2011-06-15";
/// STS's signing name.
pub const STS_SIGNING_NAME: &str = "sts";

/// A decoded query-protocol request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    /// `Action`.
    pub action: String,
    /// `Version`.
    pub version: Option<String>,
    /// Every other parameter, in order.
    pub params: Vec<(String, String)>,
}

/// Decodes a form body; `Action` is required.
pub fn parse(body: &[u8]) -> Result<QueryRequest, AwsError> {
    let mut action = None;
    let mut version = None;
    let mut params = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        match &*k {
            "Action" => action = Some(v.into_owned()),
            "Version" => version = Some(v.into_owned()),
            _ => params.push((k.into_owned(), v.into_owned())),
        }
    }
    let action = action
        .ok_or_else(|| AwsError::client("MissingAction", "the request has no Action parameter"))?;
    Ok(QueryRequest {
        action,
        version,
        params,
    })
}

/// STS's `GetCallerIdentity` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The key's user id (Cutover: the access key id).
    pub user_id: String,
    /// The 12-digit account id.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
}

/// The XML of a successful `GetCallerIdentity`.
pub fn caller_identity_xml(id: &CallerIdentity, request_id: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"{STS_NAMESPACE}\">\
<GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult>\
<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\
</GetCallerIdentityResponse>",
        escape(&id.arn),
        escape(&id.user_id),
        escape(&id.account),
        escape(request_id)
    )
}

/// The XML of a refusal: `Sender` for a 4xx, `Receiver` otherwise.
pub fn error_xml(error: &AwsError, request_id: &str) -> String {
    let kind = if error.status < 500 {
        "Sender"
    } else {
        "Receiver"
    };
    format!(
        "<ErrorResponse xmlns=\"{STS_NAMESPACE}\"><Error><Type>{kind}</Type><Code>{}</Code>\
<Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(&error.code),
        escape(&error.message),
        escape(request_id)
    )
}

/// STS's own codes for the signature refusals the JSON services name
/// differently (`UnrecognizedClientException` is STS's
/// `InvalidClientTokenId`; a mismatch, an expired or a not yet current
/// signature its `SignatureDoesNotMatch`, the message saying which).
pub fn sts_error(mut error: AwsError) -> AwsError {
    error.code = match error.code.as_str() {
        "UnrecognizedClientException" => "InvalidClientTokenId".into(),
        "InvalidSignatureException" => "SignatureDoesNotMatch".into(),
        "UnknownOperationException" => "InvalidAction".into(),
        _ => return error,
    };
    error
}

/// XML text escaping.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_body_names_its_action() {
        let r = parse(b"Action=GetCallerIdentity&Version=2011-06-15&X=a%20b").unwrap();
        assert_eq!(r.action, "GetCallerIdentity");
        assert_eq!(r.version.as_deref(), Some("2011-06-15"));
        assert_eq!(r.params, [("X".to_string(), "a b".to_string())]);
        assert_eq!(parse(b"Version=1").unwrap_err().code, "MissingAction");
        assert_eq!(parse(b"\xff\xfe").unwrap_err().code, "MissingAction");
    }

    #[test]
    fn xml_is_escaped() {
        let xml = caller_identity_xml(
            &CallerIdentity {
                user_id: "AKIA<&>".into(),
                account: "123456789012".into(),
                arn: "arn:aws:iam::123456789012:user/a\"b".into(),
            },
            "r-1",
        );
        assert!(xml.contains("<UserId>AKIA&lt;&amp;&gt;</UserId>"), "{xml}");
        assert!(xml.contains("user/a&quot;b"), "{xml}");
        let e = error_xml(&AwsError::client("X", "a<b"), "r");
        assert!(e.contains("<Type>Sender</Type><Code>X</Code><Message>a&lt;b</Message>"));
    }

    #[test]
    fn signature_refusals_get_sts_codes() {
        let e = sts_error(AwsError::client("UnrecognizedClientException", "no"));
        assert_eq!(e.code, "InvalidClientTokenId");
        let e = sts_error(AwsError::client(
            "InvalidSignatureException",
            "Signature expired: x",
        ));
        assert_eq!(e.code, "SignatureDoesNotMatch");
        assert!(e.message.starts_with("Signature expired"));
    }
}
