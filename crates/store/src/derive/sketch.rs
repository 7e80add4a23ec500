//! A mergeable latency sketch with a bounded relative error (the DDSketch construction): each
//! duration falls in the logarithmic bin `⌈log_γ(x)⌉`, γ = (1 + α) / (1 − α), and a bin stands
//! for `2γⁱ / (γ + 1)`, within α of every value in it. So every quantile it answers is within
//! α (1 %) of the exact quantile's value, whatever the distribution; bins add and subtract, so
//! time buckets merge into any window and a failed write can be taken back.
//!
//! Durations are whole microseconds; 0 µs has its own count. Indexes are bounded (`MAX_INDEX`
//! covers every `u64`), so a sketch holds at most a few thousand bins whatever it is fed.

use crate::codec::CorruptError;
use crate::codec::reader::{Reader, put_varint};

/// The relative accuracy of every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// The highest bin index: the bin of `u64::MAX` µs is below it.
const MAX_INDEX: usize = 2300;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// The bin of `micros` (≥ 1).
fn index_of(micros: u64) -> usize {
    let index = ((micros as f64).ln() / gamma().ln()).ceil();
    // ln(1) = 0; every u64 is below MAX_INDEX bins.
    (index.max(0.0) as usize).min(MAX_INDEX)
}

/// The value a bin stands for, in µs.
fn value_of(index: usize) -> f64 {
    let g = gamma();
    2.0 * g.powi(i32::try_from(index).unwrap_or(i32::MAX)) / (g + 1.0)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    zero: u64,
    /// The index of `bins[0]`.
    offset: usize,
    bins: Vec<u64>,
}

