//! One way to keep counters: a set of named `u64`s declared once with
//! [`counter_set!`](crate::counter_set), from which the worker's plain
//! struct, the lock-free copy other threads read ([`PublishedCounters`]),
//! the names the admin API and the metrics print, and the sums over
//! workers all follow. A counter's name is written in one place.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed set of named counters.
///
/// Each counter has a wire name (what JSON and metrics print) and a kind:
/// the admin API groups a set's counters by kind (a responder's `replies`
/// and `rejected`, say). Implemented by [`counter_set!`](crate::counter_set)
/// for structs of named fields, and by hand for arrays indexed by an enum.
pub trait CounterSet: Copy + Default {
    /// Wire names, in field order: what the admin API and metrics print.
    const NAMES: &'static [&'static str];
    /// Field names, in field order: what end-of-run JSON summaries print.
    const FIELDS: &'static [&'static str];
    /// Each counter's kind, in field order.
    const KINDS: &'static [&'static str];

    /// Calls `f(index, value)` for every counter, in field order.
    fn for_each(&self, f: impl FnMut(usize, u64));

    /// Sets counter `index` (out of range: nothing happens).
    fn set(&mut self, index: usize, value: u64);

    /// The value of counter `index` (0 out of range).
    fn get(&self, index: usize) -> u64 {
        let mut found = 0;
        self.for_each(|i, v| {
            if i == index {
                found = v;
            }
        });
        found
    }

    /// The value of the counter named `name`, if there is one.
    fn by_name(&self, name: &str) -> Option<u64> {
        Self::NAMES.iter().position(|n| *n == name).map(|i| self.get(i))
    }

    /// Every counter by wire name.
    fn named(&self) -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        self.for_each(|i, v| {
            map.insert(Self::NAMES[i].to_owned(), v);
        });
        map
    }

    /// Every counter by field name.
    fn by_field(&self) -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        self.for_each(|i, v| {
            map.insert(Self::FIELDS[i].to_owned(), v);
        });
        map
    }

    /// The counters of one kind by wire name.
    fn named_of_kind(&self, kind: &str) -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        self.for_each(|i, v| {
            if Self::KINDS[i] == kind {
                map.insert(Self::NAMES[i].to_owned(), v);
            }
        });
        map
    }

    /// Adds `other` counter by counter (summing workers).
    fn add(&mut self, other: &Self) {
        let mut sum = *self;
        other.for_each(|i, v| sum.set(i, self.get(i).wrapping_add(v)));
        *self = sum;
    }
}

/// Declares a struct of `u64` counters and its [`CounterSet`]: each field
/// with its doc, its kind and its wire name, written once.
///
/// ```
/// use vipdrift_wire::{counter_set, CounterSet, PublishedCounters};
///
/// counter_set! {
///     /// What a responder did.
///     pub struct Answers {
///         /// ARP requests answered.
///         arp_replies: reply => "arp",
///         /// Malformed ARP frames.
///         bad_arp: rejected => "bad_arp",
///     }
/// }
///
/// let published = PublishedCounters::<Answers>::new();
/// published.publish(&Answers { arp_replies: 3, bad_arp: 1 });
/// let read = published.read();
/// assert_eq!(read.arp_replies, 3);
/// assert_eq!(read.named_of_kind("rejected").get("bad_arp"), Some(&1));
/// ```
#[macro_export]
macro_rules! counter_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_meta:meta])* $field:ident : $kind:ident => $wire:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        $vis struct $name {
            $( $(#[$field_meta])* pub $field: u64, )*
        }

        impl $crate::CounterSet for $name {
            const NAMES: &'static [&'static str] = &[$($wire),*];
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
            const KINDS: &'static [&'static str] = &[$(stringify!($kind)),*];

            #[inline]
            fn for_each(&self, mut f: impl FnMut(usize, u64)) {
                for (i, v) in [$(self.$field),*].into_iter().enumerate() {
                    f(i, v);
                }
            }

            #[inline]
            fn set(&mut self, index: usize, value: u64) {
                let mut fields = [$(&mut self.$field),*];
                if let Some(field) = fields.get_mut(index) {
                    **field = value;
                }
            }
        }
    };
}

/// The lock-free copy of a [`CounterSet`] that one thread (a worker)
/// publishes and any other reads: relaxed stores and loads, no lock.
pub struct PublishedCounters<C> {
    slots: Box<[AtomicU64]>,
    _set: PhantomData<fn() -> C>,
}

impl<C: CounterSet> PublishedCounters<C> {
    /// All zero.
    pub fn new() -> PublishedCounters<C> {
        PublishedCounters { slots: C::NAMES.iter().map(|_| AtomicU64::new(0)).collect(), _set: PhantomData }
    }

    /// Stores every counter of `counters` (the publisher's only call).
    #[inline]
    pub fn publish(&self, counters: &C) {
        counters.for_each(|i, v| self.slots[i].store(v, Ordering::Relaxed));
    }

    /// The counters as last published.
    pub fn read(&self) -> C {
        let mut counters = C::default();
        for (i, slot) in self.slots.iter().enumerate() {
            counters.set(i, slot.load(Ordering::Relaxed));
        }
        counters
    }
}

impl<C: CounterSet> Default for PublishedCounters<C> {
    fn default() -> Self {
        PublishedCounters::new()
    }
}

impl<C: CounterSet + std::fmt::Debug> std::fmt::Debug for PublishedCounters<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.read().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::counter_set! {
        /// Two kinds.
        struct Sample {
            /// One.
            first: sent => "first",
            /// Two.
            second: dropped => "second_wire",
            /// Three.
            third: dropped => "third",
        }
    }

    #[test]
    fn a_set_names_its_counters_once_and_groups_them_by_kind() {
        let s = Sample { first: 1, second: 2, third: 3 };
        assert_eq!(Sample::NAMES, &["first", "second_wire", "third"]);
        assert_eq!(Sample::FIELDS, &["first", "second", "third"]);
        assert_eq!(s.by_name("second_wire"), Some(2));
        assert_eq!(
            s.named_of_kind("dropped").into_iter().collect::<Vec<_>>(),
            [("second_wire".to_owned(), 2), ("third".to_owned(), 3)]
        );
        let mut sum = s;
        sum.add(&s);
        assert_eq!(sum, Sample { first: 2, second: 4, third: 6 });
        let mut t = Sample::default();
        t.set(2, 9);
        t.set(7, 9);
        assert_eq!((t.get(2), t.get(7)), (9, 0));
    }

    #[test]
    fn published_counters_read_back_what_was_published() {
        let p = PublishedCounters::<Sample>::new();
        assert_eq!(p.read(), Sample::default());
        p.publish(&Sample { first: 5, second: 6, third: 7 });
        assert_eq!(p.read(), Sample { first: 5, second: 6, third: 7 });
    }
}
