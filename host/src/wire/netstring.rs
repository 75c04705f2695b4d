//! Heartbeat's netstring encoding (spec §1.2 b), the form every UDP datagram takes, and what
//! both text codecs share: their errors, their limits, the field-name rule and list packing.
//!
//! A message is `###\n`, then one `<len>:(<type>)<name>=<value>,` per field, then `%%%\n`.
//! This module encodes and decodes exactly that; it must not sign, verify or read the
//! authentication trailer that follows on the wire (that is `datagram`'s job). Every length
//! read from the input is checked against what is left of the buffer before it is used, and
//! nesting, field counts and list lengths are bounded, so hostile input costs little memory
//! and never panics.

use super::message::{Field, FieldValue, Message};

/// The largest encoded message either codec accepts or produces: Heartbeat's `MAXMSG`.
pub const MAX_MESSAGE_BYTES: usize = 262_144;

/// The deepest nesting of STRUCT fields (the top-level message is depth 0): Heartbeat's
/// limit, and the number of separator bytes the classic format has for nested messages.
pub const MAX_DEPTH: usize = 16;

/// Fields allowed in one message (at each nesting level). Heartbeat's own messages carry
/// fewer than 30; the bound keeps a hostile datagram from turning into many allocations.
pub const MAX_FIELDS: usize = 1024;

/// Items allowed in one LIST field, bounded for the same reason as [`MAX_FIELDS`].
pub const MAX_LIST_ITEMS: usize = 1024;

/// Opens a netstring message.
const START_MARKER: &[u8] = b"###\n";
/// Closes a netstring message.
const END_MARKER: &[u8] = b"%%%\n";

/// The type codes of compressed fields (spec §1.6), which the model does not hold yet.
const COMPRESSED_TYPES: [u8; 2] = [4, 5];

/// Why bytes are not a message, in either text format. Positions are byte offsets from the
/// start of the outermost buffer; the text never contains input bytes other than field
/// names, which have been checked to be printable UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than any message Heartbeat sends or accepts.
    #[error("message is {len} bytes, more than the {MAX_MESSAGE_BYTES}-byte limit")]
    Oversized {
        /// The length received.
        len: usize,
    },
    /// The input ends early.
    #[error("byte {offset}: data ends where {expected} was expected")]
    Truncated {
        /// Where more data was needed.
        offset: usize,
        /// What should have been there.
        expected: &'static str,
    },
    /// A byte that the grammar does not allow at this position.
    #[error("byte {offset}: expected {expected}")]
    Unexpected {
        /// The offending position.
        offset: usize,
        /// What the grammar allows there.
        expected: &'static str,
    },
    /// A netstring length that claims more bytes than the buffer has left.
    #[error(
        "byte {offset}: length prefix {declared} is larger than the {remaining} bytes left in the buffer"
    )]
    LengthBeyondBuffer {
        /// Where the length prefix starts.
        offset: usize,
        /// The length the prefix claims.
        declared: usize,
        /// The bytes that actually follow the `:`.
        remaining: usize,
    },
    /// A field type code Heartbeat does not define.
    #[error("byte {offset}: unknown field type {code} (Heartbeat defines types 0 to 5)")]
    UnknownFieldType {
        /// Where the type digit is.
        offset: usize,
        /// The type code read.
        code: u8,
    },
    /// A field name that is empty, not UTF-8, or not printable.
    #[error("byte {offset}: invalid field name: {reason}")]
    InvalidName {
        /// Where the name starts.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A compressed field (type 4 or 5); decompression is not supported yet.
    #[error(
        "field `{field}` is compressed (type {type_code}); compressed messages are not supported yet"
    )]
    Compressed {
        /// The compressed field's name.
        field: String,
        /// 4 (COMPRESS) or 5 (UNCOMPRESS).
        type_code: u8,
    },
    /// Heartbeat drops a message with an empty value (spec §1.4).
    #[error("field `{field}` has an empty value, which Heartbeat cannot represent")]
    EmptyValue {
        /// The field with the empty value.
        field: String,
    },
    /// A string value or list item that is not UTF-8.
    #[error("field `{field}`: byte {offset} is not valid UTF-8")]
    NotUtf8 {
        /// The field holding the text.
        field: String,
        /// The first byte that is not UTF-8.
        offset: usize,
    },
    /// A classic value holding a byte the classic format uses as a separator.
    #[error("field `{field}` contains byte 0x{byte:02x}, which the classic format reserves")]
    ReservedByte {
        /// The field holding the byte.
        field: String,
        /// The reserved byte.
        byte: u8,
    },
    /// A BINARY value in classic format that is not canonical padded base64.
    #[error("field `{field}`: binary value is not valid base64")]
    InvalidBase64 {
        /// The binary field.
        field: String,
    },
    /// STRUCT fields nested deeper than [`MAX_DEPTH`].
    #[error("field `{field}` nests messages deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// The STRUCT field that would open the level too many.
        field: String,
    },
    /// More than [`MAX_FIELDS`] fields in one message.
    #[error("byte {offset}: more than {MAX_FIELDS} fields in one message")]
    TooManyFields {
        /// Where the field past the limit starts.
        offset: usize,
    },
    /// More than [`MAX_LIST_ITEMS`] items in one list.
    #[error("field `{field}` has more than {MAX_LIST_ITEMS} list items")]
    TooManyListItems {
        /// The LIST field.
        field: String,
    },
    /// Bytes after a complete message where nothing may follow.
    #[error("byte {offset}: {count} bytes follow the end of the message")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
}

