//! What we send: the standard fields every message gets, and each message the protocol
//! itself originates (status, retransmission requests and answers, NAKs, acknowledgements,
//! the node list handshake), plus the path of a local client's message.
//!
//! Owns field order (spec §1.7, as observed from 3.0.6: body fields, then `destuuid`, `src`,
//! `srcuuid`, `seq`, `hg`, `ts`, `ld`, `ttl`, replaced in place when already present) and
//! sequence numbering. It decides nothing about liveness.

use std::time::Duration;

use super::events::{DropReason, MembershipEvent};
use super::fields::{self, hex};
use super::history::Lookup;
use super::{Membership, Now, Output};
use crate::wire::{FieldValue, Message};

/// At most this many messages are re-sent for one request (3.0.6's `MAX_REXMIT_BATCH`).
const MAX_RESENDS_PER_REQUEST: usize = 50;
/// At most this many sequence numbers of one request are looked at, so a forged range
/// cannot make us loop.
const MAX_REQUEST_SPAN: u64 = 500;
/// A message is not re-sent again within `max_rexmit_delay` minus this.
const RESEND_GUARD: Duration = Duration::from_millis(10);

impl Membership {
    /// Stamps `message` (see [`Membership::stamp`]) and emits the send.
    pub(super) fn emit(&mut self, message: Message, now: Now, out: &mut Vec<Output>) {
        let sent = self.stamp(message, now);
        out.push(Output::Send(sent));
    }

    /// Adds the standard fields, numbers sequenced types and remembers them for
    /// retransmission; counts the message as sent and returns it, to be emitted.
    fn stamp(&mut self, mut message: Message, now: Now) -> Message {
        let unsequenced = message.message_type().is_some_and(fields::is_unsequenced);
        let dest_uuid = message
            .get_str(fields::DEST)
            .and_then(|dest| self.node_index(dest))
            .and_then(|i| self.nodes.get(i))
            .and_then(|n| n.uuid);
        if let Some(uuid) = dest_uuid {
            message.set(fields::DEST_UUID, FieldValue::Binary(uuid.to_vec()));
        }
        let seq = (!unsequenced).then(|| self.history.highest() + 1);
        let mut standard: Vec<(&str, FieldValue)> = vec![
            (fields::SRC, FieldValue::String(self.local_name().into())),
            (
                fields::SRC_UUID,
                FieldValue::Binary(self.settings.local_uuid.to_vec()),
            ),
        ];
        if let Some(seq) = seq {
            standard.push((fields::SEQ, FieldValue::String(hex(seq))));
        }
        standard.push((
            fields::GENERATION,
            FieldValue::String(hex(self.settings.generation)),
        ));
        standard.push((fields::TIMESTAMP, FieldValue::String(hex(now.wall_secs))));
        if !unsequenced {
            standard.push((fields::LOAD, FieldValue::String(self.load_average.clone())));
        }
        standard.push((fields::TTL, FieldValue::String(self.settings.ttl.clone())));
        for (name, value) in standard {
            // NS_ messages keep fields their creator set (ping replies keep their `src`).
            if unsequenced && message.get(name).is_some() {
                continue;
            }
            message.set(name, value);
        }
        if let Some(seq) = seq {
            self.history.record(seq, message.clone());
        }
        self.counters.sent += 1;
        message
    }

    /// Our heartbeat: `t, st, dt, protocol` then the standard fields.
    pub(super) fn send_status(&mut self, now: Now, out: &mut Vec<Output>) {
        let mut message = Message::with_type(fields::T_STATUS);
        message.push_str(fields::STATUS, self.local_status.as_str());
        let deadtime_ms = u64::try_from(self.announced_deadtime().as_millis()).unwrap_or(u64::MAX);
        message.push_str(fields::DEADTIME, &hex(deadtime_ms));
        if self.flow_control {
            message.push_str(fields::PROTOCOL, fields::PROTOCOL_VERSION);
        }
        self.emit(message, now, out);
    }

    /// A local client's message: sequenced, sent, and delivered to ourselves when it is for
    /// us (as 3.0.6's internal loopback does).
    pub(super) fn send_for_client(&mut self, message: Message, now: Now, out: &mut Vec<Output>) {
        let local = Some(self.local_name().to_string());
        let Some(kind) = message.message_type() else {
            self.drop_message(DropReason::MalformedField, local, out);
            return;
        };
        if fields::RESERVED_TYPES.contains(&kind) {
            self.drop_message(DropReason::ReservedType, local, out);
            return;
        }
        let for_us = message
            .get_str(fields::DEST)
            .is_none_or(|dest| dest.eq_ignore_ascii_case(self.local_name()));
        let sent = self.stamp(message, now);
        if for_us {
            out.push(Output::Send(sent.clone()));
            out.push(Output::Deliver {
                from: self.local_name().to_string(),
                message: sent,
            });
        } else {
            out.push(Output::Send(sent));
        }
    }

