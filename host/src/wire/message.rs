//! The message model shared by every codec: an ordered list of typed, named fields.
//!
//! Owns field order and lookup rules (first match wins, `set` replaces in place). It must not
//! know about any encoding or signature; those live in `netstring`, `classic` and `auth`.

use std::fmt;

pub use compact_str::{CompactString, ToCompactString};

/// The fields a heartbeat usually carries, so building one reserves its list once.
const TYPICAL_FIELDS: usize = 14;

/// A field's value. The variant is the wire type code (spec §1.1).
///
/// Text is a [`CompactString`]: names and values of up to 24 bytes (nearly all of a
/// heartbeat's) are stored inline, so a message is parsed, built and copied without a heap
/// allocation per field; at five heartbeats a second that is most of an idle node's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// Type 0: text, never empty on the wire.
    String(CompactString),
    /// Type 1: raw bytes (UUIDs).
    Binary(Vec<u8>),
    /// Type 2: a nested message.
    Struct(Message),
    /// Type 3: a list of strings.
    List(Vec<String>),
}

impl FieldValue {
    /// The numeric type code written on the wire.
    pub fn type_code(&self) -> u8 {
        match self {
            FieldValue::String(_) => 0,
            FieldValue::Binary(_) => 1,
            FieldValue::Struct(_) => 2,
            FieldValue::List(_) => 3,
        }
    }
}

/// One named field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Non-empty, without `=`.
    pub name: CompactString,
    /// The typed value.
    pub value: FieldValue,
}

/// A cluster message: fields in the order they were added or received. Order matters
/// because signatures cover the fields in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    fields: Vec<Field>,
}

impl Message {
    /// An empty message.
    pub fn new() -> Self {
        Self::default()
    }

    /// A message whose first field is `t=<message_type>`, as Heartbeat creates them, with
    /// room for a heartbeat's fields.
    pub fn with_type(message_type: &str) -> Self {
        let mut message = Message {
            fields: Vec::with_capacity(TYPICAL_FIELDS),
        };
        message.push_str("t", message_type);
        message
    }

    /// Appends a field, even if one with the same name exists (the wire allows it).
    pub fn push(&mut self, name: &str, value: FieldValue) {
        self.fields.push(Field {
            name: CompactString::from(name),
            value,
        });
    }

    /// Appends a string field.
    pub fn push_str(&mut self, name: &str, value: &str) {
        self.push(name, FieldValue::String(CompactString::from(value)));
    }

    /// Replaces the first field named `name` in place, or appends it: Heartbeat's "mod".
    pub fn set(&mut self, name: &str, value: FieldValue) {
        match self.fields.iter_mut().find(|f| f.name == name) {
            Some(field) => field.value = value,
            None => self.push(name, value),
        }
    }

    /// Replaces or appends a string field.
    pub fn set_str(&mut self, name: &str, value: &str) {
        self.set(name, FieldValue::String(CompactString::from(value)));
    }

    /// Removes every field named `name`; returns whether one was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.fields.len();
        self.fields.retain(|f| f.name != name);
        before != self.fields.len()
    }

    /// The first field named `name`.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.value)
    }

    /// The first field named `name` if it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(FieldValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The first field named `name` if it is binary.
    pub fn get_binary(&self, name: &str) -> Option<&[u8]> {
        match self.get(name) {
            Some(FieldValue::Binary(b)) => Some(b),
            _ => None,
        }
    }

    /// The message type (`t`), if present.
    pub fn message_type(&self) -> Option<&str> {
        self.get_str("t")
    }

    /// The fields in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the message has no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl fmt::Display for Message {
    /// A one-line summary for logs: names and string values, never raw binary bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for field in &self.fields {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            match &field.value {
                FieldValue::String(s) => write!(f, "{}={}", field.name, s.escape_debug())?,
                FieldValue::Binary(b) => write!(f, "{}=<{} bytes>", field.name, b.len())?,
                FieldValue::Struct(m) => write!(f, "{}={{{}}}", field.name, m)?,
                FieldValue::List(l) => write!(f, "{}=[{}]", field.name, l.len())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_in_place_and_keeps_order() {
        let mut m = Message::with_type("status");
        m.push_str("st", "up");
        m.push_str("seq", "1");
        m.set_str("st", "active");
        let names: Vec<_> = m.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["t", "st", "seq"]);
        assert_eq!(m.get_str("st"), Some("active"));
    }

    #[test]
    fn display_never_prints_binary_bytes() {
        let mut m = Message::with_type("status");
        m.push("srcuuid", FieldValue::Binary(vec![0xff, 0x00, 0x13]));
        assert_eq!(m.to_string(), "t=status srcuuid=<3 bytes>");
    }
}
