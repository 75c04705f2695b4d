//! Feeds arbitrary bytes to every decoder that reads from the network: the datagram layer
//! (with a fixed key set holding all three methods) and both text codecs. Beyond "never
//! panics", it checks that what decodes is encoded back consistently: netstring decoding is
//! canonical, so re-encoding reproduces the input; a classic-encodable message survives a
//! classic round trip.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vigil::wire::auth::{AuthKeys, AuthMethod};
use vigil::wire::{Message, classic, datagram, netstring};

/// Slot 1 sha1, slot 2 md5, slot 3 crc (keyless, so the fuzzer can reach verified messages).
static KEYS: LazyLock<AuthKeys> = LazyLock::new(|| {
    let slots = vec![
        (1, AuthMethod::Sha1 { key: "fuzz".into() }),
        (2, AuthMethod::Md5 { key: "fuzz".into() }),
        (3, AuthMethod::Crc),
    ];
    match AuthKeys::new(1, slots) {
        Ok(keys) => keys,
        Err(error) => panic!("the fixed fuzzing key set is invalid: {error}"),
    }
});

/// A message that encodes in classic format must decode back to itself.
fn check_classic_round_trip(message: &Message) {
    if let Ok(bytes) = classic::encode(message) {
        assert_eq!(classic::decode(&bytes).as_ref(), Ok(message));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = datagram::decode(data, &KEYS) {
        check_classic_round_trip(&message);
    }
    if let Ok(message) = netstring::decode(data) {
        assert_eq!(netstring::encode(&message).as_deref(), Ok(data));
        check_classic_round_trip(&message);
    }
    if let Ok(message) = classic::decode(data) {
        let encoded = classic::encode(&message);
        assert!(
            encoded.is_ok(),
            "decoded classic message does not encode: {encoded:?}"
        );
        check_classic_round_trip(&message);
    }
});
