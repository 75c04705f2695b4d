//! One whole datagram as Heartbeat 3.0.6 sends it (spec §1.2, §1.5): a signed, encoded
//! message, and the checks a received one must pass, each failure with its own reason.
//!
//! Sending: the inner `auth` field (unless `msgfmt netstring`), the netstring encoding and
//! the authentication trailer `<len>:<slot> <token>,`. Receiving: netstring with trailer, or
//! classic with an `auth` field; size, shape and every signature present are checked before
//! a message is handed on. This module must not keep state between datagrams or look at
//! what a message means (sequence numbers, sources and types belong to `membership`).
//!
//! Verification differs from 3.0.6 on purpose in one point: 3.0.6 checks a trailer with the
//! *algorithm* of the slot the trailer names but the *key* of its own outbound slot (spec
//! §1.5). vigil uses the algorithm and key of the named slot. The two agree whenever the
//! slots share a key (or are keyless crc), which is the only set-up that works between
//! 3.0.6 nodes anyway.

use super::auth::AuthKeys;
use super::classic;
use super::message::{FieldValue, Message};
use super::netstring::{self, DecodeError, EncodeError, read_netstring};

pub use super::netstring::{MAX_DEPTH, MAX_MESSAGE_BYTES};

/// The field holding the classic signature.
const AUTH_FIELD: &str = "auth";
/// The first bytes of a netstring message.
const NETSTRING_START: &[u8] = b"###\n";
/// The first bytes of a classic message.
const CLASSIC_START: &[u8] = b">>>\n";

/// Whether an outgoing datagram carries the inner classic `auth` field as well as the
/// trailer: that is what ha.cf's `msgfmt` changes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InnerAuth {
    /// `msgfmt classic` (Heartbeat's default): add or replace the `auth` field, signed over
    /// the classic rendering of the other fields.
    #[default]
    Classic,
    /// `msgfmt netstring`: no `auth` field; any present is removed so no stale signature is
    /// sent.
    Omitted,
}

/// Which of a datagram's two signatures a drop reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// The `<len>:<slot> <token>,` after a netstring message.
    Trailer,
    /// The classic `auth` field inside the message.
    AuthField,
}

impl std::fmt::Display for SignatureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureKind::Trailer => "authentication trailer",
            SignatureKind::AuthField => "`auth` field",
        })
    }
}

/// Why a received datagram was dropped. Each variant has a stable counter name
/// ([`counter`](Self::counter)) so operators can see what kind of traffic is being refused.
/// The text names the problem and a position or field, never raw packet bytes, so logs stay
/// readable UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Bytes that are not a well-formed message in either format.
    #[error("malformed datagram: {0}")]
    Malformed(#[source] DecodeError),
    /// Longer than [`MAX_MESSAGE_BYTES`].
    #[error("oversized datagram: {len} bytes, more than the {MAX_MESSAGE_BYTES}-byte limit")]
    Oversized {
        /// The datagram's length.
        len: usize,
    },
    /// STRUCT fields nested deeper than [`MAX_DEPTH`].
    #[error("datagram nests messages deeper than {MAX_DEPTH} levels at field `{field}`")]
    TooDeep {
        /// The STRUCT field that opens the level too many.
        field: String,
    },
    /// A compressed field (type 4 or 5): vigil cannot decompress yet.
    #[error(
        "datagram has compressed field `{field}` (type {type_code}); compressed messages are not supported yet"
    )]
    Compressed {
        /// The compressed field.
        field: String,
        /// 4 (COMPRESS) or 5 (UNCOMPRESS).
        type_code: u8,
    },
    /// A netstring datagram without trailer, or a classic one without `auth` field.
    #[error("datagram has no {kind}; unsigned messages are refused")]
    MissingSignature {
        /// The signature that is missing.
        kind: SignatureKind,
    },
    /// A signature that is not `<slot> <hex token>`.
    #[error("datagram's {kind} is malformed: {problem}")]
    MalformedSignature {
        /// The signature concerned.
        kind: SignatureKind,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A signature naming a key slot that `authkeys` does not define.
    #[error("datagram's {kind} names key slot {slot}, which authkeys does not define")]
    UnknownKeySlot {
        /// The signature concerned.
        kind: SignatureKind,
        /// The slot it names.
        slot: u8,
    },
    /// A signature that does not match the data: wrong key, or altered data.
    #[error(
        "datagram's {kind} does not match (key slot {slot}, {method}): wrong key or altered data"
    )]
    BadSignature {
        /// The signature concerned.
        kind: SignatureKind,
        /// The slot it names.
        slot: u8,
        /// The slot's method name.
        method: &'static str,
    },
}

