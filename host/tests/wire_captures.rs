//! The wire codecs against packets captured from a live Heartbeat 3.0.6 cluster
//! (`tests/fixtures/heartbeat-3.0.6/`), and against hostile variations of those packets.
//!
//! Every captured datagram must decode, verify with the capture's key and re-encode to the
//! same bytes; every damaged one must be dropped with the right reason and without a panic.

use std::collections::BTreeSet;
use std::error::Error;
use std::path::PathBuf;

use vigil::wire::FieldValue;
use vigil::wire::auth::{AuthKeys, AuthMethod};
use vigil::wire::datagram::{self, DropReason, InnerAuth, MAX_DEPTH, MAX_MESSAGE_BYTES};
use vigil::wire::netstring::DecodeError;

type TestResult = Result<(), Box<dyn Error>>;

/// The message types the README says each capture holds.
const EXPECTED_TYPES: [&str; 7] = [
    "status",
    "starting",
    "reqnodes",
    "repnodes",
    "resource",
    "ip-request-resp",
    "NS_ackmsg",
];

fn fixture(name: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "heartbeat-3.0.6",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()).into())
}

/// The authkeys of each capture, as its README gives them.
fn bcast_keys() -> Result<AuthKeys, Box<dyn Error>> {
    let sha1 = AuthMethod::Sha1 {
        key: "labsecret".into(),
    };
    Ok(AuthKeys::new(1, vec![(1, sha1)])?)
}

fn mcast_keys() -> Result<AuthKeys, Box<dyn Error>> {
    let md5 = AuthMethod::Md5 {
        key: "labsecret".into(),
    };
    Ok(AuthKeys::new(2, vec![(2, md5)])?)
}

fn ucast_keys() -> Result<AuthKeys, Box<dyn Error>> {
    Ok(AuthKeys::new(3, vec![(3, AuthMethod::Crc)])?)
}

/// Reads a little- or big-endian u16/u32 from a capture, failing instead of panicking.
fn bytes_at<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], Box<dyn Error>> {
    data.get(at..at + N)
        .and_then(|slice| <[u8; N]>::try_from(slice).ok())
        .ok_or_else(|| format!("capture truncated at byte {at}").into())
}

fn be16(data: &[u8], at: usize) -> Result<usize, Box<dyn Error>> {
    Ok(usize::from(u16::from_be_bytes(bytes_at(data, at)?)))
}

/// The UDP payloads of a classic libpcap file (Ethernet or Linux cooked link layer,
/// IPv4), in capture order. Only what the fixtures need; anything else is an error.
fn udp_payloads(pcap: &[u8]) -> Result<Vec<Vec<u8>>, Box<dyn Error>> {
    let magic: [u8; 4] = bytes_at(pcap, 0)?;
    let little_endian = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        other => return Err(format!("not a pcap file (magic {other:02x?})").into()),
    };
    let u32_at = |at: usize| -> Result<usize, Box<dyn Error>> {
        let raw = bytes_at::<4>(pcap, at)?;
        let value = if little_endian {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        };
        Ok(usize::try_from(value)?)
    };
    let link_type = u32_at(20)?;
    let mut payloads = Vec::new();
    let mut pos = 24;
    while pos < pcap.len() {
        let captured = u32_at(pos + 8)?;
        let original = u32_at(pos + 12)?;
        let frame = pcap
            .get(pos + 16..pos + 16 + captured)
            .ok_or("record runs past the end of the capture")?;
        if captured != original {
            return Err(format!("frame at byte {pos} was cut by the snap length").into());
        }
        pos += 16 + captured;
        let (ether_type, ip_start) = match link_type {
            1 => {
                let ether_type = be16(frame, 12)?;
                if ether_type == 0x8100 {
                    (be16(frame, 16)?, 18)
                } else {
                    (ether_type, 14)
                }
            }
            113 => (be16(frame, 14)?, 16),
            276 => (be16(frame, 0)?, 20),
            other => return Err(format!("unsupported link type {other}").into()),
        };
        if ether_type != 0x0800 {
            continue;
        }
        let ip = frame
            .get(ip_start..)
            .ok_or("frame shorter than its link header")?;
        let version_and_length = *ip.first().ok_or("empty IPv4 header")?;
        if version_and_length >> 4 != 4 {
            return Err("IPv4 ether type without an IPv4 header".into());
        }
        let header_len = usize::from(version_and_length & 0x0f) * 4;
        if ip.get(9) != Some(&17) {
            continue;
        }
        if be16(ip, 6)? & 0x3fff != 0 {
            return Err("fragmented datagram in capture".into());
        }
        let udp = ip
            .get(header_len..)
            .ok_or("IPv4 header longer than frame")?;
        if be16(udp, 2)? != 694 {
            return Err(format!("UDP datagram to port {}, not 694", be16(udp, 2)?).into());
        }
        let udp_len = be16(udp, 4)?;
        let payload = udp.get(8..udp_len).ok_or("UDP length longer than frame")?;
        payloads.push(payload.to_vec());
    }
    Ok(payloads)
}

