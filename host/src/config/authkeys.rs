//! Heartbeat's authkeys syntax (spec §4): `auth N` and `N method [key]` lines.
//!
//! Owns the line rules and turns them into the wire layer's `AuthKeys`. It reads no file and
//! checks no permissions (the caller does, before reading); its messages name the line and
//! the slot but never quote a line, which could hold a key.

use crate::wire::auth::{AuthKeys, AuthMethod, SLOT_COUNT};

use super::error::ConfigError;

/// Reads the text of an authkeys named `file` (used in messages as `file:line`).
pub(crate) fn parse(text: &str, file: &str) -> Result<AuthKeys, ConfigError> {
    let mut outbound: Option<(u8, String)> = None;
    let mut slots: Vec<(u8, AuthMethod, String)> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let origin = format!("{file}:{}", index + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words: Vec<&str> = line.split_whitespace().collect();
        // A word starting with `#` after the last value begins a comment. A key may itself
        // start with `#`, so only words past the key count.
        let comment_from = match words.get(1) {
            Some(&"md5" | &"sha1") => 3,
            _ => 2,
        };
        if let Some(at) = words
            .iter()
            .skip(comment_from)
            .position(|w| w.starts_with('#'))
        {
            words.truncate(comment_from + at);
        }
        match words.as_slice() {
            ["auth", slot] => {
                let slot = parse_slot(slot, &origin)?;
                if let Some((_, first)) = &outbound {
                    return Err(ConfigError::Duplicate {
                        origin,
                        what: "auth".to_string(),
                        first: first.clone(),
                    });
                }
                // Heartbeat binds the outbound slot while reading the slot's line, so a
                // definition above `auth N` is never bound.
                if let Some((_, _, defined)) = slots.iter().find(|(n, _, _)| *n == slot) {
                    return Err(ConfigError::OutOfOrder {
                        origin,
                        directive: format!("auth {slot}"),
                        before: format!("the definition of slot {slot}"),
                        before_origin: defined.clone(),
                    });
                }
                outbound = Some((slot, origin));
            }
            ["auth", ..] => {
                return Err(auth_error(origin, "expected `auth N` with one slot number"));
            }
            [slot, method, rest @ ..] if slot.bytes().all(|b| b.is_ascii_digit()) => {
                let slot = parse_slot(slot, &origin)?;
                let method = parse_method(method, rest, slot, &origin)?;
                if let Some((_, _, first)) = slots.iter().find(|(n, _, _)| *n == slot) {
                    return Err(ConfigError::Duplicate {
                        origin,
                        what: format!("key slot {slot}"),
                        first: first.clone(),
                    });
                }
                slots.push((slot, method, origin));
            }
            _ => {
                return Err(auth_error(
                    origin,
                    "expected `auth N` or a key slot `N crc`, `N md5 KEY` or `N sha1 KEY`",
                ));
            }
        }
    }
    let Some((outbound, auth_origin)) = outbound else {
        return Err(ConfigError::Missing {
            file: file.to_string(),
            what: "outbound key slot".to_string(),
            expected: "an `auth N` line naming the slot that signs outgoing messages, before \
                       that slot's definition"
                .to_string(),
        });
    };
    if !slots.iter().any(|(n, _, _)| *n == outbound) {
        return Err(auth_error(
            auth_origin,
            &format!(
                "auth {outbound} names slot {outbound}, which is not defined \
                 (expected a line `{outbound} <method> [key]` after it)"
            ),
        ));
    }
    let slots = slots
        .into_iter()
        .map(|(n, method, _)| (n, method))
        .collect();
    AuthKeys::new(outbound, slots).map_err(|source| ConfigError::AuthKeys {
        origin: auth_origin,
        source,
    })
}

/// A key slot's number: 0 to 15.
pub(crate) fn parse_slot(text: &str, origin: &str) -> Result<u8, ConfigError> {
    text.parse::<u8>()
        .ok()
        .filter(|slot| *slot < SLOT_COUNT && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            auth_error(
                origin.to_string(),
                &format!("key slot `{text}` is not valid (expected a number from 0 to 15)"),
            )
        })
}

/// A slot's method and key: `crc` takes no key, `md5` and `sha1` take exactly one word.
pub(crate) fn parse_method(
    method: &str,
    key: &[&str],
    slot: u8,
    origin: &str,
) -> Result<AuthMethod, ConfigError> {
    let fail = |message: String| Err(auth_error(origin.to_string(), &message));
    match (method, key) {
        ("crc", []) => Ok(AuthMethod::Crc),
        ("crc", _) => fail(format!(
            "key slot {slot}: crc takes no key (expected `{slot} crc`)"
        )),
        ("md5", [key]) => Ok(AuthMethod::Md5 {
            key: (*key).to_string(),
        }),
        ("sha1", [key]) => Ok(AuthMethod::Sha1 {
            key: (*key).to_string(),
        }),
        ("md5" | "sha1", []) => fail(format!(
            "key slot {slot}: {method} needs a key (expected `{slot} {method} KEY`)"
        )),
        ("md5" | "sha1", _) => fail(format!(
            "key slot {slot}: the {method} key must be one word without spaces \
             (expected `{slot} {method} KEY`)"
        )),
        _ => fail(format!(
            "key slot {slot}: unknown method `{method}` (expected crc, md5 or sha1)"
        )),
    }
}

