//! Heartbeat's message signatures (spec §1.5) and the key slots of `authkeys` (spec §4).
//!
//! Owns the three methods (`crc`, `md5`, `sha1`), the token text they produce, and the set of
//! configured slots with the outbound one. It signs and checks byte strings only: which bytes
//! are signed is decided by `classic` and `datagram`, and reading the `authkeys` file belongs
//! to `config`. Key material never appears in `Debug` output or errors.

use std::collections::BTreeMap;
use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;

/// The number of key slots `authkeys` can define (slots 0 to 15, Heartbeat's `MAXAUTH`).
pub const SLOT_COUNT: u8 = 16;

/// One signature method with its key, as a line `<slot> <method> [<key>]` of `authkeys`
/// defines it. Peers must agree on method and key for a slot, so this is what a slot holds.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// CRC-32/POSIX of the data: detects corruption, authenticates nothing; takes no key.
    Crc,
    /// HMAC-MD5 keyed with the literal ASCII key of `authkeys`.
    Md5 {
        /// The key exactly as written in `authkeys` (not hex-decoded).
        key: String,
    },
    /// HMAC-SHA1 keyed with the literal ASCII key of `authkeys`.
    Sha1 {
        /// The key exactly as written in `authkeys` (not hex-decoded).
        key: String,
    },
}

impl fmt::Debug for AuthMethod {
    /// Shows the method but never the key, so configurations can be logged safely.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMethod::Crc => f.write_str("Crc"),
            AuthMethod::Md5 { .. } => f.debug_struct("Md5").field("key", &Redacted).finish(),
            AuthMethod::Sha1 { .. } => f.debug_struct("Sha1").field("key", &Redacted).finish(),
        }
    }
}

/// Stands in for key material in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl AuthMethod {
    /// The method's name as `authkeys` spells it, for logs and configuration output.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Crc => "crc",
            AuthMethod::Md5 { .. } => "md5",
            AuthMethod::Sha1 { .. } => "sha1",
        }
    }

    /// The token Heartbeat writes after the slot number: the CRC as hex without leading
    /// zeros, or the HMAC as lowercase hex. Peers compare these strings, so the exact text
    /// matters.
    pub fn sign(&self, data: &[u8]) -> String {
        match self {
            AuthMethod::Crc => format!("{:x}", crc32_posix(data)),
            AuthMethod::Md5 { key } => lower_hex(&hmac_digest::<Hmac<Md5>>(key, data)),
            AuthMethod::Sha1 { key } => lower_hex(&hmac_digest::<Hmac<Sha1>>(key, data)),
        }
    }

    /// Whether `token` is exactly the token [`sign`](Self::sign) gives for `data`. The
    /// comparison takes the same time wherever the first difference is, so a forger learns
    /// nothing from timing.
    pub fn verify(&self, data: &[u8], token: &str) -> bool {
        let expected = self.sign(data);
        let (expected, token) = (expected.as_bytes(), token.as_bytes());
        !expected.is_empty()
            && expected.len() == token.len()
            && expected
                .iter()
                .zip(token)
                .fold(0u8, |difference, (a, b)| difference | (a ^ b))
                == 0
    }
}

/// HMAC of `data` with the key's bytes (RFC 2104; a key longer than the block is hashed first).
fn hmac_digest<M: Mac + KeyInit>(key: &str, data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail; were it to, the empty
    // token it leaves is one `verify` never accepts.
    match <M as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Lowercase hex with two digits per byte, as Heartbeat prints digests.
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// CRC-32/POSIX without the length appended (spec §1.5): polynomial 0x04C11DB7, MSB first,
/// initial value 0, final XOR 0xFFFFFFFF. This is what Heartbeat's `crc` method computes,
/// which differs from both zlib's CRC-32 and `cksum`.
pub fn crc32_posix(data: &[u8]) -> u32 {
    let crc = data.iter().fold(0u32, |crc, &byte| {
        let index = usize::from((crc >> 24) as u8 ^ byte);
        (crc << 8) ^ CRC32_POSIX_TABLE[index]
    });
    !crc
}

/// The byte-at-a-time table for [`crc32_posix`], built at compile time.
const CRC32_POSIX_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        let mut crc = (index as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[index] = crc;
        index += 1;
    }
    table
};

