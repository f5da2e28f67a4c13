//! The meshlens control plane. It will hold the mesh's desired state, serve proxies a discovery watch
//! stream, gather what they saw and answer the CLI and dashboard (DESIGN.md §2); nothing is built yet.
