//! What a received message does (spec §1.9–1.12, 3.0.6's `process_clustermsg` and
//! `should_drop_message`).
//!
//! Owns the inbound path: validation of the standard fields, our own looped-back copies,
//! unsequenced (`NS_*`) messages, generation checks (replay, restart, return after
//! partition), sequence classification, link liveness, and dispatch to status handling, the
//! node list handshake, acknowledgements, retransmission and in-order delivery. It never
//! builds outgoing messages itself; `outbound` does.

use std::time::Duration;

use super::events::{DropReason, MembershipEvent, NodeStatus};
use super::fields::{self, parse_hex};
use super::sequence::Arrival;
use super::{Comm, MediumId, Membership, Now, Output};
use crate::wire::Message;

/// Where a received message came from: the configured node and the link it arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Origin {
    node: usize,
    link: usize,
}

/// The standard fields of a received message, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    kind: String,
    src: String,
    /// `None` only for `NS_*` types.
    seq: Option<u64>,
    /// 0 when absent (very old peers).
    generation: u64,
}

impl Header {
    /// 3.0.6 refuses a message without `t`, `src` or `ts`, a non-hex or zero `seq`, a
    /// sequenced type without `seq`, and an unparsable `hg`.
    fn parse(message: &Message) -> Result<Header, DropReason> {
        let kind = message.message_type().ok_or(DropReason::MalformedField)?;
        let src = message
            .get_str(fields::SRC)
            .ok_or(DropReason::MalformedField)?;
        message
            .get_str(fields::TIMESTAMP)
            .and_then(parse_hex)
            .filter(|ts| *ts != 0)
            .ok_or(DropReason::MalformedField)?;
        let seq = match message.get_str(fields::SEQ) {
            Some(text) => Some(
                parse_hex(text)
                    .filter(|s| *s != 0)
                    .ok_or(DropReason::BadSeq)?,
            ),
            None if fields::is_unsequenced(kind) => None,
            None => return Err(DropReason::BadSeq),
        };
        let generation = match message.get_str(fields::GENERATION) {
            Some(text) => parse_hex(text).ok_or(DropReason::MalformedField)?,
            None => 0,
        };
        Ok(Header {
            kind: kind.to_string(),
            src: src.to_ascii_lowercase(),
            seq,
            generation,
        })
    }
}

impl Membership {
    pub(super) fn receive(
        &mut self,
        medium: MediumId,
        message: Message,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        self.counters.received += 1;
        let claimed = message.get_str(fields::SRC).map(str::to_ascii_lowercase);
        if self.receive_on_ping_medium(medium, &message, now, out) {
            return;
        }
        let Some(link) = self.settings.medium_links.get(medium).copied().flatten() else {
            self.drop_message(DropReason::UnknownMedium, claimed, out);
            return;
        };
        let header = match Header::parse(&message) {
            Ok(header) => header,
            Err(reason) => {
                self.drop_message(reason, claimed, out);
                return;
            }
        };
        let Some(node) = self.node_index(&header.src) else {
            self.drop_message(DropReason::UnknownNode, claimed, out);
            return;
        };
        if node == self.local {
            self.receive_own_copy(link, &header, now, out);
            return;
        }
        if let Some(tracked) = self.nodes.get_mut(node) {
            tracked.learn_uuid(message.get_binary(fields::SRC_UUID));
        }
        let origin = Origin { node, link };
        match header.seq {
            None => self.receive_unsequenced(origin, &header, message, now, out),
            Some(seq) => self.receive_sequenced(origin, &header, seq, message, now, out),
        }
    }

    /// Our own message back from a medium: it proves the link, and is a duplicate — unless it
    /// is something we never sent.
    fn receive_own_copy(&mut self, link: usize, header: &Header, now: Now, out: &mut Vec<Output>) {
        let claimed = Some(header.src.clone());
        if header.generation < self.settings.generation {
            self.drop_message(DropReason::LowerGeneration, claimed, out);
            return;
        }
        if header.generation > self.settings.generation
            || header.seq.is_some_and(|seq| seq > self.history.highest())
        {
            self.drop_message(DropReason::ReplayedSeq, claimed, out);
            return;
        }
        self.counters.duplicates += 1;
        self.refresh_link(self.local, link, now, out);
    }

