//! Nothing to use here: this package exists for its benchmark,
//! `benches/extism_peer.rs` (see README.md).
