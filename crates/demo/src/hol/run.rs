//! The lesson's parts, in a thread of their own inside a private network
//! namespace.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use msg_proto::{Kind, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BODY, DEADLINE, GAP, LOST, LOST_BODY, Lesson, N, Part};
use crate::error::{Context as _, Error, Result};

/// The table the lesson adds in its namespace.
const TABLE: &str = "msg_hol";

/// The rule: the first packet the listener receives that is 700 to 1,000
/// bytes long (the lost message's, and only it), dropped once.
const RULE: &str = "meta l4proto { tcp, udp } ip length 700-1000 \
                    limit rate 1/hour burst 1 packets counter drop";

/// TCP's selective acknowledgements, in the namespace of the thread that
/// opens it.
const SACK: &str = "/proc/sys/net/ipv4/tcp_sack";

/// When each message arrived, by sequence number, against one clock.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

pub(super) fn run() -> Result<Lesson> {
    std::thread::spawn(|| {
        private_namespace()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let tcp = tokio::time::timeout(DEADLINE, tcp())
                .await
                .map_err(|_| Error::Broken(format!("not done within {DEADLINE:?}")))
                .and_then(|r| r)
                .part("part 1 (TCP)")?;
            let quic = tokio::time::timeout(DEADLINE, quic())
                .await
                .map_err(|_| Error::Broken(format!("not done within {DEADLINE:?}")))
                .and_then(|r| r)
                .part("part 2 (QUIC)")?;
            Ok(Lesson {
                lost: LOST,
                sent: N,
                gap_us: GAP.as_micros() as u64,
                tcp_sack: false,
                rule: RULE.to_owned(),
                tcp,
                quic,
            })
        })
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Moves this thread into a new network namespace with `lo` up.
fn private_namespace() -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|err| {
        Error::Unsupported {
            lesson: "hol",
            needs: if err == nix::errno::Errno::EPERM {
                "Linux in a private network namespace of its own, which needs root \
                 (CAP_SYS_ADMIN): sudo msg demo hol"
            } else {
                "Linux in a private network namespace of its own, and unshare(CLONE_NEWNET) \
                 failed"
            },
        }
    })?;
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|err| {
            missing(
                err,
                "ip",
                "to bring its namespace's loopback up",
                "iproute2",
            )
        })?;
    if !up.success() {
        return Err(Error::Broken(format!("ip link set lo up: {up}")));
    }
    Ok(())
}

/// Why `program` could not be started: [`Error::Missing`] where it is not
/// installed (not [`Error::Unsupported`], whose "runs only on {needs}"
/// made "the hol lesson runs only on ip (iproute2), ..."), else the
/// operating system's error.
fn missing(
    err: std::io::Error,
    program: &'static str,
    why: &'static str,
    package: &'static str,
) -> Error {
    if err.kind() == std::io::ErrorKind::NotFound {
        Error::Missing {
            lesson: "hol",
            program,
            why,
            package,
        }
    } else {
        Error::Context {
            what: format!("cannot run {program}"),
            source: Box::new(err.into()),
        }
    }
}

/// Adds the rule, fresh (its limit unspent, its counter at zero).
fn drop_one() -> Result<()> {
    let ruleset = format!(
        "table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority 0;\n\
         \t\t{RULE}\n\
         \t}}\n\
         }}\n"
    );
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|err| missing(err, "nft", "to drop one packet", "nftables"))?;
    std::io::Write::write_all(&mut child.stdin.take().expect("piped"), ruleset.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        return Err(Error::Broken(format!("nft -f -: {status}")));
    }
    Ok(())
}

/// How many packets the rule dropped.
fn dropped() -> Result<u64> {
    let out = Command::new("nft")
        .args(["list", "table", "inet", TABLE])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `... burst 1 packets counter packets 1 bytes 784 drop`: the count
    // after the counter's own `packets`.
    text.split_whitespace()
        .skip_while(|w| *w != "counter")
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .with_what(|| format!("no counter in {text}"))
}

/// Message `seq` as msg frames it (header and body), the lost one larger.
fn message(seq: u64) -> Bytes {
    let len = if seq == LOST { LOST_BODY } else { BODY };
    let mut out = BytesMut::new();
    msg_proto::encode(&Message::new(Kind::Data, seq, vec![b'x'; len]), &mut out)
        .expect("a small body fits");
    out.freeze()
}

