//! The node policy simulated in virtual time: nodes with their groups on a
//! virtual LAN that delivers every frame to every other node after a delay.
//! What is checked is what the daemon's workers would be told (ownership,
//! hand-over) and when, against what the peers do on the wire.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use vipdrift_vmac::AddressMode;
use vipdrift_vrrp::advert::{parse_advert, ChecksumForm};
use vipdrift_vrrp::garp::GarpSettings;
use vipdrift_vrrp::node::{GroupId, InterfaceId, InterfaceInfo, Node, NodeAction, NodeEvent, Transition};
use vipdrift_vrrp::router::{Reason, State};
use vipdrift_vrrp::spec::GroupSpec;
use vipdrift_wire::{Family, MacAddr, Time};

const MS: u64 = 1000;

fn spec(name: &str, interface: &str, vrid: u8, priority: u8, interval_ms: u64, vips: &[&str]) -> GroupSpec {
    GroupSpec {
        name: name.into(),
        interface: interface.into(),
        family: Family::Ipv4,
        vrid,
        priority,
        advert_interval: Duration::from_millis(interval_ms),
        preempt: true,
        preempt_delay: Duration::ZERO,
        mode: AddressMode::Vmac,
        vips: vips.iter().map(|v| (v.parse().unwrap(), 24)).collect(),
        unicast_peers: vec![],
        checksum_form: ChecksumForm::PseudoHeader,
        garp: GarpSettings::default(),
        notify: None,
        deliver: None,
    }
}

fn interface(name: &str, last_octet: u8) -> InterfaceInfo {
    InterfaceInfo {
        name: name.into(),
        mac: MacAddr([2, 0, 0, 0, 0, last_octet]),
        ipv4: Some(IpAddr::from([198, 51, 100, last_octet])),
        ipv6: None,
    }
}

/// A node with one interface `eth0` and one group "web" (VRID 51).
fn node(priority: u8, last_octet: u8, interval_ms: u64) -> Node {
    let mut node = Node::new();
    node.add_interface(interface("eth0", last_octet), true);
    node.add_group(Time::ZERO, spec("web", "eth0", 51, priority, interval_ms, &["198.51.100.100"])).unwrap();
    node
}

/// What a node did, with when.
#[derive(Default)]
struct Log {
    /// (time, node, owned)
    owned: Vec<(u64, usize, bool)>,
    /// (time, node)
    hand_overs: Vec<(u64, usize)>,
    transitions: Vec<(usize, Transition)>,
    /// (time, node, advert priority) of every advert sent.
    adverts: Vec<(u64, usize, u8)>,
    /// Every action, in order, per node.
    actions: BTreeMap<usize, Vec<NodeAction>>,
}

struct Lan {
    nodes: Vec<Node>,
    alive: Vec<bool>,
    delay: Duration,
    in_flight: BTreeMap<(Time, u64), (usize, Vec<u8>)>,
    seq: u64,
    now: Time,
    log: Log,
}

impl Lan {
    fn new(nodes: Vec<Node>) -> Lan {
        let n = nodes.len();
        Lan {
            nodes,
            alive: vec![true; n],
            delay: Duration::from_micros(100),
            in_flight: BTreeMap::new(),
            seq: 0,
            now: Time::ZERO,
            log: Log::default(),
        }
    }

