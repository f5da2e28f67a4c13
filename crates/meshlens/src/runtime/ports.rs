//! Choosing loopback ports once: each is bound to `127.0.0.1:0` (so the kernel picks a free one) and held
//! until every port of the mesh is chosen, then released for the processes to bind. A restarted process
//! gets the same address, so peers and the table stay right.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// Ports chosen so far, held open until [`release`](Self::release) so no two are the same.
#[derive(Debug, Default)]
pub struct PortPicker {
    held: Vec<TcpListener>,
}

impl PortPicker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A free loopback port.
    pub fn pick(&mut self) -> io::Result<SocketAddr> {
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
    fn reserving_a_busy_port_fails() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut p = PortPicker::new();
        assert!(p.reserve(busy.local_addr().unwrap().port()).is_err());
    }
}