/// The `len=` of every record in a `.decoded.txt` file, in order.
fn decoded_lengths(text: &str) -> Result<Vec<usize>, Box<dyn Error>> {
    text.lines()
        .filter(|line| line.starts_with('+'))
        .map(|line| {
            line.rsplit_once("len=")
                .ok_or_else(|| format!("record without len=: {line}").into())
                .and_then(|(_, len)| len.trim().parse::<usize>().map_err(Into::into))
        })
        .collect()
}

/// Every datagram of a capture decodes, verifies with `keys`, carries the inner `auth`
/// field and re-encodes to the exact captured bytes; the decoded text agrees on count and
/// lengths, and every expected message type is present.
fn check_capture(capture: &str, keys: &AuthKeys) -> TestResult {
    let datagrams = udp_payloads(&fixture(&format!("{capture}.pcap"))?)?;
    let decoded_text = String::from_utf8(fixture(&format!("{capture}.decoded.txt"))?)?;
    let lengths = decoded_lengths(&decoded_text)?;
    assert_eq!(datagrams.len(), lengths.len(), "{capture}: datagram count");
    let mut types = BTreeSet::new();
    for (index, (bytes, len)) in datagrams.iter().zip(&lengths).enumerate() {
        assert_eq!(bytes.len(), *len, "{capture} datagram {index}: length");
        let message = datagram::decode(bytes, keys)
            .map_err(|reason| format!("{capture} datagram {index}: {reason}"))?;
        assert!(
            matches!(message.get("auth"), Some(FieldValue::String(_))),
            "{capture} datagram {index}: no inner auth field"
        );
        let reencoded = datagram::encode(&message, keys, InnerAuth::Classic)?;
        assert!(
            reencoded == *bytes,
            "{capture} datagram {index}: re-encoding differs"
        );
        types.insert(message.message_type().unwrap_or_default().to_string());
    }
    for expected in EXPECTED_TYPES {
        assert!(types.contains(expected), "{capture}: no {expected} message");
    }
    Ok(())
}

#[test]
fn bcast_sha1_capture_decodes_verifies_and_reencodes_exactly() -> TestResult {
    check_capture("bcast-sha1-start", &bcast_keys()?)
}

#[test]
fn mcast_md5_capture_decodes_verifies_and_reencodes_exactly() -> TestResult {
    check_capture("mcast-md5-start", &mcast_keys()?)
}

#[test]
fn ucast_crc_capture_decodes_verifies_and_reencodes_exactly() -> TestResult {
    check_capture("ucast-crc-start", &ucast_keys()?)
}

#[test]
fn captures_hold_the_record_counts_of_their_decoded_text() -> TestResult {
    for (capture, count) in [
        ("bcast-sha1-start", 179),
        ("mcast-md5-start", 171),
        ("ucast-crc-start", 171),
    ] {
        let datagrams = udp_payloads(&fixture(&format!("{capture}.pcap"))?)?;
        assert_eq!(datagrams.len(), count, "{capture}");
    }
    Ok(())
}

#[test]
fn captured_datagrams_fail_with_a_different_key() -> TestResult {
    let bytes = first_bcast_datagram()?;
    let wrong = AuthKeys::new(
        1,
        vec![(
            1,
            AuthMethod::Sha1 {
                key: "notthesecret".into(),
            },
        )],
    )?;
    assert!(matches!(
        datagram::decode(&bytes, &wrong),
        Err(DropReason::BadSignature { slot: 1, .. })
    ));
    let crc_bytes = udp_payloads(&fixture("ucast-crc-start.pcap")?)?;
    let first_crc = crc_bytes.first().ok_or("empty capture")?;
    assert!(matches!(
        datagram::decode(first_crc, &wrong),
        Err(DropReason::UnknownKeySlot { slot: 3, .. })
    ));
    Ok(())
}