    /// Carries out what node `from` decided: frames onto the LAN, the rest into the log.
    fn drain(&mut self, from: usize) {
        let now = self.now.0;
        while let Some(action) = self.nodes[from].poll_action() {
            self.log.actions.entry(from).or_default().push(action.clone());
            match action {
                NodeAction::Transmit { frame, .. } => {
                    if let Ok(Some(advert)) = parse_advert(&frame) {
                        self.log.adverts.push((now, from, advert.advert.priority));
                    }
                    for to in (0..self.nodes.len()).filter(|&to| to != from) {
                        self.seq += 1;
                        self.in_flight.insert((self.now.after(self.delay), self.seq), (to, frame.clone()));
                    }
                }
                NodeAction::SetOwned { owned, .. } => self.log.owned.push((now, from, owned)),
                NodeAction::HandOver { .. } => self.log.hand_overs.push((now, from)),
                NodeAction::SetGroup { .. } | NodeAction::RemoveGroup { .. } => {}
            }
        }
        while let Some(NodeEvent::Transition(t)) = self.nodes[from].poll_event() {
            self.log.transitions.push((from, t));
        }
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.nodes[i].start(self.now);
            self.drain(i);
        }
    }

    fn run_until(&mut self, until: Time) {
        for _ in 0..1_000_000 {
            let next_timer = (0..self.nodes.len())
                .filter(|&i| self.alive[i])
                .filter_map(|i| self.nodes[i].poll_timeout().map(|t| (t, i)))
                .min();
            let next_frame = self.in_flight.keys().next().copied();
            let next = match (next_timer.map(|t| t.0), next_frame.map(|k| k.0)) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > until {
                break;
            }
            self.now = next;
            if let Some(key) = next_frame.filter(|k| k.0 == next) {
                let (to, frame) = self.in_flight.remove(&key).unwrap();
                if self.alive[to] {
                    self.nodes[to].handle_frame(self.now, InterfaceId(0), &frame);
                    self.drain(to);
                }
                continue;
            }
            if let Some((_, i)) = next_timer {
                self.nodes[i].handle_timeout(self.now);
                self.drain(i);
            }
        }
        self.now = until;
    }

    fn state(&self, node: usize) -> State {
        self.nodes[node].groups().next().unwrap().group.state()
    }

    fn last_owned(&self, node: usize) -> Option<(u64, bool)> {
        self.log.owned.iter().rev().find(|(_, n, _)| *n == node).map(|(t, _, o)| (*t, *o))
    }
}

/// A 200/100 pair at 10 ms adverts, settled: node 0 is master.
fn settled_pair() -> Lan {
    let mut lan = Lan::new(vec![node(200, 11, 10), node(100, 12, 10)]);
    lan.start_all();
    lan.run_until(Time(300 * MS));
    assert_eq!((lan.state(0), lan.state(1)), (State::Master, State::Backup));
    assert_eq!(lan.last_owned(0), Some((lan.log.owned[0].0, true)));
    lan
}

#[test]
fn a_stopping_master_keeps_answering_until_its_successor_advertises() {
    let mut lan = settled_pair();
    let stopped_at = lan.now.0;
    lan.nodes[0].shutdown(lan.now);
    lan.drain(0);
    assert_eq!(lan.log.hand_overs, vec![(stopped_at, 0)], "the workers are told to hand over");
    assert_eq!(lan.last_owned(0), Some((lan.log.owned[0].0, true)), "and still answer");
    assert!(lan.nodes[0].is_handing_over());
    assert!(lan.log.adverts.contains(&(stopped_at, 0, 0)), "a priority-0 advert");
    lan.run_until(Time(stopped_at + 100 * MS));

    let took_over = lan.log.transitions.iter().find(|(n, t)| *n == 1 && t.to == State::Master).unwrap().1.clone();
    assert_eq!(took_over.reason, Reason::MasterDown);
    let first_advert = lan.log.adverts.iter().find(|&&(t, n, p)| n == 1 && p == 100 && t >= took_over.at.0).unwrap();
    let (gave_up, owned) = lan.last_owned(0).unwrap();
    assert!(!owned);
    assert_eq!(gave_up, first_advert.0 + 100, "node 0 stops answering when the successor's advert arrives");
    assert!(!lan.nodes[0].is_handing_over());
    assert_eq!(lan.nodes[0].poll_timeout(), None, "nothing left to do");
}

#[test]
fn a_hand_over_nobody_takes_ends_after_four_intervals_and_a_margin() {
    let mut lan = Lan::new(vec![node(200, 11, 10)]);
    lan.start_all();
    lan.run_until(Time(300 * MS));
    assert_eq!(lan.state(0), State::Master);
    let stopped_at = lan.now.0;
    lan.nodes[0].shutdown(lan.now);
    lan.drain(0);
    assert_eq!(lan.nodes[0].poll_timeout(), Some(Time(stopped_at + 60 * MS)), "4 x 10 ms + 20 ms");
    lan.run_until(Time(stopped_at + 100 * MS));
    assert_eq!(lan.last_owned(0), Some((stopped_at + 60 * MS, false)));
}

