//! Rendering what happened: wrapped text with a short lesson per part.
//! (The JSON is the parts' own fields.)

use std::io::{self, Write};

use super::{Bind, Entry, Lesson, Restart, Shared};
use crate::text::{part, plural, step, wrap};

pub(super) fn write_text(out: &mut impl Write, lesson: &Lesson) -> io::Result<()> {
    writeln!(
        out,
        "msg demo reuseaddr: a restarted server's port, and two receivers on one"
    )?;
    writeln!(out)?;
    wrap(
        out,
        "",
        "Everything runs in this process, on 127.0.0.1, on ports the kernel picks; every \
         socket is closed when its part ends.",
    )?;
    time_wait(out, &lesson.time_wait)?;
    reuseport(out, &lesson.reuseport)
}

fn time_wait(out: &mut impl Write, restart: &Restart) -> io::Result<()> {
    part(
        out,
        1,
        "TCP: TIME_WAIT, and why a restarted server needs SO_REUSEADDR",
        "Whichever end of a TCP connection closes first keeps the connection for a while \
         after both have closed: in TIME_WAIT, for twice the Maximum Segment Lifetime \
         (2MSL) by the RFC, a fixed 60 s on Linux. For two reasons: its last ACK, to \
         the peer's FIN, may be lost, and then the peer sends its FIN again, which only an \
         end still there can answer (rather than with a reset); and old duplicate \
         segments of this connection, still in the network, must die out before a new \
         connection with the same addresses and ports could take them for its own. When \
         the server closes first, as a server that shuts down does, that end is on the \
         server's own port.",
    )?;
    let port = restart.port;
    step(
        out,
        &format!(
            "listen on 127.0.0.1:{port} (msg-tcp's listen, which sets SO_REUSEADDR) and \
             accept a client, from port {}; the server closes first, the client reads the \
             end of the stream and closes too; then the listener is closed",
            restart.client_port
        ),
        &[format!(
            "what is left on port {port}, as `ss -tan` shows it (read from \
             /proc/net/tcp, where state 06 is TIME_WAIT):"
        )],
    )?;
    table(out, &restart.entries)?;
    if restart.time_wait {
        wrap(
            out,
            "    ",
            &format!(
                "The server's end, in TIME_WAIT, found by read {} of /proc/net/tcp, \
                 {:.1} ms after the client's close (a read takes milliseconds: the \
                 kernel walks its tables). Nothing listens on the port any more, and no \
                 program has it open.",
                restart.reads, restart.waited_ms
            ),
        )?;
    } else if restart.gone {
        wrap(
            out,
            "    ",
            &format!(
                "No TIME_WAIT entry: read {} of /proc/net/tcp, {:.1} ms after the \
                 client's close, found the server's end in no state at all, so none was \
                 coming. The kernel keeps none when its table is full \
                 (net.ipv4.tcp_max_tw_buckets); this run has nothing to hold the \
                 port{}.",
                restart.reads,
                restart.waited_ms,
                if restart.without_reuseaddr.ok == restart.with_reuseaddr.ok {
                    ", and the binds below show no difference"
                } else {
                    ""
                }
            ),
        )?;
    } else {
        wrap(
            out,
            "    ",
            &format!(
                "No TIME_WAIT entry was seen within 5 s ({:.0} ms): the server's end was \
                 still in the state above, which holds the port as TIME_WAIT would.",
                restart.waited_ms
            ),
        )?;
    }
    let mut without = vec![bind(&restart.without_reuseaddr, "bound and listening")];
    if restart.without_reuseaddr.in_use && !restart.time_wait {
        without
            .push("The server's end, still on the port in the state above, holds it.".to_owned());
    } else if restart.without_reuseaddr.in_use {
        without.push(format!(
            "The TIME_WAIT entry alone holds the port. A server restarted within the \
             minute, its socket made without SO_REUSEADDR, cannot listen where it \
             listened before until the entry is gone{}.",
            timer(&restart.entries)
        ));
    }
    step(
        out,
        &format!(
            "bind a new socket to 127.0.0.1:{port} without SO_REUSEADDR (set to false: \
             std's TcpListener would set it), as a restarted server might"
        ),
        &without,
    )?;
    let mut with = vec![bind(&restart.with_reuseaddr, "bound and listening")];
    // What an entry does after the bind is said only where one was seen.
    if restart.with_reuseaddr.ok && restart.time_wait {
        with.push(
            "SO_REUSEADDR lets a socket bind a port that only connections in TIME_WAIT \
             hold. The entry stays until its timer ends, still guarding its old \
             connection, the one pair of addresses and ports it had: a new connection \
             to the port is another pair."
                .to_owned(),
        );
    }
    step(out, "the same with SO_REUSEADDR", &with)?;
    writeln!(out)?;
    wrap(
        out,
        "  ",
        "This is why std's TcpListener::bind sets SO_REUSEADDR on Unix, and msg's own \
         TCP listener too (msg-tcp's listen, in crates/tcp/src/tcp.rs): `msg listen \
         --tcp` can be stopped and started again at once. On Linux, SO_REUSEADDR does \
         not let two sockets listen on one port: a second listener is still refused. \
         That is SO_REUSEPORT, part 2.",
    )
}

