//! Heartbeat's classic `name=value` encoding (spec §1.2 a), used on serial links and the
//! local FIFO, and the text the inner `auth` field signs (spec §1.5).
//!
//! A message is `>>>\n`, one line per field, then `<<<\n`. Newlines inside strings travel as
//! byte 0x13; a nested message is written inline with its newlines replaced by a separator
//! byte that depends on how deep it sits, so one line holds it. This module encodes and
//! decodes that and renders the signed text; it must not compute or check signatures (that
//! is `auth` and `datagram`). It shares errors, limits and the name rule with `netstring`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::message::{Field, FieldValue, Message};
use super::netstring::{
    self, MAX_DEPTH, MAX_FIELDS, MAX_MESSAGE_BYTES, check_encoded_len, check_field,
    check_field_count, check_value_allowed, expect_marker, pack_list, parse_name, parse_text,
    parse_type_prefix, unpack_list,
};

pub use super::netstring::{DecodeError, EncodeError};

/// Opens a classic message (followed by the message's newline byte).
const START_MARKER: &[u8] = b">>>";
/// Closes a classic message (followed by the message's newline byte).
const END_MARKER: &[u8] = b"<<<";
/// Stands for `\n` inside a string value.
const ESCAPED_NEWLINE: u8 = 0x13;
/// The field that carries the classic signature and is left out of the signed text.
const AUTH_FIELD: &str = "auth";

/// Encodes `message` as `>>>\n`, one line per field, `<<<\n` (no trailing NUL).
pub fn encode(message: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    write_message(message, b'\n', 0, &mut out)?;
    check_encoded_len(out.len())?;
    Ok(out)
}

/// Decodes exactly one classic message. A single trailing NUL is accepted because
/// Heartbeat sends classic datagrams with their C string terminator.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::Oversized { len: bytes.len() });
    }
    let body = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    let (message, len) = parse_message(body, 0, b'\n', 0)?;
    if len != body.len() {
        return Err(DecodeError::TrailingBytes {
            offset: len,
            count: body.len() - len,
        });
    }
    Ok(message)
}

/// The bytes the inner `auth` field signs: every field except `auth` as a classic line,
/// in order, without the `>>>`/`<<<` markers.
pub fn signed_text(message: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(netstring::TYPICAL_MESSAGE_BYTES);
    for field in message.fields() {
        if field.name != AUTH_FIELD {
            write_field(field, b'\n', 0, &mut out)?;
        }
    }
    Ok(out)
}

/// The byte that replaces `\n` in a message nested in a message at `depth` (spec §1.2 a):
/// 0x14 for depth 0 up to 0x1f for depth 11, then 0x0f to 0x12 for depths 12 to 15.
fn nested_newline(depth: usize) -> Option<u8> {
    match u8::try_from(depth).ok()? {
        shallow @ 0..=11 => Some(0x14 + shallow),
        deep @ 12..=15 => Some(deep + 3),
        _ => None,
    }
}

/// Bytes a string value cannot hold in classic format: NUL ends a C string, 0x13 stands for
/// a newline, and the nested-message separators would split a nested message.
fn is_reserved(byte: u8) -> bool {
    byte == 0 || byte == ESCAPED_NEWLINE || matches!(byte, 0x0f..=0x12 | 0x14..=0x1f)
}

fn write_message(
    message: &Message,
    newline: u8,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    check_field_count(message)?;
    out.extend_from_slice(START_MARKER);
    out.push(newline);
    for field in message.fields() {
        write_field(field, newline, depth, out)?;
    }
    out.extend_from_slice(END_MARKER);
    out.push(newline);
    Ok(())
}

