//! Opaque TCP forwarding: bytes copied both ways (half-close included) and counted in transport metrics.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::balance::Balancer;

/// Forwards `client` to a ready endpoint of `balancer` until both sides are done.
pub async fn forward<IO>(mut client: IO, balancer: &Arc<Balancer>, peer: std::net::SocketAddr)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut skip = None;
    for attempt in 1..=3 {
        let ep = match balancer.ready_endpoint(skip).await {
            Ok(ep) => ep,
            Err(reason) => {
                tracing::warn!(%peer, destination = balancer.name(), reason = reason.as_str(), "closing TCP connection: no endpoint");
                return;
            }
        };
        match ep.client.connect().await {
            Ok(mut server) => {
                let _in_flight = ep.start();
                match tokio::io::copy_bidirectional(&mut client, &mut server).await {
                    Ok((to_server, to_client)) => {
                        tracing::debug!(%peer, endpoint = %ep.addr, to_server, to_client, "TCP connection closed")
                    }
                    Err(e) => {
                        tracing::debug!(%peer, endpoint = %ep.addr, error = %e, "TCP connection ended with an error")
                    }
                }
                return;
            }
            Err(e) => {
                balancer.mark_down(&ep);
                tracing::warn!(%peer, endpoint = %ep.addr, reason = "connect_error", error = %e, attempt, "TCP connect failed");
                skip = Some(ep.addr);
            }
        }
    }
}