#[test]
fn maintenance_hands_over_like_a_stop_and_the_group_stays_backup() {
    let mut lan = settled_pair();
    let at = lan.now;
    let lines = lan.nodes[0].set_maintenance(at, "web", true).unwrap();
    assert_eq!(lines, vec!["web (ipv4): maintenance on; was master, handing over (priority-0 advert sent)"]);
    lan.drain(0);
    assert_eq!(lan.log.hand_overs, vec![(at.0, 0)]);
    lan.run_until(Time(at.0 + 500 * MS));
    assert_eq!((lan.state(0), lan.state(1)), (State::Backup, State::Master));
    assert_eq!(lan.last_owned(0).map(|(_, o)| o), Some(false));
    assert_eq!(lan.nodes[0].set_maintenance(lan.now, "web", true).unwrap(), ["web (ipv4): maintenance already on"]);
    assert!(lan.nodes[0].set_maintenance(lan.now, "db", true).unwrap_err().contains("the groups are: web"));

    lan.nodes[0].set_maintenance(lan.now, "web", false).unwrap();
    lan.drain(0);
    lan.run_until(Time(lan.now.0 + 500 * MS));
    assert_eq!((lan.state(0), lan.state(1)), (State::Master, State::Backup), "priority 200 preempts again");
}

#[test]
fn a_link_loss_faults_only_that_interfaces_groups_and_counts_from_the_last_good_check() {
    let mut node = Node::new();
    node.add_interface(interface("eth0", 11), true);
    node.add_interface(interface("eth1", 21), true);
    let web = node.add_group(Time::ZERO, spec("web", "eth0", 51, 255, 10, &["198.51.100.100"])).unwrap();
    let db = node.add_group(Time::ZERO, spec("db", "eth1", 52, 255, 10, &["198.51.100.101"])).unwrap();
    let mut lan = Lan::new(vec![node]);
    lan.start_all();
    lan.run_until(Time(100 * MS));
    let state = |lan: &Lan, id: GroupId| lan.nodes[0].group(id).unwrap().group.state();
    assert_eq!((state(&lan, web), state(&lan, db)), (State::Master, State::Master), "owners start as masters");

    lan.nodes[0].handle_link(Time(100 * MS), InterfaceId(1), false, Time(95 * MS));
    lan.drain(0);
    assert_eq!((state(&lan, web), state(&lan, db)), (State::Master, State::Fault));
    let (_, fault) = lan.log.transitions.last().unwrap().clone();
    assert_eq!((fault.group, fault.reason, fault.elapsed), (db, Reason::LinkDown, Duration::from_millis(5)));
    assert_eq!(lan.last_owned(0).map(|(_, o)| o), Some(false), "db stops answering at once");

    lan.nodes[0].handle_link(Time(200 * MS), InterfaceId(1), true, Time(198 * MS));
    lan.drain(0);
    assert_eq!(state(&lan, db), State::Master, "the owner is master again at once");
    assert_eq!(lan.log.transitions.last().unwrap().1.elapsed, Duration::from_millis(2));
}

#[test]
fn a_takeover_reports_the_time_since_the_last_advert_heard() {
    let mut lan = settled_pair();
    lan.alive[0] = false;
    lan.in_flight.clear();
    let last_heard = lan.now.0;
    lan.run_until(Time(last_heard + 100 * MS));
    let (_, t) = lan.log.transitions.iter().rev().find(|(n, _)| *n == 1).unwrap().clone();
    assert_eq!((t.from, t.to, t.reason), (State::Backup, State::Master, Reason::MasterDown));
    assert!(t.elapsed >= Duration::from_millis(30) && t.elapsed <= Duration::from_micros(36_094 + 10_000));
    assert_eq!(t.elapsed, t.at.since(lan.nodes[1].group(GroupId(0)).unwrap().group.last_advert_heard().unwrap()));
}