/// Why a set of key slots cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthKeysError {
    /// Heartbeat has slots 0 to 15 only.
    #[error("key slot {slot} is out of range: slots are numbered 0 to 15")]
    SlotOutOfRange {
        /// The slot number given.
        slot: u8,
    },
    /// Two definitions for one slot would make verification ambiguous.
    #[error("key slot {slot} is defined twice: define each slot once")]
    DuplicateSlot {
        /// The slot defined twice.
        slot: u8,
    },
    /// The outbound slot signs every message, so it must exist.
    #[error("outbound key slot {slot} is not defined: add a `{slot} <method> [<key>]` line")]
    OutboundUndefined {
        /// The outbound slot named.
        slot: u8,
    },
    /// An HMAC method without a key would sign with the empty key, which anyone can forge.
    #[error("key slot {slot} uses {method} without a key: {method} needs a key")]
    EmptyKey {
        /// The slot whose key is empty.
        slot: u8,
        /// The method that needs a key.
        method: &'static str,
    },
}

/// The configured key slots and which one signs outgoing messages: everything the datagram
/// layer needs from `authkeys`. Valid by construction (slots in range, outbound defined).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthKeys {
    /// The slot named by `auth N`; it signs every message this node sends.
    outbound_slot: u8,
    /// Every defined slot; received messages name the one they were signed with.
    slots: BTreeMap<u8, AuthMethod>,
}

impl AuthKeys {
    /// Checks and keeps a set of slots. Refuses slots outside 0..=15, a slot defined twice,
    /// an md5/sha1 slot without a key, and an outbound slot that is not defined.
    pub fn new(outbound_slot: u8, slots: Vec<(u8, AuthMethod)>) -> Result<AuthKeys, AuthKeysError> {
        let mut defined = BTreeMap::new();
        for (slot, method) in slots {
            if slot >= SLOT_COUNT {
                return Err(AuthKeysError::SlotOutOfRange { slot });
            }
            if let AuthMethod::Md5 { key } | AuthMethod::Sha1 { key } = &method
                && key.is_empty()
            {
                return Err(AuthKeysError::EmptyKey {
                    slot,
                    method: method.name(),
                });
            }
            if defined.insert(slot, method).is_some() {
                return Err(AuthKeysError::DuplicateSlot { slot });
            }
        }
        if !defined.contains_key(&outbound_slot) {
            return Err(AuthKeysError::OutboundUndefined {
                slot: outbound_slot,
            });
        }
        Ok(AuthKeys {
            outbound_slot,
            slots: defined,
        })
    }

    /// The slot number written before outgoing tokens.
    pub fn outbound_slot(&self) -> u8 {
        self.outbound_slot
    }

    /// The method that signs outgoing messages.
    pub fn outbound(&self) -> &AuthMethod {
        // `new` guarantees the outbound slot is defined; the fallback is never reached but
        // keeps this free of panics.
        self.slots
            .get(&self.outbound_slot)
            .unwrap_or(&AuthMethod::Crc)
    }

    /// The method of slot `n`, if configured: what a received signature naming `n` is
    /// checked with.
    pub fn slot(&self, n: u8) -> Option<&AuthMethod> {
        self.slots.get(&n)
    }

    /// Every configured slot in ascending order, for configuration output.
    pub fn slots(&self) -> impl Iterator<Item = (u8, &AuthMethod)> {
        self.slots.iter().map(|(slot, method)| (*slot, method))
    }