/// Why a message cannot be encoded, in either text format. Each case is a message a peer
/// would misread or drop, so it is refused before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A name that is empty, holds `=` or a control character, or starts with `(`.
    #[error("field name \"{}\" cannot be encoded: {reason}", .name.escape_debug())]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Heartbeat cannot represent an empty value (spec §1.4); send a single space instead.
    #[error("field `{field}` has an empty value, which Heartbeat cannot represent")]
    EmptyValue {
        /// The field with the empty value.
        field: String,
    },
    /// A byte the classic format cannot carry in this value: NUL, 0x13 (its escaped newline),
    /// the nesting separators 0x0f–0x12 and 0x14–0x1f, and a newline in a list item.
    #[error("field `{field}` contains byte 0x{byte:02x}, which the classic format reserves")]
    ReservedByte {
        /// The field holding the byte.
        field: String,
        /// The reserved byte.
        byte: u8,
    },
    /// STRUCT fields nested deeper than [`MAX_DEPTH`].
    #[error("field `{field}` nests messages deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// The STRUCT field that would open the level too many.
        field: String,
    },
    /// More fields than a receiver accepts.
    #[error("message has {count} fields, more than the {MAX_FIELDS} a receiver accepts")]
    TooManyFields {
        /// The number of fields.
        count: usize,
    },
    /// More list items than a receiver accepts.
    #[error(
        "field `{field}` has {count} list items, more than the {MAX_LIST_ITEMS} a receiver accepts"
    )]
    TooManyListItems {
        /// The LIST field.
        field: String,
        /// The number of items.
        count: usize,
    },
    /// The encoding would be longer than any receiver accepts.
    #[error("encoded message would be {len} bytes, more than the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge {
        /// The encoded length.
        len: usize,
    },
}

/// Encodes `message` as `###\n` fields `%%%\n`, without the authentication trailer.
pub fn encode(message: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(TYPICAL_MESSAGE_BYTES);
    write_message(message, 0, &mut out)?;
    check_encoded_len(out.len())?;
    Ok(out)
}