impl Sketch {
    /// Bytes its bins take on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.bins
            .capacity()
            .saturating_mul(std::mem::size_of::<u64>())
    }

    pub fn add(&mut self, micros: u64) {
        self.add_count(micros, 1);
    }

    fn add_count(&mut self, micros: u64, count: u64) {
        if micros == 0 {
            self.zero = self.zero.saturating_add(count);
            return;
        }
        self.add_to_bin(index_of(micros), count);
    }

    fn add_to_bin(&mut self, index: usize, count: u64) {
        let index = index.min(MAX_INDEX);
        if self.bins.is_empty() {
            self.offset = index;
        }
        if index < self.offset {
            let grow = self.offset.saturating_sub(index);
            let mut bins = vec![0; grow];
            bins.append(&mut self.bins);
            self.bins = bins;
            self.offset = index;
        }
        let at = index.saturating_sub(self.offset);
        if at >= self.bins.len() {
            self.bins.resize(at.saturating_add(1), 0);
        }
        if let Some(bin) = self.bins.get_mut(at) {
            *bin = bin.saturating_add(count);
        }
    }

    pub fn count(&self) -> u64 {
        self.bins
            .iter()
            .fold(self.zero, |total, bin| total.saturating_add(*bin))
    }

    pub fn merge(&mut self, other: &Sketch) {
        self.zero = self.zero.saturating_add(other.zero);
        for (i, count) in other.bins.iter().enumerate() {
            if *count > 0 {
                self.add_to_bin(other.offset.saturating_add(i), *count);
            }
        }
    }

    /// Takes `other`'s counts back out (counts never go below zero).
    pub fn subtract(&mut self, other: &Sketch) {
        self.zero = self.zero.saturating_sub(other.zero);
        for (i, count) in other.bins.iter().enumerate() {
            let index = other.offset.saturating_add(i);
            if let Some(at) = index.checked_sub(self.offset)
                && let Some(bin) = self.bins.get_mut(at)
            {
                *bin = bin.saturating_sub(*count);
            }
        }
        while self.bins.last() == Some(&0) {
            self.bins.pop();
        }
        let leading = self.bins.iter().take_while(|b| **b == 0).count();
        if leading > 0 {
            self.bins.drain(..leading);
            self.offset = self.offset.saturating_add(leading);
        }
    }

    /// The `q` quantile in µs (q in [0, 1]): the value at rank `q × (n − 1)` in sorted order,
    /// within 1 %; None for an empty sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = (q * n.saturating_sub(1) as f64).floor() as u64;
        if rank < self.zero {
            return Some(0.0);
        }
        let mut seen = self.zero;
        for (i, count) in self.bins.iter().enumerate() {
            seen = seen.saturating_add(*count);
            if seen > rank {
                return Some(value_of(self.offset.saturating_add(i)));
            }
        }
        self.bins
            .len()
            .checked_sub(1)
            .map(|last| value_of(self.offset.saturating_add(last)))
    }

    /// zero count, bin count, then (index gap, count) pairs for the bins that are not empty.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.zero);
        let used = self.bins.iter().filter(|b| **b > 0).count();
        put_varint(out, used as u64);
        let mut previous = 0usize;
        for (i, count) in self.bins.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            let index = self.offset.saturating_add(i);
            put_varint(out, index.saturating_sub(previous) as u64);
            put_varint(out, *count);
            previous = index;
        }
    }

    pub fn decode(reader: &mut Reader<'_>) -> Result<Sketch, CorruptError> {
        let bad = CorruptError("a sketch bin is out of range");
        let mut sketch = Sketch {
            zero: reader.varint()?,
            ..Sketch::default()
        };
        let used = reader.varint()?;
        if used > MAX_INDEX as u64 {
            return Err(bad);
        }
        let mut index = 0usize;
        for _ in 0..used {
            let gap = usize::try_from(reader.varint()?)
                .map_err(|_| CorruptError("a sketch bin is out of range"))?;
            index = index
                .checked_add(gap)
                .ok_or(CorruptError("a sketch bin is out of range"))?;
            if index > MAX_INDEX {
                return Err(bad);
            }
            let count = reader.varint()?;
            sketch.add_to_bin(index, count);
        }
        Ok(sketch)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    /// The exact quantile by the same rank definition, from sorted values.
    fn exact(sorted: &[u64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize] as f64
    }

    fn values(seed: u64, n: usize) -> Vec<u64> {
        // A log-normal-ish spread from 10 µs to minutes, plus some zeros and repeats.
        let mut x = seed;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match i % 50 {
                    0 => 0,
                    1 => 1,
                    2 => 1_000_000,
                    _ => {
                        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                        (10.0 * (u * 16.0).exp()) as u64
                    }
                }
            })
            .collect()
    }

    #[test]
    fn every_quantile_is_within_one_percent_of_the_exact_one() {
        for seed in [1u64, 7, 99] {
            let mut data = values(seed, 20_000);
            let mut sketch = Sketch::default();
            for v in &data {
                sketch.add(*v);
            }
            data.sort_unstable();
            let mut worst: f64 = 0.0;
            for i in 0..=1000 {
                let q = i as f64 / 1000.0;
                let want = exact(&data, q);
                let got = sketch.quantile(q).unwrap();
                let error = if want == 0.0 {
                    got
                } else {
                    (got - want).abs() / want
                };
                worst = worst.max(error);
            }
            assert!(worst <= RELATIVE_ACCURACY + 1e-9, "seed {seed}: {worst}");
        }
    }

    #[test]
    fn sketches_merge_subtract_and_round_trip() {
        let (a_values, b_values) = (values(3, 5000), values(4, 3000));
        let mut a = Sketch::default();
        a_values.iter().for_each(|v| a.add(*v));
        let mut b = Sketch::default();
        b_values.iter().for_each(|v| b.add(*v));
        let mut both = a.clone();
        both.merge(&b);
        let mut all: Vec<u64> = a_values.iter().chain(&b_values).copied().collect();
        all.sort_unstable();
        for q in [0.5, 0.9, 0.99] {
            let want = exact(&all, q);
            assert!((both.quantile(q).unwrap() - want).abs() <= want * RELATIVE_ACCURACY);
        }
        both.subtract(&b);
        assert_eq!(both, a);

        let mut bytes = Vec::new();
        a.encode(&mut bytes);
        let mut reader = Reader::new(&bytes);
        assert_eq!(Sketch::decode(&mut reader).unwrap(), a);
        assert!(reader.is_empty());
        assert_eq!(Sketch::default().quantile(0.5), None);
        // A huge duration lands in the last bin instead of growing the sketch without bound.
        let mut huge = Sketch::default();
        huge.add(u64::MAX);
        huge.add(1);
        assert!(huge.bins.len() <= MAX_INDEX + 1);
    }
}
