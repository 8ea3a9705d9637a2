//! Parts 1, 2 and 4: TCP, raw on std sockets (two small writes glued, one
//! large write cut, a read too small) and framed by msg-tcp's codec.

use super::*;

// ---- part 1 and part 4: raw TCP, std sockets ------------------------------

pub(super) fn raw_tcp(nodelay: bool) -> Result<Part> {
    Ok(Part {
        number: 1,
        transport: "tcp",
        title: "Raw TCP: a stream of bytes, not of messages",
        lesson: "TCP carries a stream of bytes, not messages. Bytes that arrive wait in \
                 the socket's receive buffer (memory the kernel keeps for it), and a read \
                 returns whatever is there, up to the size it asks for. So two quick \
                 writes can come back as one read (\"sticky packets\"), and one large \
                 write as many reads, each of whatever had arrived.",
        steps: vec![two_small_writes(nodelay)?, one_large_write(nodelay)?],
    })
}

pub(super) fn two_small_writes(nodelay: bool) -> Result<Step> {
    let (mut writer, mut reader) = tcp_pair(nodelay)?;
    for bytes in SMALL {
        writer.write_all(bytes).what("cannot write")?;
    }
    let waited = wait_for(&reader, SMALL_LEN)?;
    let mut buf = vec![0; READ_BUF];
    let n = reader.read(&mut buf).what("cannot read")?;
    Ok(Step {
        name: TWO_SMALL,
        did: format!("write {}, then write {}", shown(SMALL[0]), shown(SMALL[1])),
        how: format!(
            "{}, then read once with a {READ_BUF}-byte buffer.",
            waited.describe()
        ),
        unit: Unit::Read,
        got: vec![Got {
            bytes: buf[..n].to_vec(),
            queued: waited.queued,
        }],
        refused: None,
    })
}

pub(super) fn one_large_write(nodelay: bool) -> Result<Step> {
    let (mut writer, mut reader) = tcp_pair(nodelay)?;
    let payload = pattern(LARGE);
    let (calls, got) = thread::scope(|scope| {
        let writing = scope.spawn(|| write_counting(&mut writer, &payload));
        let got = read_all(&mut reader, LARGE);
        let calls = writing
            .join()
            .map_err(|_| Error::Broken("the writing thread panicked".to_owned()))?;
        Ok::<_, Error>((calls?, got?))
    })?;
    Ok(Step {
        name: ONE_LARGE,
        did: format!("write {LARGE} bytes at once"),
        how: format!(
            "The writer's write took {calls} call{} to the kernel. The reader read at \
             the same time, on another thread, with a {READ_BUF}-byte buffer: each read \
             returned what had arrived by then, at most {READ_BUF} bytes.",
            plural(calls)
        ),
        unit: Unit::Read,
        got,
        refused: None,
    })
}

pub(super) fn short_read(nodelay: bool) -> Result<Part> {
    let (mut writer, mut reader) = tcp_pair(nodelay)?;
    for bytes in SMALL {
        writer.write_all(bytes).what("cannot write")?;
    }
    let waited = wait_for(&reader, SMALL_LEN)?;
    let mut first = [0; SHORT_READ];
    let n = reader.read(&mut first).what("cannot read")?;
    let left = queued(&reader).what(FIONREAD_FAILED)?;
    let mut buf = vec![0; READ_BUF];
    let m = reader.read(&mut buf).what("cannot read")?;
    let step = Step {
        name: TOO_LITTLE,
        did: format!("write {}, then write {}", shown(SMALL[0]), shown(SMALL[1])),
        how: format!(
            "{}, then read with a {SHORT_READ}-byte buffer, then again with a \
             {READ_BUF}-byte one.",
            waited.describe()
        ),
        unit: Unit::Read,
        got: vec![
            Got {
                bytes: first[..n].to_vec(),
                queued: waited.queued,
            },
            Got {
                bytes: buf[..m].to_vec(),
                queued: left,
            },
        ],
        refused: None,
    };
    Ok(Part {
        number: 4,
        transport: "tcp",
        title: "A reader that asks for too little",
        lesson: "How much a read returns is the reader's choice as much as the sender's: \
                 ask for 2 bytes and you get 2, and the rest stays in the buffer for the \
                 next read. Nothing is lost, but nothing marks where \"hello\" ended \
                 either. (A UDP receive that asks for too little is different: the rest \
                 of that datagram is thrown away.)",
        steps: vec![step],
    })
}

/// A connected pair on 127.0.0.1: the writer (with TCP_NODELAY as asked)
/// and the reader, each of their calls bounded by [`DEADLINE`].
pub(super) fn tcp_pair(nodelay: bool) -> Result<(TcpStream, TcpStream)> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).what("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let writer = TcpStream::connect_timeout(&addr, DEADLINE)
        .with_what(|| format!("cannot connect to {addr}"))?;
    // Already connected: the accept only takes it from the queue.
    let (reader, from) = listener.accept().what("cannot accept")?;
    own(from, writer.local_addr()?)?;
    writer.set_nodelay(nodelay)?;
    writer.set_write_timeout(Some(DEADLINE))?;
    reader.set_read_timeout(Some(DEADLINE))?;
    Ok((writer, reader))
}