    /// `NS_rexmit` for one missing sequence number (decimal, `firstseq == lastseq`).
    pub(super) fn request_retransmission(
        &mut self,
        node: usize,
        seq: u64,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let Some(name) = self.nodes.get(node).map(|n| n.name.clone()) else {
            return;
        };
        let mut message = Message::with_type(fields::T_REXMIT);
        message.push_str(fields::DEST, &name);
        message.push_str(fields::FIRST_SEQ, &seq.to_string());
        message.push_str(fields::LAST_SEQ, &seq.to_string());
        self.counters.retransmissions_requested += 1;
        self.emit(message, now, out);
    }

    /// Answers a peer's `NS_rexmit`: re-sends what we still have (unchanged, rate-limited),
    /// NAKs what we no longer have, ignores what it already acknowledged or we never sent.
    pub(super) fn answer_retransmission(
        &mut self,
        node: usize,
        request: &Message,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let first = request
            .get_str(fields::FIRST_SEQ)
            .and_then(fields::parse_decimal);
        let last = request
            .get_str(fields::LAST_SEQ)
            .and_then(fields::parse_decimal);
        let (Some(first), Some(last)) = (first, last) else {
            let name = self.nodes.get(node).map(|n| n.name.clone());
            self.drop_message(DropReason::MalformedField, name, out);
            return;
        };
        if first == 0 || first > last {
            let name = self.nodes.get(node).map(|n| n.name.clone());
            self.drop_message(DropReason::MalformedField, name, out);
            return;
        }
        let acked = self.nodes.get(node).map_or(0, |n| n.acked);
        let min_interval = self.settings.max_rexmit_delay.saturating_sub(RESEND_GUARD);
        let last = last.min(first.saturating_add(MAX_REQUEST_SPAN - 1));
        let mut resent = 0;
        for seq in first..=last {
            if seq <= acked {
                continue;
            }
            match self.history.lookup(seq, now.mono, min_interval) {
                Lookup::TooLow => self.refuse_retransmission(node, seq, "seqno too low", now, out),
                Lookup::NotFound => {
                    self.refuse_retransmission(node, seq, "seqno not found", now, out)
                }
                Lookup::AboveHighest | Lookup::RecentlyResent => {}
                Lookup::Available => {
                    if resent == MAX_RESENDS_PER_REQUEST {
                        return;
                    }
                    if let Some(message) = self.history.resend(seq, now.mono) {
                        resent += 1;
                        self.counters.retransmissions_sent += 1;
                        self.counters.sent += 1;
                        out.push(Output::Send(message));
                    }
                }
            }
        }
    }

    /// `NS_nak_rexmit`: `firstseq` in hex, `dest` the requester, `info` the reason.
    fn refuse_retransmission(
        &mut self,
        node: usize,
        seq: u64,
        reason: &str,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let Some(name) = self.nodes.get(node).map(|n| n.name.clone()) else {
            return;
        };
        let mut message = Message::with_type(fields::T_NAK_REXMIT);
        message.push_str(fields::FIRST_SEQ, &hex(seq));
        message.push_str(fields::DEST, &name);
        message.push_str(fields::INFO, reason);
        self.counters.naks_sent += 1;
        self.emit(message, now, out);
        Self::event(
            out,
            MembershipEvent::RetransmissionRefused {
                node: name,
                seq,
                reason: reason.to_string(),
            },
        );
    }

    /// `NS_ackmsg` for `seq` of `node`, if acknowledgements are on and `seq` is this node's
    /// trigger with no gap below it.
    pub(super) fn acknowledge_if_due(
        &mut self,
        node: usize,
        seq: u64,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        if !self.flow_control {
            return;
        }
        let Some(tracked) = self.nodes.get(node) else {
            return;
        };
        if tracked
            .sequence
            .first_missing()
            .is_some_and(|first| seq > first)
            || seq % 10 != tracked.ack_trigger
        {
            return;
        }
        let name = tracked.name.clone();
        let mut message = Message::with_type(fields::T_ACK);
        message.push_str(fields::DEST, &name);
        message.push_str(fields::ACK_SEQ, &hex(seq));
        self.counters.acks_sent += 1;
        self.emit(message, now, out);
    }

    /// `reqnodes` to the node at `node`.
    pub(super) fn send_reqnodes(&mut self, node: usize, now: Now, out: &mut Vec<Output>) {
        let Some(name) = self.nodes.get(node).map(|n| n.name.clone()) else {
            return;
        };
        let mut message = Message::with_type(fields::T_REQNODES);
        message.push_str(fields::DEST, &name);
        self.emit(message, now, out);
    }

    /// `repnodes` to the node at `node`: our configured nodes (trailing space) and an empty
    /// deletion list (one space). 3.0.6 puts `dest` before `t` in this one message.
    pub(super) fn send_repnodes(&mut self, node: usize, now: Now, out: &mut Vec<Output>) {
        let Some(name) = self.nodes.get(node).map(|n| n.name.clone()) else {
            return;
        };
        let nodelist: String = self.nodes.iter().map(|n| format!("{} ", n.name)).collect();
        let mut message = Message::new();
        message.push_str(fields::DEST, &name);
        message.push_str(fields::TYPE, fields::T_REPNODES);
        message.push_str(fields::NODE_LIST, &nodelist);
        message.push_str(fields::DELETED_NODE_LIST, " ");
        self.emit(message, now, out);
    }
}