impl DropReason {
    /// The stable snake_case name of the counter this reason increments.
    pub fn counter(&self) -> &'static str {
        match self {
            DropReason::Malformed(_) => "malformed",
            DropReason::Oversized { .. } => "oversized",
            DropReason::TooDeep { .. } => "too_deep",
            DropReason::Compressed { .. } => "compressed",
            DropReason::MissingSignature { .. } => "missing_signature",
            DropReason::MalformedSignature { .. } => "malformed_signature",
            DropReason::UnknownKeySlot { .. } => "unknown_key_slot",
            DropReason::BadSignature { .. } => "bad_signature",
        }
    }
}

impl From<DecodeError> for DropReason {
    /// Gives the reasons operators count separately their own variant; every other decode
    /// error is malformed input.
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::Oversized { len } => DropReason::Oversized { len },
            DecodeError::TooDeep { field } => DropReason::TooDeep { field },
            DecodeError::Compressed { field, type_code } => {
                DropReason::Compressed { field, type_code }
            }
            other => DropReason::Malformed(other),
        }
    }
}

/// Signs and encodes `message` for UDP: sets the inner `auth` field as `inner` asks, encodes
/// as netstring and appends the trailer signed with the outbound slot. The caller's message
/// is left as it was.
pub fn encode(
    message: &Message,
    keys: &AuthKeys,
    inner: InnerAuth,
) -> Result<Vec<u8>, EncodeError> {
    let auth = match inner {
        InnerAuth::Classic => Some(keys.sign_outbound(&classic::signed_text(message)?)),
        InnerAuth::Omitted => None,
    };
    let mut bytes = netstring::encode_with_field(message, AUTH_FIELD, auth.as_deref())?;
    let trailer = keys.sign_outbound(&bytes);
    netstring::push_decimal(&mut bytes, trailer.len());
    bytes.push(b':');
    bytes.extend_from_slice(trailer.as_bytes());
    bytes.push(b',');
    netstring::check_encoded_len(bytes.len())?;
    Ok(bytes)
}

/// Signs and encodes `message` in classic format, as a serial link carries it: the `auth`
/// field is set with the outbound slot, and no trailer or NUL is added.
pub fn encode_classic(message: &Message, keys: &AuthKeys) -> Result<Vec<u8>, EncodeError> {
    let mut message = message.clone();
    set_auth_field(&mut message, keys)?;
    classic::encode(&message)
}

/// Adds or replaces (in place) the `auth` field, signed over the other fields.
fn set_auth_field(message: &mut Message, keys: &AuthKeys) -> Result<(), EncodeError> {
    let signed = classic::signed_text(message)?;
    message.set_str(AUTH_FIELD, &keys.sign_outbound(&signed));
    Ok(())
}

/// Decodes a received datagram in either format and checks every signature it carries
/// with the algorithm and key of the slot each names. The returned message keeps its inner
/// `auth` field, so re-encoding it reproduces the datagram.
pub fn decode(bytes: &[u8], keys: &AuthKeys) -> Result<Message, DropReason> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DropReason::Oversized { len: bytes.len() });
    }
    if bytes.starts_with(NETSTRING_START) {
        decode_netstring(bytes, keys)
    } else if bytes.starts_with(CLASSIC_START) {
        decode_classic(bytes, keys)
    } else {
        const EXPECTED: &str = "a `###\\n` or `>>>\\n` start marker";
        let short = NETSTRING_START.starts_with(bytes) || CLASSIC_START.starts_with(bytes);
        Err(DropReason::Malformed(if short {
            DecodeError::Truncated {
                offset: 0,
                expected: EXPECTED,
            }
        } else {
            DecodeError::Unexpected {
                offset: 0,
                expected: EXPECTED,
            }
        }))
    }
}