/// Encodes `message` with its top-level field `name` set to the string `value` (in place,
/// or added last when the message has none) or, for `None`, left out: the bytes
/// [`encode`] gives for a copy changed with `set_str` or `remove`, without copying the
/// message. The signing path uses it for the `auth` field of every datagram sent.
pub fn encode_with_field(
    message: &Message,
    name: &str,
    value: Option<&str>,
) -> Result<Vec<u8>, EncodeError> {
    let replacement = value.map(|value| Field {
        name: name.into(),
        value: FieldValue::String(value.into()),
    });
    let present = message.get(name).is_some();
    let count = match (&replacement, present) {
        (Some(_), false) => message.len() + 1,
        (None, true) => message.len() - 1,
        _ => message.len(),
    };
    if count > MAX_FIELDS {
        return Err(EncodeError::TooManyFields { count });
    }
    let mut out = Vec::with_capacity(TYPICAL_MESSAGE_BYTES);
    out.extend_from_slice(START_MARKER);
    let mut replaced = false;
    for field in message.fields() {
        if field.name == name {
            // A field name is unique in a message (`set_str` keeps it so).
            if let Some(replacement) = &replacement
                && !replaced
            {
                write_field(replacement, 0, &mut out)?;
                replaced = true;
            }
            continue;
        }
        write_field(field, 0, &mut out)?;
    }
    if let Some(replacement) = &replacement
        && !replaced
    {
        write_field(replacement, 0, &mut out)?;
    }
    out.extend_from_slice(END_MARKER);
    check_encoded_len(out.len())?;
    Ok(out)
}

/// Decodes exactly one netstring message; any byte after `%%%\n` is an error.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let (message, len) = decode_prefix(bytes)?;
    if len != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: len,
            count: bytes.len() - len,
        });
    }
    Ok(message)
}

/// Decodes the netstring message at the start of `bytes` and returns it with the number of
/// bytes it occupies: on the wire those bytes are what the trailer after them signs.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Message, usize), DecodeError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::Oversized { len: bytes.len() });
    }
    parse_message(bytes, 0, 0)
}

/// Refuses an encoding longer than [`MAX_MESSAGE_BYTES`].
pub(super) fn check_encoded_len(len: usize) -> Result<(), EncodeError> {
    if len > MAX_MESSAGE_BYTES {
        return Err(EncodeError::TooLarge { len });
    }
    Ok(())
}

fn write_message(message: &Message, depth: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_field_count(message)?;
    out.extend_from_slice(START_MARKER);
    for field in message.fields() {
        write_field(field, depth, out)?;
    }
    out.extend_from_slice(END_MARKER);
    Ok(())
}

/// Writes one field of a message at `depth` as `LEN:(T)name=value,`.
fn write_field(field: &Field, depth: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_field(field)?;
    let packed;
    let value: &[u8] = match &field.value {
        FieldValue::String(text) => text.as_bytes(),
        FieldValue::Binary(bytes) => bytes,
        FieldValue::Struct(child) => {
            if depth >= MAX_DEPTH {
                return Err(EncodeError::TooDeep {
                    field: field.name.to_string(),
                });
            }
            let mut nested = Vec::new();
            write_message(child, depth + 1, &mut nested)?;
            packed = nested;
            &packed
        }
        FieldValue::List(items) => {
            let mut list = Vec::new();
            pack_list(items, &mut list);
            packed = list;
            &packed
        }
    };
    // The length covers `(T)`, the name, `=` and the value.
    let len = 3 + field.name.len() + 1 + value.len();
    push_decimal(out, len);
    out.extend_from_slice(b":(");
    push_decimal(out, usize::from(field.value.type_code()));
    out.push(b')');
    out.extend_from_slice(field.name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b',');
    Ok(())
}

/// Room reserved for an encoded message up front: a heartbeat with its trailer fits, so
/// encoding one grows no buffer.
pub(super) const TYPICAL_MESSAGE_BYTES: usize = 512;

