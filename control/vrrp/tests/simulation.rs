//! Failover simulated in virtual time: VRRP groups on a virtual LAN that
//! delivers every frame to every other node after a delay, with nodes that
//! can be killed, cut off and healed. No sockets, no clock.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;
use vipdrift_vmac::AddressMode;
use vipdrift_vrrp::advert::ChecksumForm;
use vipdrift_vrrp::garp::GarpSettings;
use vipdrift_vrrp::group::{GroupConfig, Output, VrrpGroup};
use vipdrift_vrrp::router::State;
use vipdrift_wire::{MacAddr, Time};

const MS: u64 = 1000;

fn node(priority: u8, last_octet: u8, interval_ms: u64) -> VrrpGroup {
    VrrpGroup::new(GroupConfig {
        vrid: 51,
        priority,
        advert_interval: Duration::from_millis(interval_ms),
        preempt: true,
        preempt_delay: Duration::ZERO,
        vips: vec!["198.51.100.100".parse().unwrap()],
        primary: IpAddr::from([198, 51, 100, last_octet]),
        interface_mac: MacAddr([2, 0, 0, 0, 0, last_octet]),
        mode: AddressMode::Vmac,
        unicast_peers: vec![],
        checksum_form: ChecksumForm::PseudoHeader,
        garp: GarpSettings::default(),
    })
}

/// What a node did, with when.
#[derive(Default)]
struct Log {
    transitions: Vec<(u64, usize, State, State)>,
    /// Per node: when it last received a frame.
    last_heard: BTreeMap<usize, u64>,
    first_garp_after: BTreeMap<usize, Vec<u64>>,
}

struct Lan {
    nodes: Vec<VrrpGroup>,
    alive: Vec<bool>,
    /// Nodes cut off from the LAN (they run, but nothing gets in or out).
    cut: Vec<bool>,
    delay: Duration,
    /// (deliver at, sequence) -> (to, frame)
    in_flight: BTreeMap<(Time, u64), (usize, Vec<u8>)>,
    seq: u64,
    now: Time,
    log: Log,
}

impl Lan {
    fn new(nodes: Vec<VrrpGroup>, delay: Duration) -> Lan {
        let n = nodes.len();
        Lan {
            nodes,
            alive: vec![true; n],
            cut: vec![false; n],
            delay,
            in_flight: BTreeMap::new(),
            seq: 0,
            now: Time(0),
            log: Log::default(),
        }
    }

    fn emit(&mut self, from: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Frame(frame) => {
                    if frame[12..14] == [0x08, 0x06] {
                        self.log.first_garp_after.entry(from).or_default().push(self.now.0);
                    }
                    if self.cut[from] {
                        continue;
                    }
                    for to in 0..self.nodes.len() {
                        if to != from {
                            self.seq += 1;
                            self.in_flight.insert((self.now.after(self.delay), self.seq), (to, frame.clone()));
                        }
                    }
                }
                Output::Transition { from: old, to, .. } => self.log.transitions.push((self.now.0, from, old, to)),
                Output::Own(_) => {}
            }
        }
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            let mut out = Vec::new();
            self.nodes[i].start(self.now, &mut out);
            self.emit(i, out);
        }
    }

    /// Runs until `until`, bounded in steps.
    fn run_until(&mut self, until: Time) {
        for _ in 0..1_000_000 {
            let next_timer = (0..self.nodes.len())
                .filter(|i| self.alive[*i])
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
                if self.alive[to] && !self.cut[to] {
                    self.log.last_heard.insert(to, self.now.0);
                    let mut out = Vec::new();
                    self.nodes[to].handle_frame(self.now, &frame, &mut out);
                    self.emit(to, out);
                }
                continue;
            }
            if let Some((_, i)) = next_timer {
                let mut out = Vec::new();
                self.nodes[i].handle_timeout(self.now, &mut out);
                self.emit(i, out);
            }
        }
        self.now = until;
    }

    fn states(&self) -> Vec<State> {
        self.nodes.iter().map(|n| n.state()).collect()
    }
}

