//! The wire vocabulary membership reads and writes: field names, message types, numbers.
//!
//! Owns the spelling of every field and type of the core protocol (spec §1.7–1.8) and the two
//! number formats it uses: lower-case hex without leading zeros for almost everything, decimal
//! for the `firstseq`/`lastseq` of a retransmission request. It holds no state and decides
//! nothing.

use crate::wire::CompactString;

/// Message type, always the first field.
pub(super) const TYPE: &str = "t";
/// Originating node name.
pub(super) const SRC: &str = "src";
/// Originator UUID, 16 raw bytes.
pub(super) const SRC_UUID: &str = "srcuuid";
/// Destination node name.
pub(super) const DEST: &str = "dest";
/// Destination UUID, 16 raw bytes.
pub(super) const DEST_UUID: &str = "destuuid";
/// Per-sender sequence number (hex).
pub(super) const SEQ: &str = "seq";
/// Heartbeat generation (hex).
pub(super) const GENERATION: &str = "hg";
/// Sender wall clock in seconds (hex).
pub(super) const TIMESTAMP: &str = "ts";
/// First line of the sender's `/proc/loadavg`.
pub(super) const LOAD: &str = "ld";
/// Hop budget, informational in 3.0.6 (decimal).
pub(super) const TTL: &str = "ttl";
/// Node status in a `status` message.
pub(super) const STATUS: &str = "st";
/// The deadtime the sender wants others to use for it, in milliseconds (hex).
pub(super) const DEADTIME: &str = "dt";
/// Protocol version; its absence disables acknowledgements.
pub(super) const PROTOCOL: &str = "protocol";
/// First sequence number of a retransmission request (decimal) or of a NAK (hex).
pub(super) const FIRST_SEQ: &str = "firstseq";
/// Last sequence number of a retransmission request (decimal).
pub(super) const LAST_SEQ: &str = "lastseq";
/// Acknowledged sequence number (hex).
pub(super) const ACK_SEQ: &str = "ackseq";
/// Free text, here the reason of a NAK.
pub(super) const INFO: &str = "info";
/// Space-separated node names, with a trailing space.
pub(super) const NODE_LIST: &str = "nodelist";
/// Space-separated deleted node names, a single space when empty.
pub(super) const DELETED_NODE_LIST: &str = "delnodelist";

/// Heartbeat message.
pub(super) const T_STATUS: &str = "status";
/// Retransmission request.
pub(super) const T_REXMIT: &str = "NS_rexmit";
/// Refusal of a retransmission request.
pub(super) const T_NAK_REXMIT: &str = "NS_nak_rexmit";
/// Flow-control acknowledgement.
pub(super) const T_ACK: &str = "NS_ackmsg";
/// Request for the current node list, sent when communications come up.
pub(super) const T_REQNODES: &str = "reqnodes";
/// Answer to `reqnodes`.
pub(super) const T_REPNODES: &str = "repnodes";
/// Types with this prefix carry no `seq` and are never retransmitted.
pub(super) const UNSEQUENCED_PREFIX: &str = "NS_";

/// The value of `protocol` this implementation speaks.
pub(super) const PROTOCOL_VERSION: &str = "1";

/// Types that only the membership machine itself may send.
pub(super) const RESERVED_TYPES: [&str; 6] = [
    T_STATUS,
    T_REXMIT,
    T_NAK_REXMIT,
    T_ACK,
    T_REQNODES,
    T_REPNODES,
];

/// Whether a message type is outside the sequenced, retransmitted stream.
pub(super) fn is_unsequenced(message_type: &str) -> bool {
    message_type.starts_with(UNSEQUENCED_PREFIX)
}

/// Formats a number the way Heartbeat's `%lx` does.
pub(super) fn hex(value: u64) -> CompactString {
    compact_str::format_compact!("{value:x}")
}

/// Parses a hex number as Heartbeat writes it. Stricter than `sscanf("%lx")`: only hex
/// digits, at most 16 of them, so junk never becomes a number.
pub(super) fn parse_hex(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// Parses a decimal number (the sequence numbers of `NS_rexmit`).
pub(super) fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_without_leading_zeros() {
        assert_eq!(hex(3000), "bb8");
        assert_eq!(hex(0x6b02_8f9f), "6b028f9f");
        assert_eq!(hex(1), "1");
    }

    #[test]
    fn parse_hex_refuses_junk_that_sscanf_would_accept() {
        assert_eq!(parse_hex("1a"), Some(26));
        assert_eq!(parse_hex("1A"), Some(26));
        assert_eq!(parse_hex("0x1a"), None);
        assert_eq!(parse_hex(" 1a"), None);
        assert_eq!(parse_hex("1a junk"), None);
        assert_eq!(parse_hex(""), None);
        assert_eq!(parse_hex("11112222333344445"), None);
    }

    #[test]
    fn parse_decimal_reads_only_digits() {
        assert_eq!(parse_decimal("90"), Some(90));
        assert_eq!(parse_decimal("5a"), None);
        assert_eq!(parse_decimal("-1"), None);
        assert_eq!(parse_decimal("99999999999999999999999"), None);
    }
}
