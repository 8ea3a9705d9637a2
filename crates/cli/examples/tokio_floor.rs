//! The floor under `msg bench --udp`: a UDP ping-pong in bare tokio, with no
//! msg code at all (no header, no decode, no statistics), laid out as msg
//! bench lays itself out: client and echo server each on a thread of its
//! own with a current-thread runtime, both pinned to the first CPU.
//!
//! `cargo run --release --example tokio_floor -- [SIZE] [SECONDS]`
//! prints the round-trip p50 and p99 in µs. `bench/compare.sh --floor` runs
//! it beside sockperf and msg; BENCHMARKS.md has the numbers. If msg's
//! round trip is close to this one, what is left between msg and sockperf
//! is tokio's readiness model, not msg.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::net::UdpSocket;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().map_or(Ok(64), |s| s.parse())?;
    let seconds: f64 = args.next().map_or(Ok(2.0), |s| s.parse())?;
    anyhow::ensure!(size <= 65_507, "{size} bytes do not fit a UDP datagram");
    let cpu = core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().next())
        .context("no CPU to pin to")?;

    let server = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = server.local_addr()?;
    server.set_nonblocking(true)?;
    // Detached: it serves until the process exits.
    std::thread::spawn(move || {
        core_affinity::set_for_current(cpu);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let socket = UdpSocket::from_std(server).expect("register the socket");
            let mut buf = vec![0; 65_536];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let _ = socket.send_to(&buf[..len], peer).await;
            }
        });
    });

    core_affinity::set_for_current(cpu);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let histogram = runtime.block_on(client(addr, size, Duration::from_secs_f64(seconds)))?;
    let us = |q| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "tokio floor, UDP {size} B, same core: p50 {:.2} µs, p99 {:.2} µs, {} round trips",
        us(0.5),
        us(0.99),
        histogram.len()
    );
    Ok(())
}

async fn client(
    addr: SocketAddr,
    size: usize,
    duration: Duration,
) -> anyhow::Result<Histogram<u64>> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    socket.connect(addr).await?;
    let ping = vec![b'm'; size];
    let mut pong = vec![0; 65_536];
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let warm_until = Instant::now() + Duration::from_millis(200);
    let end = warm_until + duration;
    loop {
        let sent = Instant::now();
        if sent >= end {
            return Ok(histogram);
        }
        socket.send(&ping).await?;
        // No loss on loopback at one message in flight; a bound all the same.
        tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut pong))
            .await
            .context("no echo within 1 s")??;
        if sent >= warm_until {
            histogram
                .saturating_record(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
    }
}
