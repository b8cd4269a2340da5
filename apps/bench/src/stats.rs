//! Percentiles of collected samples (nearest rank, in microseconds).

/// Samples in microseconds, sorted on demand.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    values: Vec<u32>,
    sorted: bool,
}

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, micros: u32) {
        self.values.push(micros);
        self.sorted = false;
    }

    /// Adds many samples.
    pub fn extend(&mut self, micros: &[u32]) {
        self.values.extend_from_slice(micros);
        self.sorted = false;
    }

    /// How many samples there are.
    #[must_use]
    pub fn count(&self) -> usize {
        self.values.len()
    }

    /// How many samples are above `limit`.
    #[must_use]
    pub fn count_above(&self, limit: u32) -> usize {
        self.values.iter().filter(|v| **v > limit).count()
    }

    /// The `p`-th percentile (0 < p ≤ 100) by nearest rank; `None` without samples.
    pub fn percentile(&mut self, p: f64) -> Option<u32> {
        if self.values.is_empty() {
            return None;
        }
        if !self.sorted {
            self.values.sort_unstable();
            self.sorted = true;
        }
        self.values.get(rank_index(self.values.len(), p)).copied()
    }

    /// Takes the samples out, leaving none.
    pub fn take(&mut self) -> Vec<u32> {
        self.sorted = false;
        std::mem::take(&mut self.values)
    }

    /// The largest sample.
    pub fn max(&mut self) -> Option<u32> {
        self.percentile(100.0)
    }
}

/// The index of the `p`-th percentile (0 < p ≤ 100) among `len` sorted samples, by nearest
/// rank.
fn rank_index(len: usize, p: f64) -> usize {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * len as f64).ceil() as usize;
    rank.clamp(1, len.max(1)) - 1
}

/// The `p`-th percentile of signed samples by nearest rank (it sorts them); `None` without
/// samples. For differences of two clocks' readings, which noise can make negative.
pub fn signed_percentile(values: &mut [i64], p: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    values.get(rank_index(values.len(), p)).copied()
}

/// `a − b` in microseconds, as a signed number (an added time may come out negative in noise).
#[must_use]
pub fn added(a: Option<u32>, b: Option<u32>) -> Option<i64> {
    Some(i64::from(a?) - i64::from(b?))
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut s = Samples::default();
        for v in (1..=100).rev() {
            s.push(v);
        }
        assert_eq!(s.percentile(50.0), Some(50));
        assert_eq!(s.percentile(99.0), Some(99));
        assert_eq!(s.max(), Some(100));
        s.push(1000);
        assert_eq!(s.max(), Some(1000));
    }

    #[test]
    fn a_single_sample_is_every_percentile() {
        let mut s = Samples::default();
        s.extend(&[7]);
        assert_eq!(s.percentile(1.0), Some(7));
        assert_eq!(s.percentile(99.9), Some(7));
    }

    #[test]
    fn no_samples_no_percentile() {
        assert_eq!(Samples::default().percentile(50.0), None);
        assert_eq!(added(None, Some(3)), None);
        assert_eq!(added(Some(3), Some(5)), Some(-2));
    }

    #[test]
    fn signed_samples_have_percentiles_too() {
        let mut v = vec![5, -3, 40, 0, 12];
        assert_eq!(signed_percentile(&mut v, 50.0), Some(5));
        assert_eq!(signed_percentile(&mut v, 1.0), Some(-3));
        assert_eq!(signed_percentile(&mut v, 100.0), Some(40));
        assert_eq!(signed_percentile(&mut [], 50.0), None);
    }

    #[test]
    fn samples_above_a_limit_are_counted() {
        let mut s = Samples::default();
        s.extend(&[10, 40, 41, 100]);
        assert_eq!(s.count_above(40), 2);
    }
}
