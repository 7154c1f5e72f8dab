//! RESP3: a borrowing, allocation-free reader and a writer into caller buffers.
//!
//! Hand-written rather than taken from a crate because the core must parse
//! without allocating and with bounded nesting on `no_std`; `redis-protocol`
//! serves as the test oracle for the reader.

mod reader;
mod writer;

#[cfg(test)]
mod differential_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod reader_tests;

#[cfg(fuzzing)]
pub use reader::Frames;
pub use reader::{parse, Aggregate, Frame};
#[cfg(any(fuzzing, test))]
pub use reader::{RespError, MAX_DEPTH};
pub use writer::{array_header, bulk, bulk_concat, bulk_uint, Full, Sink};
