//! [`ReplayWindow`]: which datagram counters of a session were accepted.

use super::*;

/// 64-bit blocks in the ring: enough for [`REPLAY_WINDOW`] counters wherever
/// the window's edge falls within a block, plus one (RFC 6479 §2).
const BLOCKS: usize = REPLAY_WINDOW as usize / 64 + 1;

/// Which datagram counters of one sender were accepted, as a sliding bitmap
/// of the last [`REPLAY_WINDOW`] (RFC 4303 §3.4.3, laid out as in RFC 6479).
///
/// A counter above the highest seen slides the window up; one inside the
/// window is accepted once; one below it is refused, since the window no
/// longer knows whether it was seen. Sliding clears whole 64-bit blocks of a
/// ring instead of shifting the bitmap, so it costs at most 17 word
/// writes however far it jumps.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// The highest counter accepted, if any was.
    highest: Option<u64>,
    /// Bit `c % 64` of block `(c / 64) % BLOCKS` is set once counter `c` is
    /// accepted; blocks are cleared as the window slides onto them.
    pub(super) bits: [u64; BLOCKS],
}

impl ReplayWindow {
    /// A window that has seen nothing: any counter is accepted first.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest counter accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `counter` would be accepted, without recording it.
    ///
    /// # Errors
    ///
    /// [`AuthError::Replayed`] or [`AuthError::TooOld`].
    pub fn check(&self, counter: u64) -> Result<(), AuthError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if counter > highest {
            return Ok(());
        }
        if highest - counter >= REPLAY_WINDOW {
            return Err(AuthError::TooOld { counter, highest });
        }
        let (block, bit) = Self::position(counter);
        if self.bits[block] & bit != 0 {
            return Err(AuthError::Replayed { counter });
        }
        Ok(())
    }

    /// Accepts `counter` once: records it and slides the window if it is the
    /// highest yet. Call it only for a datagram whose tag verified, or a
    /// forger could slide the window past real traffic.
    ///
    /// # Errors
    ///
    /// [`AuthError::Replayed`] or [`AuthError::TooOld`]; the window is then
    /// unchanged.
    pub fn check_and_set(&mut self, counter: u64) -> Result<(), AuthError> {
        self.check(counter)?;
        let new_block = counter / 64;
        match self.highest {
            Some(highest) if counter <= highest => {}
            Some(highest) => {
                // Clear the blocks the window slides onto; they still hold
                // counters a full ring older. A jump of a whole ring or more
                // clears everything.
                let old_block = highest / 64;
                let jump = (new_block - old_block).min(BLOCKS as u64);
                for step in 1..=jump {
                    let index = ((old_block + step) % BLOCKS as u64) as usize;
                    self.bits[index] = 0;
                }
                self.highest = Some(counter);
            }
            None => self.highest = Some(counter),
        }
        let (block, bit) = Self::position(counter);
        self.bits[block] |= bit;
        Ok(())
    }

    fn position(counter: u64) -> (usize, u64) {
        (
            ((counter / 64) % BLOCKS as u64) as usize,
            1 << (counter % 64),
        )
    }
}
