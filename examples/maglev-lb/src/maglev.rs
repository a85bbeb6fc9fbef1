//! Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4): a lookup
//! table of prime size M in which every backend takes turns claiming the
//! next free slot of its own permutation of 0..M, so the table is nearly
//! evenly split, is the same on every node that knows the same backends,
//! and changes little when one backend goes.
//!
//! Weights: each round a backend takes `weight` turns instead of one, so
//! its share of the table is proportional to its weight (a weight of 0
//! takes no slot: the backend is drained or out).

use std::fmt;

/// The paper's default table size: a prime well above 100 × the backends.
pub const DEFAULT_SIZE: usize = 65537;
/// The most backends a table holds (slot values are `u16`, with one reserved).
pub const MAX_BACKENDS: usize = u16::MAX as usize - 1;
const EMPTY: u16 = u16::MAX;

/// Why a table cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The size is not a prime (Maglev's permutations need one).
    NotPrime(usize),
    /// More backends than [`MAX_BACKENDS`], or at least as many as slots.
    TooManyBackends(usize),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::NotPrime(m) => write!(f, "the table size {m} is not a prime; expected a prime like 65537"),
            TableError::TooManyBackends(n) => write!(f, "{n} backends do not fit; expected fewer than the table size"),
        }
    }
}

impl std::error::Error for TableError {}

/// What a backend brings to the table: a name every node spells the same
/// (its address, as bytes) and its weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contender<'a> {
    /// The bytes its permutation is derived from.
    pub name: &'a [u8],
    /// Turns per round; 0 keeps it out of the table.
    pub weight: u32,
}

/// A built table: slot → contender index.
#[derive(Clone, PartialEq, Eq)]
pub struct MaglevTable {
    slots: Box<[u16]>,
}

impl fmt::Debug for MaglevTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaglevTable").field("size", &self.slots.len()).finish()
    }
}

/// True for a prime `n` (trial division; table sizes are small).
pub fn is_prime(n: usize) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