fn first_bcast_datagram() -> Result<Vec<u8>, Box<dyn Error>> {
    let datagrams = udp_payloads(&fixture("bcast-sha1-start.pcap")?)?;
    Ok(datagrams.into_iter().next().ok_or("empty capture")?)
}

/// The netstring body of a datagram: everything up to and including `%%%\n`.
fn body_of(bytes: &[u8]) -> Result<&[u8], Box<dyn Error>> {
    let end = bytes
        .windows(4)
        .position(|window| window == b"%%%\n")
        .ok_or("no end marker")?;
    Ok(bytes.get(..end + 4).ok_or("no end marker")?)
}

/// A netstring body followed by a valid trailer, as an attacker with the key would send it.
fn signed(body: &[u8], keys: &AuthKeys) -> Vec<u8> {
    let trailer = keys.sign_outbound(body);
    [body, format!("{}:{trailer},", trailer.len()).as_bytes()].concat()
}

#[test]
fn every_truncation_of_a_real_datagram_is_dropped() -> TestResult {
    let keys = bcast_keys()?;
    let bytes = first_bcast_datagram()?;
    for len in 0..bytes.len() {
        let truncated = bytes.get(..len).ok_or("prefix")?;
        let reason = datagram::decode(truncated, &keys);
        assert!(reason.is_err(), "prefix of {len} bytes was accepted");
    }
    Ok(())
}

#[test]
fn garbage_is_malformed() -> TestResult {
    let keys = bcast_keys()?;
    for garbage in [
        b"".as_slice(),
        b"hello",
        b"\x00\xff\x13\x14garbage",
        b"###",
        b"###\nxyz",
    ] {
        let reason = datagram::decode(garbage, &keys).err().ok_or("accepted")?;
        assert_eq!(reason.counter(), "malformed", "{reason}");
    }
    Ok(())
}

#[test]
fn oversized_datagrams_are_refused() -> TestResult {
    let keys = bcast_keys()?;
    let mut bytes = b"###\n".to_vec();
    bytes.resize(MAX_MESSAGE_BYTES + 1, b'x');
    assert_eq!(
        datagram::decode(&bytes, &keys),
        Err(DropReason::Oversized {
            len: MAX_MESSAGE_BYTES + 1
        })
    );
    Ok(())
}

#[test]
fn nesting_past_the_limit_is_too_deep() -> TestResult {
    let keys = bcast_keys()?;
    let mut message = b"###\n7:(0)t=ab,%%%\n".to_vec();
    for _ in 0..=MAX_DEPTH {
        let payload = [b"(2)c=".as_slice(), &message].concat();
        message = [
            b"###\n".as_slice(),
            format!("{}:", payload.len()).as_bytes(),
            &payload,
            b",%%%\n",
        ]
        .concat();
    }
    let reason = datagram::decode(&signed(&message, &keys), &keys);
    assert_eq!(reason, Err(DropReason::TooDeep { field: "c".into() }));
    Ok(())
}

#[test]
fn a_wrong_trailer_signature_is_a_bad_signature() -> TestResult {
    let keys = bcast_keys()?;
    let mut bytes = first_bcast_datagram()?;
    // Flip one hex digit of the trailer token (the byte before the final comma).
    let last_digit = bytes.len().checked_sub(2).ok_or("short datagram")?;
    let digit = bytes.get_mut(last_digit).ok_or("short datagram")?;
    *digit = if *digit == b'0' { b'1' } else { b'0' };
    let reason = datagram::decode(&bytes, &keys).err().ok_or("accepted")?;
    assert_eq!(reason.counter(), "bad_signature");
    Ok(())
}

