//! The lifecycle events of one host, in CodeDeploy's order, and which
//! revision's scripts each runs.
//!
//! | event | in place | in place + load balancer | blue/green: replacement | blue/green: original |
//! |---|---|---|---|---|
//! | BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic | | first | | yes |
//! | ApplicationStop | yes | yes | yes | |
//! | DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService | yes | yes | yes | |
//! | BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic | | last | yes | |
//!
//! `ApplicationStop`, `BeforeBlockTraffic` and `AfterBlockTraffic` run the
//! scripts of the last revision deployed successfully to that host (the
//! application being stopped or taken out is that one); they are left out
//! when the host has none. The other scripted events run the revision being
//! deployed. `DownloadBundle` and `Install` are the agent's own work;
//! `BlockTraffic` and `AllowTraffic` are the load balancer's (the host
//! leaves and returns to its target groups).

use cutover_spec::HostEvent;
use serde::{Deserialize, Serialize};

/// Whose scripts an event runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Revision {
    /// The last revision deployed successfully to the host.
    LastSuccessful,
    /// The revision being deployed.
    Target,
}

/// What performs a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// The agent runs the appspec's scripts of this event, from `Revision`.
    Scripts(Revision),
    /// The agent does its own work (`DownloadBundle`, `Install`).
    Agent,
    /// The host leaves its target groups (`BlockTraffic`).
    LeaveTargetGroups,
    /// The host returns to its target groups (`AllowTraffic`).
    ReturnToTargetGroups,
}

/// One step of a host's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Step {
    /// The event.
    pub event: HostEvent,
    /// Who performs it.
    pub action: Action,
}

/// Who performs `event` and, for scripts, from which revision.
pub fn action(event: HostEvent) -> Action {
    match event {
        HostEvent::DownloadBundle | HostEvent::Install => Action::Agent,
        HostEvent::BlockTraffic => Action::LeaveTargetGroups,
        HostEvent::AllowTraffic => Action::ReturnToTargetGroups,
        HostEvent::ApplicationStop
        | HostEvent::BeforeBlockTraffic
        | HostEvent::AfterBlockTraffic => Action::Scripts(Revision::LastSuccessful),
        _ => Action::Scripts(Revision::Target),
    }
}

const BLOCK: [HostEvent; 3] = [
    HostEvent::BeforeBlockTraffic,
    HostEvent::BlockTraffic,
    HostEvent::AfterBlockTraffic,
];
const INSTALL: [HostEvent; 7] = [
    HostEvent::ApplicationStop,
    HostEvent::DownloadBundle,
    HostEvent::BeforeInstall,
    HostEvent::Install,
    HostEvent::AfterInstall,
    HostEvent::ApplicationStart,
    HostEvent::ValidateService,
];
const ALLOW: [HostEvent; 3] = [
    HostEvent::BeforeAllowTraffic,
    HostEvent::AllowTraffic,
    HostEvent::AfterAllowTraffic,
];

/// Steps of `events`, without those that need a last successful revision
/// when the host has none.
fn steps(events: &[HostEvent], has_last_revision: bool) -> Vec<Step> {
    events
        .iter()
        .map(|&event| Step {
            event,
            action: action(event),
        })
        .filter(|s| has_last_revision || s.action != Action::Scripts(Revision::LastSuccessful))
        .collect()
}

/// An in-place deployment to one host: with a load balancer, it leaves its
/// target groups first and returns last.
pub fn in_place(load_balanced: bool, has_last_revision: bool) -> Vec<Step> {
    let mut events = Vec::with_capacity(13);
    if load_balanced {
        events.extend(BLOCK);
    }
    events.extend(INSTALL);
    if load_balanced {
        events.extend(ALLOW);
    }
    steps(&events, has_last_revision)
}

/// A replacement host of a blue/green deployment, up to (not including)
/// `AllowTraffic`, which moves traffic for all replacement hosts together.
pub fn replacement_install(has_last_revision: bool) -> Vec<Step> {
    let mut events = INSTALL.to_vec();
    events.push(HostEvent::BeforeAllowTraffic);
    steps(&events, has_last_revision)
}

/// A replacement host after traffic moved to it.
pub fn replacement_after_traffic() -> Vec<Step> {
    steps(&[HostEvent::AfterAllowTraffic], true)
}

/// An original host of a blue/green deployment, once traffic is on the
/// replacement hosts: it leaves its target groups.
pub fn original_block(has_last_revision: bool) -> Vec<Step> {
    steps(&BLOCK, has_last_revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(steps: &[Step]) -> Vec<&'static str> {
        steps.iter().map(|s| s.event.as_str()).collect()
    }

    #[test]
    fn in_place_orders() {
        assert_eq!(
            events(&in_place(false, true)),
            [
                "ApplicationStop",
                "DownloadBundle",
                "BeforeInstall",
                "Install",
                "AfterInstall",
                "ApplicationStart",
                "ValidateService"
            ]
        );
        let lb = in_place(true, true);
        assert_eq!(
            events(&lb[..3]),
            ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
        );
        assert_eq!(
            events(&lb[10..]),
            ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
        );
        assert_eq!(lb.len(), 13);
        // A first deployment has no application to stop or take out.
        let first = in_place(true, false);
        assert_eq!(events(&first[..2]), ["BlockTraffic", "DownloadBundle"]);
        assert_eq!(first.len(), 10);
    }

    #[test]
    fn revisions_and_actors() {
        assert_eq!(
            action(HostEvent::ApplicationStop),
            Action::Scripts(Revision::LastSuccessful)
        );
        assert_eq!(
            action(HostEvent::ValidateService),
            Action::Scripts(Revision::Target)
        );
        assert_eq!(action(HostEvent::Install), Action::Agent);
        assert_eq!(action(HostEvent::BlockTraffic), Action::LeaveTargetGroups);
        assert_eq!(
            action(HostEvent::AllowTraffic),
            Action::ReturnToTargetGroups
        );
        for e in HostEvent::ALL {
            // What takes scripts in an appspec is exactly what runs scripts here.
            assert_eq!(
                e.takes_scripts(),
                matches!(action(e), Action::Scripts(_)),
                "{e}"
            );
        }
    }

    #[test]
    fn blue_green_orders() {
        assert_eq!(
            events(&replacement_install(false)).last(),
            Some(&"BeforeAllowTraffic")
        );
        assert_eq!(events(&replacement_install(false))[0], "DownloadBundle");
        assert_eq!(events(&replacement_after_traffic()), ["AfterAllowTraffic"]);
        assert_eq!(
            events(&original_block(true)),
            ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
        );
    }
}
