//! Per-node connection state (placeholder).