/// FNV-1a over `bytes` from `seed`: the two permutation hashes differ by seed.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// A 64-bit finalizer (splitmix64's): every input bit moves every output bit.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl MaglevTable {
    /// Builds the table for `contenders` (index = what [`MaglevTable::lookup`]
    /// returns). With no contender of non-zero weight every slot is empty.
    pub fn build(contenders: &[Contender<'_>], size: usize) -> Result<MaglevTable, TableError> {
        if !is_prime(size) {
            return Err(TableError::NotPrime(size));
        }
        if contenders.len() > MAX_BACKENDS || contenders.len() >= size {
            return Err(TableError::TooManyBackends(contenders.len()));
        }
        let m = size as u64;
        // §3.4: offset = h1(name) mod M, skip = h2(name) mod (M − 1) + 1.
        let perms: Vec<(u64, u64)> = contenders
            .iter()
            .map(|c| (fnv1a(0xcbf2_9ce4_8422_2325, c.name) % m, fnv1a(0x8422_2325_cbf2_9ce4, c.name) % (m - 1) + 1))
            .collect();
        let mut next = vec![0u64; contenders.len()];
        let mut slots = vec![EMPTY; size].into_boxed_slice();
        let mut filled = 0;
        if contenders.iter().all(|c| c.weight == 0) {
            return Ok(MaglevTable { slots });
        }
        while filled < size {
            for (i, c) in contenders.iter().enumerate() {
                let (offset, skip) = perms[i];
                for _ in 0..c.weight {
                    // The next slot of i's permutation that nobody took yet.
                    let mut slot = ((offset + next[i] * skip) % m) as usize;
                    while slots[slot] != EMPTY {
                        next[i] += 1;
                        slot = ((offset + next[i] * skip) % m) as usize;
                    }
                    slots[slot] = i as u16;
                    next[i] += 1;
                    filled += 1;
                    if filled == size {
                        return Ok(MaglevTable { slots });
                    }
                }
            }
        }
        Ok(MaglevTable { slots })
    }

    /// The table size M.
    pub fn size(&self) -> usize {
        self.slots.len()
    }

    /// The contender owning the slot `hash` falls in; `None` in an empty table.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<u16> {
        // Lemire's multiply-shift maps the hash onto 0..M without a division.
        let slot = ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize;
        let owner = self.slots[slot];
        (owner != EMPTY).then_some(owner)
    }

    /// Slots per contender, for shares and disruption checks.
    pub fn shares(&self, contenders: usize) -> Vec<usize> {
        let mut shares = vec![0; contenders];
        for &s in self.slots.iter().filter(|&&s| s != EMPTY) {
            shares[s as usize] += 1;
        }
        shares
    }

    /// The owner of every slot (`u16::MAX`: empty).
    pub fn slots(&self) -> &[u16] {
        &self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("198.51.100.{}", 20 + i).into_bytes()).collect()
    }

    fn contenders(names: &[Vec<u8>], weight: u32) -> Vec<Contender<'_>> {
        names.iter().map(|n| Contender { name: n, weight }).collect()
    }

    #[test]
    fn every_slot_is_taken_and_the_split_is_nearly_even() {
        let names = names(10);
        let table = MaglevTable::build(&contenders(&names, 1), DEFAULT_SIZE).unwrap();
        let shares = table.shares(10);
        assert_eq!(shares.iter().sum::<usize>(), DEFAULT_SIZE);
        let (min, max) = (*shares.iter().min().unwrap(), *shares.iter().max().unwrap());
        assert!(max - min <= 1, "round-robin population: {shares:?}");
    }

    #[test]
    fn two_nodes_with_the_same_backends_build_the_same_table() {
        let names = names(7);
        let a = MaglevTable::build(&contenders(&names, 1), DEFAULT_SIZE).unwrap();
        let b = MaglevTable::build(&contenders(&names, 1), DEFAULT_SIZE).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn removing_one_of_n_moves_its_slots_and_few_others() {
        for n in [3, 10, 50] {
            let names = names(n);
            let before = MaglevTable::build(&contenders(&names, 1), DEFAULT_SIZE).unwrap();
            let mut without = contenders(&names, 1);
            without[1].weight = 0;
            let after = MaglevTable::build(&without, DEFAULT_SIZE).unwrap();
            let moved_others =
                (0..DEFAULT_SIZE).filter(|&s| before.slots()[s] != 1 && before.slots()[s] != after.slots()[s]).count();
            assert!(!after.slots().contains(&1), "the removed backend owns nothing");
            let share = moved_others as f64 / DEFAULT_SIZE as f64;
            assert!(share < 0.05, "{n} backends: {:.2} % of other slots moved", share * 100.0);
        }
    }

    #[test]
    fn weights_set_the_shares() {
        let names = names(3);
        let mut c = contenders(&names, 1);
        c[2].weight = 2;
        let shares = MaglevTable::build(&c, DEFAULT_SIZE).unwrap().shares(3);
        let ratio = shares[2] as f64 / shares[0] as f64;
        assert!((ratio - 2.0).abs() < 0.01, "{shares:?}");
    }

    #[test]
    fn sizes_must_be_prime_and_larger_than_the_pool() {
        let names = names(3);
        assert_eq!(MaglevTable::build(&contenders(&names, 1), 65536), Err(TableError::NotPrime(65536)));
        assert_eq!(MaglevTable::build(&contenders(&names, 1), 3), Err(TableError::TooManyBackends(3)));
        let empty = MaglevTable::build(&contenders(&names, 0), 13).unwrap();
        assert_eq!(empty.lookup(12345), None);
        assert!(is_prime(65537) && is_prime(655373) && !is_prime(1));
    }

    #[test]
    fn lookups_spread_hashes_over_the_whole_table() {
        let names = names(4);
        let table = MaglevTable::build(&contenders(&names, 1), DEFAULT_SIZE).unwrap();
        let mut hits = [0usize; 4];
        for i in 0..40_000u64 {
            hits[table.lookup(mix(i)).unwrap() as usize] += 1;
        }
        assert!(hits.iter().all(|&h| (9_000..11_000).contains(&h)), "{hits:?}");
    }
}
