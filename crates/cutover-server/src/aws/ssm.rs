//! SSM Parameter Store over AWS's JSON 1.1 protocol, on the one secret
//! store (`cutover_store::secrets`) that builds read too: GetParameter,
//! GetParameters, GetParametersByPath, PutParameter, DeleteParameter.
//!
//! Names follow AWS's rules: letters, digits and `_.-`, with `/` between
//! the levels of a hierarchy, which then starts with `/` (`a/b` is refused,
//! "must be a fully qualified name"), at most 15 levels, no `aws` or `ssm`
//! prefix. A top-level name is the same parameter with or without its
//! leading `/`. A parameter is also named by its ARN,
//! `arn:aws:ssm:REGION:ACCOUNT:parameter/a/b` (one slash, whichever the
//! spelling), and `NAME:VERSION` selects its current version (older ones
//! are not kept, see the store).
//!
//! A `SecureString` read without `WithDecryption` gets, as on AWS, not its
//! value but a base64 blob standing for it. AWS's blob is the KMS
//! ciphertext; Cutover has no KMS, so its blob encodes only the text
//! `cutover:SecureString:NAME:VERSION`, which reveals nothing. Not
//! supported, and refused rather than ignored: `AllowedPattern`,
//! `Policies`, and filters other than `Type` on `GetParametersByPath`.
//! Tags, `KeyId`, `Tier` and `DataType` are accepted and not kept.

use base64::Engine as _;
use cutover_aws::protocol::AwsError;
use cutover_aws::shapes::Timestamp;
use cutover_aws::shapes::ssm::{
    DeleteParameterRequest, DeleteParameterResult, GetParameterRequest, GetParameterResult,
    GetParametersByPathRequest, GetParametersByPathResult, GetParametersRequest,
    GetParametersResult, Operation, Parameter, ParameterTier, ParameterType, PutParameterRequest,
    PutParameterResult, errors,
};
use cutover_store::secrets::{self, ParameterRow, build_ref::parameter_name};
use secrecy::{ExposeSecret, SecretString};

use super::wire::{self, Call, Reply, input, output};

/// Runs `op`.
pub(super) async fn call(call: &Call<'_>, op: Operation, body: &[u8]) -> Result<Reply, AwsError> {
    match op {
        Operation::GetParameter => output(&get(call, input(body)?).await?),
        Operation::GetParameters => output(&get_many(call, input(body)?).await?),
        Operation::GetParametersByPath => output(&by_path(call, input(body)?).await?),
        Operation::PutParameter => output(&put(call, input(body)?).await?),
        Operation::DeleteParameter => output(&delete(call, input(body)?).await?),
    }
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::client("ValidationException", message)
}

fn not_found(name: &str) -> AwsError {
    AwsError::client(
        errors::PARAMETER_NOT_FOUND,
        format!("Parameter {name} not found."),
    )
}

/// A parameter name as AWS allows it (see the module header).
fn check_name(name: &str) -> Result<(), AwsError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if name.contains('/') && !name.starts_with('/') {
        return Err(validation("Parameter name must be a fully qualified name."));
    }
    let lower = bare.to_ascii_lowercase();
    let ok = !bare.is_empty()
        && name.len() <= 2048
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
        && bare.split('/').all(|level| {
            !level.is_empty()
                && level
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        });
    if !ok {
        return Err(validation(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_",
        ));
    }
    if bare.split('/').count() > 15 {
        return Err(AwsError::client(
            errors::HIERARCHY_LEVEL_LIMIT_EXCEEDED_EXCEPTION,
            "A hierarchy can have a maximum of 15 levels.",
        ));
    }
    Ok(())
}

/// A `Name` as a request gives it: the parameter's name (from an ARN if
/// it is one) and the version selector after a `:`, if any.
fn name_and_selector(raw: &str) -> (&str, Option<&str>) {
    let name = parameter_name(raw);
    match name.rsplit_once(':') {
        Some((name, selector)) => (name, Some(selector)),
        None => (name, None),
    }
}

/// `p` in AWS's shape, its value decrypted or not (see the module header).
fn shape(call: &Call<'_>, p: &ParameterRow, decrypt: bool, selector: Option<&str>) -> Parameter {
    let value = if p.type_ == ParameterType::SecureString && !decrypt {
        base64::engine::general_purpose::STANDARD
            .encode(format!("cutover:SecureString:{}:{}", p.name, p.version))
    } else {
        p.value.expose_secret().to_string()
    };
    let resource = if p.name.starts_with('/') {
        format!("parameter{}", p.name)
    } else {
        format!("parameter/{}", p.name)
    };
    Parameter {
        name: Some(p.name.clone()),
        type_: Some(p.type_),
        value: Some(value),
        version: Some(p.version),
        selector: selector.map(|s| format!(":{s}")),
        last_modified_date: Some(Timestamp::from_millis(p.last_modified)),
        arn: Some(call.arn("ssm", &resource)),
        data_type: Some("text".into()),
        ..Parameter::default()
    }
}

/// Reads the parameters `names` name, in one store call: each found one
/// (with its selector), and the names that found none.
async fn lookup(
    call: &Call<'_>,
    names: Vec<String>,
) -> Result<Vec<(String, Result<(ParameterRow, Option<String>), AwsError>)>, AwsError> {
    call.transact(move |c| {
        let mut out = Vec::new();
        for raw in names {
            let (name, selector) = name_and_selector(&raw);
            let found = match secrets::parameter(c, name)? {
                None => Err(not_found(&raw)),
                Some(p) => match selector {
                    Some(s) if s.parse::<i64>().ok() != Some(p.version) => Err(AwsError::client(
                        errors::PARAMETER_VERSION_NOT_FOUND,
                        format!(
                            "Systems Manager could not find version {s} of {name}. Cutover keeps only the current version."
                        ),
                    )),
                    s => Ok((p, s.map(str::to_string))),
                },
            };
            out.push((raw, found));
        }
        Ok(Ok(out))
    })
    .await
}

