//! CodeDeploy's arithmetic of minimum healthy hosts: how many hosts must
//! stay in service while a deployment runs, how many may be deployed at
//! once, and how many must succeed.
//!
//! From the CodeDeploy documentation ("minimum healthy hosts", "How the
//! minimum healthy hosts value works"), for `n` hosts:
//! - `HOST_COUNT v`: at least `v` stay healthy, so up to `n - v` at a time;
//!   the deployment succeeds when at least `v` hosts succeeded (nine hosts,
//!   six: three at a time, six must succeed).
//! - `FLEET_PERCENT p`: the minimum is `p` percent of `n`, rounded up (nine
//!   hosts, 40%: four stay healthy, five at a time, four must succeed).
//! - `CodeDeployDefault.OneAtATime`: one host at a time, all but one kept
//!   healthy; a failure stops the deployment, except that a failure of the
//!   last host alone does not fail it.
//! - `CodeDeployDefault.HalfAtATime`: up to half at a time (rounded down),
//!   success when at least half (rounded up) succeeded.
//! - `CodeDeployDefault.AllAtOnce`: every host at once; success when at
//!   least one host succeeded.
//!
//! A custom minimum of `n` or more hosts leaves nothing to deploy: the
//! deployment fails at once (CodeDeploy's `HEALTH_CONSTRAINTS_INVALID`).
//! Every deployment needs at least one success (a deployment in which no
//! host took the revision never succeeds).

use cutover_spec::stack::applications::{HostsRule, MinimumHealthyHosts, MinimumHealthyHostsType};
use serde::{Deserialize, Serialize};

/// The numbers for one set of hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Hosts that must stay healthy (in service) while deploying.
    pub keep_healthy: usize,
    /// Hosts deployed at once, at most.
    pub concurrency: usize,
    /// Hosts that must succeed for the deployment to succeed.
    pub must_succeed: usize,
}

/// `value` of `m` for `n` hosts, as a host count (percentages rounded up).
pub fn minimum_of(m: &MinimumHealthyHosts, n: usize) -> usize {
    let v = m.value as usize;
    match m.kind {
        MinimumHealthyHostsType::HostCount => v,
        MinimumHealthyHostsType::FleetPercent => (n * v).div_ceil(100),
    }
}

/// The limits of `rule` for `n` hosts, or `None` when the rule leaves no
/// host to deploy (a custom minimum of `n` or more, or no hosts).
pub fn limits(rule: &HostsRule, n: usize) -> Option<Limits> {
    if n == 0 {
        return None;
    }
    let (keep, succeed) = match rule {
        HostsRule::OneAtATime => (n - 1, n - 1),
        HostsRule::HalfAtATime => (n - (n / 2).max(1), n.div_ceil(2)),
        HostsRule::AllAtOnce => (0, 1),
        HostsRule::Minimum(m) => {
            let keep = minimum_of(m, n);
            if keep >= n && keep > 0 {
                return None;
            }
            (keep, keep)
        }
    };
    Some(Limits {
        keep_healthy: keep,
        concurrency: (n - keep).max(1),
        must_succeed: succeed.max(1),
    })
}

/// The minimum healthy hosts of one zone (`minimumHealthyHostsPerZone`,
/// none by default) for `n` hosts in it; never all of them.
pub fn zone_keep(per_zone: Option<&MinimumHealthyHosts>, n: usize) -> usize {
    per_zone.map_or(0, |m| minimum_of(m, n).min(n.saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_spec::stack::applications::HostConfig;

    fn rule(name: &str) -> HostsRule {
        HostConfig::predefined(name).unwrap().rule
    }

    fn custom(kind: MinimumHealthyHostsType, value: u32) -> HostsRule {
        HostsRule::Minimum(MinimumHealthyHosts { kind, value })
    }

    #[test]
    fn the_documented_examples() {
        let l = limits(&custom(MinimumHealthyHostsType::HostCount, 6), 9).unwrap();
        assert_eq!((l.keep_healthy, l.concurrency, l.must_succeed), (6, 3, 6));
        let l = limits(&custom(MinimumHealthyHostsType::FleetPercent, 40), 9).unwrap();
        assert_eq!((l.keep_healthy, l.concurrency, l.must_succeed), (4, 5, 4));
    }

    #[test]
    fn predefined() {
        let one = limits(&rule("CodeDeployDefault.OneAtATime"), 3).unwrap();
        assert_eq!(
            (one.keep_healthy, one.concurrency, one.must_succeed),
            (2, 1, 2)
        );
        let half = limits(&rule("CodeDeployDefault.HalfAtATime"), 5).unwrap();
        assert_eq!(
            (half.keep_healthy, half.concurrency, half.must_succeed),
            (3, 2, 3)
        );
        let half1 = limits(&rule("CodeDeployDefault.HalfAtATime"), 1).unwrap();
        assert_eq!(
            (half1.keep_healthy, half1.concurrency, half1.must_succeed),
            (0, 1, 1)
        );
        let all = limits(&rule("CodeDeployDefault.AllAtOnce"), 4).unwrap();
        assert_eq!(
            (all.keep_healthy, all.concurrency, all.must_succeed),
            (0, 4, 1)
        );
        let one1 = limits(&rule("CodeDeployDefault.OneAtATime"), 1).unwrap();
        assert_eq!(
            (one1.keep_healthy, one1.concurrency, one1.must_succeed),
            (0, 1, 1)
        );
    }

    #[test]
    fn impossible_minimums() {
        assert_eq!(
            limits(&custom(MinimumHealthyHostsType::HostCount, 3), 3),
            None
        );
        assert_eq!(
            limits(&custom(MinimumHealthyHostsType::FleetPercent, 99), 10),
            None
        );
        assert_eq!(limits(&rule("CodeDeployDefault.AllAtOnce"), 0), None);
        assert!(limits(&custom(MinimumHealthyHostsType::FleetPercent, 89), 10).is_some());
    }

    #[test]
    fn zones() {
        let m = MinimumHealthyHosts {
            kind: MinimumHealthyHostsType::FleetPercent,
            value: 50,
        };
        assert_eq!(zone_keep(Some(&m), 3), 2);
        assert_eq!(zone_keep(Some(&m), 1), 0);
        assert_eq!(zone_keep(None, 5), 0);
    }
}