/// Appends `value` in decimal ASCII: what `format!("{value}")` gives, without a `String`
/// per length on the heartbeat path.
pub(super) fn push_decimal(out: &mut Vec<u8>, value: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        // `rest % 10` is below 10, so it fits a byte.
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Refuses a message with more fields than a receiver accepts.
pub(super) fn check_field_count(message: &Message) -> Result<(), EncodeError> {
    if message.len() > MAX_FIELDS {
        return Err(EncodeError::TooManyFields {
            count: message.len(),
        });
    }
    Ok(())
}

/// The checks both encoders make on every field before writing it: a valid name, a
/// non-empty value and a list short enough for receivers.
pub(super) fn check_field(field: &Field) -> Result<(), EncodeError> {
    if let Err(reason) = check_name(&field.name) {
        return Err(EncodeError::InvalidName {
            name: field.name.to_string(),
            reason,
        });
    }
    let empty = match &field.value {
        FieldValue::String(text) => text.is_empty(),
        FieldValue::Binary(bytes) => bytes.is_empty(),
        FieldValue::List(items) => items.is_empty(),
        FieldValue::Struct(_) => false,
    };
    if empty {
        return Err(EncodeError::EmptyValue {
            field: field.name.to_string(),
        });
    }
    if let FieldValue::List(items) = &field.value
        && items.len() > MAX_LIST_ITEMS
    {
        return Err(EncodeError::TooManyListItems {
            field: field.name.to_string(),
            count: items.len(),
        });
    }
    Ok(())
}

/// The field-name rule of both formats: names must survive either encoding and be safe to
/// print in a log. Returns what is wrong.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.contains('=') {
        Err("it contains `=`, which ends a name")
    } else if has_control_character(name) {
        Err("it contains a control character")
    } else if name.starts_with('(') {
        Err("it starts with `(`, which opens a type prefix")
    } else if name.starts_with(">>>") || name.starts_with("<<<") {
        Err("it starts with `>>>` or `<<<`, which mark a classic message's start and end")
    } else {
        Ok(())
    }
}

/// Whether `text` holds a control character (`char::is_control`), without decoding it when
/// it is ASCII, as every name on the wire is.
fn has_control_character(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes().any(|byte| byte.is_ascii_control())
    } else {
        text.chars().any(char::is_control)
    }
}

/// Reads a field name from the input, applying the same rule as the encoders.
pub(super) fn parse_name(bytes: &[u8], offset: usize) -> Result<&str, DecodeError> {
    let name = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidName {
        offset,
        reason: "it is not valid UTF-8",
    })?;
    check_name(name).map_err(|reason| DecodeError::InvalidName { offset, reason })?;
    Ok(name)
}

/// Reads a `(T)` type prefix at the start of `bytes`; returns the type code.
pub(super) fn parse_type_prefix(bytes: &[u8], offset: usize) -> Result<u8, DecodeError> {
    let expect = |index: usize, wanted: u8, expected: &'static str| match bytes.get(index) {
        Some(&byte) if byte == wanted => Ok(()),
        Some(_) => Err(DecodeError::Unexpected {
            offset: offset + index,
            expected,
        }),
        None => Err(DecodeError::Truncated {
            offset: offset + index,
            expected,
        }),
    };
    expect(0, b'(', "`(` opening the field type")?;
    let code = match bytes.get(1) {
        Some(digit) if digit.is_ascii_digit() => digit - b'0',
        Some(_) => {
            return Err(DecodeError::Unexpected {
                offset: offset + 1,
                expected: "a field type digit",
            });
        }
        None => {
            return Err(DecodeError::Truncated {
                offset: offset + 1,
                expected: "a field type digit",
            });
        }
    };
    if code > 5 {
        return Err(DecodeError::UnknownFieldType {
            offset: offset + 1,
            code,
        });
    }
    expect(2, b')', "`)` closing the field type")?;
    Ok(code)
}

/// Refuses the compressed types and empty values; both codecs check these before reading
/// a value of any type.
pub(super) fn check_value_allowed(
    type_code: u8,
    name: &str,
    value: &[u8],
) -> Result<(), DecodeError> {
    if COMPRESSED_TYPES.contains(&type_code) {
        return Err(DecodeError::Compressed {
            field: name.to_string(),
            type_code,
        });
    }
    if value.is_empty() {
        return Err(DecodeError::EmptyValue {
            field: name.to_string(),
        });
    }
    Ok(())
}

