//! Where each side of a measurement runs: the client (and attackers) on the
//! first CPU, every server (node or baseline) on the second, the same for us
//! and the baselines.

/// The client side's CPU.
pub(crate) const CLIENT_CPU: usize = 0;
/// Every server's CPU (the node, or the baseline it is measured against).
pub(crate) const SERVER_CPU: usize = 1;
