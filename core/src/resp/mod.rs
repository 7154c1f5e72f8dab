//! RESP3: a borrowing, allocation-free reader and a writer into caller buffers.
//!
//! Hand-written rather than taken from a crate because the core must parse
//! without allocating and with bounded nesting on `no_std`; `redis-protocol`
//! serves as the test oracle for the reader.

mod reader;
mod writer;

pub use reader::{parse, Aggregate, Frame, Frames, RespError, MAX_DEPTH};
pub use writer::{array_header, bulk, bulk_concat, bulk_int, bulk_uint, Full, Sink};