/// Turns bytes into text, reporting the first invalid byte's position.
pub(super) fn parse_text<'a>(
    bytes: &'a [u8],
    offset: usize,
    field: &str,
) -> Result<&'a str, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(error) => Err(DecodeError::NotUtf8 {
            field: field.to_string(),
            offset: offset + error.valid_up_to(),
        }),
    }
}

/// One `<len>:<payload>,` read from the input.
pub(super) struct Netstring<'a> {
    /// The bytes between `:` and `,`.
    pub(super) payload: &'a [u8],
    /// The absolute offset of the payload's first byte.
    pub(super) payload_offset: usize,
    /// Bytes taken from the input, prefix and comma included.
    pub(super) consumed: usize,
}

/// Reads one netstring at the start of `bytes` (found at absolute `offset`). The length is
/// checked against what is left before it is used.
pub(super) fn read_netstring(bytes: &[u8], offset: usize) -> Result<Netstring<'_>, DecodeError> {
    const LENGTH: &str = "a decimal length";
    let digits = bytes
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if digits == 0 {
        return Err(if bytes.is_empty() {
            DecodeError::Truncated {
                offset,
                expected: LENGTH,
            }
        } else {
            DecodeError::Unexpected {
                offset,
                expected: LENGTH,
            }
        });
    }
    if digits > 1 && bytes.first() == Some(&b'0') {
        return Err(DecodeError::Unexpected {
            offset,
            expected: "a length without leading zeros",
        });
    }
    let declared = bytes.iter().take(digits).fold(0usize, |len, digit| {
        len.saturating_mul(10)
            .saturating_add(usize::from(digit - b'0'))
    });
    match bytes.get(digits) {
        Some(b':') => {}
        Some(_) => {
            return Err(DecodeError::Unexpected {
                offset: offset + digits,
                expected: "`:` after the length",
            });
        }
        None => {
            return Err(DecodeError::Truncated {
                offset: offset + digits,
                expected: "`:` after the length",
            });
        }
    }
    let payload_start = digits + 1;
    let remaining = bytes.len() - payload_start;
    if declared > remaining {
        return Err(DecodeError::LengthBeyondBuffer {
            offset,
            declared,
            remaining,
        });
    }
    let payload_end = payload_start + declared;
    let payload = bytes
        .get(payload_start..payload_end)
        .ok_or(DecodeError::Truncated {
            offset: offset + payload_start,
            expected: "the netstring's payload",
        })?;
    match bytes.get(payload_end) {
        Some(b',') => Ok(Netstring {
            payload,
            payload_offset: offset + payload_start,
            consumed: payload_end + 1,
        }),
        Some(_) => Err(DecodeError::Unexpected {
            offset: offset + payload_end,
            expected: "`,` after the netstring's payload",
        }),
        None => Err(DecodeError::Truncated {
            offset: offset + payload_end,
            expected: "`,` after the netstring's payload",
        }),
    }
}

/// Packs a LIST value as `<len>:<item>,` per item; both formats carry lists this way.
pub(super) fn pack_list(items: &[String], out: &mut Vec<u8>) {
    for item in items {
        out.extend_from_slice(format!("{}:", item.len()).as_bytes());
        out.extend_from_slice(item.as_bytes());
        out.push(b',');
    }
}

/// Unpacks a LIST value found at absolute `offset`, at most [`MAX_LIST_ITEMS`] items.
pub(super) fn unpack_list(
    value: &[u8],
    offset: usize,
    field: &str,
) -> Result<Vec<String>, DecodeError> {
    let mut items = Vec::new();
    let mut pos = 0;
    while let Some(rest) = value.get(pos..).filter(|rest| !rest.is_empty()) {
        if items.len() >= MAX_LIST_ITEMS {
            return Err(DecodeError::TooManyListItems {
                field: field.to_string(),
            });
        }
        let item = read_netstring(rest, offset + pos)?;
        items.push(parse_text(item.payload, item.payload_offset, field)?.to_string());
        pos += item.consumed;
    }
    Ok(items)
}

