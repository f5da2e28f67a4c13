//! HTTP plumbing shared by the inbound and outbound sides: bodies, header hygiene, server settings.

pub mod body;
pub mod client_name;
pub mod framing;
pub mod headers;
pub mod request_body;
pub mod response_head;
pub mod server;
