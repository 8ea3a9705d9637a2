//! Receiving into a buffer's spare capacity: the one piece of unsafe both
//! the runtime-free calls (`sync.rs`) and the batches (`batch/`) need, kept
//! below both.

use std::io;
use std::mem::MaybeUninit;

use bytes::{BufMut, BytesMut};

/// One receive call into `buf`'s spare capacity, without zeroing it first
/// (for a stream as much as a datagram: msg-net's blocking TCP side reads
/// with it too).
pub fn recv_into<T>(
    buf: &mut BytesMut,
    call: impl FnOnce(&mut [MaybeUninit<u8>]) -> io::Result<(usize, T)>,
) -> io::Result<(usize, T)> {
    let (len, extra) = call(buf.spare_capacity_mut())?;
    // SAFETY: the call wrote `len` bytes at the start of the spare
    // capacity it was given, so they are initialised.
    unsafe { buf.advance_mut(len) };
    Ok((len, extra))
}