fn auth_error(origin: String, message: &str) -> ConfigError {
    ConfigError::Auth {
        origin,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        match parse(text, "authkeys") {
            Ok(keys) => panic!("{text:?} was accepted: {keys:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn outbound_slot_and_every_slot_are_read() {
        let keys = parse(
            "# comment\n\n  auth 2 # outbound\n1 crc # test only\n2 sha1 4f1d8c2a9e\n\
             \t3 md5 other # trailing\r\n",
            "authkeys",
        )
        .expect("valid authkeys");
        assert_eq!(keys.outbound_slot(), 2);
        assert_eq!(
            keys.outbound(),
            &AuthMethod::Sha1 {
                key: "4f1d8c2a9e".to_string()
            }
        );
        assert_eq!(keys.slot(1), Some(&AuthMethod::Crc));
        assert_eq!(
            keys.slot(3),
            Some(&AuthMethod::Md5 {
                key: "other".to_string()
            })
        );
        assert_eq!(keys.slots().count(), 3);
    }

    #[test]
    fn a_key_may_start_with_a_hash() {
        let keys = parse("auth 1\n1 sha1 #secret\n", "authkeys").expect("valid authkeys");
        assert_eq!(
            keys.outbound(),
            &AuthMethod::Sha1 {
                key: "#secret".to_string()
            }
        );
    }

    #[test]
    fn slots_0_and_15_are_the_bounds() {
        assert!(parse("auth 0\n0 crc\n15 crc\n", "authkeys").is_ok());
        assert_eq!(
            parse_err("auth 1\n1 crc\n16 crc\n"),
            "authkeys:3: key slot `16` is not valid (expected a number from 0 to 15)"
        );
        assert_eq!(
            parse_err("auth 16\n"),
            "authkeys:1: key slot `16` is not valid (expected a number from 0 to 15)"
        );
    }

    #[test]
    fn auth_must_come_before_its_slot() {
        assert_eq!(
            parse_err("1 sha1 secret\nauth 1\n"),
            "authkeys:2: auth 1 must come before the definition of slot 1 (authkeys:1)"
        );
    }

    #[test]
    fn auth_is_required_and_must_name_a_defined_slot() {
        assert_eq!(
            parse_err("1 crc\n"),
            "authkeys: no outbound key slot configured (expected an `auth N` line naming the \
             slot that signs outgoing messages, before that slot's definition)"
        );
        assert_eq!(
            parse_err("auth 3\n1 crc\n"),
            "authkeys:1: auth 3 names slot 3, which is not defined (expected a line `3 <method> \
             [key]` after it)"
        );
    }

    #[test]
    fn crc_takes_no_key_and_hmacs_need_one() {
        assert_eq!(
            parse_err("auth 1\n1 crc secret\n"),
            "authkeys:2: key slot 1: crc takes no key (expected `1 crc`)"
        );
        assert_eq!(
            parse_err("auth 1\n1 sha1\n"),
            "authkeys:2: key slot 1: sha1 needs a key (expected `1 sha1 KEY`)"
        );
        assert_eq!(
            parse_err("auth 1\n1 md5\n"),
            "authkeys:2: key slot 1: md5 needs a key (expected `1 md5 KEY`)"
        );
        assert_eq!(
            parse_err("auth 1\n1 sha256 secret\n"),
            "authkeys:2: key slot 1: unknown method `sha256` (expected crc, md5 or sha1)"
        );
    }

    #[test]
    fn other_lines_are_refused_without_quoting_them() {
        let err = parse_err("auth 1\n1 sha1 secret\nkey=hunter2\n");
        assert_eq!(
            err,
            "authkeys:3: expected `auth N` or a key slot `N crc`, `N md5 KEY` or `N sha1 KEY`"
        );
        assert!(!err.contains("hunter2"));
        let err = parse_err("auth 1\n1 sha1 two words\n");
        assert!(!err.contains("words"), "{err}");
        assert_eq!(
            parse_err("auth one\n"),
            "authkeys:1: key slot `one` is not valid (expected a number from 0 to 15)"
        );
        assert_eq!(
            parse_err("auth 1 2\n"),
            "authkeys:1: expected `auth N` with one slot number"
        );
    }

    #[test]
    fn repeated_auth_or_slot_is_refused() {
        assert_eq!(
            parse_err("auth 1\nauth 2\n"),
            "authkeys:2: auth given twice (first at authkeys:1)"
        );
        assert_eq!(
            parse_err("auth 1\n1 crc\n1 md5 x\n"),
            "authkeys:3: key slot 1 given twice (first at authkeys:2)"
        );
    }
}