    /// `NS_*`: no sequencing, no generation check. A NAK marks a packet as lost whoever it
    /// was for; the rest is processed only when it is for us.
    fn receive_unsequenced(
        &mut self,
        Origin { node, link }: Origin,
        header: &Header,
        message: Message,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        self.note_heard(node, now);
        self.refresh_link(node, link, now, out);
        if header.kind == fields::T_NAK_REXMIT {
            self.receive_nak(node, header.generation, &message, out);
            return;
        }
        if !self.is_for_us_by_name(&message) {
            self.drop_message(DropReason::NotForUs, Some(header.src.clone()), out);
            return;
        }
        match header.kind.as_str() {
            fields::T_REXMIT => self.answer_retransmission(node, &message, now, out),
            fields::T_ACK => self.receive_ack(node, &message, out),
            _ => out.push(Output::Deliver {
                from: header.src.clone(),
                message,
            }),
        }
    }

    fn receive_sequenced(
        &mut self,
        Origin { node, link }: Origin,
        header: &Header,
        seq: u64,
        message: Message,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let Some(tracked) = self.nodes.get(node) else {
            return;
        };
        if header.generation < tracked.generation {
            self.drop_message(DropReason::LowerGeneration, Some(header.src.clone()), out);
            return;
        }
        let is_status = header.kind == fields::T_STATUS;
        let mut resync = false;
        if header.generation > tracked.generation {
            // 3.0.6 notices a restart only on a status message; a message of the new run
            // that overtakes its statuses is then judged by the old run's numbers (dropped,
            // or accepted and later requested and delivered twice). Any message of the new
            // run starts it here.
            if tracked.generation > 0 {
                Self::event(
                    out,
                    MembershipEvent::NodeRestarted {
                        node: header.src.clone(),
                        generation: header.generation,
                    },
                );
            }
            self.restart_tracking(node, now, out);
            if let Some(tracked) = self.nodes.get_mut(node) {
                tracked.generation = header.generation;
            }
            resync = true;
        } else if is_status
            && header.generation > 0
            && tracked.status_seqno > 0
            && tracked.status == NodeStatus::Dead
        {
            if seq <= tracked.status_seqno {
                // A late copy of a status from before it was declared dead.
                self.counters.duplicates += 1;
                self.refresh_link(node, link, now, out);
                return;
            }
            Self::event(
                out,
                MembershipEvent::ReturnedAfterPartition {
                    node: header.src.clone(),
                },
            );
            resync = true;
        }
        self.note_heard(node, now);
        self.refresh_link(node, link, now, out);

        let first_delay = self.first_request_delay_range();
        let arrival = {
            let Some(tracked) = self.nodes.get_mut(node) else {
                return;
            };
            let rng = &mut self.rng;
            tracked.sequence.accept(seq, resync, now.mono, || {
                Duration::from_millis(rng.between(first_delay.0, first_delay.1))
            })
        };
        match arrival {
            Arrival::Duplicate => {
                self.counters.duplicates += 1;
                return;
            }
            Arrival::InOrder | Arrival::Resynced => self.acknowledge_if_due(node, seq, now, out),
            Arrival::Gap { first, last } => Self::event(
                out,
                MembershipEvent::PacketsLost {
                    node: header.src.clone(),
                    first,
                    last,
                },
            ),
            Arrival::TooManyLost { first, last } => {
                Self::event(
                    out,
                    MembershipEvent::PacketsLost {
                        node: header.src.clone(),
                        first,
                        last,
                    },
                );
                Self::event(
                    out,
                    MembershipEvent::TooManyPacketsLost {
                        node: header.src.clone(),
                    },
                );
            }
            Arrival::Recovered {
                was_first_missing,
                none_missing,
            } => {
                if none_missing {
                    Self::event(
                        out,
                        MembershipEvent::NoPacketsMissing {
                            node: header.src.clone(),
                        },
                    );
                }
                if was_first_missing {
                    self.acknowledge_after_recovery(node, seq, now, out);
                }
            }
        }

        if !self.is_for_us(&message) {
            self.drop_message(DropReason::NotForUs, Some(header.src.clone()), out);
        } else {
            match header.kind.as_str() {
                fields::T_STATUS => self.receive_status(node, seq, &message, now, out),
                fields::T_REQNODES => self.send_repnodes(node, now, out),
                fields::T_REPNODES => self.receive_node_list(node, &message, now, out),
                _ => {
                    let abandoned = self
                        .nodes
                        .get_mut(node)
                        .map(|n| n.sequence.hold(seq, message))
                        .unwrap_or_default();
                    for lost in abandoned {
                        Self::event(
                            out,
                            MembershipEvent::PacketLostForGood {
                                node: header.src.clone(),
                                seq: lost,
                            },
                        );
                    }
                }
            }
        }
        self.release_held(node, out);
    }