#[test]
fn the_higher_priority_node_becomes_master_and_the_other_stays_backup() {
    let mut lan = Lan::new(vec![node(200, 11, 10), node(100, 12, 10)], Duration::from_micros(100));
    lan.start_all();
    lan.run_until(Time(500 * MS));
    assert_eq!(lan.states(), vec![State::Master, State::Backup]);
    assert_eq!(lan.nodes[1].counters().transitions, 1, "the backup never flapped");
    assert!(lan.nodes[1].counters().adverts_received >= 40, "it heard the master every 10 ms");
    assert_eq!(lan.nodes[1].counters().pseudo_header_checksums, lan.nodes[1].counters().adverts_received);
}

#[test]
fn a_killed_master_is_replaced_within_the_master_down_interval_and_the_new_master_garps_at_once() {
    let mut lan = Lan::new(vec![node(200, 11, 10), node(100, 12, 10)], Duration::from_micros(100));
    lan.start_all();
    lan.run_until(Time(500 * MS));
    lan.alive[0] = false;
    lan.in_flight.retain(|_, (to, _)| *to != 0);
    lan.run_until(Time(600 * MS));
    assert_eq!(lan.states()[1], State::Master);
    let (at, who, from, to) = *lan.log.transitions.last().unwrap();
    assert_eq!((who, from, to), (1, State::Backup, State::Master));
    // Master_Down_Interval at priority 100, 10 ms: 3 x 10 ms + 6.09 ms skew.
    let dark = at - lan.log.last_heard[&1];
    assert!(dark <= 36_094 + 100, "took over {dark} µs after the last advert");
    assert!(dark >= 30_000, "not before three intervals: {dark} µs");
    let garps = &lan.log.first_garp_after[&1];
    assert_eq!(garps[0], at, "first GARP in the same instant as the takeover");
    assert_eq!(garps.len(), 6, "the first burst and its quick repeat; the second burst comes a second later");
    assert_eq!(garps[1], at + 1000, "the quick repeat, 1 ms after the first");
}

#[test]
fn a_graceful_stop_hands_over_after_skew_time() {
    let mut lan = Lan::new(vec![node(200, 11, 1000), node(100, 12, 1000)], Duration::from_micros(100));
    lan.start_all();
    lan.run_until(Time(5000 * MS));
    let mut out = Vec::new();
    lan.nodes[0].shutdown(lan.now, &mut out);
    let stopped_at = lan.now.0;
    lan.emit(0, out);
    lan.alive[0] = false;
    lan.run_until(Time(7000 * MS));
    let (at, who, _, to) = *lan.log.transitions.last().unwrap();
    assert_eq!((who, to), (1, State::Master));
    // Skew_Time at priority 100, 1 s: 609.375 ms (plus the 0.1 ms wire).
    assert_eq!(at - stopped_at, 609_375 + 100);
}

/// Two nodes on a LAN with `delay`: settled for 300 ms, partitioned for
/// 300 ms (both become master), healed for 100 ms. Returns the LAN and, from
/// just before the heal, the winner's announcement and split-brain counts.
fn partition_and_heal(delay: Duration) -> (Lan, usize, u64) {
    let mut lan = Lan::new(vec![node(200, 11, 10), node(100, 12, 10)], delay);
    lan.start_all();
    lan.run_until(Time(300 * MS));
    lan.cut = vec![true, true];
    lan.run_until(Time(600 * MS));
    assert_eq!(lan.states(), vec![State::Master, State::Master], "partitioned: both master");
    let garps_before = lan.log.first_garp_after[&0].len();
    let episodes_before = lan.nodes[0].counters().split_brains;
    lan.cut = vec![false, false];
    lan.run_until(Time(700 * MS));
    assert_eq!(lan.states(), vec![State::Master, State::Backup], "healed: one master");
    (lan, garps_before, episodes_before)
}

#[test]
fn a_healed_split_brain_leaves_one_master_and_the_loser_counts_it() {
    let (lan, garps_before, _) = partition_and_heal(Duration::from_micros(100));
    let (winner, loser) = (lan.nodes[0].counters(), lan.nodes[1].counters());
    assert_eq!(loser.split_brains, 1, "the loser yielded once");
    // Even when the winner's advert reached the loser first, the loser's
    // parting advert tells the winner, which re-announces.
    assert!(winner.split_brains > 0, "the winner heard of the split brain");
    assert!(lan.log.first_garp_after[&0].len() > garps_before, "and re-announced");
    assert_eq!(winner.malformed + loser.malformed, 0);
}

