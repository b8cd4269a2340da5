//! The running tally of one extraction against its `Limits`.

use std::cell::Cell;
use std::io::{Read, Write};
use std::time::Instant;

use crate::{ExtractError, Extracted, Limits, RATIO_FLOOR};

/// One extraction's limits, its deadline and the bytes inflated so far.
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
    timeout_secs: u64,
    pub(crate) max_output_bytes: usize,
    pub(crate) max_pdf_pages: usize,
    max_inflated_bytes: u64,
    pub(crate) max_ratio: u64,
    inflated: Cell<u64>,
}

/// How an inflation ended when it did not fail a bound.
pub(crate) enum Inflate {
    /// The whole part was inflated.
    Done,
    /// The data is not what the decoder reads (e.g. not a zlib stream).
    Unreadable(std::io::Error),
}

impl Budget {
    #[must_use]
    pub fn new(limits: &Limits, started: Instant) -> Self {
        Self {
            deadline: started + limits.timeout,
            timeout_secs: limits.timeout.as_secs(),
            max_output_bytes: limits.max_output_bytes,
            max_pdf_pages: limits.max_pdf_pages,
            max_inflated_bytes: limits.max_inflated_bytes,
            max_ratio: limits.max_ratio,
            inflated: Cell::new(0),
        }
    }

    /// `TimedOut` once the deadline has passed.
    pub fn check_time(&self) -> Result<(), ExtractError> {
        if Instant::now() >= self.deadline {
            Err(ExtractError::TimedOut(self.timeout_secs))
        } else {
            Ok(())
        }
    }

    /// The text, cut at the output cap on a character boundary.
    #[must_use]
    pub fn finish(&self, mut text: String, truncated: bool) -> Extracted {
        let cut = text.len() > self.max_output_bytes;
        if cut {
            let mut end = self.max_output_bytes;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Extracted::Text {
            text,
            truncated: truncated || cut,
        }
    }

    /// Copies a decoder's output into `out`, refusing it as a bomb as soon as it passes the
    /// part's ratio to `compressed` or the file's total; checks the deadline as it goes.
    pub(crate) fn inflate(
        &self,
        mut decoder: impl Read,
        compressed: u64,
        out: &mut impl Write,
    ) -> Result<Inflate, ExtractError> {
        let part_limit = compressed.saturating_mul(self.max_ratio).max(RATIO_FLOOR);
        let mut part = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            self.check_time()?;
            let n = match decoder.read(&mut buffer) {
                Ok(0) => return Ok(Inflate::Done),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Ok(Inflate::Unreadable(e)),
            };
            part += n as u64;
            let total = self.inflated.get() + n as u64;
            self.inflated.set(total);
            if part > part_limit || total > self.max_inflated_bytes {
                return Err(ExtractError::DecompressionBomb);
            }
            out.write_all(&buffer[..n])
                .map_err(|e| ExtractError::Corrupt(e.to_string()))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn text_is_cut_on_a_character_boundary() {
        let limits = Limits {
            max_output_bytes: 5,
            ..Limits::default()
        };
        let budget = Budget::new(&limits, Instant::now());
        assert_eq!(
            budget.finish("abcdé".to_owned(), false),
            Extracted::Text {
                text: "abcd".to_owned(),
                truncated: true
            }
        );
        assert_eq!(
            budget.finish("abc".to_owned(), false),
            Extracted::Text {
                text: "abc".to_owned(),
                truncated: false
            }
        );
    }

    #[test]
    fn a_passed_deadline_is_timed_out() {
        let limits = Limits {
            timeout: Duration::ZERO,
            ..Limits::default()
        };
        let budget = Budget::new(&limits, Instant::now());
        assert_eq!(budget.check_time(), Err(ExtractError::TimedOut(0)));
    }

    #[test]
    fn inflation_past_the_ratio_is_a_bomb() {
        let budget = Budget::new(&Limits::default(), Instant::now());
        let zeros = std::io::repeat(0).take(RATIO_FLOOR + 1);
        let result = budget.inflate(zeros, 10, &mut std::io::sink());
        assert!(matches!(result, Err(ExtractError::DecompressionBomb)));
        let small = std::io::repeat(0).take(1000);
        let result = budget.inflate(small, 10, &mut std::io::sink());
        assert!(matches!(result, Ok(Inflate::Done)));
    }
}
