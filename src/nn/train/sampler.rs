//! Batches of a data set: all of it every step, or minibatches without replacement from
//! a seeded permutation per epoch.

use crate::rng::uniform_f64;

/// Walks through a data set (or one axis of it) batch by batch: all of it every step, or
/// minibatches drawn without replacement from a fresh permutation each epoch (a last
/// partial batch is dropped).
pub struct Sampler {
    m: usize,
    batch: usize,
    epoch: u64,
    cursor: usize,
    stream: u32,
    /// The current permutation (the identity until the first shuffle) and where the last
    /// batch started in it.
    order: Vec<u32>,
    base: usize,
}

impl Sampler {
    pub fn new(m: usize, batch: usize, stream: u32) -> Sampler {
        Sampler {
            m,
            batch,
            epoch: 0,
            cursor: 0,
            stream,
            order: (0..m as u32).collect(),
            base: 0,
        }
    }

    /// Whether batches are smaller than the data.
    pub fn active(&self) -> bool {
        self.batch < self.m
    }

    /// The data rows of the last batch.
    pub fn rows(&self) -> Vec<usize> {
        self.order[self.base..self.base + self.batch]
            .iter()
            .map(|&r| r as usize)
            .collect()
    }

    /// Where the walk stands: (permutations drawn, position in the current one).
    pub fn position(&self) -> (u64, usize) {
        (self.epoch, self.cursor)
    }

    /// Goes back to `position` (from `position`, with the same seed), and gives the
    /// permutation then current, to upload to the `order` buffer; `None` if the position
    /// does not fit this data.
    pub fn restore(&mut self, seed: u64, (epoch, cursor): (u64, usize)) -> Option<&[u32]> {
        if cursor > self.m || (epoch == 0 && cursor > 0) {
            return None;
        }
        self.order = match epoch {
            0 => (0..self.m as u32).collect(),
            e => permutation(seed, self.stream, e - 1, self.m),
        };
        self.epoch = epoch;
        self.cursor = cursor;
        self.base = cursor.saturating_sub(self.batch);
        Some(&self.order)
    }

    /// Moves to the next batch: its start in the permutation, and the new permutation
    /// when an epoch begins (to be uploaded to the `order` buffer).
    pub fn next(&mut self, seed: u64) -> (usize, Option<&[u32]>) {
        let mut fresh = false;
        if self.cursor == 0 || self.cursor + self.batch > self.m {
            self.order = permutation(seed, self.stream, self.epoch, self.m);
            self.epoch += 1;
            self.cursor = 0;
            fresh = true;
        }
        self.base = self.cursor;
        self.cursor += self.batch;
        (self.base, fresh.then_some(&self.order[..]))
    }
}

/// A permutation of 0..m, the same for the same seed, stream and epoch (Fisher–Yates from
/// the counter-based RNG).
pub fn permutation(seed: u64, stream: u32, epoch: u64, m: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..m as u32).collect();
    for i in (1..order.len()).rev() {
        let u = uniform_f64(seed, epoch * m as u64 + i as u64, stream);
        let j = ((u * (i + 1) as f64) as usize).min(i);
        order.swap(i, j);
    }
    order
}