async fn get(call: &Call<'_>, req: GetParameterRequest) -> Result<GetParameterResult, AwsError> {
    let decrypt = req.with_decryption.unwrap_or(false);
    let (_, found) = lookup(call, vec![req.name])
        .await?
        .pop()
        .ok_or_else(|| wire::internal(&"no answer", "read a parameter"))?;
    let (p, selector) = found?;
    Ok(GetParameterResult {
        parameter: Some(shape(call, &p, decrypt, selector.as_deref())),
    })
}

async fn get_many(
    call: &Call<'_>,
    req: GetParametersRequest,
) -> Result<GetParametersResult, AwsError> {
    if !(1..=10).contains(&req.names.len()) {
        return Err(validation("Names must hold 1 to 10 parameter names."));
    }
    let decrypt = req.with_decryption.unwrap_or(false);
    let mut names = req.names;
    names.dedup();
    let (mut parameters, mut invalid) = (Vec::new(), Vec::new());
    for (raw, found) in lookup(call, names).await? {
        match found {
            Ok((p, selector)) => parameters.push(shape(call, &p, decrypt, selector.as_deref())),
            Err(_) => invalid.push(raw),
        }
    }
    Ok(GetParametersResult {
        parameters: Some(parameters),
        invalid_parameters: Some(invalid),
    })
}

async fn by_path(
    call: &Call<'_>,
    req: GetParametersByPathRequest,
) -> Result<GetParametersByPathResult, AwsError> {
    if !req.path.starts_with('/')
        || (req.path != "/" && check_name(req.path.trim_end_matches('/')).is_err())
    {
        return Err(validation(
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".",
        ));
    }
    let mut types = None;
    for f in req.parameter_filters.unwrap_or_default() {
        if f.key != "Type" || f.option.as_deref().is_some_and(|o| o != "Equals") {
            return Err(AwsError::client(
                errors::INVALID_FILTER_KEY,
                format!(
                    "Cutover filters parameters by path only on Type Equals, not {}.",
                    f.key
                ),
            ));
        }
        let mut wanted = Vec::new();
        for v in f.values.unwrap_or_default() {
            wanted.push(secrets::parse_parameter_type(&v).ok_or_else(|| {
                AwsError::client(
                    errors::INVALID_FILTER_VALUE,
                    format!("{v} is not a parameter type."),
                )
            })?);
        }
        types = Some(wanted);
    }
    let max = match req.max_results {
        None => 10,
        Some(n @ 1..=10) => n as usize,
        Some(_) => return Err(validation("MaxResults must be between 1 and 10.")),
    };
    let decrypt = req.with_decryption.unwrap_or(false);
    let recursive = req.recursive.unwrap_or(false);
    let path = req.path.clone();
    let mut all = call
        .transact(move |c| Ok(Ok(secrets::parameters_under(c, &path, recursive)?)))
        .await?;
    if let Some(types) = types {
        all.retain(|p| types.contains(&p.type_));
    }
    let (page, next_token) = wire::page(all, max, req.next_token.as_deref(), || {
        AwsError::client(
            errors::INVALID_NEXT_TOKEN,
            "The specified token isn't valid.",
        )
    })?;
    Ok(GetParametersByPathResult {
        parameters: Some(page.iter().map(|p| shape(call, p, decrypt, None)).collect()),
        next_token,
    })
}

async fn put(call: &Call<'_>, req: PutParameterRequest) -> Result<PutParameterResult, AwsError> {
    if req.name.starts_with("arn:") {
        return Err(validation(
            "You can't enter the ARN for a parameter, only the parameter name itself.",
        ));
    }
    let name = req.name.trim().to_string();
    check_name(&name)?;
    if req.value.is_empty() {
        return Err(validation("Value must not be empty."));
    }
    if req.allowed_pattern.is_some() || req.policies.is_some() {
        return Err(validation(
            "Cutover does not support AllowedPattern or Policies on parameters.",
        ));
    }
    let now = call.st.clock.now_ms();
    let overwrite = req.overwrite.unwrap_or(false);
    let (type_, value, description) = (req.type_, req.value, req.description);
    let version = call
        .transact(move |c| {
            let row = match secrets::parameter(c, &name)? {
                Some(_) if !overwrite => {
                    return Ok(Err(AwsError::client(
                        errors::PARAMETER_ALREADY_EXISTS,
                        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
                    )));
                }
                Some(old) => ParameterRow {
                    type_: type_.unwrap_or(old.type_),
                    value: SecretString::from(value),
                    version: old.version + 1,
                    last_modified: now,
                    description: description.or(old.description),
                    name: old.name,
                },
                None => {
                    let Some(type_) = type_ else {
                        return Ok(Err(validation(
                            "A parameter type is required when you create a parameter.",
                        )));
                    };
                    ParameterRow {
                        name,
                        type_,
                        value: SecretString::from(value),
                        version: 1,
                        last_modified: now,
                        description,
                    }
                }
            };
            secrets::put_parameter(c, &row)?;
            Ok(Ok(row.version))
        })
        .await?;
    Ok(PutParameterResult {
        version: Some(version),
        tier: Some(ParameterTier::Standard),
    })
}

async fn delete(
    call: &Call<'_>,
    req: DeleteParameterRequest,
) -> Result<DeleteParameterResult, AwsError> {
    let raw = req.name;
    call.transact(move |c| {
        let name = parameter_name(&raw);
        Ok(if secrets::delete_parameter(c, name)? {
            Ok(DeleteParameterResult {})
        } else {
            Err(not_found(&raw))
        })
    })
    .await
}
