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

pub(crate) mod agents;
pub(crate) mod api;
pub(crate) mod bundles;
// The driver lands in the next commits; remove then.
#[cfg(test)]
mod agents_tests;
#[cfg(test)]
mod e2e_tests;
#[allow(dead_code)]
pub(crate) mod fleet;