/// `entries` as `ss -tan` lays them out.
fn table(out: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "    {:<10} {:>6} {:>6} {:<21} Peer Address:Port",
        "State", "Recv-Q", "Send-Q", "Local Address:Port"
    )?;
    for e in entries {
        writeln!(
            out,
            "    {:<10} {:>6} {:>6} {:<21} {}",
            e.state, e.recv_q, e.send_q, e.local, e.remote
        )?;
    }
    if entries.is_empty() {
        writeln!(out, "    (nothing)")?;
    }
    writeln!(out)
}

/// ", in about 59 s", from the TIME_WAIT entry's timer.
fn timer(entries: &[Entry]) -> String {
    entries
        .iter()
        .find_map(|e| e.timer_ms.filter(|_| e.st == "06"))
        .map_or_else(String::new, |ms| {
            format!(" (its timer said {:.0} s)", ms as f64 / 1e3)
        })
}

/// What a bind was told.
fn bind(bind: &Bind, ok: &str) -> String {
    match (&bind.error, bind.in_use) {
        (None, _) => ok.to_owned(),
        (Some(error), true) => format!("refused, EADDRINUSE: {error}"),
        (Some(error), false) => format!("refused: {error}"),
    }
}

fn reuseport(out: &mut impl Write, shared: &Shared) -> io::Result<()> {
    part(
        out,
        2,
        "UDP: two receivers on one port, with SO_REUSEPORT",
        "With SO_REUSEPORT set on each before bind, sockets of the same user may bind the \
         same address and port. For UDP, Linux gives each datagram to one of them, chosen \
         by a hash of its source and destination addresses and ports: the receivers \
         share the load, none gets a copy of another's datagram, and one sender (one \
         source port) always reaches the same receiver. That is how several processes or \
         threads serve one port, each with a socket of its own. A socket that does not \
         set SO_REUSEPORT is refused the port.",
    )?;
    let port = shared.port;
    step(
        out,
        &format!("bind two receivers to 127.0.0.1:{port}, both with SO_REUSEPORT"),
        &["both bound".to_owned()],
    )?;
    step(
        out,
        &format!("bind a third socket to 127.0.0.1:{port} without SO_REUSEPORT"),
        &[bind(&shared.without_reuseport, "bound")],
    )?;
    let [one, two] = shared.received;
    let mut results = vec![format!(
        "receiver 1 got {one}, receiver 2 got {two}: {} of {} sent{}",
        one + two,
        shared.sent,
        match (shared.duplicates, shared.garbled) {
            (0, 0) => ", each by one receiver only".to_owned(),
            (dup, garbled) => format!(", {dup} twice, {garbled} not as sent"),
        }
    )];
    if shared.rounds > 1 {
        results.push(format!(
            "(one receiver had none, so more senders were made: {} rounds of {})",
            shared.rounds,
            super::SENDERS
        ));
    }
    let flows: Vec<String> = shared
        .flows
        .iter()
        .map(|f| match f.received {
            [n, 0] => format!("{} -> 1 ({n})", f.port),
            [0, n] => format!("{} -> 2 ({n})", f.port),
            [a, b] => format!("{} -> 1 ({a}) and 2 ({b})", f.port),
        })
        .collect();
    results.push(format!(
        "by source port: {}; {}",
        flows.join(", "),
        match shared.split_flows {
            0 => "every sender's datagrams went to one receiver".to_owned(),
            n => format!("{n} sender{} split between both", plural(n)),
        }
    ));
    step(
        out,
        &format!(
            "send {} datagrams from each of {} sender sockets, each bound to a port of \
             its own, {} in all",
            shared.per_sender, shared.senders, shared.sent
        ),
        &results,
    )?;
    writeln!(out)?;
    wrap(
        out,
        "  ",
        "Multicast is the other way round (explained, not sent here): every socket bound \
         to the group's port with SO_REUSEPORT (or SO_REUSEADDR) that joined the group \
         gets its own copy of each datagram, since a multicast datagram is meant for \
         every listener.",
    )
}
