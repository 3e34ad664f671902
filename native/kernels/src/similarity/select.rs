//! Bounded top-k selection under one total order: higher key first, then
//! lower id. NaN keys (only from overflow; inputs are finite) rank last.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub key: f32,
    pub id: i64,
}

impl Hit {
    /// Whether `self` ranks before `other`.
    #[inline(always)]
    pub fn better(&self, other: &Hit) -> bool {
        self.key > other.key || (self.key == other.key && self.id < other.id)
    }
}

/// Keeps the best `k` hits seen; the heap's root is the worst kept hit.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: Vec<Hit>,
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK { k, heap: Vec::with_capacity(k) }
    }

    /// Key a candidate must reach to be considered once the heap is full.
    #[inline(always)]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap[0].key
        }
    }

    #[inline]
    pub fn push(&mut self, key: f32, id: i64) {
        let key = if key.is_nan() { f32::NEG_INFINITY } else { key };
        let hit = Hit { key, id };
        if self.heap.len() < self.k {
            self.heap.push(hit);
            self.sift_up(self.heap.len() - 1);
        } else if self.k > 0 && hit.better(&self.heap[0]) {
            self.heap[0] = hit;
            self.sift_down(0);
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent].better(&self.heap[i]) {
                self.heap.swap(parent, i);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut worst = i;
            if l < n && self.heap[worst].better(&self.heap[l]) {
                worst = l;
            }
            if r < n && self.heap[worst].better(&self.heap[r]) {
                worst = r;
            }
            if worst == i {
                return;
            }
            self.heap.swap(i, worst);
            i = worst;
        }
    }

    pub fn into_hits(self) -> Vec<Hit> {
        self.heap
    }
}

/// Sorts hits best first and keeps `k`.
pub fn best_first(mut hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    hits.sort_unstable_by(|a, b| {
        if a.better(b) {
            std::cmp::Ordering::Less
        } else if b.better(a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    hits.truncate(k);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keeps_exactly_the_best_k(keys in proptest::collection::vec(-4i32..4, 0..200), k in 1usize..20) {
            let mut top = TopK::new(k);
            for (id, key) in keys.iter().enumerate() {
                top.push(*key as f32, id as i64);
            }
            let got = best_first(top.into_hits(), k);
            let all: Vec<Hit> = keys.iter().enumerate().map(|(id, key)| Hit { key: *key as f32, id: id as i64 }).collect();
            let expected = best_first(all, k);
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn ties_break_by_lower_id() {
        let mut top = TopK::new(2);
        for id in [9, 3, 7, 1] {
            top.push(1.0, id);
        }
        let ids: Vec<i64> = best_first(top.into_hits(), 2).iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![1, 3]);
    }
}