#[test]
fn a_changed_field_breaks_both_signatures() -> TestResult {
    use vigil::wire::datagram::SignatureKind;
    let keys = bcast_keys()?;
    let bytes = first_bcast_datagram()?;
    let body = body_of(&bytes)?;
    let at = body
        .windows(7)
        .position(|window| window == b"st=init")
        .ok_or("no st=init field")?;
    let tampered = [
        body.get(..at).ok_or("prefix")?,
        b"st=dead",
        body.get(at + 7..).ok_or("suffix")?,
    ]
    .concat();
    // Replaying the captured trailer over the changed body fails the trailer check.
    let trailer = bytes.get(body.len()..).ok_or("no trailer")?;
    assert!(matches!(
        datagram::decode(&[tampered.as_slice(), trailer].concat(), &keys),
        Err(DropReason::BadSignature {
            kind: SignatureKind::Trailer,
            ..
        })
    ));
    // A fresh trailer still leaves the inner `auth` field over the old text.
    assert!(matches!(
        datagram::decode(&signed(&tampered, &keys), &keys),
        Err(DropReason::BadSignature {
            kind: SignatureKind::AuthField,
            ..
        })
    ));
    Ok(())
}

#[test]
fn a_trailer_naming_an_undefined_slot_is_an_unknown_key_slot() -> TestResult {
    let keys = bcast_keys()?;
    let bytes = first_bcast_datagram()?;
    let body = body_of(&bytes)?;
    let trailer = bytes.get(body.len()..).ok_or("no trailer")?;
    let trailer = String::from_utf8(trailer.to_vec())?.replacen(":1 ", ":7 ", 1);
    let forged = [body, trailer.as_bytes()].concat();
    let reason = datagram::decode(&forged, &keys).err().ok_or("accepted")?;
    assert_eq!(reason.counter(), "unknown_key_slot");
    assert!(reason.to_string().contains("slot 7"), "{reason}");
    Ok(())
}

#[test]
fn a_missing_trailer_is_a_missing_signature() -> TestResult {
    let keys = bcast_keys()?;
    let bytes = first_bcast_datagram()?;
    let reason = datagram::decode(body_of(&bytes)?, &keys)
        .err()
        .ok_or("accepted")?;
    assert_eq!(reason.counter(), "missing_signature");
    Ok(())
}

#[test]
fn compressed_fields_are_refused_as_compressed() -> TestResult {
    let keys = bcast_keys()?;
    for type_code in [4u8, 5] {
        let body = format!("###\n11:(0)t=status,11:({type_code})data=xyz,%%%\n");
        let reason = datagram::decode(&signed(body.as_bytes(), &keys), &keys);
        assert_eq!(
            reason,
            Err(DropReason::Compressed {
                field: "data".into(),
                type_code
            })
        );
    }
    Ok(())
}

#[test]
fn an_empty_value_is_malformed() -> TestResult {
    let keys = bcast_keys()?;
    let body = b"###\n11:(0)t=status,6:(0)st=,%%%\n";
    assert_eq!(
        datagram::decode(&signed(body, &keys), &keys),
        Err(DropReason::Malformed(DecodeError::EmptyValue {
            field: "st".into()
        }))
    );
    Ok(())
}

#[test]
fn a_length_prefix_past_the_buffer_is_malformed() -> TestResult {
    let keys = bcast_keys()?;
    let mut bytes = first_bcast_datagram()?;
    // The first field is `11:(0)t=status,`; claim far more than the datagram holds.
    bytes.splice(4..6, b"99999".iter().copied());
    let reason = datagram::decode(&bytes, &keys);
    assert!(
        matches!(
            reason,
            Err(DropReason::Malformed(DecodeError::LengthBeyondBuffer {
                offset: 4,
                declared: 99999,
                ..
            }))
        ),
        "{reason:?}"
    );
    Ok(())
}

#[test]
fn a_string_that_is_not_utf8_is_malformed() -> TestResult {
    let keys = bcast_keys()?;
    let body = b"###\n11:(0)t=stat\xffs,%%%\n";
    let reason = datagram::decode(&signed(body, &keys), &keys);
    assert_eq!(
        reason,
        Err(DropReason::Malformed(DecodeError::NotUtf8 {
            field: "t".into(),
            offset: 16
        }))
    );
    let text = reason.err().map(|r| r.to_string()).unwrap_or_default();
    assert!(text.contains("byte 16") && text.contains("`t`"), "{text}");
    Ok(())
}