fn decode_netstring(bytes: &[u8], keys: &AuthKeys) -> Result<Message, DropReason> {
    let (message, signed_len) = netstring::decode_prefix(bytes)?;
    let (signed, trailer) = bytes.split_at_checked(signed_len).unwrap_or((bytes, &[]));
    if trailer.is_empty() {
        return Err(DropReason::MissingSignature {
            kind: SignatureKind::Trailer,
        });
    }
    let netstring = read_netstring(trailer, signed_len)?;
    if netstring.consumed != trailer.len() {
        return Err(DropReason::Malformed(DecodeError::TrailingBytes {
            offset: signed_len + netstring.consumed,
            count: trailer.len() - netstring.consumed,
        }));
    }
    let (slot, token) = parse_signature(netstring.payload, SignatureKind::Trailer)?;
    verify(keys, SignatureKind::Trailer, slot, token, signed)?;
    if message.get(AUTH_FIELD).is_some() {
        verify_auth_field(&message, keys)?;
    }
    Ok(message)
}

fn decode_classic(bytes: &[u8], keys: &AuthKeys) -> Result<Message, DropReason> {
    let message = classic::decode(bytes)?;
    if message.get(AUTH_FIELD).is_none() {
        return Err(DropReason::MissingSignature {
            kind: SignatureKind::AuthField,
        });
    }
    verify_auth_field(&message, keys)?;
    Ok(message)
}

/// Checks the inner `auth` field against the classic rendering of the other fields.
fn verify_auth_field(message: &Message, keys: &AuthKeys) -> Result<(), DropReason> {
    let kind = SignatureKind::AuthField;
    let Some(FieldValue::String(signature)) = message.get(AUTH_FIELD) else {
        return Err(DropReason::MalformedSignature {
            kind,
            problem: "the `auth` field is not a string",
        });
    };
    let (slot, token) = parse_signature(signature.as_bytes(), kind)?;
    let method = keys
        .slot(slot)
        .ok_or(DropReason::UnknownKeySlot { kind, slot })?;
    // A message that has no classic rendering cannot have been signed by a Heartbeat peer.
    let verified = classic::signed_text(message)
        .map(|signed| method.verify(&signed, token))
        .unwrap_or(false);
    if verified {
        Ok(())
    } else {
        Err(DropReason::BadSignature {
            kind,
            slot,
            method: method.name(),
        })
    }
}

/// Checks `token` over `data` with the method of `slot`.
fn verify(
    keys: &AuthKeys,
    kind: SignatureKind,
    slot: u8,
    token: &str,
    data: &[u8],
) -> Result<(), DropReason> {
    let method = keys
        .slot(slot)
        .ok_or(DropReason::UnknownKeySlot { kind, slot })?;
    if method.verify(data, token) {
        Ok(())
    } else {
        Err(DropReason::BadSignature {
            kind,
            slot,
            method: method.name(),
        })
    }
}

