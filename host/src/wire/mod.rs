//! Heartbeat 3.0.6's wire format: the message model, both text encodings, and authentication.
//!
//! - [`message`]: ordered, typed fields.
//! - [`netstring`]: the `###\n … %%%\n` encoding used on UDP.
//! - [`classic`]: the `>>>\n name=value … <<<\n` encoding used on serial and FIFOs.
//! - [`auth`]: crc, md5 and sha1 signatures, the key slots of `authkeys`.
//! - [`datagram`]: one whole datagram: sign and encode, decode and verify, with the reason a
//!   datagram was dropped.
//!
//! Nothing here does I/O or keeps state between messages.

pub mod auth;
pub mod classic;
pub mod datagram;
pub mod message;
pub mod netstring;

pub use message::{CompactString, Field, FieldValue, Message, ToCompactString};
