//! Receive load balancing by ARP negotiation (the bonding driver's
//! balance-alb), sans-IO: which of a node's NICs each client is told a VIP
//! lives on, remembered per client so its traffic never reorders across NICs.
//!
//! The table is bounded: at most `capacity` clients, the least recently
//! heard evicted first, so a flood of spoofed sender addresses costs a fixed
//! amount of memory and pushes out only clients that went quiet. Storage is
//! allocated once, in [`Assignments::new`]; answering a client never
//! allocates. What to send is returned as [`Update`]s (a unicast ARP reply to
//! one client, telling it its NIC's MAC):
//!
//! - a NIC that loses its link hands its clients to the least loaded
//!   survivors at once ([`Assignments::nic_down`]);
//! - a NIC that returns takes new clients first, and existing ones a few at a
//!   time ([`Assignments::rebalance`]), so a recovery is not a storm;
//! - when this node broadcasts an ARP request from a VIP, every client that
//!   hears it relearns the request's sender MAC; [`Assignments::refresh_all`]
//!   marks every client to be told its own NIC again, and
//!   [`Assignments::due_updates`] hands them out in bounded bursts, after a
//!   delay so the replies land after the request.
//!
//! Unlike bonding's 256-slot table indexed by a hash of the client address,
//! where two colliding clients evict each other, clients here never collide.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;
use vipdrift_wire::MacAddr;
use vipdrift_wire::Time;

const NONE: u32 = u32::MAX;

/// A client told to use one of the NICs' MACs for a VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    /// The client's address.
    pub client: Ipv4Addr,
    /// The client's MAC (where the unicast ARP reply goes).
    pub client_mac: MacAddr,
    /// The NIC it is assigned to, by index.
    pub nic: usize,
    /// That NIC's MAC (the reply's sender hardware address).
    pub mac: MacAddr,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    client: Ipv4Addr,
    client_mac: MacAddr,
    nic: u32,
    last_heard: Time,
    /// Tell the client its NIC again at this time (see `refresh_all`).
    update_at: Option<Time>,
    /// Least recently heard order: towards the tail is older.
    newer: u32,
    older: u32,
}

#[derive(Clone, Copy, Debug)]
struct Nic {
    mac: MacAddr,
    up: bool,
    clients: usize,
}

vipdrift_wire::counter_set! {
    /// What the table did.
    pub struct AlbCounters {
        /// Clients assigned for the first time.
        assigned: table => "assigned",
        /// Clients pushed out to make room (least recently heard first).
        evicted: table => "evicted",
        /// Clients moved to another NIC (link loss or rebalance).
        moved: table => "moved",
        /// Requests that could not be answered: no NIC had its link.
        no_nic_up: table => "no_nic_up",
    }
}

/// The client → NIC table of one group of NICs.
#[derive(Debug)]
pub struct Assignments {
    nics: Vec<Nic>,
    index: HashMap<Ipv4Addr, u32>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
    capacity: usize,
    counters: AlbCounters,
}

impl Assignments {
    /// A table for NICs with these MACs (all up), holding at most `capacity` clients (at least 1).
    pub fn new(nic_macs: &[MacAddr], capacity: usize) -> Assignments {
        let capacity = capacity.clamp(1, NONE as usize - 1);
        Assignments {
            nics: nic_macs.iter().map(|&mac| Nic { mac, up: true, clients: 0 }).collect(),
            // Twice the room: with a flood replacing clients, deleted slots
            // pile up, and the map cleans them in place (no allocation) only
            // while it is at most half full.
            index: HashMap::with_capacity(2 * capacity),
            entries: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            newest: NONE,
            oldest: NONE,
            capacity,
            counters: AlbCounters::default(),
        }
    }

    /// Clients per NIC, by index.
    pub fn clients_per_nic(&self) -> Vec<usize> {
        self.nics.iter().map(|n| n.clients).collect()
    }

    /// Clients in the table.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// No clients.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Counters so far.
    pub fn counters(&self) -> AlbCounters {
        self.counters
    }

    /// Whether NIC `nic` has its link.
    pub fn is_up(&self, nic: usize) -> bool {
        self.nics.get(nic).is_some_and(|n| n.up)
    }

    /// The NIC `client` is assigned to, if it is in the table.
    pub fn assigned(&self, client: Ipv4Addr) -> Option<usize> {
        self.index.get(&client).map(|&e| self.entries[e as usize].nic as usize)
    }