/// Splits `<slot> <token>`: a decimal slot of at most three digits, one space, and a
/// non-empty hexadecimal token.
fn parse_signature(text: &[u8], kind: SignatureKind) -> Result<(u8, &str), DropReason> {
    let malformed = |problem| DropReason::MalformedSignature { kind, problem };
    let text = std::str::from_utf8(text).map_err(|_| malformed("it is not text"))?;
    let (slot, token) = text
        .split_once(' ')
        .ok_or_else(|| malformed("it is not `<slot> <token>`"))?;
    if slot.is_empty() || slot.len() > 3 || !slot.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(malformed("the key slot is not a decimal number"));
    }
    let slot = slot
        .parse::<u8>()
        .map_err(|_| malformed("the key slot is larger than 255"))?;
    if token.is_empty() || !token.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(malformed("the token is not hexadecimal"));
    }
    Ok((slot, token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::auth::{AuthKeysError, AuthMethod};

    /// The spec's worked example (§1.5) without its `auth` field.
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

    /// The spec's authkeys: `auth 1`, `1 sha1 HI!`, `3 md5 Hello!`.
    fn spec_keys() -> Result<AuthKeys, AuthKeysError> {
        AuthKeys::new(
            1,
            vec![
                (1, AuthMethod::Sha1 { key: "HI!".into() }),
                (
                    3,
                    AuthMethod::Md5 {
                        key: "Hello!".into(),
                    },
                ),
            ],
        )
    }

    /// The 303-byte datagram of the spec's worked example.
    fn spec_datagram() -> Vec<u8> {
        [
            b"###\n11:(0)t=status,12:(0)st=active,10:(0)dt=7530,13:(0)protocol=1,12:(0)src=node1,27:(1)srcuuid=".as_slice(),
            &(0..16).collect::<Vec<u8>>(),
            b",9:(0)seq=2a,7:(0)hg=5,14:(0)ts=4f6b1c2a,31:(0)ld=0.00 0.01 0.05 1/100 1234,8:(0)ttl=3,\
50:(0)auth=1 557c10878d2a634a11a5b8b28cf22024cbe7f17b,%%%\n42:1 c8431763ecfd9f21b41694b554ef8328fb141500,",
        ]
        .concat()
    }

    #[test]
    fn spec_vector_encodes_byte_for_byte_and_verifies() -> Result<(), Box<dyn std::error::Error>> {
        let keys = spec_keys()?;
        let expected = spec_datagram();
        assert_eq!(expected.len(), 303);
        let encoded = encode(&spec_status(), &keys, InnerAuth::Classic)?;
        assert_eq!(encoded, expected);
        let decoded = decode(&encoded, &keys)?;
        assert_eq!(
            decoded.get_str("auth"),
            Some("1 557c10878d2a634a11a5b8b28cf22024cbe7f17b")
        );
        let mut expected_message = spec_status();
        expected_message.push_str("auth", "1 557c10878d2a634a11a5b8b28cf22024cbe7f17b");
        assert_eq!(decoded, expected_message);
        Ok(())
    }

    #[test]
    fn encoding_replaces_a_stale_auth_field_in_place() -> Result<(), Box<dyn std::error::Error>> {
        let keys = spec_keys()?;
        let mut message = spec_status();
        message.push_str("auth", "1 0000");
        message.push_str("extra", "x");
        let decoded = decode(&encode(&message, &keys, InnerAuth::Classic)?, &keys)?;
        let names: Vec<&str> = decoded.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names.get(11..), Some(["auth", "extra"].as_slice()));
        Ok(())
    }

    #[test]
    fn msgfmt_netstring_sends_no_auth_field_and_still_verifies()
    -> Result<(), Box<dyn std::error::Error>> {
        let keys = spec_keys()?;
        let mut message = spec_status();
        message.push_str("auth", "1 0000");
        let encoded = encode(&message, &keys, InnerAuth::Omitted)?;
        let decoded = decode(&encoded, &keys)?;
        assert_eq!(decoded, spec_status());
        Ok(())
    }

    #[test]
    fn classic_datagrams_verify_with_their_auth_field() -> Result<(), Box<dyn std::error::Error>> {
        let keys = spec_keys()?;
        let mut encoded = encode_classic(&spec_status(), &keys)?;
        encoded.push(0);
        let decoded = decode(&encoded, &keys)?;
        assert_eq!(
            decoded.get_str("auth"),
            Some("1 557c10878d2a634a11a5b8b28cf22024cbe7f17b")
        );
        let unsigned = classic::encode(&spec_status())?;
        assert_eq!(
            decode(&unsigned, &keys),
            Err(DropReason::MissingSignature {
                kind: SignatureKind::AuthField
            })
        );
        Ok(())
    }

    #[test]
    fn the_slot_named_in_the_signature_selects_algorithm_and_key()
    -> Result<(), Box<dyn std::error::Error>> {
        // Signed by a peer whose outbound slot is 3 (md5 "Hello!").
        let sender = AuthKeys::new(
            3,
            vec![(
                3,
                AuthMethod::Md5 {
                    key: "Hello!".into(),
                },
            )],
        )?;
        let encoded = encode(&spec_status(), &sender, InnerAuth::Classic)?;
        let decoded = decode(&encoded, &spec_keys()?)?;
        assert_eq!(
            decoded.get_str("auth"),
            Some("3 6821a94e02128b31d4d284e267ba7fc5")
        );
        Ok(())
    }

    #[test]
    fn a_forged_auth_field_is_caught_even_under_a_valid_trailer()
    -> Result<(), Box<dyn std::error::Error>> {
        let keys = spec_keys()?;
        let mut message = spec_status();
        message.push_str("auth", "1 557c10878d2a634a11a5b8b28cf22024cbe7f17c");
        // Sign the trailer over the forged field by encoding with the field left as is.
        let mut bytes = netstring::encode(&message)?;
        let trailer = keys.sign_outbound(&bytes);
        bytes.extend_from_slice(format!("{}:{trailer},", trailer.len()).as_bytes());
        assert_eq!(
            decode(&bytes, &keys),
            Err(DropReason::BadSignature {
                kind: SignatureKind::AuthField,
                slot: 1,
                method: "sha1"
            })
        );
        Ok(())
    }

    #[test]
    fn signature_problems_each_have_their_reason() -> Result<(), Box<dyn std::error::Error>> {
        let keys = spec_keys()?;
        let datagram = spec_datagram();
        let body_len = datagram.len() - b"42:1 c8431763ecfd9f21b41694b554ef8328fb141500,".len();
        let body = datagram.get(..body_len).unwrap_or_default();
        let with_trailer =
            |trailer: &str| [body, format!("{}:{trailer},", trailer.len()).as_bytes()].concat();
        assert_eq!(
            decode(body, &keys),
            Err(DropReason::MissingSignature {
                kind: SignatureKind::Trailer
            })
        );
        let bad = decode(
            &with_trailer("1 c8431763ecfd9f21b41694b554ef8328fb141501"),
            &keys,
        );
        assert_eq!(
            bad,
            Err(DropReason::BadSignature {
                kind: SignatureKind::Trailer,
                slot: 1,
                method: "sha1"
            })
        );
        assert_eq!(
            decode(
                &with_trailer("7 c8431763ecfd9f21b41694b554ef8328fb141500"),
                &keys
            ),
            Err(DropReason::UnknownKeySlot {
                kind: SignatureKind::Trailer,
                slot: 7
            })
        );
        for trailer in ["1c84317", "x c843", "1 ", "1 zz", "1000 c843"] {
            assert!(
                matches!(
                    decode(&with_trailer(trailer), &keys),
                    Err(DropReason::MalformedSignature { .. })
                ),
                "{trailer}"
            );
        }
        assert!(matches!(
            decode(&[datagram.as_slice(), b"x"].concat(), &keys),
            Err(DropReason::Malformed(DecodeError::TrailingBytes { .. }))
        ));
        Ok(())
    }

    #[test]
    fn counters_are_stable_snake_case_names() {
        let reasons = [
            (
                DropReason::Malformed(DecodeError::Truncated {
                    offset: 0,
                    expected: "x",
                }),
                "malformed",
            ),
            (DropReason::Oversized { len: 1 }, "oversized"),
            (DropReason::TooDeep { field: "f".into() }, "too_deep"),
            (
                DropReason::Compressed {
                    field: "f".into(),
                    type_code: 4,
                },
                "compressed",
            ),
            (
                DropReason::MissingSignature {
                    kind: SignatureKind::Trailer,
                },
                "missing_signature",
            ),
            (
                DropReason::MalformedSignature {
                    kind: SignatureKind::Trailer,
                    problem: "x",
                },
                "malformed_signature",
            ),
            (
                DropReason::UnknownKeySlot {
                    kind: SignatureKind::Trailer,
                    slot: 7,
                },
                "unknown_key_slot",
            ),
            (
                DropReason::BadSignature {
                    kind: SignatureKind::Trailer,
                    slot: 1,
                    method: "sha1",
                },
                "bad_signature",
            ),
        ];
        for (reason, counter) in reasons {
            assert_eq!(reason.counter(), counter, "{reason}");
        }
    }

    #[test]
    fn drop_reasons_never_quote_packet_bytes() -> Result<(), AuthKeysError> {
        let keys = spec_keys()?;
        let garbage = b"###\n25:(0)t=\xff\xfe\x00binary\x01\x02garbage\x80\x81,%%%\n";
        let reason = decode(garbage, &keys).err().map(|r| r.to_string());
        let text = reason.unwrap_or_default();
        assert!(text.contains("byte 12"), "{text}");
        assert!(!text.contains("garbage"), "{text}");
        Ok(())
    }
}
