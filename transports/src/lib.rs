//! Transports for tracklock (in progress).
