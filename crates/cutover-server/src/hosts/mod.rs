//! Host deployments (CodeDeploy for EC2 and on-premises instances): the
//! agents that run on the hosts, the bundles they install, and the driver
//! that deploys a revision to a deployment group's hosts with
//! `cutover-deploy`'s host planners.
//!
//! The seam between the two halves is [`fleet`]: the driver asks a
//! [`fleet::Fleet`] for the registered hosts and sends it one
//! lifecycle event per host at a time; the agents' side of the server
//! implements it (registration, long polls, results) and keeps the
//! bundles ([`fleet::BundleStore`]).
//!
//! - [`deploy_api`]: `/v1/host-deployments` (create with a bundle, get, stop).
//! - [`deployer`]: creates host deployments, one driver each, resumes them.
//! - [`driver`]: one deployment's loop (planner, store, fleet, data plane).
//! - [`for_pipelines`]: host deployments as the pipelines' `CodeDeploy`
//!   action uses them.
//! - [`outdated`]: hosts that join a group later get its current revision.
//! - [`revisions`]: `git:REF` and directory revisions the server reads itself.
//! - [`views`]: a deployment as the API shows it, host by host.

pub(crate) mod agents;
#[cfg(test)]
mod agents_tests;
pub(crate) mod api;
#[cfg(test)]
mod bluegreen_tests;
pub(crate) mod bundles;
pub(crate) mod deploy_api;
pub(crate) mod deployer;
pub(crate) mod driver;
#[cfg(test)]
mod e2e_tests;
#[cfg(test)]
mod fake_fleet;
pub(crate) mod fleet;
pub(crate) mod for_pipelines;
pub(crate) mod outdated;
pub(crate) mod revisions;
#[cfg(test)]
mod tests;
pub(crate) mod views;
