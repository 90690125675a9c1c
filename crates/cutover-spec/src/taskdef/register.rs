//! The rules ECS's `RegisterTaskDefinition` enforces beyond the shapes of
//! its model: a file that breaks one is refused by AWS, so it is refused
//! here too, at the value that breaks it.
//!
//! Each rule cites where AWS states it: the documentation of botocore's
//! ECS model (`ecs/2014-11-13/service-2.json`, the same text as the API
//! reference) or the developer guide.

use super::{NetworkMode, TaskDefinition, task_cpu_units, task_memory_mib};
use crate::check::Sink;
use crate::doc::{Path, quote};

/// At most this many containers in one task definition.
const MAX_CONTAINERS: usize = 10;

/// Checks `td` (read at `base`) against the registration rules below.
pub(super) fn validate(td: &TaskDefinition, base: &Path, s: &Sink<'_>) {
    container_count(td, base, s);
    awsvpc_host_ports(td, base, s);
    if td.requires_fargate() {
        fargate_volumes(td, base, s);
        fargate_size(td, base, s);
    }
}

/// "Containers per task definition: 10", an ECS service quota
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service_limits.html,
/// which lists them at https://docs.aws.amazon.com/general/latest/gr/ecs-service.html).
fn container_count(td: &TaskDefinition, base: &Path, s: &Sink<'_>) {
    let n = td.container_definitions.len();
    if n > MAX_CONTAINERS {
        s.error(
            &base.key("containerDefinitions"),
            format!(
                "ECS allows at most {MAX_CONTAINERS} containers in a task definition, found {n}"
            ),
        );
    }
}

/// "If you use containers in a task with the awsvpc or host network mode,
/// the hostPort can either be left blank or set to the same value as the
/// containerPort" (`PortMapping.hostPort`,
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PortMapping.html).
/// Checked for `awsvpc`, where registration refuses it.
fn awsvpc_host_ports(td: &TaskDefinition, base: &Path, s: &Sink<'_>) {
    if td.network_mode != Some(NetworkMode::Awsvpc) {
        return;
    }
    for (i, c) in td.container_definitions.iter().enumerate() {
        for (j, pm) in c.port_mappings.iter().enumerate() {
            if let (Some(container), Some(host)) = (pm.container_port, pm.host_port)
                && host != container
            {
                s.error(
                    &base
                        .key("containerDefinitions")
                        .index(i)
                        .key("portMappings")
                        .index(j)
                        .key("hostPort"),
                    format!(
                        "in awsvpc network mode hostPort must be left out or equal containerPort ({container}), found {host}"
                    ),
                );
            }
        }
    }
}

/// "If you're using the Fargate launch type, the sourcePath parameter is not
/// supported" (`HostVolumeProperties.sourcePath`,
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HostVolumeProperties.html).
fn fargate_volumes(td: &TaskDefinition, base: &Path, s: &Sink<'_>) {
    for (i, v) in td.volumes.iter().flatten().enumerate() {
        if v.host.as_ref().is_some_and(|h| h.source_path.is_some()) {
            s.error(
                &base
                    .key("volumes")
                    .index(i)
                    .key("host")
                    .key("sourcePath"),
                "Fargate tasks cannot mount a host path (requiresCompatibilities includes FARGATE): \
                 leave out sourcePath for a task-local volume, or use efsVolumeConfiguration",
            );
        }
    }
}

/// The memory (MiB) Fargate takes with one CPU value.
enum FargateMemory {
    /// These values.
    Of(&'static [u32]),
    /// From the first to the second in steps of the third.
    Range(u32, u32, u32),
}

impl FargateMemory {
    fn allows(&self, mib: u32) -> bool {
        match *self {
            FargateMemory::Of(values) => values.contains(&mib),
            FargateMemory::Range(low, high, step) => {
                (low..=high).contains(&mib) && (mib - low).is_multiple_of(step)
            }
        }
    }
}

impl std::fmt::Display for FargateMemory {
    /// "512, 1024 or 2048 MiB", "4096 to 16384 MiB in steps of 1024".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            FargateMemory::Of(values) => {
                let values: Vec<String> = values.iter().map(u32::to_string).collect();
                write!(f, "{} MiB", or_list(&values))
            }
            FargateMemory::Range(low, high, step) => {
                write!(f, "{low} to {high} MiB in steps of {step}")
            }
        }
    }
}

