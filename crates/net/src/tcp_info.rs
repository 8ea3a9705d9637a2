//! [`TcpInfo`]: what the kernel knows about a TCP connection
//! (`getsockopt(TCP_INFO)`), for a benchmark that wants to see TCP
//! recover from loss: how often it retransmitted, and the round-trip time
//! and retransmission timeout it estimated.

use std::time::Duration;

/// A snapshot of a TCP connection's state, from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TcpInfo {
    /// Segments this side retransmitted over the connection's life
    /// (`tcpi_total_retrans`): what a lost segment costs TCP, invisible to
    /// the application.
    pub total_retrans: u32,
    /// The retransmission timeout now (`tcpi_rto`): how long a lost
    /// segment waits when no duplicate acknowledgement reveals it earlier.
    pub rto: Duration,
    /// The smoothed round-trip time (`tcpi_rtt`).
    pub rtt: Duration,
    /// Its variation (`tcpi_rttvar`).
    pub rttvar: Duration,
    /// The congestion window, in segments (`tcpi_snd_cwnd`): how much the
    /// sender may have in flight, which loss halves and time regrows.
    pub snd_cwnd: u32,
    /// Whether the connection's SYN carried data the listener took (TCP
    /// Fast Open: `TCPI_OPT_SYN_DATA` in `tcpi_options`).
    pub syn_data: bool,
}

impl TcpInfo {
    /// `TCP_INFO` of any TCP socket (std's, tokio's, socket2's); `None`
    /// where the system has none msg reads (elsewhere than Linux).
    ///
    /// # Errors
    ///
    /// The operating system's, for a socket that is not TCP say.
    #[cfg(unix)]
    pub fn of(socket: &impl std::os::fd::AsRawFd) -> std::io::Result<Option<Self>> {
        match read(socket) {
            Ok(info) => Ok(Some(info)),
            Err(err) if err.kind() == std::io::ErrorKind::Unsupported => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// `tcpi_options`' bit for a SYN that carried data the listener took
/// (`TCPI_OPT_SYN_DATA` in linux/tcp.h; libc does not export it).
#[cfg(target_os = "linux")]
const TCPI_OPT_SYN_DATA: u8 = 32;

/// `TCP_INFO` of a TCP socket (tokio's or std's).
#[cfg(target_os = "linux")]
pub(crate) fn read(stream: &impl std::os::fd::AsRawFd) -> std::io::Result<TcpInfo> {
    // SAFETY: `tcp_info` is plain integers; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len =
        libc::socklen_t::try_from(size_of::<libc::tcp_info>()).expect("tcp_info fits a socklen_t");
    // SAFETY: the descriptor is open for as long as `stream` is borrowed,
    // and the kernel writes at most `len` bytes into `info`; an older
    // kernel writes fewer and leaves the rest zero.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(TcpInfo {
        total_retrans: info.tcpi_total_retrans,
        rto: Duration::from_micros(info.tcpi_rto.into()),
        rtt: Duration::from_micros(info.tcpi_rtt.into()),
        rttvar: Duration::from_micros(info.tcpi_rttvar.into()),
        snd_cwnd: info.tcpi_snd_cwnd,
        syn_data: info.tcpi_options & TCPI_OPT_SYN_DATA != 0,
    })
}

/// Elsewhere `TCP_INFO` has other layouts: nothing is reported.
#[cfg(not(target_os = "linux"))]
pub(crate) fn read<S>(_stream: &S) -> std::io::Result<TcpInfo> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fresh_connection_has_retransmitted_nothing_and_knows_its_rtt() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (client, _server) = (client.unwrap(), accepted.unwrap());
        let info = read(&client).unwrap();
        assert_eq!(info.total_retrans, 0);
        // Linux never lets the timeout go below 200 ms.
        assert!(info.rto >= Duration::from_millis(200), "{info:?}");
        assert!(info.rtt > Duration::ZERO, "{info:?}");
    }
}
