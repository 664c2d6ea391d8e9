//! The verifier's answer cache: bounded, each entry fresh until its own deadline.
//!
//! Keyed by SHA-256 of the token (the token itself is never stored). At capacity the oldest insertion
//! is dropped first; since every deadline is at most a few seconds away, that is nearly the entry that
//! would have expired first, and costs O(1) per insertion (no scan). A stale entry is dropped when it is
//! read.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::Principal;

/// SHA-256 of a token.
pub(super) type Key = [u8; 32];

/// What introspection said about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer {
    /// Active: who it is.
    Active(Arc<Principal>),
    /// Not active (unknown, expired, revoked, foreign), with the reason to give the caller.
    Inactive(&'static str),
}

#[derive(Debug)]
struct Entry {
    answer: Answer,
    fresh_until: Duration,
    seq: u64,
}

/// The cache. Not synchronised: the verifier holds it under a mutex for O(1) operations only.
#[derive(Debug)]
pub(super) struct Cache {
    capacity: usize,
    entries: HashMap<Key, Entry>,
    /// Insertion order, for eviction: `(key, seq)`; an item whose `seq` no longer matches its entry is
    /// stale (the entry was replaced or dropped) and skipped.
    order: VecDeque<(Key, u64)>,
    next_seq: u64,
}

impl Cache {
    /// An empty cache holding at most `capacity` answers (0: caches nothing).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// The answer for `key` if it is still fresh at `now`.
    pub(super) fn get(&mut self, key: &Key, now: Duration) -> Option<Answer> {
        match self.entries.get(key) {
            Some(entry) if now < entry.fresh_until => Some(entry.answer.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `answer` for `key` until `fresh_until`; an answer already stale at `now` is not kept.
    pub(super) fn insert(&mut self, key: Key, answer: Answer, fresh_until: Duration, now: Duration) {
        if self.capacity == 0 || fresh_until <= now {
            self.entries.remove(&key);
            return;
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.entries.insert(
            key,
            Entry {
                answer,
                fresh_until,
                seq,
            },
        );
        self.order.push_back((key, seq));
        while self.entries.len() > self.capacity {
            let Some((oldest, oldest_seq)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&oldest).is_some_and(|entry| entry.seq == oldest_seq) {
                self.entries.remove(&oldest);
            }
        }
        // Replaced and dropped entries leave stale order items behind: compact now and then, so the
        // queue stays within a constant factor of the capacity.
        if self.order.len() > 2 * self.capacity + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(key, seq)| entries.get(key).is_some_and(|entry| entry.seq == *seq));
        }
    }

    /// How many answers are held (fresh or not yet found stale).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NOW: Duration = Duration::from_secs(1_800_000_000);

    fn key(n: u8) -> Key {
        [n; 32]
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn an_answer_is_served_until_its_deadline_and_not_after() {
        let mut cache = Cache::new(10);
        cache.insert(key(1), Answer::Inactive("x"), NOW + secs(2), NOW);
        assert_eq!(cache.get(&key(1), NOW + secs(1)), Some(Answer::Inactive("x")));
        assert_eq!(cache.get(&key(1), NOW + secs(2)), None);
        assert_eq!(cache.len(), 0, "a stale entry is dropped when read");
        cache.insert(key(2), Answer::Inactive("x"), NOW, NOW);
        assert_eq!(cache.len(), 0, "an answer stale on arrival is not kept");
    }

    #[test]
    fn at_capacity_the_oldest_insertion_goes_first() {
        let mut cache = Cache::new(3);
        for n in 1..=3 {
            cache.insert(key(n), Answer::Inactive("x"), NOW + secs(10), NOW);
        }
        // Refreshing 1 makes it the newest.
        cache.insert(key(1), Answer::Inactive("y"), NOW + secs(10), NOW);
        cache.insert(key(4), Answer::Inactive("x"), NOW + secs(10), NOW);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key(2), NOW), None);
        assert_eq!(cache.get(&key(1), NOW), Some(Answer::Inactive("y")));
        assert!(cache.get(&key(3), NOW).is_some() && cache.get(&key(4), NOW).is_some());
    }

    #[test]
    fn the_order_queue_stays_bounded_under_refreshes() {
        let mut cache = Cache::new(4);
        for round in 0..10_000u32 {
            let n = u8::try_from(round % 4).unwrap();
            cache.insert(key(n), Answer::Inactive("x"), NOW + secs(10), NOW);
        }
        assert_eq!(cache.len(), 4);
        assert!(cache.order.len() <= 2 * 4 + 64 + 1, "{}", cache.order.len());
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let mut cache = Cache::new(0);
        cache.insert(key(1), Answer::Inactive("x"), NOW + secs(10), NOW);
        assert_eq!(cache.get(&key(1), NOW), None);
    }
}