    /// The range of the first request delay: [50, max] ms, or [0, max] when max < 100 ms.
    fn first_request_delay_range(&self) -> (u64, u64) {
        let max = u64::try_from(self.settings.max_rexmit_delay.as_millis()).unwrap_or(u64::MAX);
        (if max < 100 { 0 } else { 50 }, max)
    }

    /// When the lowest gap fills, 3.0.6 acknowledges the highest trigger number below the
    /// next gap (or up to the last seq), if it is not below the filled one.
    fn acknowledge_after_recovery(
        &mut self,
        node: usize,
        filled: u64,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let Some(tracked) = self.nodes.get(node) else {
            return;
        };
        let up_to = match tracked.sequence.first_missing() {
            Some(first) => first.saturating_sub(1),
            None => tracked.sequence.last_seq().unwrap_or(filled),
        };
        let ack = (up_to - up_to % 10)
            .checked_add(tracked.ack_trigger)
            .and_then(|candidate| {
                if candidate <= up_to {
                    Some(candidate)
                } else {
                    candidate.checked_sub(10)
                }
            });
        if let Some(ack) = ack.filter(|a| *a >= filled) {
            self.acknowledge_if_due(node, ack, now, out);
        }
    }

    /// Heartbeat from a peer (3.0.6's `HBDoMsg_T_STATUS`).
    fn receive_status(
        &mut self,
        node: usize,
        seq: u64,
        message: &Message,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let Some(name) = self.nodes.get(node).map(|n| n.name.clone()) else {
            return;
        };
        let Some(announced) = message
            .get_str(fields::STATUS)
            .and_then(NodeStatus::from_announced)
        else {
            self.drop_message(DropReason::MalformedField, Some(name), out);
            return;
        };
        if self.flow_control
            && message
                .get_str(fields::PROTOCOL)
                .and_then(fields::parse_decimal)
                .is_none()
        {
            self.flow_control = false;
            Self::event(
                out,
                MembershipEvent::FlowControlDisabled { node: name.clone() },
            );
        }
        let Some(tracked) = self.nodes.get(node) else {
            return;
        };
        let deadtime = self.deadtime_for(tracked);
        if let Some(previous) = tracked.last_status_arrival {
            let interval = now.mono.saturating_sub(previous);
            if interval > self.settings.warntime {
                Self::event(
                    out,
                    MembershipEvent::LateHeartbeat {
                        node: name.clone(),
                        late_by: interval,
                        beyond_deadtime: interval > deadtime,
                    },
                );
            }
        }
        let Some(tracked) = self.nodes.get_mut(node) else {
            return;
        };
        if seq > tracked.status_seqno {
            if tracked.status != announced {
                let old = tracked.status;
                tracked.status = announced;
                Self::event(
                    out,
                    MembershipEvent::NodeStatus {
                        node: name,
                        old,
                        new: announced,
                    },
                );
            }
            if let Some(ms) = message
                .get_str(fields::DEADTIME)
                .and_then(parse_hex)
                .filter(|ms| *ms > 0)
            {
                tracked.deadtime = Duration::from_millis(ms);
            }
            tracked.status_seqno = seq;
        }
        tracked.last_heard = now.mono;
        tracked.last_status_arrival = Some(now.mono);
        self.send_status_with_peer(now, out);
    }

    /// `repnodes` for us: the handshake is done. The node list is compared, not adopted.
    fn receive_node_list(
        &mut self,
        node: usize,
        message: &Message,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        if !matches!(self.comm, Comm::AwaitingNodeList { .. }) {
            return;
        }
        if let Some(list) = message.get_str(fields::NODE_LIST) {
            let mut theirs: Vec<String> = list
                .split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect();
            let mut ours: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
            theirs.sort();
            ours.sort();
            if theirs != ours {
                let name = self
                    .nodes
                    .get(node)
                    .map(|n| n.name.clone())
                    .unwrap_or_default();
                Self::event(
                    out,
                    MembershipEvent::NodeListDiffers {
                        node: name,
                        nodelist: list.split_whitespace().map(str::to_string).collect(),
                    },
                );
            }
        }
        self.communications_up(now, out);
    }

