//! Part 1: the server closes first, its end waits in TIME_WAIT on the
//! listening port, and a new listener there needs SO_REUSEADDR.

use std::fs;
use std::io::{self, Read as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::Instant;

use socket2::{Domain, SockRef, Socket, Type};

use super::{Bind, DEADLINE, Entry, POLL, Restart};
use crate::error::{Context as _, Error, Result};

/// `/proc/net/tcp`'s state number for TIME_WAIT (`include/net/tcp_states.h`).
const TIME_WAIT: &str = "06";
/// The unit of `/proc/net/tcp`'s timer column: clock ticks (USER_HZ,
/// 100 a second on Linux).
const TICK_MS: u64 = 10;

pub(super) fn restart() -> Result<Restart> {
    // msg's own listener: SO_REUSEADDR set, as std sets it too. The
    // connection it accepts inherits the option, and so does the
    // TIME_WAIT entry it leaves: the kernel lets a new socket share the
    // port only when both it and every socket there allow it.
    let listener =
        msg_tcp::tcp::listen((Ipv4Addr::LOCALHOST, 0).into()).what("cannot listen on 127.0.0.1")?;
    // SO_RCVTIMEO bounds accept, as it bounds a read.
    SockRef::from(&listener).set_read_timeout(Some(DEADLINE))?;
    let addr = listener.local_addr()?;
    let client = TcpStream::connect_timeout(&addr, DEADLINE).what("cannot connect")?;
    client.set_read_timeout(Some(DEADLINE))?;
    let client_port = client.local_addr()?.port();
    let (server, _) = listener.accept().what("cannot accept")?;

    // The server closes first: it sends FIN. The client reads the end of
    // the stream and closes in turn; the server's end acknowledges that
    // last FIN and waits, in TIME_WAIT.
    drop(server);
    let n = (&client)
        .read(&mut [0; 16])
        .what("the client cannot read the server's close")?;
    if n != 0 {
        return Err(Error::Broken(format!(
            "the client read {n} bytes, not the end of the stream"
        )));
    }
    let closed = Instant::now();
    drop(client);
    drop(listener);

    let Waited {
        entries,
        time_wait,
        gone,
        reads,
    } = wait_for_time_wait(addr.port(), client_port)?;
    let waited_ms = (closed.elapsed().as_secs_f64() * 1e4).round() / 10.0;

    // A restarted server: a new socket, the same port. socket2 sets no
    // option by itself (std's TcpListener would set SO_REUSEADDR), and
    // `false` is said anyway.
    let without_reuseaddr = Bind::of(&bind(addr, false));
    let with_reuseaddr = Bind::of(&bind(addr, true));
    Ok(Restart {
        port: addr.port(),
        client_port,
        entries,
        time_wait,
        reads,
        waited_ms,
        gone,
        without_reuseaddr,
        with_reuseaddr,
    })
}

/// A TCP socket bound to `addr` and listening, SO_REUSEADDR as `reuse`;
/// closed on return.
fn bind(addr: SocketAddr, reuse: bool) -> io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(reuse)?;
    socket.bind(&addr.into())?;
    socket.listen(msg_tcp::tcp::LISTEN_BACKLOG)
}

/// What the wait for TIME_WAIT saw.
struct Waited {
    /// The entries on the port at the last read.
    entries: Vec<Entry>,
    /// The server's end in TIME_WAIT.
    time_wait: bool,
    /// The server's end in no state at all: no TIME_WAIT is coming.
    gone: bool,
    /// Reads of `/proc/net/tcp`.
    reads: usize,
}