    /// `client` (at `client_mac`) asked for a VIP at `now`: the NIC to answer
    /// with and its MAC. The same client gets the same NIC as long as that
    /// NIC is up; a new one gets the NIC with the fewest clients. `None` when
    /// no NIC is up.
    pub fn answer(&mut self, now: Time, client: Ipv4Addr, client_mac: MacAddr) -> Option<(usize, MacAddr)> {
        if let Some(&e) = self.index.get(&client) {
            let entry = &mut self.entries[e as usize];
            entry.last_heard = now;
            entry.client_mac = client_mac;
            let nic = entry.nic as usize;
            self.unlink(e);
            self.link_newest(e);
            if self.nics[nic].up {
                return Some((nic, self.nics[nic].mac));
            }
            // Its NIC is down and nothing has moved it yet.
            let to = self.least_loaded()?;
            self.reassign(e, to);
            return Some((to, self.nics[to].mac));
        }
        if self.least_loaded().is_none() {
            self.counters.no_nic_up += 1;
            return None;
        }
        if self.index.len() >= self.capacity {
            self.evict_oldest();
        }
        let nic = self.least_loaded()?;
        let entry =
            Entry { client, client_mac, nic: nic as u32, last_heard: now, update_at: None, newer: NONE, older: NONE };
        let e = match self.free.pop() {
            Some(e) => {
                self.entries[e as usize] = entry;
                e
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        self.index.insert(client, e);
        self.link_newest(e);
        self.nics[nic].clients += 1;
        self.counters.assigned += 1;
        Some((nic, self.nics[nic].mac))
    }

    /// NIC `nic` lost its link: each of its clients goes to the least loaded
    /// NIC still up, and is to be told at once. Nothing moves when no NIC is up.
    pub fn nic_down(&mut self, nic: usize) -> Vec<Update> {
        let Some(n) = self.nics.get_mut(nic) else { return Vec::new() };
        n.up = false;
        let stranded: Vec<u32> = self.walk().filter(|&e| self.entries[e as usize].nic as usize == nic).collect();
        let mut updates = Vec::with_capacity(stranded.len());
        for e in stranded {
            let Some(to) = self.least_loaded() else { break };
            self.reassign(e, to);
            updates.push(self.update(e));
        }
        updates
    }

    /// NIC `nic` has its link again: new clients go to it first (it has the
    /// fewest); [`Assignments::rebalance`] moves existing ones back gradually.
    pub fn nic_up(&mut self, nic: usize) {
        if let Some(n) = self.nics.get_mut(nic) {
            n.up = true;
        }
    }

    /// Moves at most `max_moves` clients, the least recently heard first,
    /// from the most to the least loaded NIC that is up, while they differ
    /// by more than one. Call it periodically after a NIC returns.
    pub fn rebalance(&mut self, max_moves: usize) -> Vec<Update> {
        let mut updates = Vec::new();
        while updates.len() < max_moves {
            let Some(to) = self.least_loaded() else { break };
            let Some(from) = self.most_loaded_up() else { break };
            if self.nics[from].clients <= self.nics[to].clients + 1 {
                break;
            }
            let Some(e) = self.walk_oldest_first().find(|&e| self.entries[e as usize].nic as usize == from) else {
                break;
            };
            self.reassign(e, to);
            updates.push(self.update(e));
        }
        updates
    }

    /// This node just broadcast an ARP request from a VIP with `sender_mac`,
    /// which every client that hears it learns: each client assigned to
    /// another NIC is to be told its own NIC again from `at` on.
    pub fn refresh_all(&mut self, at: Time, sender_mac: MacAddr) {
        let mut e = self.newest;
        while e != NONE {
            let entry = &mut self.entries[e as usize];
            if self.nics[entry.nic as usize].mac != sender_mac {
                entry.update_at = Some(at);
            }
            e = entry.older;
        }
    }

    /// The updates due at `now`, at most `max` (a burst); the rest stay due.
    pub fn due_updates(&mut self, now: Time, max: usize) -> Vec<Update> {
        let due: Vec<u32> =
            self.walk().filter(|&e| self.entries[e as usize].update_at.is_some_and(|t| t <= now)).take(max).collect();
        due.into_iter()
            .map(|e| {
                self.entries[e as usize].update_at = None;
                self.update(e)
            })
            .collect()
    }

    /// Forgets clients not heard since `now - max_age`; returns how many.
    pub fn expire(&mut self, now: Time, max_age: Duration) -> usize {
        let mut expired = 0;
        while self.oldest != NONE {
            let e = self.oldest;
            if now.since(self.entries[e as usize].last_heard) <= max_age {
                break;
            }
            self.remove(e);
            expired += 1;
        }
        expired
    }

    fn update(&self, e: u32) -> Update {
        let entry = &self.entries[e as usize];
        let nic = entry.nic as usize;
        Update { client: entry.client, client_mac: entry.client_mac, nic, mac: self.nics[nic].mac }
    }

    fn reassign(&mut self, e: u32, to: usize) {
        let from = self.entries[e as usize].nic as usize;
        self.nics[from].clients -= 1;
        self.nics[to].clients += 1;
        self.entries[e as usize].nic = to as u32;
        self.counters.moved += 1;
    }

    /// The up NIC with the fewest clients (lowest index on ties).
    fn least_loaded(&self) -> Option<usize> {
        (0..self.nics.len()).filter(|&i| self.nics[i].up).min_by_key(|&i| self.nics[i].clients)
    }

    fn most_loaded_up(&self) -> Option<usize> {
        (0..self.nics.len()).filter(|&i| self.nics[i].up).max_by_key(|&i| (self.nics[i].clients, usize::MAX - i))
    }

    fn evict_oldest(&mut self) {
        if self.oldest != NONE {
            self.remove(self.oldest);
            self.counters.evicted += 1;
        }
    }

    fn remove(&mut self, e: u32) {
        self.unlink(e);
        let entry = self.entries[e as usize];
        self.index.remove(&entry.client);
        self.nics[entry.nic as usize].clients -= 1;
        self.entries[e as usize].update_at = None;
        self.free.push(e);
    }

    fn link_newest(&mut self, e: u32) {
        self.entries[e as usize].newer = NONE;
        self.entries[e as usize].older = self.newest;
        if self.newest != NONE {
            self.entries[self.newest as usize].newer = e;
        }
        self.newest = e;
        if self.oldest == NONE {
            self.oldest = e;
        }
    }

    fn unlink(&mut self, e: u32) {
        let Entry { newer, older, .. } = self.entries[e as usize];
        if newer != NONE {
            self.entries[newer as usize].older = older;
        } else {
            self.newest = older;
        }
        if older != NONE {
            self.entries[older as usize].newer = newer;
        } else {
            self.oldest = newer;
        }
    }

    /// Clients, most recently heard first.
    fn walk(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors((self.newest != NONE).then_some(self.newest), |&e| {
            let older = self.entries[e as usize].older;
            (older != NONE).then_some(older)
        })
    }

    /// Clients, least recently heard first.
    fn walk_oldest_first(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors((self.oldest != NONE).then_some(self.oldest), |&e| {
            let newer = self.entries[e as usize].newer;
            (newer != NONE).then_some(newer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIC0: MacAddr = MacAddr([2, 0, 0, 0, 1, 0]);
    const NIC1: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);

    fn client(n: u32) -> (Ipv4Addr, MacAddr) {
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 51, 100, 0)) + n);
        let b = n.to_be_bytes();
        (ip, MacAddr([2, 0xc, b[0], b[1], b[2], b[3]]))
    }

    fn ms(n: u64) -> Time {
        Time::from_origin(Duration::from_millis(n))
    }

    fn ask(table: &mut Assignments, at: u64, n: u32) -> Option<(usize, MacAddr)> {
        let (ip, mac) = client(n);
        table.answer(ms(at), ip, mac)
    }

    #[test]
    fn clients_split_evenly_and_keep_their_nic() {
        let mut table = Assignments::new(&[NIC0, NIC1], 64);
        let first: Vec<usize> = (1..=8).map(|n| ask(&mut table, 0, n).unwrap().0).collect();
        assert_eq!(table.clients_per_nic(), vec![4, 4]);
        assert_eq!(first, vec![0, 1, 0, 1, 0, 1, 0, 1], "each new client to the least loaded");
        for round in 1..5 {
            let again: Vec<usize> = (1..=8).rev().map(|n| ask(&mut table, round * 100, n).unwrap().0).collect();
            assert_eq!(again, first.iter().rev().copied().collect::<Vec<_>>(), "same client, same NIC");
        }
        assert_eq!(ask(&mut table, 999, 3), Some((0, NIC0)), "answered with the NIC's MAC");
        assert_eq!(table.counters().assigned, 8);
    }

    #[test]
    fn a_lost_nic_hands_its_clients_over_and_a_returning_one_takes_them_back_gradually() {
        let mut table = Assignments::new(&[NIC0, NIC1], 64);
        for n in 1..=8 {
            ask(&mut table, 0, n);
        }
        let moved = table.nic_down(1);
        assert_eq!(moved.len(), 4, "every client of NIC 1 is told");
        assert!(moved.iter().all(|u| u.nic == 0 && u.mac == NIC0));
        let mut told: Vec<Ipv4Addr> = moved.iter().map(|u| u.client).collect();
        told.sort();
        assert_eq!(told, [2, 4, 6, 8].map(|n| client(n).0).to_vec());
        assert_eq!(moved[0].client_mac, client(moved[0].client.octets()[3] as u32).1, "to the client's own MAC");
        assert_eq!(table.clients_per_nic(), vec![8, 0]);
        assert_eq!(ask(&mut table, 10, 9), Some((0, NIC0)), "new clients avoid the dead NIC");
        assert!(table.nic_down(0).is_empty(), "nowhere to go");
        assert_eq!(ask(&mut table, 11, 10), None);
        assert_eq!(table.counters().no_nic_up, 1);

        table.nic_up(0);
        table.nic_up(1);
        assert_eq!(ask(&mut table, 20, 11), Some((1, NIC1)), "a returning NIC takes new clients first");
        let mut bursts = Vec::new();
        loop {
            let burst = table.rebalance(2);
            if burst.is_empty() {
                break;
            }
            assert!(burst.len() <= 2 && burst.iter().all(|u| u.nic == 1));
            bursts.push(burst.len());
        }
        assert_eq!(table.clients_per_nic(), vec![5, 5], "balanced within one");
        assert_eq!(bursts, vec![2, 2], "two bursts of two, not a storm");
        assert!(table.rebalance(2).is_empty(), "balanced tables do not churn");
    }

    #[test]
    fn a_flood_of_spoofed_clients_stays_within_capacity_and_keeps_active_ones() {
        let capacity = 1024;
        let mut table = Assignments::new(&[NIC0, NIC1], capacity);
        let (real, real_mac) = client(1);
        let nic = table.answer(ms(0), real, real_mac).unwrap().0;
        let storage = (table.entries.capacity(), table.index.capacity(), table.free.capacity());
        for n in 0..100_000u32 {
            ask(&mut table, 1 + u64::from(n / 1000), 10_000 + n);
            if n % 500 == 0 {
                // The real client keeps talking: it is never the least recently heard.
                assert_eq!(table.answer(ms(1 + u64::from(n / 1000)), real, real_mac).unwrap().0, nic);
            }
        }
        assert_eq!(table.len(), capacity);
        // The map's reported capacity dips as deleted slots pile up and
        // returns when it cleans them in place; a reallocation would double it.
        assert_eq!((table.entries.capacity(), table.free.capacity()), (storage.0, storage.2), "no growth");
        assert!(table.index.capacity() <= storage.1, "the map never grew: {} > {}", table.index.capacity(), storage.1);
        assert_eq!(table.assigned(real), Some(nic), "the real client kept its NIC");
        assert_eq!(table.counters().evicted, 100_001 - capacity as u64);
        let per_nic = table.clients_per_nic();
        assert_eq!(per_nic.iter().sum::<usize>(), capacity);
        assert!(per_nic[0].abs_diff(per_nic[1]) <= 1, "{per_nic:?}");
    }

    #[test]
    fn after_our_own_arp_request_the_clients_it_misled_are_told_again_in_bursts() {
        let mut table = Assignments::new(&[NIC0, NIC1], 64);
        for n in 1..=10 {
            ask(&mut table, 0, n);
        }
        // The request carried NIC 0's MAC: only NIC 1's five clients were misled.
        table.refresh_all(ms(2000), NIC0);
        assert!(table.due_updates(ms(1999), 2).is_empty(), "not before the delay");
        let first = table.due_updates(ms(2000), 2);
        let second = table.due_updates(ms(2100), 2);
        let third = table.due_updates(ms(2200), 2);
        assert_eq!((first.len(), second.len(), third.len()), (2, 2, 1));
        for u in first.iter().chain(&second).chain(&third) {
            assert_eq!((u.nic, u.mac), (1, NIC1), "each told its own NIC");
            assert_eq!(Some(u.nic), table.assigned(u.client));
            assert_eq!(client(u32::from(u.client.octets()[3])).1, u.client_mac);
        }
        assert!(table.due_updates(ms(5000), 10).is_empty());
    }

    #[test]
    fn quiet_clients_expire_oldest_first_and_their_slots_are_reused() {
        let mut table = Assignments::new(&[NIC0, NIC1], 8);
        for n in 1..=6 {
            ask(&mut table, u64::from(n) * 1000, n);
        }
        assert_eq!(table.expire(ms(10_000), Duration::from_millis(6_500)), 3, "heard at 1, 2 and 3 s");
        assert_eq!(table.len(), 3);
        assert_eq!(table.assigned(client(3).0), None);
        assert!(table.assigned(client(4).0).is_some());
        assert_eq!(table.clients_per_nic().iter().sum::<usize>(), 3);
        for n in 7..=11 {
            ask(&mut table, 11_000, n);
        }
        assert_eq!(table.len(), 8);
        assert_eq!(table.entries.len(), 8, "freed slots reused before new ones");
    }
}