#[test]
fn a_reload_sorts_groups_into_unchanged_changed_added_and_removed() {
    let mut node = Node::new();
    node.add_interface(interface("eth0", 11), true);
    let old = [
        spec("web", "eth0", 51, 200, 10, &["198.51.100.100"]),
        spec("db", "eth0", 52, 200, 10, &["198.51.100.101"]),
        spec("mail", "eth0", 53, 200, 10, &["198.51.100.102"]),
        spec("dns", "eth0", 54, 200, 10, &["198.51.100.103"]),
    ];
    let ids: Vec<GroupId> = old.iter().map(|s| node.add_group(Time::ZERO, s.clone()).unwrap()).collect();
    let mut db = old[1].clone();
    db.priority = 150;
    db.notify = Some(PathBuf::from("/usr/local/bin/hook"));
    let mut mail = old[2].clone();
    mail.vrid = 63;
    let new = [old[0].clone(), db.clone(), mail.clone(), spec("ntp", "eth0", 55, 100, 10, &["198.51.100.104"])];
    let plan = node.plan_reload(&new);
    assert_eq!(plan.unchanged, vec![ids[0]]);
    assert_eq!(plan.changed, vec![(ids[1], db, "priority 200 -> 150, notify".to_owned())]);
    assert_eq!(plan.removed, vec![(ids[2], "mail (ipv4)".to_owned(), 53), (ids[3], "dns (ipv4)".to_owned(), 54)]);
    assert_eq!(plan.added.iter().map(|s| (s.name.as_str(), s.vrid)).collect::<Vec<_>>(), [("mail", 63), ("ntp", 55)]);
    assert_eq!(
        plan.describe(),
        [
            "removed mail (ipv4) (vrid 53)",
            "removed dns (ipv4) (vrid 54)",
            "changed db (ipv4): priority 200 -> 150, notify",
            "added mail (ipv4, vrid 63)",
            "added ntp (ipv4, vrid 55)",
        ]
    );
    assert!(node.plan_reload(&old).is_empty());
    assert_eq!(node.plan_reload(&old).describe(), ["nothing changed"]);
}

#[test]
fn a_changed_master_tells_its_workers_the_new_vips_before_it_announces_them() {
    let mut lan = settled_pair();
    let mut changed = spec("web", "eth0", 51, 200, 10, &["198.51.100.100", "198.51.100.110"]);
    changed.garp.count = 1;
    lan.log.actions.clear();
    lan.nodes[0].change_group(lan.now, GroupId(0), changed).unwrap();
    lan.drain(0);
    let actions = &lan.log.actions[&0];
    let NodeAction::SetGroup { group, .. } = &actions[0] else { panic!("first the workers' view: {actions:?}") };
    assert_eq!(group.vips.len(), 2);
    assert!(group.owned, "the master keeps owning it");
    let garp_for_new_vip = actions.iter().position(|a| match a {
        NodeAction::Transmit { frame, .. } => frame[12..14] == [0x08, 0x06] && frame[38..42] == [198, 51, 100, 110],
        _ => false,
    });
    assert!(garp_for_new_vip.is_some_and(|at| at > 0), "then its announcement: {actions:?}");
    assert_eq!(lan.state(0), State::Master, "state kept");
}

#[test]
fn a_removed_master_resigns_and_stops_answering_at_once() {
    let mut lan = settled_pair();
    let at = lan.now.0;
    let removed = lan.nodes[0].remove_group(lan.now, GroupId(0)).unwrap();
    assert_eq!(removed.name, "web");
    lan.drain(0);
    assert_eq!(lan.last_owned(0), Some((at, false)), "no hand-over for a group with no future here");
    assert!(lan.log.adverts.contains(&(at, 0, 0)), "a priority-0 advert");
    assert!(matches!(lan.log.actions[&0].last(), Some(NodeAction::RemoveGroup { group: GroupId(0), .. })));
    assert_eq!(lan.nodes[0].groups().count(), 0);
    lan.run_until(Time(at + 100 * MS));
    assert_eq!(lan.state(1), State::Master);
}

#[test]
fn a_group_added_to_a_running_node_is_shown_to_the_workers_and_starts_as_backup() {
    let mut lan = settled_pair();
    lan.log.actions.clear();
    let id = lan.nodes[1].add_group(lan.now, spec("db", "eth0", 52, 100, 10, &["198.51.100.101"])).unwrap();
    lan.drain(1);
    assert!(matches!(&lan.log.actions[&1][0], NodeAction::SetGroup { group, .. } if group.id == id.0 && !group.owned));
    assert_eq!(lan.nodes[1].group(id).unwrap().group.state(), State::Backup);
    let e = lan.nodes[1].add_group(lan.now, spec("x", "eth9", 53, 100, 10, &["198.51.100.102"])).unwrap_err();
    assert_eq!(e.to_string(), "group `x`: interface `eth9` is not one of the node's interfaces");
}