/// Fargate's task sizes: each CPU value (units) and the memory it takes.
/// From the table of
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
/// (also https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html
/// and `RegisterTaskDefinitionRequest.cpu` in botocore's model).
const FARGATE_SIZES: &[(u32, FargateMemory)] = &[
    (256, FargateMemory::Of(&[512, 1024, 2048])),
    (512, FargateMemory::Of(&[1024, 2048, 3072, 4096])),
    (
        1024,
        FargateMemory::Of(&[2048, 3072, 4096, 5120, 6144, 7168, 8192]),
    ),
    (2048, FargateMemory::Range(4096, 16384, 1024)),
    (4096, FargateMemory::Range(8192, 30720, 1024)),
    (8192, FargateMemory::Range(16384, 61440, 4096)),
    (16384, FargateMemory::Range(32768, 122880, 8192)),
];

/// The memory Fargate takes with `cpu` units, if that is one of its CPU values.
fn fargate_memory(cpu: u32) -> Option<&'static FargateMemory> {
    FARGATE_SIZES.iter().find(|r| r.0 == cpu).map(|r| &r.1)
}

/// "If you're using the Fargate launch type, this field is required and you
/// must use one of the following values" (`RegisterTaskDefinitionRequest.cpu`
/// and `.memory`, https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html).
/// A cpu or memory that does not read at all is reported by `validate`.
fn fargate_size(td: &TaskDefinition, base: &Path, s: &Sink<'_>) {
    for (field, value) in [("cpu", &td.cpu), ("memory", &td.memory)] {
        if value.is_none() {
            s.error(
                &base.key(field),
                format!(
                    "missing field \"{field}\" (Fargate tasks need a task-level cpu and memory)"
                ),
            );
        }
    }
    let Some((cpu_text, units)) = td
        .cpu
        .as_ref()
        .and_then(|t| task_cpu_units(t).map(|u| (t, u)))
    else {
        return;
    };
    let Some(memory) = fargate_memory(units) else {
        let values: Vec<String> = FARGATE_SIZES.iter().map(|r| r.0.to_string()).collect();
        s.error(
            &base.key("cpu"),
            format!(
                "Fargate tasks take {} CPU units, found {}",
                or_list(&values),
                quote(cpu_text)
            ),
        );
        return;
    };
    if let Some(text) = &td.memory
        && let Some(mib) = task_memory_mib(text)
        && !memory.allows(mib)
    {
        s.error(
            &base.key("memory"),
            format!(
                "Fargate tasks of {units} CPU units take {memory} of memory, found {}",
                quote(text)
            ),
        );
    }
}

/// `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_table() {
        let allows = |cpu, mib| fargate_memory(cpu).map(|m| m.allows(mib));
        assert_eq!(allows(256, 512), Some(true));
        assert_eq!(allows(256, 1536), Some(false));
        assert_eq!(allows(256, 2048), Some(true));
        assert_eq!(allows(256, 4096), Some(false));
        assert_eq!(allows(512, 512), Some(false));
        assert_eq!(allows(1024, 8192), Some(true));
        assert_eq!(allows(2048, 5120), Some(true));
        assert_eq!(allows(2048, 5000), Some(false));
        assert_eq!(allows(4096, 30720), Some(true));
        assert_eq!(allows(4096, 31744), Some(false));
        assert_eq!(allows(8192, 20480), Some(true));
        assert_eq!(allows(8192, 18432), Some(false));
        assert_eq!(allows(16384, 122880), Some(true));
        assert_eq!(allows(300, 1024), None);
        assert_eq!(
            fargate_memory(512).unwrap().to_string(),
            "1024, 2048, 3072 or 4096 MiB"
        );
        assert_eq!(
            fargate_memory(2048).unwrap().to_string(),
            "4096 to 16384 MiB in steps of 1024"
        );
    }
}