/// Checks that `bytes` starts with `marker`, telling a short buffer from a wrong one.
pub(super) fn expect_marker(
    bytes: &[u8],
    offset: usize,
    marker: &[u8],
    expected: &'static str,
) -> Result<(), DecodeError> {
    if bytes.starts_with(marker) {
        Ok(())
    } else if marker.starts_with(bytes) {
        Err(DecodeError::Truncated { offset, expected })
    } else {
        Err(DecodeError::Unexpected { offset, expected })
    }
}

/// Parses the message at the start of `bytes` (absolute `offset`, nesting `depth`);
/// returns it and the bytes it took.
fn parse_message(
    bytes: &[u8],
    offset: usize,
    depth: usize,
) -> Result<(Message, usize), DecodeError> {
    expect_marker(bytes, offset, START_MARKER, "the `###\\n` start marker")?;
    let mut message = Message::new();
    let mut pos = START_MARKER.len();
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        if rest.starts_with(END_MARKER) {
            return Ok((message, pos + END_MARKER.len()));
        }
        if END_MARKER.starts_with(rest) {
            return Err(DecodeError::Truncated {
                offset: offset + pos,
                expected: "a field or the `%%%\\n` end marker",
            });
        }
        if message.len() >= MAX_FIELDS {
            return Err(DecodeError::TooManyFields {
                offset: offset + pos,
            });
        }
        let field = read_netstring(rest, offset + pos)?;
        let (name, value) = parse_field(field.payload, field.payload_offset, depth)?;
        message.push(name, value);
        pos += field.consumed;
    }
}