#[test]
fn priority_changes_are_checked_and_the_owner_keeps_255() {
    let mut lan = settled_pair();
    let lines = lan.nodes[1].set_priority(lan.now, "web", 250).unwrap();
    assert_eq!(lines, ["web (ipv4): priority 100 -> 250"]);
    lan.drain(1);
    lan.run_until(Time(lan.now.0 + 100 * MS));
    assert_eq!((lan.state(0), lan.state(1)), (State::Backup, State::Master), "250 preempts 200");
    assert!(lan.nodes[1].set_priority(lan.now, "web", 255).unwrap_err().contains("out of range"));
    let mut owner = Node::new();
    owner.add_interface(interface("eth0", 11), true);
    owner.add_group(Time::ZERO, spec("web", "eth0", 51, 255, 10, &["198.51.100.100"])).unwrap();
    assert!(owner.set_priority(Time::ZERO, "web", 100).unwrap_err().contains("its priority is fixed"));
}

/// SIGSTOP, then SIGCONT: the frozen master's backup took over meanwhile.
/// The continued node's lease keeper reports a stall before anything else
/// runs, and the node owns nothing from that instant: the two never own the
/// VIP at once after the continue, until the election (here a preemption
/// by the higher priority, three intervals later) decides again.
#[test]
fn a_master_continued_after_a_stall_owns_nothing_until_it_wins_again() {
    let mut lan = settled_pair();
    lan.alive[0] = false;
    lan.in_flight.clear();
    let frozen_at = lan.now.0;
    lan.run_until(Time(frozen_at + 1_000 * MS));
    assert_eq!(lan.state(1), State::Master, "the backup took over while node 0 was frozen");
    assert_eq!(lan.state(0), State::Master, "node 0, frozen, still believes it is master");

    let continued_at = lan.now.0;
    lan.alive[0] = true;
    lan.nodes[0].handle_stall(lan.now, InterfaceId(0));
    lan.drain(0);
    assert_eq!(lan.state(0), State::Backup);
    assert_eq!(lan.last_owned(0), Some((continued_at, false)), "it lets go at once");
    let (_, t) = lan.log.transitions.iter().rev().find(|(n, _)| *n == 0).unwrap().clone();
    assert_eq!((t.from, t.to, t.reason), (State::Master, State::Backup, Reason::Stalled));
    assert!(!lan.log.adverts.iter().any(|&(at, n, p)| n == 0 && at == continued_at && p == 0), "no priority 0");

    lan.run_until(Time(continued_at + 200 * MS));
    let owned_again = lan.log.owned.iter().find(|&&(at, n, o)| n == 0 && o && at > continued_at).unwrap().0;
    assert!(owned_again >= continued_at + 30 * MS, "not before a master-down interval: {owned_again}");
    assert_eq!((lan.state(0), lan.state(1)), (State::Master, State::Backup), "then preempt as usual");
}

#[test]
fn a_master_whose_steering_program_was_replaced_faults_silently_and_stays_deaf() {
    let mut lan = settled_pair();
    let replaced_at = lan.now.0;
    lan.nodes[0].handle_program_replaced(lan.now, InterfaceId(0));
    lan.drain(0);
    assert_eq!(lan.state(0), State::Fault);
    assert!(lan.nodes[0].is_deaf(InterfaceId(0)));
    assert_eq!(lan.last_owned(0), Some((replaced_at, false)), "it lets go at once");
    let (_, t) = lan.log.transitions.iter().rev().find(|(n, _)| *n == 0).unwrap().clone();
    assert_eq!((t.from, t.to, t.reason), (State::Master, State::Fault, Reason::ProgramReplaced));

    // The carrier coming and going does not bring a deaf node back.
    lan.nodes[0].handle_link(lan.now, InterfaceId(0), false, lan.now);
    lan.nodes[0].handle_link(lan.now, InterfaceId(0), true, lan.now);
    lan.drain(0);
    lan.run_until(Time(replaced_at + 500 * MS));
    assert_eq!((lan.state(0), lan.state(1)), (State::Fault, State::Master), "the backup took over");
    assert!(!lan.log.adverts.iter().any(|&(at, n, _)| n == 0 && at >= replaced_at), "a deaf node never advertises");
}