    /// `<slot> <token>` for `data` with the outbound slot: the text of both the trailer and
    /// the inner `auth` field.
    pub fn sign_outbound(&self, data: &[u8]) -> String {
        format!("{} {}", self.outbound_slot, self.outbound().sign(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic signed text of the spec's worked example (§1.5).
    const SPEC_SIGNED_TEXT: &[u8] = b"t=status\nst=active\ndt=7530\nprotocol=1\nsrc=node1\n\
(1)srcuuid=AAECAwQFBgcICQoLDA0ODw==\nseq=2a\nhg=5\nts=4f6b1c2a\nld=0.00 0.01 0.05 1/100 1234\nttl=3\n";

    #[test]
    fn crc32_posix_matches_the_catalogue_check_value() {
        assert_eq!(crc32_posix(b"123456789"), 0x765e_7680);
        assert_eq!(crc32_posix(b""), 0xffff_ffff);
    }

    #[test]
    fn spec_vector_tokens_match_for_every_method() {
        assert_eq!(AuthMethod::Crc.sign(SPEC_SIGNED_TEXT), "4699aca5");
        let md5 = AuthMethod::Md5 {
            key: "Hello!".into(),
        };
        assert_eq!(
            md5.sign(SPEC_SIGNED_TEXT),
            "6821a94e02128b31d4d284e267ba7fc5"
        );
        let sha1 = AuthMethod::Sha1 { key: "HI!".into() };
        assert_eq!(
            sha1.sign(SPEC_SIGNED_TEXT),
            "557c10878d2a634a11a5b8b28cf22024cbe7f17b"
        );
    }

    #[test]
    fn crc_token_has_no_leading_zeros() {
        // Find a short input whose CRC starts with a zero nibble.
        let data = (0u32..)
            .map(|n| n.to_string())
            .find(|text| crc32_posix(text.as_bytes()) < 0x1000_0000)
            .unwrap_or_default();
        let token = AuthMethod::Crc.sign(data.as_bytes());
        assert!(!token.starts_with('0'), "token {token}");
        assert!(token.len() < 8);
        assert_eq!(
            u32::from_str_radix(&token, 16).ok(),
            Some(crc32_posix(data.as_bytes()))
        );
    }

    #[test]
    fn hmac_keys_longer_than_a_block_are_hashed_first() {
        // Expected values from an independent HMAC implementation (Python's hmac module).
        let key = "k".repeat(80);
        let sha1 = AuthMethod::Sha1 { key: key.clone() };
        assert_eq!(
            sha1.sign(b"data"),
            "ee9acabb396bbb54a97be78f02a475535bf5f471"
        );
        let md5 = AuthMethod::Md5 { key };
        assert_eq!(md5.sign(b"data"), "c5555a7b5c7f347eac4e0a40ab462e48");
    }

    #[test]
    fn verify_accepts_only_the_exact_token() {
        let sha1 = AuthMethod::Sha1 { key: "HI!".into() };
        assert!(sha1.verify(SPEC_SIGNED_TEXT, "557c10878d2a634a11a5b8b28cf22024cbe7f17b"));
        assert!(!sha1.verify(SPEC_SIGNED_TEXT, "557C10878D2A634A11A5B8B28CF22024CBE7F17B"));
        assert!(!sha1.verify(SPEC_SIGNED_TEXT, "557c10878d2a634a11a5b8b28cf22024cbe7f17"));
        assert!(!sha1.verify(SPEC_SIGNED_TEXT, ""));
        assert!(AuthMethod::Crc.verify(SPEC_SIGNED_TEXT, "4699aca5"));
        assert!(!AuthMethod::Crc.verify(SPEC_SIGNED_TEXT, "04699aca5"));
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let keys = AuthKeys::new(
            1,
            vec![
                (
                    1,
                    AuthMethod::Sha1 {
                        key: "topsecret".into(),
                    },
                ),
                (
                    3,
                    AuthMethod::Md5 {
                        key: "othersecret".into(),
                    },
                ),
                (4, AuthMethod::Crc),
            ],
        );
        let text = format!("{keys:?}");
        assert!(!text.contains("topsecret"), "{text}");
        assert!(!text.contains("othersecret"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.contains("Sha1") && text.contains("Md5") && text.contains("Crc"));
    }

    #[test]
    fn auth_keys_refuse_bad_slot_sets() {
        assert_eq!(
            AuthKeys::new(16, vec![(16, AuthMethod::Crc)]),
            Err(AuthKeysError::SlotOutOfRange { slot: 16 })
        );
        assert_eq!(
            AuthKeys::new(1, vec![(1, AuthMethod::Crc), (1, AuthMethod::Crc)]),
            Err(AuthKeysError::DuplicateSlot { slot: 1 })
        );
        assert_eq!(
            AuthKeys::new(2, vec![(1, AuthMethod::Crc)]),
            Err(AuthKeysError::OutboundUndefined { slot: 2 })
        );
        assert_eq!(
            AuthKeys::new(1, vec![(1, AuthMethod::Md5 { key: String::new() })]),
            Err(AuthKeysError::EmptyKey {
                slot: 1,
                method: "md5"
            })
        );
    }

    #[test]
    fn auth_keys_expose_outbound_and_every_slot() -> Result<(), AuthKeysError> {
        let sha1 = AuthMethod::Sha1 { key: "HI!".into() };
        let keys = AuthKeys::new(
            15,
            vec![(15, sha1.clone()), (0, AuthMethod::Crc), (7, sha1.clone())],
        )?;
        assert_eq!(keys.outbound_slot(), 15);
        assert_eq!(keys.outbound(), &sha1);
        assert_eq!(keys.slot(0), Some(&AuthMethod::Crc));
        assert_eq!(keys.slot(3), None);
        let numbers: Vec<u8> = keys.slots().map(|(slot, _)| slot).collect();
        assert_eq!(numbers, [0, 7, 15]);
        assert_eq!(
            keys.sign_outbound(SPEC_SIGNED_TEXT),
            "15 557c10878d2a634a11a5b8b28cf22024cbe7f17b"
        );
        Ok(())
    }

    #[test]
    fn method_names_are_the_authkeys_spelling() {
        assert_eq!(AuthMethod::Crc.name(), "crc");
        assert_eq!(AuthMethod::Md5 { key: "k".into() }.name(), "md5");
        assert_eq!(AuthMethod::Sha1 { key: "k".into() }.name(), "sha1");
    }
}
