//! A count-bounded least-recently-used cache of compiled compute pipelines.
//!
//! A long-running server compiles a pipeline for every distinct system, tolerance and
//! precision it is asked for; an unbounded map would keep each one (and the WGSL text it
//! was keyed by) forever. Entries are keyed by (label, entry point, WGSL) in full, not by a
//! hash of them: a server's systems come from its clients, and a crafted hash collision must
//! never hand one client another's kernel. The text a kept pipeline costs (tens of KiB) is
//! small beside the compiled pipeline itself (about 0.7 MiB on lavapipe). The least
//! recently used entry is dropped once the count passes the capacity. A pipeline a job still holds stays alive through its
//! `Arc` after eviction; only the cache's reference goes.
//!
//! At tens of entries a hand-written LRU is enough: a `HashMap` from key to (value, last
//! use tick) and a `BTreeMap` from tick to key, so a lookup, an insert and an eviction are
//! each O(log n).

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Pipelines kept when nobody says otherwise: more than the distinct kernels one CLI run
/// or training job compiles (a few dozen at most), few enough that a server's compiled
/// code stays in the tens of megabytes.
pub const DEFAULT_PIPELINE_CACHE: usize = 64;

/// What identifies a pipeline: everything that goes into compiling it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    label: String,
    entry_point: String,
    wgsl: String,
}

impl PipelineKey {
    pub fn new(label: &str, entry_point: &str, wgsl: &str) -> PipelineKey {
        PipelineKey {
            label: label.to_string(),
            entry_point: entry_point.to_string(),
            wgsl: wgsl.to_string(),
        }
    }
}

/// Counters since the context was opened, and the cache's size now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PipelineCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub entries: usize,
    pub capacity: usize,
}

/// The LRU itself, generic over the value so its logic is tested without a device.
#[derive(Debug)]
pub struct Lru<K, V> {
    capacity: usize,
    tick: u64,
    entries: HashMap<K, (V, u64)>,
    by_age: BTreeMap<u64, K>,
    hits: u64,
    misses: u64,
    evictions: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> Lru<K, V> {
    /// A cache of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            hits: 0,
            misses: 0,
            evictions: 0,
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The value for `key`, now the most recently used; counts a hit or a miss.
    pub fn get(&mut self, key: &K) -> Option<V> {
        let tick = self.next_tick();
        match self.entries.get_mut(key) {
            Some((value, used)) => {
                self.by_age.remove(used);
                *used = tick;
                self.by_age.insert(tick, key.clone());
                self.hits += 1;
                Some(value.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Stores `value` as the most recently used, evicting the least recently used entries
    /// beyond the capacity.
    pub fn insert(&mut self, key: K, value: V) {
        let tick = self.next_tick();
        if let Some((_, old)) = self.entries.insert(key.clone(), (value, tick)) {
            self.by_age.remove(&old);
        }
        self.by_age.insert(tick, key);
        self.shrink();
    }

    /// Changes the capacity (at least one), evicting the oldest entries beyond it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.shrink();
    }

    fn shrink(&mut self) {
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
            self.evictions += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> PipelineCacheStats {
        PipelineCacheStats {
            hits: self.hits,
            misses: self.misses,
            evictions: self.evictions,
            entries: self.entries.len(),
            capacity: self.capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recently_used_within_capacity() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.get(&"a"), Some(1)); // a is now newer than b
        lru.insert("c", 3); // evicts b
        assert_eq!(lru.get(&"b"), None);
        assert_eq!(lru.get(&"a"), Some(1));
        assert_eq!(lru.get(&"c"), Some(3));
        let s = lru.stats();
        assert_eq!((s.hits, s.misses, s.evictions), (3, 1, 1));
        assert_eq!((s.entries, s.capacity), (2, 2));
    }

    #[test]
    fn reinserting_a_key_replaces_it_without_evicting() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        lru.insert("a", 10);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.stats().evictions, 0);
        lru.insert("c", 3); // b is the oldest now
        assert_eq!(lru.get(&"b"), None);
        assert_eq!(lru.get(&"a"), Some(10));
    }

    #[test]
    fn many_distinct_keys_stay_bounded_and_count_evictions() {
        let mut lru = Lru::new(16);
        for k in 0..1000u32 {
            assert_eq!(lru.get(&k), None);
            lru.insert(k, k);
            assert!(lru.len() <= 16);
        }
        let s = lru.stats();
        assert_eq!((s.misses, s.evictions, s.entries), (1000, 1000 - 16, 16));
        // The survivors are the last sixteen.
        assert!((984..1000).all(|k| lru.get(&k) == Some(k)));
        assert_eq!(lru.by_age.len(), lru.entries.len());
    }

    #[test]
    fn shrinking_the_capacity_evicts_the_oldest_and_zero_means_one() {
        let mut lru = Lru::new(4);
        for k in 0..4 {
            lru.insert(k, k);
        }
        lru.set_capacity(2);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.get(&1), None);
        assert_eq!(lru.get(&3), Some(3));
        lru.set_capacity(0);
        assert_eq!(lru.stats().capacity, 1);
        assert_eq!(lru.len(), 1);
        assert_eq!(lru.get(&3), Some(3));
    }

    #[test]
    fn keys_differ_by_label_entry_point_and_text() {
        let k = PipelineKey::new("a", "main", "x");
        assert_eq!(k, PipelineKey::new("a", "main", "x"));
        assert_ne!(k, PipelineKey::new("b", "main", "x"));
        assert_ne!(k, PipelineKey::new("a", "other", "x"));
        assert_ne!(k, PipelineKey::new("a", "main", "y"));
        // Field boundaries count: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            PipelineKey::new("ab", "main", "c"),
            PipelineKey::new("a", "main", "bc")
        );
    }
}
