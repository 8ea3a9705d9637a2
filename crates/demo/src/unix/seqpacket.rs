//! Part 4: SOCK_SEQPACKET, a connection that keeps each send's boundaries.

use std::io::Read as _;

use socket2::{Domain, Socket, Type};

use super::{DEADLINE, RECORDS, Records};
use crate::error::{Context as _, Result};

pub(super) fn records() -> Result<Records> {
    let (sender, receiver) = Socket::pair(Domain::UNIX, Type::SEQPACKET, None)
        .what("cannot open a SOCK_SEQPACKET pair")?;
    receiver.set_read_timeout(Some(DEADLINE))?;
    for record in RECORDS {
        sender.send(record).what("cannot send")?;
    }
    // Both are queued before the first receive, and each receive asks for
    // far more than both: it still returns one record.
    let mut buf = vec![0; 64 * 1024];
    let mut received = Vec::new();
    for _ in RECORDS {
        let n = (&receiver).read(&mut buf).what("cannot receive")?;
        received.push(buf[..n].to_vec());
    }
    Ok(Records {
        sent_b64: RECORDS.iter().map(|r| r.to_vec()).collect(),
        received_b64: received,
    })
}