/// Parses `(T)name=value`, the payload of one field's netstring.
fn parse_field(
    payload: &[u8],
    offset: usize,
    depth: usize,
) -> Result<(&str, FieldValue), DecodeError> {
    let type_code = parse_type_prefix(payload, offset)?;
    let rest = payload.get(3..).unwrap_or_default();
    let name_offset = offset + 3;
    let Some(equals) = rest.iter().position(|&byte| byte == b'=') else {
        return Err(DecodeError::Unexpected {
            offset: name_offset,
            expected: "`name=value` after the field type",
        });
    };
    let name = parse_name(rest.get(..equals).unwrap_or_default(), name_offset)?;
    let value = rest.get(equals + 1..).unwrap_or_default();
    let value_offset = name_offset + equals + 1;
    check_value_allowed(type_code, name, value)?;
    let value = match type_code {
        0 => FieldValue::String(parse_text(value, value_offset, name)?.into()),
        1 => FieldValue::Binary(value.to_vec()),
        2 => {
            if depth >= MAX_DEPTH {
                return Err(DecodeError::TooDeep {
                    field: name.to_string(),
                });
            }
            let (child, used) = parse_message(value, value_offset, depth + 1)?;
            if used != value.len() {
                return Err(DecodeError::TrailingBytes {
                    offset: value_offset + used,
                    count: value.len() - used,
                });
            }
            FieldValue::Struct(child)
        }
        3 => FieldValue::List(unpack_list(value, value_offset, name)?),
        code => {
            return Err(DecodeError::UnknownFieldType {
                offset: offset + 1,
                code,
            });
        }
    };
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoding_with_a_field_set_or_left_out_equals_encoding_a_changed_copy() {
        use crate::wire::Message;
        let mut plain = Message::with_type("status");
        plain.push_str("src", "alpha");
        plain.push_str("seq", "1f");
        let mut with_auth = plain.clone();
        with_auth.push_str("auth", "old");
        with_auth.push_str("ld", "0.00");
        for message in [&plain, &with_auth] {
            let mut set = message.clone();
            set.set_str("auth", "1 abc");
            assert_eq!(
                super::encode_with_field(message, "auth", Some("1 abc")).expect("encodes"),
                super::encode(&set).expect("encodes")
            );
            let mut removed = message.clone();
            removed.remove("auth");
            assert_eq!(
                super::encode_with_field(message, "auth", None).expect("encodes"),
                super::encode(&removed).expect("encodes")
            );
        }
    }

    #[test]
    fn decimal_lengths_are_written_as_format_writes_them() {
        for value in [0, 7, 9, 10, 99, 100, 310, 262_144, usize::MAX] {
            let mut out = b"x".to_vec();
            super::push_decimal(&mut out, value);
            assert_eq!(out, format!("x{value}").into_bytes());
        }
    }

    use super::*;

    fn sample_message() -> Message {
        let mut inner = Message::with_type("child");
        inner.push("blob", FieldValue::Binary(vec![0, 10, 255]));
        let mut message = Message::with_type("status");
        message.push_str("text", "line one\nline two");
        message.push("bytes", FieldValue::Binary((0..=255).collect()));
        message.push("nested", FieldValue::Struct(inner));
        message.push(
            "items",
            FieldValue::List(vec!["a".into(), String::new(), "b,c:\n".into()]),
        );
        message
    }

    fn nested(levels: usize) -> Message {
        let mut message = Message::with_type("leaf");
        for level in 0..levels {
            let mut parent = Message::with_type(&format!("level{level}"));
            parent.push("child", FieldValue::Struct(message));
            message = parent;
        }
        message
    }

    #[test]
    fn every_field_type_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let message = sample_message();
        let bytes = encode(&message)?;
        assert_eq!(decode(&bytes)?, message);
        Ok(())
    }

    #[test]
    fn fields_are_written_with_type_prefix_and_exact_lengths() -> Result<(), EncodeError> {
        let mut message = Message::with_type("status");
        message.push("id", FieldValue::Binary(vec![0, 1]));
        message.push("l", FieldValue::List(vec!["abc".into(), "de".into()]));
        assert_eq!(
            encode(&message)?,
            b"###\n11:(0)t=status,8:(1)id=\x00\x01,16:(3)l=3:abc,2:de,,%%%\n"
        );
        Ok(())
    }

    #[test]
    fn nesting_up_to_the_limit_round_trips_and_one_more_is_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let deepest = nested(MAX_DEPTH);
        let bytes = encode(&deepest)?;
        assert_eq!(decode(&bytes)?, deepest);
        let too_deep = nested(MAX_DEPTH + 1);
        assert!(matches!(
            encode(&too_deep),
            Err(EncodeError::TooDeep { .. })
        ));
        // Build the too-deep encoding by hand: wrap the deepest encoding once more.
        let mut wrapped = b"###\n".to_vec();
        let payload = [b"(2)child=".as_slice(), &bytes].concat();
        wrapped.extend_from_slice(format!("{}:", payload.len()).as_bytes());
        wrapped.extend_from_slice(&payload);
        wrapped.extend_from_slice(b",%%%\n");
        assert!(matches!(
            decode(&wrapped),
            Err(DecodeError::TooDeep { field }) if field == "child"
        ));
        Ok(())
    }

    #[test]
    fn empty_values_are_never_encoded_and_never_accepted() {
        let mut message = Message::new();
        message.push_str("st", "");
        assert_eq!(
            encode(&message),
            Err(EncodeError::EmptyValue { field: "st".into() })
        );
        assert_eq!(
            decode(b"###\n6:(0)st=,%%%\n"),
            Err(DecodeError::EmptyValue { field: "st".into() })
        );
        assert_eq!(
            decode(b"###\n6:(1)id=,%%%\n"),
            Err(DecodeError::EmptyValue { field: "id".into() })
        );
    }

    #[test]
    fn compressed_field_types_are_refused_by_name() {
        for code in [4u8, 5] {
            let bytes = format!("###\n10:({code})big=xyz,%%%\n");
            assert_eq!(
                decode(bytes.as_bytes()),
                Err(DecodeError::Compressed {
                    field: "big".into(),
                    type_code: code
                })
            );
        }
    }

    #[test]
    fn length_prefix_past_the_buffer_is_refused_before_use() {
        assert_eq!(
            decode(b"###\n999999999999999999999999:(0)t=x,%%%\n"),
            Err(DecodeError::LengthBeyondBuffer {
                offset: 4,
                declared: usize::MAX,
                remaining: 11
            })
        );
        assert_eq!(
            decode(b"###\n40:(0)t=x,%%%\n"),
            Err(DecodeError::LengthBeyondBuffer {
                offset: 4,
                declared: 40,
                remaining: 11
            })
        );
    }

    #[test]
    fn non_utf8_strings_and_names_are_refused() {
        assert_eq!(
            decode(b"###\n8:(0)t=a\xffb,%%%\n"),
            Err(DecodeError::NotUtf8 {
                field: "t".into(),
                offset: 12
            })
        );
        assert!(matches!(
            decode(b"###\n7:(0)\xff=ab,%%%\n"),
            Err(DecodeError::InvalidName { offset: 9, .. })
        ));
        assert!(matches!(
            decode(b"###\n10:(3)l=2:\xff\xfe,,%%%\n"),
            Err(DecodeError::NotUtf8 { offset: 14, .. })
        ));
    }

    #[test]
    fn malformed_framing_is_reported_with_its_position() {
        assert!(matches!(
            decode(b"##\n"),
            Err(DecodeError::Unexpected { offset: 0, .. })
        ));
        assert!(matches!(
            decode(b"###\n7:(0)t=ab;%%%\n"),
            Err(DecodeError::Unexpected { offset: 13, .. })
        ));
        assert!(matches!(
            decode(b"###\n7:(9)t=ab,%%%\n"),
            Err(DecodeError::UnknownFieldType { code: 9, .. })
        ));
        assert!(matches!(
            decode(b"###\n05:(0)t=a,%%%\n"),
            Err(DecodeError::Unexpected { offset: 4, .. })
        ));
        assert!(matches!(
            decode(b"###\n7:(0)t=ab,%%%\nx"),
            Err(DecodeError::TrailingBytes {
                offset: 18,
                count: 1
            })
        ));
        assert!(matches!(
            decode(b"###\n7:(0)t=ab,%%"),
            Err(DecodeError::Truncated { offset: 14, .. })
        ));
    }

    #[test]
    fn every_truncation_is_an_error() -> Result<(), EncodeError> {
        let bytes = encode(&sample_message())?;
        for len in 0..bytes.len() {
            let truncated = bytes.get(..len).unwrap_or_default();
            assert!(decode(truncated).is_err(), "prefix of {len} bytes decoded");
        }
        Ok(())
    }

    #[test]
    fn oversized_input_is_refused_without_parsing() {
        let bytes = vec![b'#'; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            decode(&bytes),
            Err(DecodeError::Oversized {
                len: MAX_MESSAGE_BYTES + 1
            })
        );
    }

    #[test]
    fn field_and_list_counts_are_bounded() {
        let mut many_fields = b"###\n".to_vec();
        for _ in 0..=MAX_FIELDS {
            many_fields.extend_from_slice(b"7:(0)a=bc,");
        }
        many_fields.extend_from_slice(b"%%%\n");
        assert!(matches!(
            decode(&many_fields),
            Err(DecodeError::TooManyFields { .. })
        ));
        let items = "1:x,".repeat(MAX_LIST_ITEMS + 1);
        let bytes = format!("###\n{}:(3)l={items},%%%\n", 5 + items.len());
        assert_eq!(
            decode(bytes.as_bytes()),
            Err(DecodeError::TooManyListItems { field: "l".into() })
        );
    }

    #[test]
    fn names_that_cannot_survive_both_formats_are_refused() {
        for name in ["", "a=b", "new\nline", "(1)x", ">>>x", "<<<"] {
            let mut message = Message::new();
            message.push_str(name, "v");
            assert!(
                matches!(encode(&message), Err(EncodeError::InvalidName { .. })),
                "{name:?}"
            );
        }
    }

    #[test]
    fn decode_prefix_reports_the_signed_length() -> Result<(), DecodeError> {
        let (message, len) = decode_prefix(b"###\n7:(0)t=ab,%%%\n12:1 abcdef0123,")?;
        assert_eq!(len, 18);
        assert_eq!(message.message_type(), Some("ab"));
        Ok(())
    }
}