/// Writes one field line of a message at `depth` whose lines end in `newline`.
fn write_field(
    field: &Field,
    newline: u8,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    check_field(field)?;
    let reserved = |byte: u8| EncodeError::ReservedByte {
        field: field.name.to_string(),
        byte,
    };
    let type_code = field.value.type_code();
    if type_code != 0 {
        out.push(b'(');
        netstring::push_decimal(out, usize::from(type_code));
        out.push(b')');
    }
    out.extend_from_slice(field.name.as_bytes());
    out.push(b'=');
    match &field.value {
        FieldValue::String(text) => {
            if !text.bytes().any(|byte| byte == b'\n' || is_reserved(byte)) {
                out.extend_from_slice(text.as_bytes());
            } else {
                for byte in text.bytes() {
                    match byte {
                        b'\n' => out.push(ESCAPED_NEWLINE),
                        byte if is_reserved(byte) => return Err(reserved(byte)),
                        byte => out.push(byte),
                    }
                }
            }
        }
        FieldValue::Binary(bytes) => {
            let start = out.len();
            let encoded_len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
            out.resize(start + encoded_len, 0);
            let written = out
                .get_mut(start..)
                .and_then(|room| BASE64.encode_slice(bytes, room).ok())
                .unwrap_or(0);
            out.truncate(start + written);
        }
        FieldValue::Struct(child) => {
            let child_newline = nested_newline(depth)
                .filter(|_| depth < MAX_DEPTH)
                .ok_or_else(|| EncodeError::TooDeep {
                    field: field.name.to_string(),
                })?;
            write_message(child, child_newline, depth + 1, out)?;
        }
        FieldValue::List(items) => {
            // Items are not escaped, so a newline would end the line early.
            if let Some(byte) = items
                .iter()
                .flat_map(|item| item.bytes())
                .find(|&byte| byte == b'\n' || is_reserved(byte))
            {
                return Err(reserved(byte));
            }
            pack_list(items, out);
        }
    }
    out.push(newline);
    Ok(())
}

/// Parses the message at the start of `bytes` (absolute `offset`) whose lines end in
/// `newline`; returns it and the bytes it took.
fn parse_message(
    bytes: &[u8],
    offset: usize,
    newline: u8,
    depth: usize,
) -> Result<(Message, usize), DecodeError> {
    let start = [START_MARKER, &[newline]].concat();
    expect_marker(bytes, offset, &start, "the `>>>` start marker")?;
    let mut message = Message::new();
    let mut pos = start.len();
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let line_offset = offset + pos;
        let Some(line_len) = rest.iter().position(|&byte| byte == newline) else {
            return Err(DecodeError::Truncated {
                offset: line_offset + rest.len(),
                expected: "a line ending before the `<<<` end marker",
            });
        };
        let line = rest.get(..line_len).unwrap_or_default();
        pos += line_len + 1;
        if line.is_empty() {
            continue;
        }
        if line == END_MARKER {
            return Ok((message, pos));
        }
        if line.starts_with(START_MARKER) {
            return Err(DecodeError::Unexpected {
                offset: line_offset,
                expected: "a field line, not a second `>>>` start marker",
            });
        }
        if message.len() >= MAX_FIELDS {
            return Err(DecodeError::TooManyFields {
                offset: line_offset,
            });
        }
        let (name, value) = parse_line(line, line_offset, depth)?;
        message.push(name, value);
    }
}