/// Writes all of `bytes` and counts the write calls it took: one, on a
/// blocking socket, unless a signal or the deadline cuts it short.
pub(super) fn write_counting(writer: &mut TcpStream, bytes: &[u8]) -> Result<usize> {
    let (mut sent, mut calls) = (0, 0);
    while sent < bytes.len() {
        match writer.write(&bytes[sent..]) {
            Ok(0) => {
                return Err(Error::Broken(format!(
                    "the connection closed after {sent} bytes"
                )));
            }
            Ok(n) => {
                sent += n;
                calls += 1;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err).what("cannot write"),
        }
    }
    Ok(calls)
}

/// Reads `total` bytes with a [`READ_BUF`]-byte buffer, one [`Got`] per
/// read.
pub(super) fn read_all(reader: &mut TcpStream, total: usize) -> Result<Vec<Got>> {
    let mut buf = vec![0; READ_BUF];
    let (mut got, mut sum) = (Vec::new(), 0);
    while sum < total {
        let n = match reader.read(&mut buf) {
            Ok(0) => {
                return Err(Error::Broken(format!(
                    "the writer closed the connection after {sum} bytes"
                )));
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).what("cannot read"),
        };
        sum += n;
        got.push(Got {
            bytes: buf[..n].to_vec(),
            queued: None,
        });
    }
    Ok(got)
}

// ---- part 2: framed TCP (msg-tcp) -----------------------------------------

pub(super) async fn framed_tcp(nodelay: bool) -> Result<Part> {
    let options = msg_tcp::Options {
        max_frame: DEFAULT_MAX_FRAME,
        nodelay,
        ..Default::default()
    };
    let listener = Listener::bind(localhost(), options).await?;
    let addr = listener.local_addr()?;
    let mut writer = bounded(Connection::connect(addr, options)).await?;
    let mut reader = bounded(listener.accept()).await?;
    if let Some(from) = reader.peer_addr().inet() {
        own(from, writer.get_ref().local_addr()?)?;
    }
    Ok(Part {
        number: 2,
        transport: "tcp",
        title: "Framed TCP: msg's 4-byte length prefix",
        lesson: "msg frames each message: a 4-byte length (big-endian), then msg's 28-byte \
                 header and the body. Underneath, reads still return glued or partial \
                 bytes as in part 1; the codec (the code that turns bytes into messages \
                 and back) keeps them in a buffer and cuts them where the lengths say, so \
                 the messages come back as they were sent.",
        steps: vec![
            two_small_messages(&mut writer, &mut reader).await?,
            one_large_message(&mut writer, &mut reader).await?,
        ],
    })
}

pub(super) async fn two_small_messages(
    writer: &mut Connection,
    reader: &mut Connection,
) -> Result<Step> {
    let small: Vec<Message> = SMALL
        .iter()
        .zip(1..)
        .map(|(body, seq)| Message::new(Kind::Data, seq, *body))
        .collect();
    for msg in &small {
        bounded(writer.write_message(msg))
            .await
            .what("cannot send")?;
    }
    let frames: Vec<usize> = small
        .iter()
        .map(|msg| LENGTH_PREFIX_LEN + msg.encoded_len())
        .collect();
    let waited = wait_for_async(reader.get_ref(), frames.iter().sum()).await?;
    let mut got = Vec::new();
    for _ in &small {
        let before = queued(reader.get_ref()).what(FIONREAD_FAILED)?;
        got.push(Got {
            bytes: receive(reader).await?.body.to_vec(),
            queued: before,
        });
    }
    Ok(Step {
        name: TWO_SMALL,
        did: format!(
            "send {} and {} as two frames of {} and {} bytes (a {LENGTH_PREFIX_LEN}-byte \
             length, a {HEADER_LEN}-byte header, the body)",
            shown(SMALL[0]),
            shown(SMALL[1]),
            frames[0],
            frames[1]
        ),
        how: format!(
            "{}, glued as in part 1, then asked the codec for two messages.",
            waited.describe()
        ),
        unit: Unit::Message,
        got,
        refused: None,
    })
}

pub(super) async fn one_large_message(
    writer: &mut Connection,
    reader: &mut Connection,
) -> Result<Step> {
    let large = Message::new(Kind::Data, 3, pattern(LARGE));
    let (sent, received) = bounded(async {
        Ok::<_, Error>(tokio::join!(writer.write_message(&large), receive(reader)))
    })
    .await?;
    sent.what("cannot send")?;
    Ok(Step {
        name: ONE_LARGE,
        did: format!(
            "send {LARGE} bytes as one frame of {} bytes",
            LENGTH_PREFIX_LEN + large.encoded_len()
        ),
        how: "The reader asked the codec for one message; under it, the codec read as \
              often as it took, and waited for the whole frame."
            .to_owned(),
        unit: Unit::Message,
        got: vec![Got {
            bytes: received?.body.to_vec(),
            queued: None,
        }],
        refused: None,
    })
}

/// The next message, within [`DEADLINE`].
pub(super) async fn receive(reader: &mut Connection) -> Result<Message> {
    bounded(reader.read_message())
        .await
        .what("cannot receive")?
        .what("the writer closed the connection")
}