/// How long before a message is due the pacer stops sleeping and yields
/// until it is: tokio's timer rounds a deadline up to its next
/// millisecond and wakes some more after it (gaps of 9.2 to 12 ms were
/// seen for 10), where a yield sees the clock every few microseconds,
/// letting the other tasks (the listener's, quinn's) run meanwhile.
const SPIN: std::time::Duration = std::time::Duration::from_millis(2);

/// How late a send may be and still keep the schedule.
const LATE: std::time::Duration = std::time::Duration::from_millis(1);

/// The client's sends, [`GAP`] apart, and when each went.
struct Pacer {
    start: Instant,
    /// When the next message is due.
    due: tokio::time::Instant,
    sent: Vec<Instant>,
}

impl Pacer {
    fn new() -> Self {
        let now = tokio::time::Instant::now();
        Self {
            start: now.into_std(),
            due: now,
            sent: Vec::new(),
        }
    }

    /// The next message to send, when its time has come; `None` after the
    /// last.
    ///
    /// Each message is due [`GAP`] after the previous one was *due*, not
    /// after it went, and is sent when due, not when tokio's timer wakes
    /// ([`SPIN`]): a `sleep(GAP)` after each send added the timer's
    /// rounding to every gap (1 ms became 2.2). A send late all the same
    /// by more than [`LATE`] (a stalled machine, or the lost message's
    /// wait below) restarts the schedule from itself rather than catching
    /// up: the next message would go sooner than [`GAP`]
    /// after it, and a QUIC message sent right after the one whose
    /// acknowledgement brings the retransmission can arrive after it and
    /// look held (seen: 0.8 ms after a send 3.7 ms late). The lost
    /// message goes only once every earlier one has arrived, on a quiet
    /// connection.
    async fn next(&mut self, arrivals: &Arrivals) -> Option<Bytes> {
        let seq = self.sent.len() as u64;
        if seq == N {
            return None;
        }
        if seq == LOST {
            while (arrivals.lock().expect("never poisoned").len() as u64) < LOST {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        if seq > 0 {
            tokio::time::sleep_until(self.due - SPIN).await;
            while tokio::time::Instant::now() < self.due {
                tokio::task::yield_now().await;
            }
        }
        let now = tokio::time::Instant::now();
        self.due = if now > self.due + LATE {
            now + GAP
        } else {
            self.due + GAP
        };
        self.sent.push(now.into_std());
        Some(message(seq))
    }

    /// Waits until every message arrived; each one's times in
    /// microseconds from the first send.
    async fn finish(self, arrivals: &Arrivals) -> Vec<(u64, u64)> {
        while arrivals.lock().expect("never poisoned").len() < N as usize {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let arrivals = arrivals.lock().expect("never poisoned");
        let us = |t: Instant| t.duration_since(self.start).as_micros() as u64;
        (0..N)
            .map(|seq| (us(self.sent[seq as usize]), us(arrivals[&seq])))
            .collect()
    }
}

/// Notes `frame`'s arrival now.
fn arrived(arrivals: &Arrivals, frame: Bytes) -> Result<()> {
    let now = Instant::now();
    let msg = msg_proto::decode(frame).map_err(|err| Error::Broken(err.to_string()))?;
    arrivals
        .lock()
        .expect("never poisoned")
        .insert(msg.seq, now);
    Ok(())
}

/// The largest frame part 1 reads: its largest message (the one the
/// rule drops, [`LOST_BODY`] bytes of body) and a header, with room.
const MAX_FRAME: usize = 4 * 1024;

/// Part 1: one TCP connection, each frame behind its length.
async fn tcp() -> Result<Part> {
    // SACK off, in this namespace only (both ends are in it, so the
    // connection is made without): with it, Linux's loss detection (RACK)
    // retransmits a lost segment as soon as one sent after it is
    // acknowledged, which on loopback's round trip of microseconds is the
    // moment the next message arrives, and no message but that one would
    // be seen waiting. Without it, the sender retransmits after three
    // duplicate acknowledgements (RFC 5681's fast retransmit), that is
    // three messages later: messages keep being sent while the lost one
    // waits, as they do on a path whose round trip is longer than the gap
    // between them.
    std::fs::write(SACK, "0").with_what(|| format!("cannot turn SACK off in {SACK}"))?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let mut client = tokio::net::TcpStream::connect(addr).await?;
    client.set_nodelay(true)?;
    let (mut server, from) = listener.accept().await?;
    // The port is loopback's and any local process may connect first: the
    // demo reads its own client, and no length but its own.
    if from != client.local_addr()? {
        return Err(Error::Broken(format!(
            "a connection from {from}, not the demo's own client"
        )));
    }
    let arrivals = Arrivals::default();
    let noted = Arc::clone(&arrivals);
    let reader = tokio::spawn(async move {
        for _ in 0..N {
            let len = server.read_u32().await?;
            if len as usize > MAX_FRAME {
                return Err(Error::Broken(format!(
                    "a frame of {len} bytes announced; the demo sends at most {MAX_FRAME}"
                )));
            }
            let mut frame = vec![0; len as usize];
            server.read_exact(&mut frame).await?;
            arrived(&noted, frame.into())?;
        }
        Ok::<_, Error>(())
    });
    drop_one()?;
    let mut pacer = Pacer::new();
    while let Some(frame) = pacer.next(&arrivals).await {
        let mut out = Vec::with_capacity(frame.len() + 4);
        out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        out.extend_from_slice(&frame);
        client.write_all(&out).await?;
    }
    let times = pacer.finish(&arrivals).await;
    reader
        .await
        .map_err(|err| Error::Broken(err.to_string()))??;
    Ok(Part::new(
        "tcp",
        "one connection, every message behind its 4-byte length",
        dropped()?,
        &times,
    ))
}

/// Part 2: one QUIC connection, a unidirectional stream per message.
async fn quic() -> Result<Part> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .map_err(|err| Error::Broken(format!("cannot make a certificate: {err}")))?;
    let cert = made.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let server_config = quinn::ServerConfig::with_single_cert(vec![cert.clone()], key)
        .map_err(|err| Error::Broken(format!("QUIC server settings: {err}")))?;
    let server = quinn::Endpoint::server(server_config, (Ipv4Addr::LOCALHOST, 0).into())?;
    let addr: SocketAddr = server.local_addr()?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert)
        .map_err(|err| Error::Broken(format!("trusting the certificate: {err}")))?;
    let client_config = quinn::ClientConfig::with_root_certificates(Arc::new(roots))
        .map_err(|err| Error::Broken(format!("QUIC client settings: {err}")))?;
    let mut client = quinn::Endpoint::client((Ipv4Addr::LOCALHOST, 0).into())?;
    client.set_default_client_config(client_config);
    let connecting = client
        .connect(addr, "localhost")
        .map_err(|err| Error::Broken(format!("QUIC connect: {err}")))?;
    // The listener's side of the handshake runs while the client's waits.
    let accepting = async {
        let incoming = server.accept().await.what("no QUIC connection")?;
        incoming
            .await
            .map_err(|err| Error::Broken(format!("QUIC handshake: {err}")))
    };
    let (conn, served) = tokio::join!(connecting, accepting);
    let conn = conn.map_err(|err| Error::Broken(format!("QUIC handshake: {err}")))?;
    let served = served?;
    let arrivals = Arrivals::default();
    let noted = Arc::clone(&arrivals);
    // Each stream read in a task of its own: one waiting for its lost
    // packet holds up no other.
    let reader = tokio::spawn(async move {
        let mut streams = tokio::task::JoinSet::new();
        for _ in 0..N {
            let Ok(mut stream) = served.accept_uni().await else {
                break;
            };
            let noted = Arc::clone(&noted);
            streams.spawn(async move {
                if let Ok(frame) = stream.read_to_end(64 * 1024).await {
                    let _ = arrived(&noted, frame.into());
                }
            });
        }
        while streams.join_next().await.is_some() {}
        served
    });
    // The handshake's packets, and quinn's first MTU probes, are past; the
    // rule sees only the messages' packets and acknowledgements.
    drop_one()?;
    let mut pacer = Pacer::new();
    while let Some(frame) = pacer.next(&arrivals).await {
        let frames = conn.stats().frame_tx.stream;
        let mut stream = conn
            .open_uni()
            .await
            .map_err(|err| Error::Broken(format!("QUIC stream: {err}")))?;
        stream
            .write_all(&frame)
            .await
            .map_err(|err| Error::Broken(format!("QUIC write: {err}")))?;
        let _ = stream.finish();
        // On the wire before the next is written, so that no packet
        // carries two messages (bounded by the part's deadline).
        while conn.stats().frame_tx.stream == frames {
            tokio::task::yield_now().await;
        }
    }
    let times = pacer.finish(&arrivals).await;
    let served = reader.await.map_err(|err| Error::Broken(err.to_string()))?;
    conn.close(0u32.into(), b"done");
    served.close(0u32.into(), b"done");
    Ok(Part::new(
        "quic",
        "one connection, one stream per message",
        dropped()?,
        &times,
    ))
}