    /// `NS_nak_rexmit`: the sender cannot resend `firstseq` (hex); stop asking for it. A NAK
    /// from another run of the sender than the one tracked says nothing about it.
    fn receive_nak(
        &mut self,
        node: usize,
        generation: u64,
        message: &Message,
        out: &mut Vec<Output>,
    ) {
        let name = self
            .nodes
            .get(node)
            .map(|n| n.name.clone())
            .unwrap_or_default();
        let Some(seq) = message
            .get_str(fields::FIRST_SEQ)
            .and_then(parse_hex)
            .filter(|s| *s > 0)
        else {
            self.drop_message(DropReason::MalformedField, Some(name), out);
            return;
        };
        self.counters.naks_received += 1;
        let Some(tracked) = self.nodes.get_mut(node) else {
            return;
        };
        if tracked.generation == generation && tracked.sequence.give_up(seq) {
            Self::event(
                out,
                MembershipEvent::PacketLostForGood {
                    node: name.clone(),
                    seq,
                },
            );
            if tracked.sequence.missing_count() == 0 {
                Self::event(out, MembershipEvent::NoPacketsMissing { node: name });
            }
            self.release_held(node, out);
        }
    }

    /// `NS_ackmsg` for us (3.0.6's `HBDoMsg_T_ACKMSG`).
    fn receive_ack(&mut self, node: usize, message: &Message, out: &mut Vec<Output>) {
        if !self.flow_control {
            return;
        }
        let Some(ackseq) = message.get_str(fields::ACK_SEQ).and_then(parse_hex) else {
            let name = self.nodes.get(node).map(|n| n.name.clone());
            self.drop_message(DropReason::MalformedField, name, out);
            return;
        };
        let highest = self.history.highest();
        let ack_point = self.ack_point;
        let Some(tracked) = self.nodes.get_mut(node) else {
            return;
        };
        // Above what we sent: an acknowledgement of our previous run, still in flight.
        if ackseq <= tracked.acked || ackseq <= ack_point || ackseq > highest {
            return;
        }
        tracked.acked = ackseq;
    }

    /// A valid packet from `node`: it counts for the comm-up test, and if it has sent no
    /// status yet, its liveness clock starts now. (3.0.6 times such a node from its own
    /// start, so a node first heard through another message than a status dies the moment
    /// communications come up.)
    fn note_heard(&mut self, node: usize, now: Now) {
        if let Some(tracked) = self.nodes.get_mut(node)
            && !tracked.heard_any
        {
            tracked.heard_any = true;
            if tracked.status_seqno == 0 {
                tracked.last_heard = tracked.last_heard.max(now.mono);
            }
        }
    }

    /// A valid packet from `node` on `link`: the link is up.
    pub(super) fn refresh_link(
        &mut self,
        node: usize,
        link: usize,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let Some(tracked) = self.nodes.get_mut(node) else {
            return;
        };
        let Some(state) = tracked.links.get_mut(link) else {
            return;
        };
        state.last_packet = now.mono;
        if !state.up {
            state.up = true;
            Self::event(
                out,
                MembershipEvent::LinkStatus {
                    node: tracked.name.clone(),
                    link: self
                        .settings
                        .link_names
                        .get(link)
                        .cloned()
                        .unwrap_or_default(),
                    up: true,
                },
            );
        }
    }

    /// A new generation of `node` (or the first one heard): everything tracked about its old
    /// run goes, what was held for in-order delivery is delivered first, and its liveness
    /// clock starts now, as for a first contact (see `note_heard`).
    fn restart_tracking(&mut self, node: usize, now: Now, out: &mut Vec<Output>) {
        let Some(tracked) = self.nodes.get_mut(node) else {
            return;
        };
        let held = tracked.sequence.restart();
        tracked.last_heard = tracked.last_heard.max(now.mono);
        tracked.status_seqno = 0;
        tracked.last_status_arrival = None;
        tracked.acked = 0;
        let from = tracked.name.clone();
        out.extend(held.into_iter().map(|message| Output::Deliver {
            from: from.clone(),
            message,
        }));
    }

    /// Delivers the held messages of `node` that no gap precedes any more.
    pub(super) fn release_held(&mut self, node: usize, out: &mut Vec<Output>) {
        let Some(tracked) = self.nodes.get_mut(node) else {
            return;
        };
        let from = tracked.name.clone();
        out.extend(
            tracked
                .sequence
                .release()
                .into_iter()
                .map(|message| Output::Deliver {
                    from: from.clone(),
                    message,
                }),
        );
    }

    /// `destuuid` decides when present; otherwise no `dest`, or `dest` is our name.
    fn is_for_us(&self, message: &Message) -> bool {
        match message.get_binary(fields::DEST_UUID) {
            Some(uuid) => uuid == self.settings.local_uuid.as_slice(),
            None => self.is_for_us_by_name(message),
        }
    }

    /// 3.0.6 filters `NS_*` messages on `dest` alone.
    fn is_for_us_by_name(&self, message: &Message) -> bool {
        message
            .get_str(fields::DEST)
            .is_none_or(|dest| dest.eq_ignore_ascii_case(self.local_name()))
    }
}