#[test]
fn when_the_winner_hears_the_loser_it_announces_again() {
    // 5 ms of wire delay: after the heal both speak before hearing each
    // other, so the winner hears the lower master. (It also turns the
    // start-up into a brief split brain, hence counts from before the heal.)
    let (lan, garps_before, episodes_before) = partition_and_heal(Duration::from_millis(5));
    assert_eq!(lan.nodes[0].counters().split_brains - episodes_before, 1, "heard the lower master, once");
    assert!(lan.log.first_garp_after[&0].len() > garps_before, "and announced again");
}

#[test]
fn maintenance_hands_the_group_over_and_keeps_it_away_until_off() {
    let mut lan = Lan::new(vec![node(200, 11, 10), node(100, 12, 10)], Duration::from_micros(100));
    lan.start_all();
    lan.run_until(Time(300 * MS));
    let mut out = Vec::new();
    lan.nodes[0].set_maintenance(lan.now, true, &mut out);
    let on_at = lan.now.0;
    assert!(out.contains(&Output::Own(false)), "the resigning master lets go: {out:?}");
    lan.emit(0, out);
    lan.run_until(Time(310 * MS));
    let (at, who, _, to) = *lan.log.transitions.last().unwrap();
    assert_eq!((who, to), (1, State::Master), "the backup took over");
    // Skew_Time at priority 100, 10 ms: 6.09 ms, plus the wire.
    assert!(at - on_at <= 6_094 + 100, "after skew time, not a master-down interval: {} µs", at - on_at);
    lan.run_until(Time(2000 * MS));
    assert_eq!(lan.states(), vec![State::Backup, State::Master], "higher priority, preempt, but in maintenance");
    assert!(lan.nodes[0].maintenance());
    assert_eq!(lan.nodes[0].master(), Some(("198.51.100.12".parse().unwrap(), 100, false)));
    assert_eq!(lan.nodes[1].master(), Some(("198.51.100.12".parse().unwrap(), 100, true)));

    let mut out = Vec::new();
    lan.nodes[0].set_maintenance(lan.now, false, &mut out);
    lan.emit(0, out);
    lan.run_until(Time(2100 * MS));
    assert_eq!(lan.states(), vec![State::Master, State::Backup], "off: preempt takes it back");
}

#[test]
fn a_lowered_priority_lets_the_backup_preempt_and_new_vips_are_announced() {
    let mut lan = Lan::new(vec![node(200, 11, 10), node(100, 12, 10)], Duration::from_micros(100));
    lan.start_all();
    lan.run_until(Time(300 * MS));

    // A VIP added to the running master: it advertises the new list and announces at once.
    let mut config = lan.nodes[0].config().clone();
    config.vips.push("198.51.100.101".parse().unwrap());
    let mut out = Vec::new();
    lan.nodes[0].reconfigure(lan.now, config, &mut out);
    let garps: Vec<&Vec<u8>> =
        out.iter().filter_map(|o| if let Output::Frame(f) = o { Some(f) } else { None }).collect();
    let announced = |ip: [u8; 4]| garps.iter().any(|f| f[12..14] == [0x08, 0x06] && f[28..32] == ip);
    assert!(announced([198, 51, 100, 100]) && announced([198, 51, 100, 101]), "both VIPs announced");
    lan.emit(0, out);
    lan.run_until(Time(400 * MS));
    assert_eq!(lan.states(), vec![State::Master, State::Backup], "nothing else changed");

    let mut out = Vec::new();
    lan.nodes[0].set_priority(lan.now, 50, &mut out);
    let changed_at = lan.now.0;
    lan.emit(0, out);
    lan.run_until(Time(500 * MS));
    assert_eq!(lan.states(), vec![State::Backup, State::Master], "the backup now outranks it and preempts");
    let (at, who, _, _) = *lan.log.transitions.iter().find(|t| t.0 > changed_at && t.1 == 1).unwrap();
    assert_eq!(who, 1);
    assert!(at - changed_at <= 37 * MS, "within a master-down interval: {} µs", at - changed_at);
}
