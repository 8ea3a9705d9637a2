//! The ephemeral ports and TIME_WAIT: what caps a connect run that
//! closes its TCP connections with a FIN.

use std::time::Duration;

/// The kernel's ephemeral ports and how soon a port in TIME_WAIT may be
/// used again: what caps a run that closes with FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// `net.ipv4.ip_local_port_range`, both ends included.
    pub low: u16,
    /// Its upper end.
    pub high: u16,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 on for loopback only (the
    /// default since Linux 4.20).
    pub tw_reuse: u8,
}

/// How long a closed TCP connection's client end stays in TIME_WAIT:
/// Linux's `TCP_TIMEWAIT_LEN`, fixed at build time.
pub const TIME_WAIT: Duration = Duration::from_secs(60);

/// With `tcp_tw_reuse`, how long a TIME_WAIT port must wait before
/// `connect()` takes it again: its last timestamp must be older than a
/// second.
pub const TW_REUSE_AFTER: Duration = Duration::from_secs(1);

impl Ports {
    /// Reads `/proc/sys/net/ipv4`; `None` where it cannot.
    pub fn read() -> Option<Self> {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
        let reuse = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse").ok()?;
        Self::parse(&range, &reuse)
    }

    fn parse(range: &str, reuse: &str) -> Option<Self> {
        let mut ends = range.split_whitespace().map(str::parse::<u16>);
        let (low, high) = (ends.next()?.ok()?, ends.next()?.ok()?);
        Some(Self {
            low,
            high,
            tw_reuse: reuse.trim().parse().ok()?,
        })
    }

    /// How many ephemeral ports there are.
    pub fn count(&self) -> u32 {
        u32::from(self.high.saturating_sub(self.low)) + 1
    }

    /// Whether `connect()` reuses a TIME_WAIT port on loopback, where the
    /// benchmark connects.
    pub fn reuses_on_loopback(&self) -> bool {
        self.tw_reuse != 0
    }

    /// How long a port stays taken after a FIN close on loopback.
    pub fn held_for(&self) -> Duration {
        if self.reuses_on_loopback() {
            TW_REUSE_AFTER
        } else {
            TIME_WAIT
        }
    }

    /// The highest rate of FIN-closed connections to one listener that
    /// the ports sustain: every port taken for [`Ports::held_for`].
    pub fn sustainable_per_s(&self) -> f64 {
        f64::from(self.count()) / self.held_for().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_from_proc_text() {
        let ports = Ports::parse("32768\t60999\n", "2\n").unwrap();
        assert_eq!(ports.count(), 28_232);
        assert!(ports.reuses_on_loopback());
        assert_eq!(ports.sustainable_per_s(), 28_232.0);
        let off = Ports::parse("32768 60999", "0").unwrap();
        assert!((off.sustainable_per_s() - 470.5).abs() < 0.1);
        assert_eq!(Ports::parse("", "0"), None);
        assert_eq!(Ports::parse("1 2", "x"), None);
    }
}
