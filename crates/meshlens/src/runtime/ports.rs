//! Choosing loopback ports once: each is bound (so it is free) and held until every port of the mesh is
//! chosen, then released for the processes to bind. A restarted process gets the same address, so peers
//! and the table stay right.
//!
//! Ports come from below the kernel's ephemeral range (`ip_local_port_range`, usually 32768–60999): the
//! kernel hands ephemeral ports to every outgoing connection on the machine, and one landing on a port we
//! just released would make the process meant for it fail to bind. Outside that range only another
//! explicit binder can take it. When nothing is free there, the kernel picks (`127.0.0.1:0`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// Ports chosen so far, held open until [`release`](Self::release) so no two are the same.
#[derive(Debug)]
pub struct PortPicker {
    held: Vec<TcpListener>,
    /// Candidates outside the ephemeral range, scanned from a random start.
    range: std::ops::Range<u16>,
    next: u16,
}

impl Default for PortPicker {
    fn default() -> Self {
        Self::new()
    }
}

impl PortPicker {
    pub fn new() -> Self {
        let range = outside_ephemeral(ephemeral_range());
        let next = if range.is_empty() { 0 } else { fastrand::u16(range.clone()) };
        PortPicker { held: Vec::new(), range, next }
    }

    /// A free loopback port.
    pub fn pick(&mut self) -> io::Result<SocketAddr> {
        let len = self.range.len();
        for _ in 0..len.min(4096) {
            let port = self.next;
            self.next = if port + 1 >= self.range.end { self.range.start } else { port + 1 };
            if let Ok(addr) = self.reserve(port) {
                return Ok(addr);
            }
        }
        self.reserve(0)
    }

    /// `127.0.0.1:port` (0: any free one); fails when the port is in use.
    pub fn reserve(&mut self, port: u16) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let addr = listener.local_addr()?;
        self.held.push(listener);
        Ok(addr)
    }

    /// Whether `127.0.0.1:port` can be bound now (not counting ports this picker holds).
    pub fn is_free(port: u16) -> bool {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
    }

    /// Closes the held sockets: the ports are free for the processes that will bind them.
    pub fn release(self) {
        drop(self.held);
    }
}

/// The kernel's ephemeral port range.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// At least 2000 ports below the ephemeral range (from 15000 up), else above it; empty if neither fits.
fn outside_ephemeral((lo, hi): (u16, u16)) -> std::ops::Range<u16> {
    let below = 15000u16..lo;
    let above = hi.saturating_add(1)..u16::MAX;
    if below.len() >= 2000 {
        below
    } else if above.len() >= 2000 {
        above
    } else {
        0..0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_distinct_ports_and_frees_them_on_release() {
        let mut p = PortPicker::new();
        let addrs: Vec<_> = (0..20).map(|_| p.pick().unwrap()).collect();
        let unique: std::collections::BTreeSet<_> = addrs.iter().map(|a| a.port()).collect();
        assert_eq!(unique.len(), addrs.len());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
        assert!(!PortPicker::is_free(addrs[0].port()), "held until released");
        p.release();
        assert!(PortPicker::is_free(addrs[0].port()));
    }

    #[test]
    fn ports_avoid_the_ephemeral_range() {
        assert_eq!(outside_ephemeral((32768, 60999)), 15000..32768);
        assert_eq!(outside_ephemeral((10000, 50000)), 50001..u16::MAX);
        assert!(outside_ephemeral((1024, 65000)).is_empty());
        let (lo, hi) = ephemeral_range();
        let mut p = PortPicker::new();
        let port = p.pick().unwrap().port();
        assert!(!(lo..=hi).contains(&port) || p.range.is_empty(), "{port} in {lo}-{hi}");
    }

    #[test]
    fn reserving_a_busy_port_fails() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut p = PortPicker::new();
        assert!(p.reserve(busy.local_addr().unwrap().port()).is_err());
    }
}