/// Parses `name=value` or `(T)name=value`, one line of a message at `depth`.
fn parse_line(line: &[u8], offset: usize, depth: usize) -> Result<(&str, FieldValue), DecodeError> {
    let (type_code, name_start) = if line.first() == Some(&b'(') {
        (parse_type_prefix(line, offset)?, 3)
    } else {
        (0, 0)
    };
    let rest = line.get(name_start..).unwrap_or_default();
    let name_offset = offset + name_start;
    let Some(equals) = rest.iter().position(|&byte| byte == b'=') else {
        return Err(DecodeError::Unexpected {
            offset: name_offset,
            expected: "a `name=value` line",
        });
    };
    let name = parse_name(rest.get(..equals).unwrap_or_default(), name_offset)?;
    let value = rest.get(equals + 1..).unwrap_or_default();
    let value_offset = name_offset + equals + 1;
    check_value_allowed(type_code, name, value)?;
    let reserved = |byte: u8| DecodeError::ReservedByte {
        field: name.to_string(),
        byte,
    };
    let value =
        match type_code {
            0 => {
                if let Some(&byte) = value
                    .iter()
                    .find(|&&byte| byte != ESCAPED_NEWLINE && is_reserved(byte))
                {
                    return Err(reserved(byte));
                }
                let unescaped: Vec<u8> = value
                    .iter()
                    .map(|&byte| match byte {
                        ESCAPED_NEWLINE => b'\n',
                        byte => byte,
                    })
                    .collect();
                FieldValue::String(parse_text(&unescaped, value_offset, name)?.into())
            }
            1 => FieldValue::Binary(BASE64.decode(value).map_err(|_| {
                DecodeError::InvalidBase64 {
                    field: name.to_string(),
                }
            })?),
            2 => {
                let child_newline = nested_newline(depth)
                    .filter(|_| depth < MAX_DEPTH)
                    .ok_or_else(|| DecodeError::TooDeep {
                        field: name.to_string(),
                    })?;
                let (child, used) = parse_message(value, value_offset, child_newline, depth + 1)?;
                if used != value.len() {
                    return Err(DecodeError::TrailingBytes {
                        offset: value_offset + used,
                        count: value.len() - used,
                    });
                }
                FieldValue::Struct(child)
            }
            3 => {
                let items = unpack_list(value, value_offset, name)?;
                if let Some(byte) = items
                    .iter()
                    .flat_map(|item| item.bytes())
                    .find(|&byte| byte == b'\n' || is_reserved(byte))
                {
                    return Err(reserved(byte));
                }
                FieldValue::List(items)
            }
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
    use super::*;

    /// The spec's worked example (§1.5) without the `auth` field.
    fn spec_status() -> Message {
        let mut message = Message::with_type("status");
        message.push_str("st", "active");
        message.push_str("dt", "7530");
        message.push_str("protocol", "1");
        message.push_str("src", "node1");
        message.push("srcuuid", FieldValue::Binary((0..16).collect()));
        message.push_str("seq", "2a");
        message.push_str("hg", "5");
        message.push_str("ts", "4f6b1c2a");
        message.push_str("ld", "0.00 0.01 0.05 1/100 1234");
        message.push_str("ttl", "3");
        message
    }

    const SPEC_SIGNED_TEXT: &[u8] = b"t=status\nst=active\ndt=7530\nprotocol=1\nsrc=node1\n\
(1)srcuuid=AAECAwQFBgcICQoLDA0ODw==\nseq=2a\nhg=5\nts=4f6b1c2a\nld=0.00 0.01 0.05 1/100 1234\nttl=3\n";

    fn nested(levels: usize) -> Message {
        let mut message = Message::with_type("leaf");
        message.push_str("text", "two\nlines");
        for level in 0..levels {
            let mut parent = Message::with_type(&format!("level{level}"));
            parent.push("child", FieldValue::Struct(message));
            parent.push("after", FieldValue::List(vec!["x".into(), "yz".into()]));
            message = parent;
        }
        message
    }

    #[test]
    fn signed_text_matches_the_spec_vector_and_skips_auth() -> Result<(), EncodeError> {
        let mut message = spec_status();
        assert_eq!(signed_text(&message)?, SPEC_SIGNED_TEXT);
        message.push_str("auth", "1 557c10878d2a634a11a5b8b28cf22024cbe7f17b");
        assert_eq!(signed_text(&message)?, SPEC_SIGNED_TEXT);
        Ok(())
    }

    #[test]
    fn encoding_wraps_the_lines_in_markers() -> Result<(), EncodeError> {
        let encoded = encode(&spec_status())?;
        assert_eq!(
            encoded,
            [b">>>\n".as_slice(), SPEC_SIGNED_TEXT, b"<<<\n"].concat()
        );
        Ok(())
    }

    #[test]
    fn every_field_type_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let mut message = spec_status();
        message.push_str("info", "first line\nsecond line\n");
        message.push("all_bytes", FieldValue::Binary((0..=255).collect()));
        message.push(
            "list",
            FieldValue::List(vec!["a".into(), String::new(), "b,c:d=e".into()]),
        );
        message.push("nested", FieldValue::Struct(nested(2)));
        let bytes = encode(&message)?;
        assert_eq!(decode(&bytes)?, message);
        Ok(())
    }

    #[test]
    fn newlines_in_strings_travel_as_0x13() -> Result<(), Box<dyn std::error::Error>> {
        let mut message = Message::new();
        message.push_str("info", "a\nb");
        let bytes = encode(&message)?;
        assert_eq!(bytes, b">>>\ninfo=a\x13b\n<<<\n");
        assert_eq!(decode(&bytes)?.get_str("info"), Some("a\nb"));
        Ok(())
    }

    #[test]
    fn nested_messages_use_the_separator_of_their_depth() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut child = Message::new();
        child.push_str("k", "v");
        let mut message = Message::new();
        message.push("c", FieldValue::Struct(child));
        assert_eq!(encode(&message)?, b">>>\n(2)c=>>>\x14k=v\x14<<<\x14\n<<<\n");
        let separators: Vec<Option<u8>> = (0..=16).map(nested_newline).collect();
        let expected: Vec<Option<u8>> = (20..=31).chain(15..=18).map(Some).chain([None]).collect();
        assert_eq!(separators, expected);
        Ok(())
    }

    #[test]
    fn nesting_up_to_the_limit_round_trips_and_one_more_is_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let deepest = nested(MAX_DEPTH);
        let bytes = encode(&deepest)?;
        assert_eq!(decode(&bytes)?, deepest);
        assert!(matches!(
            encode(&nested(MAX_DEPTH + 1)),
            Err(EncodeError::TooDeep { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_trailing_nul_is_tolerated_but_nothing_else() -> Result<(), DecodeError> {
        assert_eq!(decode(b">>>\nt=x\n<<<\n\0")?.message_type(), Some("x"));
        assert_eq!(
            decode(b">>>\nt=x\n<<<\n\0\0"),
            Err(DecodeError::TrailingBytes {
                offset: 12,
                count: 1
            })
        );
        Ok(())
    }

    #[test]
    fn bytes_the_format_reserves_are_refused_both_ways() {
        let mut message = Message::new();
        message.push_str("info", "a\x13b");
        assert_eq!(
            encode(&message),
            Err(EncodeError::ReservedByte {
                field: "info".into(),
                byte: 0x13
            })
        );
        let mut message = Message::new();
        message.push("l", FieldValue::List(vec!["a\nb".into()]));
        assert!(matches!(
            encode(&message),
            Err(EncodeError::ReservedByte { byte: b'\n', .. })
        ));
        assert_eq!(
            decode(b">>>\ninfo=a\x15b\n<<<\n"),
            Err(DecodeError::ReservedByte {
                field: "info".into(),
                byte: 0x15
            })
        );
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert_eq!(
            decode(b">>>\nst=\n<<<\n"),
            Err(DecodeError::EmptyValue { field: "st".into() })
        );
        assert!(matches!(
            decode(b">>>\ngarbage\n<<<\n"),
            Err(DecodeError::Unexpected { offset: 4, .. })
        ));
        assert!(matches!(
            decode(b">>>\n>>>x=y\n<<<\n"),
            Err(DecodeError::Unexpected { offset: 4, .. })
        ));
        assert!(matches!(
            decode(b">>>\n(1)id=not base64!\n<<<\n"),
            Err(DecodeError::InvalidBase64 { .. })
        ));
        assert!(matches!(
            decode(b">>>\nt=caf\xc3\n<<<\n"),
            Err(DecodeError::NotUtf8 { offset: 9, .. })
        ));
        assert!(matches!(
            decode(b">>>\n(4)z=abc\n<<<\n"),
            Err(DecodeError::Compressed { type_code: 4, .. })
        ));
        assert!(matches!(
            decode(b">>>\n(5)z=abc\n<<<\n"),
            Err(DecodeError::Compressed { type_code: 5, .. })
        ));
        assert!(matches!(
            decode(b"###\nt=x\n<<<\n"),
            Err(DecodeError::Unexpected { offset: 0, .. })
        ));
    }

    #[test]
    fn every_truncation_is_an_error() -> Result<(), EncodeError> {
        let mut message = spec_status();
        message.push("nested", FieldValue::Struct(nested(3)));
        let bytes = encode(&message)?;
        for len in 0..bytes.len() {
            let truncated = bytes.get(..len).unwrap_or_default();
            assert!(decode(truncated).is_err(), "prefix of {len} bytes decoded");
        }
        Ok(())
    }

    #[test]
    fn blank_lines_between_fields_are_skipped() -> Result<(), DecodeError> {
        let message = decode(b">>>\n\nt=x\n\n\nst=up\n<<<\n")?;
        assert_eq!(message.len(), 2);
        assert_eq!(message.get_str("st"), Some("up"));
        Ok(())
    }
}
