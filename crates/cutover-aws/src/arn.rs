//! Amazon Resource Names: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`,
//! read and written the same way everywhere, so an ARN Cutover hands out is
//! accepted back wherever AWS accepts a name or an ARN.

use std::fmt;
use std::str::FromStr;

/// A parsed ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    /// `aws` (or `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// The service namespace: `ecs`, `codedeploy`, ...
    pub service: String,
    /// The region, empty for global resources.
    pub region: String,
    /// The 12-digit account id, empty for some resources.
    pub account: String,
    /// The resource part, e.g. `service/default/web` or `task-definition/web:3`.
    pub resource: String,
}

/// Why a text is not an ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an ARN: {why}")]
pub struct ArnError {
    /// The text.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

impl Arn {
    /// An ARN in the `aws` partition.
    pub fn new(service: &str, region: &str, account: &str, resource: &str) -> Arn {
        Arn {
            partition: "aws".into(),
            service: service.into(),
            region: region.into(),
            account: account.into(),
            resource: resource.into(),
        }
    }

    /// The last part of the resource (after its last `/`): the name AWS
    /// accepts in place of the ARN (`web`, `web:3`).
    pub fn resource_name(&self) -> &str {
        self.resource
            .rsplit_once('/')
            .map_or(self.resource.as_str(), |(_, name)| name)
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

impl FromStr for Arn {
    type Err = ArnError;

    fn from_str(text: &str) -> Result<Arn, ArnError> {
        let err = |why| ArnError {
            text: text.to_string(),
            why,
        };
        let mut parts = text.splitn(6, ':');
        if parts.next() != Some("arn") {
            return Err(err("it does not start with arn:"));
        }
        let mut next = |what| parts.next().ok_or_else(|| err(what));
        let partition = next("it has no partition")?.to_string();
        let service = next("it has no service")?.to_string();
        let region = next("it has no region")?.to_string();
        let account = next("it has no account")?.to_string();
        let resource = next("it has no resource")?.to_string();
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return Err(err("its partition, service and resource must not be empty"));
        }
        if !(account.is_empty()
            || account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(err("its account must be 12 digits"));
        }
        Ok(Arn {
            partition,
            service,
            region,
            account,
            resource,
        })
    }
}

/// The name of a resource given as a name or as an ARN of `service` whose
/// resource starts with `kind/` (e.g. `service/`, `task-definition/`): the
/// part after the last `/`. A name is returned as it is.
pub fn name_or_arn<'a>(text: &'a str, service: &str, kind: &str) -> Result<&'a str, ArnError> {
    if !text.starts_with("arn:") {
        return Ok(text);
    }
    let arn: Arn = text.parse()?;
    let wrong = |why| ArnError {
        text: text.to_string(),
        why,
    };
    if arn.service != service {
        return Err(wrong("it names another service"));
    }
    if !arn
        .resource
        .strip_prefix(kind)
        .is_some_and(|rest| rest.starts_with('/'))
    {
        return Err(wrong("it names another kind of resource"));
    }
    let name_at = text.rfind('/').map_or(text.len(), |i| i + 1);
    Ok(&text[name_at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_read_back_what_they_write() {
        let arn = Arn::new("ecs", "us-east-1", "123456789012", "service/default/web");
        let text = arn.to_string();
        assert_eq!(
            text,
            "arn:aws:ecs:us-east-1:123456789012:service/default/web"
        );
        assert_eq!(text.parse::<Arn>().unwrap(), arn);
        assert_eq!(arn.resource_name(), "web");
        // A resource may itself hold colons.
        let td: Arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"
            .parse()
            .unwrap();
        assert_eq!(td.resource, "task-definition/web:3");
        assert_eq!(td.resource_name(), "web:3");
    }

    #[test]
    fn names_and_arns_are_accepted_alike() {
        assert_eq!(name_or_arn("web", "ecs", "service"), Ok("web"));
        assert_eq!(
            name_or_arn(
                "arn:aws:ecs:us-east-1:123456789012:service/default/web",
                "ecs",
                "service"
            ),
            Ok("web")
        );
        assert_eq!(
            name_or_arn(
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3",
                "ecs",
                "task-definition"
            ),
            Ok("web:3")
        );
        assert!(
            name_or_arn(
                "arn:aws:ecs:us-east-1:123456789012:cluster/default",
                "ecs",
                "service"
            )
            .is_err()
        );
        assert!(
            name_or_arn(
                "arn:aws:codedeploy:us-east-1:123456789012:service/x",
                "ecs",
                "service"
            )
            .is_err()
        );
    }

    #[test]
    fn malformed_arns_are_refused() {
        for bad in [
            "arn:",
            "arn:aws",
            "arn:aws:ecs:us-east-1",
            "arn:aws:ecs:us-east-1:123:service/x",
            "arn::ecs:us-east-1:123456789012:service/x",
            "arn:aws:ecs:us-east-1:123456789012:",
            "nra:aws:ecs:us-east-1:123456789012:service/x",
        ] {
            assert!(bad.parse::<Arn>().is_err(), "{bad}");
        }
    }
}