/// The entries on local port `port` once the server's end of the
/// connection to `client_port` is in TIME_WAIT, and how many reads that
/// took: `/proc/net/tcp` read every [`POLL`], until [`DEADLINE`] (on
/// loopback it is there at the first). Not seen, what was last read.
///
/// The wait stops too once the server's end has no entry at all: a
/// connection that closes goes from FIN-WAIT-2 to TIME_WAIT in one step
/// under the table's lock (the TIME_WAIT entry put in before the socket
/// is taken out), so an end in neither state is gone for good, as when
/// the kernel keeps no TIME_WAIT entry (its table full,
/// `net.ipv4.tcp_max_tw_buckets`). It waited the whole [`DEADLINE`] for
/// one, and then explained the timer of an entry it never saw.
fn wait_for_time_wait(port: u16, client_port: u16) -> Result<Waited> {
    let start = Instant::now();
    let client = SocketAddr::from((Ipv4Addr::LOCALHOST, client_port)).to_string();
    let mut reads = 0;
    loop {
        let table = fs::read_to_string("/proc/net/tcp").what("cannot read /proc/net/tcp")?;
        reads += 1;
        let entries = on_port(&table, port);
        let seen = entries
            .iter()
            .any(|e| e.st == TIME_WAIT && e.remote == client);
        let gone = !entries.iter().any(|e| e.remote == client);
        // Bounded in time, and so in count: a read takes at least a POLL.
        if seen || gone || start.elapsed() > DEADLINE {
            return Ok(Waited {
                entries,
                time_wait: seen,
                gone,
                reads,
            });
        }
        thread::sleep(POLL);
    }
}

/// The entries of a `/proc/net/tcp` table whose local port is `port`:
/// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when ...`.
fn on_port(table: &str, port: u16) -> Vec<Entry> {
    table
        .lines()
        .skip(1)
        .filter_map(entry)
        .filter(|(local, _)| local.port() == port)
        .map(|(_, entry)| entry)
        .collect()
}

/// One line of the table, and its local address.
fn entry(line: &str) -> Option<(SocketAddr, Entry)> {
    let columns: Vec<&str> = line.split_whitespace().collect();
    let local = address(columns.get(1)?)?;
    let remote = address(columns.get(2)?)?;
    let st = (*columns.get(3)?).to_owned();
    let (tx, rx) = columns.get(4)?.split_once(':')?;
    let (send_q, recv_q) = (
        u64::from_str_radix(tx, 16).ok()?,
        u64::from_str_radix(rx, 16).ok()?,
    );
    // `tr:when`: a timer's kind (3 is TIME_WAIT's) and what is left of it.
    let (tr, when) = columns.get(5)?.split_once(':')?;
    let timer_ms = (u8::from_str_radix(tr, 16).ok()? != 0)
        .then(|| u64::from_str_radix(when, 16).ok())
        .flatten()
        .map(|ticks| ticks * TICK_MS);
    Some((
        local,
        Entry {
            state: state_name(&st).to_owned(),
            st,
            recv_q,
            send_q,
            local: local.to_string(),
            remote: remote.to_string(),
            timer_ms,
        },
    ))
}

/// `0100007F:1F90`: the IPv4 address as the kernel holds it (network
/// order, printed as a native 32-bit number), then the port.
fn address(column: &str) -> Option<SocketAddr> {
    let (ip, port) = column.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some((Ipv4Addr::from(ip.to_ne_bytes()), port).into())
}

/// `ss`'s name for a state number of `/proc/net/tcp`.
fn state_name(st: &str) -> &'static str {
    match st {
        "01" => "ESTAB",
        "02" => "SYN-SENT",
        "03" => "SYN-RECV",
        "04" => "FIN-WAIT-1",
        "05" => "FIN-WAIT-2",
        "06" => "TIME-WAIT",
        "07" => "UNCONN",
        "08" => "CLOSE-WAIT",
        "09" => "LAST-ACK",
        "0A" => "LISTEN",
        "0B" => "CLOSING",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The addresses as a little-endian machine prints them.
    #[cfg(target_endian = "little")]
    #[test]
    fn a_time_wait_line_is_read_as_ss_shows_it() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            \x20  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n\
            \x20  1: 0100007F:A1B2 0100007F:C3D4 06 00000000:00000000 03:0000176A 00000000     0        0 0 3 0000000000000000\n\
            \x20  2: 0100007F:C3D4 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1\n";
        let entries = on_port(table, 0xA1B2);
        assert_eq!(
            entries,
            [Entry {
                st: "06".to_owned(),
                state: "TIME-WAIT".to_owned(),
                recv_q: 0,
                send_q: 0,
                local: "127.0.0.1:41394".to_owned(),
                remote: "127.0.0.1:50132".to_owned(),
                timer_ms: Some(59_940),
            }]
        );
        let listening = on_port(table, 8080);
        assert_eq!(listening[0].state, "LISTEN");
        assert_eq!(listening[0].remote, "0.0.0.0:0");
        assert_eq!(listening[0].timer_ms, None);
        assert!(on_port(table, 1).is_empty());
        assert!(on_port("header\nnot a line\n", 8080).is_empty());
    }
}
