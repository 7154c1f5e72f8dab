//! tracklock (in progress).
