//! What IPaddr and IPaddr2 share: reading addresses, netmasks and flags, Heartbeat's
//! positional form `ip[/bits[/nic[/broadcast]]]`, finding the interface for an address
//! (`findif`), and starting, stopping and monitoring a virtual address through [`Host`].
//!
//! Each agent turns its own parameter names into a [`VirtualAddress`]; everything after that
//! is here, once. This module must not touch the system except through `Host`, and holds no
//! state between calls: what is configured is read back from the host every time.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::Duration;

use thiserror::Error;
use vigil_plugin_api::{
    AddressChange, AddressRequest, Host, HostError, InterfaceAddress, IpPrefix, LogLevel,
    OcfStatus, OperationOutcome, ResourceInstance,
};

/// The longest interface name or address label Linux accepts (IFNAMSIZ less the NUL).
pub const MAX_LABEL_LEN: usize = 15;

/// A parameter or the system's addresses did not allow managing the address. Each variant
/// says which parameter, what it held and what was expected, and maps to one OCF status.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// A required parameter is not set.
    #[error("required parameter {param} is missing")]
    Missing { param: &'static str },
    /// A parameter holds something it cannot.
    #[error("parameter {param}: {value:?} is not {expected}")]
    BadValue {
        param: &'static str,
        value: String,
        expected: &'static str,
    },
    /// Two names for one setting disagree (`arp_count` and `ARP_REPEAT`).
    #[error("parameters {first} ({first_value:?}) and {second} ({second_value:?}) disagree")]
    Conflict {
        first: &'static str,
        first_value: String,
        second: &'static str,
        second_value: String,
    },
    /// Heartbeat's positional argument could not be read.
    #[error("argument {argument:?}: {reason}")]
    Positional { argument: String, reason: String },
    /// No interface's network contains the address, and nic or netmask was not given.
    #[error(
        "no configured network{} contains {ip}, so the interface or netmask is unknown: \
         set nic and cidr_netmask",
        on_interface(nic)
    )]
    NoNetwork { ip: IpAddr, nic: Option<String> },
    /// The nic parameter names another interface than the one whose network holds the address.
    #[error("nic {given} disagrees with {computed}, the interface whose network contains {ip}")]
    NicMismatch {
        ip: IpAddr,
        given: String,
        computed: String,
    },
    /// The alias label would be longer than Linux allows.
    #[error("interface label {label:?} is longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong { label: String },
    /// Every `nic:N` alias from 0 to 511 is taken.
    #[error("no free alias label on {interface} (nic:0 to nic:511 are all in use)")]
    NoFreeAlias { interface: String },
    /// The host could not list the addresses.
    #[error("cannot read the configured addresses: {0}")]
    Host(#[from] HostError),
}

/// " on eth0" when the search was narrowed to one interface.
fn on_interface(nic: &Option<String>) -> String {
    nic.as_ref().map(|n| format!(" on {n}")).unwrap_or_default()
}

impl AddressError {
    /// The OCF status this error reports, as resource-agents' IPaddr and findif do.
    pub fn status(&self) -> OcfStatus {
        match self {
            AddressError::Missing { .. }
            | AddressError::BadValue { .. }
            | AddressError::Conflict { .. }
            | AddressError::LabelTooLong { .. } => OcfStatus::ErrConfigured,
            AddressError::Positional { .. } | AddressError::NicMismatch { .. } => {
                OcfStatus::ErrArgs
            }
            AddressError::NoNetwork { .. }
            | AddressError::NoFreeAlias { .. }
            | AddressError::Host(_) => OcfStatus::ErrGeneric,
        }
    }

    /// The outcome an operation reports for this error.
    pub fn outcome(&self) -> OperationOutcome {
        OperationOutcome::new(self.status(), self.to_string())
    }
}

/// How a given `nic` relates to the interface `findif` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicRule {
    /// IPaddr: the address's network decides; a `nic` naming another interface is an error.
    MatchNetwork,
    /// IPaddr2: the search looks only at `nic`; with a netmask given, no network is needed.
    NarrowSearch,
}

/// Which label the address gets, for tools that list aliases (`eth0:0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasLabel {
    /// No label: the address shows under the interface's own name.
    None,
    /// `nic:<suffix>`, from `iflabel` or `nic:label`.
    Named(String),
    /// The lowest free `nic:N`, as IPaddr's ifconfig aliases were chosen.
    FirstFree,
}

/// How the new owner of an address is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    /// How many gratuitous ARPs (or unsolicited neighbour advertisements) to send; 0 sends none.
    pub count: u32,
    /// Time between two of them.
    pub interval: Duration,
    /// Whether start returns after the first (the rest follow in the background) or after all.
    pub background: bool,
}

/// A virtual address to manage, as an agent's parameters describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualAddress {
    /// The address itself.
    pub ip: IpAddr,
    /// The prefix length, when given; otherwise the network that contains `ip` decides.
    pub prefix_len: Option<u8>,
    /// The base interface (`eth0`, never `eth0:1`), when given.
    pub nic: Option<String>,
    /// The IPv4 broadcast address, when given; otherwise the containing network's or a
    /// derived one.
    pub broadcast: Option<IpAddr>,
    /// The label to configure.
    pub label: AliasLabel,
    /// Gratuitous ARP after adding.
    pub announcement: Announcement,
    /// How `nic` is checked against the network.
    pub nic_rule: NicRule,
}

/// Where `findif` puts an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The interface to add it on.
    pub interface: String,
    /// The prefix length to add it with.
    pub prefix_len: u8,
    /// The broadcast address; `None` lets the host derive it.
    pub broadcast: Option<IpAddr>,
}

/// Reads an IP address parameter.
pub fn parse_ip(param: &'static str, value: &str) -> Result<IpAddr, AddressError> {
    value.trim().parse().map_err(|_| AddressError::BadValue {
        param,
        value: value.to_string(),
        expected: "an IPv4 or IPv6 address",
    })
}

/// Reads a netmask in CIDR form (`24`) or, for IPv4, dotted quad (`255.255.255.0`), as
/// resource-agents' findif accepts both. 0 is refused: an address needs a network.
pub fn parse_prefix_len(param: &'static str, value: &str, ip: IpAddr) -> Result<u8, AddressError> {
    let value = value.trim();
    let max = max_prefix_len(ip);
    let bad = |expected| AddressError::BadValue {
        param,
        value: value.to_string(),
        expected,
    };
    if let Ok(bits) = value.parse::<u8>() {
        return if (1..=max).contains(&bits) {
            Ok(bits)
        } else if ip.is_ipv4() {
            Err(bad("a prefix length from 1 to 32"))
        } else {
            Err(bad("a prefix length from 1 to 128"))
        };
    }
    if ip.is_ipv4()
        && let Ok(mask) = value.parse::<Ipv4Addr>()
    {
        let bits = u32::from(mask);
        let ones = bits.leading_ones();
        if bits.count_ones() == ones && ones >= 1 {
            return u8::try_from(ones).map_err(|_| bad("a contiguous netmask"));
        }
        return Err(bad("a contiguous netmask such as 255.255.255.0"));
    }
    Err(bad(
        "a prefix length such as 24 or a netmask such as 255.255.255.0",
    ))
}

/// Reads a broadcast parameter: an IPv4 address, or `+`/`-`/empty meaning "derive it"
/// (the host computes the broadcast from the prefix).
pub fn parse_broadcast(param: &'static str, value: &str) -> Result<Option<IpAddr>, AddressError> {
    match value.trim() {
        "" | "+" | "-" => Ok(None),
        other => other
            .parse::<Ipv4Addr>()
            .map(|b| Some(IpAddr::V4(b)))
            .map_err(|_| AddressError::BadValue {
                param,
                value: value.to_string(),
                expected: "an IPv4 broadcast address",
            }),
    }
}

/// Reads an OCF boolean (`ocf_is_true`: yes/true/1/on, no/false/0/off, any case).
pub fn parse_bool(param: &'static str, value: &str) -> Result<bool, AddressError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" => Ok(true),
        "no" | "false" | "0" | "off" => Ok(false),
        _ => Err(AddressError::BadValue {
            param,
            value: value.to_string(),
            expected: "a boolean (yes/no, true/false, 1/0, on/off)",
        }),
    }
}

/// Reads a non-negative whole number (a count, a number of milliseconds).
pub fn parse_count(param: &'static str, value: &str) -> Result<u32, AddressError> {
    value.trim().parse().map_err(|_| AddressError::BadValue {
        param,
        value: value.to_string(),
        expected: "a whole number",
    })
}

/// The value of a setting that has a current name and a legacy one (`arp_count` and
/// `ARP_REPEAT`): either may be set, both only if they agree.
pub fn aliased_param<'a>(
    instance: &'a ResourceInstance,
    name: &'static str,
    legacy: &'static str,
) -> Result<Option<&'a str>, AddressError> {
    match (instance.param(name), instance.param(legacy)) {
        (Some(a), Some(b)) if a.trim() != b.trim() => Err(AddressError::Conflict {
            first: name,
            first_value: a.to_string(),
            second: legacy,
            second_value: b.to_string(),
        }),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// Splits `eth0:1` into the base interface and the label suffix.
pub fn split_nic(nic: &str) -> (&str, Option<&str>) {
    match nic.split_once(':') {
        Some((base, label)) => (base, Some(label).filter(|l| !l.is_empty())),
        None => (nic, None),
    }
}

/// Reads Heartbeat's positional argument `ip[/bits[/nic[/broadcast]]]` (haresources
/// `IPaddr::198.18.0.100/24/eth0`) into the OCF parameters `ip`, `cidr_netmask`, `nic` and
/// `broadcast`, as the resource.d wrappers do: a third part starting with a digit is the
/// broadcast, and `nic` is passed on as written (`eth0:label` included).
pub fn positional_address(args: &[String]) -> Result<BTreeMap<String, String>, AddressError> {
    let argument = match args {
        [one] => one,
        _ => {
            return Err(AddressError::Positional {
                argument: args.join("::"),
                reason: "expected exactly one argument of the form ip[/bits[/nic[/broadcast]]]"
                    .into(),
            });
        }
    };
    let positional = |reason: String| AddressError::Positional {
        argument: argument.clone(),
        reason,
    };
    let parts: Vec<&str> = argument.split('/').collect();
    if parts.len() > 4 {
        return Err(positional(
            "too many parts; the form is ip[/bits[/nic[/broadcast]]]".into(),
        ));
    }
    let mut params = BTreeMap::new();
    let ip_text = parts.first().copied().unwrap_or_default();
    let ip = parse_ip("ip", ip_text).map_err(|e| positional(e.to_string()))?;
    params.insert("ip".to_string(), ip_text.to_string());
    if let Some(bits) = parts.get(1).filter(|b| !b.is_empty()) {
        parse_prefix_len("cidr_netmask", bits, ip).map_err(|e| positional(e.to_string()))?;
        params.insert("cidr_netmask".to_string(), bits.to_string());
    }
    let broadcast = match parts.get(2).filter(|p| !p.is_empty()) {
        Some(third) if third.starts_with(|c: char| c.is_ascii_digit()) => {
            if parts.len() > 3 {
                return Err(positional(format!(
                    "{third} is a broadcast address, so nothing may follow it"
                )));
            }
            Some(*third)
        }
        Some(nic) => {
            params.insert("nic".to_string(), nic.to_string());
            parts.get(3).copied()
        }
        None => parts.get(3).copied(),
    };
    if let Some(broadcast) = broadcast.filter(|b| !b.is_empty()) {
        parse_broadcast("broadcast", broadcast).map_err(|e| positional(e.to_string()))?;
        params.insert("broadcast".to_string(), broadcast.to_string());
    }
    Ok(params)
}

/// The broadcast address Linux tools derive for an IPv4 prefix (all host bits set); none
/// for IPv6 and for /31 and /32, which have no broadcast.
pub fn derived_broadcast(prefix: IpPrefix) -> Option<IpAddr> {
    match prefix.address {
        IpAddr::V4(v4) if prefix.prefix_len < 31 => {
            let host_bits = u32::MAX.checked_shr(u32::from(prefix.prefix_len))?;
            Some(IpAddr::V4(Ipv4Addr::from(u32::from(v4) | host_bits)))
        }
        _ => None,
    }
}

/// The longest prefix of the address's family.
fn max_prefix_len(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Whether `ip` lies in the network of `prefix` (same family, same leading bits).
pub fn network_contains(prefix: IpPrefix, ip: IpAddr) -> bool {
    let (network, candidate, width) = match (prefix.address, ip) {
        (IpAddr::V4(n), IpAddr::V4(c)) => (
            u128::from(u32::from(n)) << 96,
            u128::from(u32::from(c)) << 96,
            32,
        ),
        (IpAddr::V6(n), IpAddr::V6(c)) => (u128::from(n), u128::from(c), 128),
        _ => return false,
    };
    let len = u32::from(prefix.prefix_len.min(width));
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    network & mask == candidate & mask
}

/// resource-agents' `findif`: the interface whose configured network contains `ip` (the
/// most specific one when several do), and from it the prefix and broadcast not given.
/// Host addresses (/32, /128) carry no network and are not candidates, so a virtual address
/// configured alone does not decide where it belongs.
pub fn findif(
    address: &VirtualAddress,
    configured: &[InterfaceAddress],
) -> Result<Placement, AddressError> {
    let ip = address.ip;
    let narrowed_to = match address.nic_rule {
        NicRule::NarrowSearch => address.nic.as_deref(),
        NicRule::MatchNetwork => None,
    };
    let best = configured
        .iter()
        .filter(|a| a.address.prefix_len < max_prefix_len(ip))
        .filter(|a| network_contains(a.address, ip))
        .filter(|a| narrowed_to.is_none_or(|nic| a.interface == nic))
        .fold(None::<&InterfaceAddress>, |best, a| match best {
            Some(b) if b.address.prefix_len >= a.address.prefix_len => Some(b),
            _ => Some(a),
        });
    match (best, &address.nic, address.prefix_len) {
        (Some(network), nic, prefix_len) => {
            if address.nic_rule == NicRule::MatchNetwork
                && let Some(nic) = nic
                && *nic != network.interface
            {
                return Err(AddressError::NicMismatch {
                    ip,
                    given: nic.clone(),
                    computed: network.interface.clone(),
                });
            }
            let prefix_len = prefix_len.unwrap_or(network.address.prefix_len);
            // The network's broadcast fits only a prefix of the same length.
            let broadcast = address.broadcast.or(network
                .broadcast
                .filter(|_| prefix_len == network.address.prefix_len));
            Ok(Placement {
                interface: network.interface.clone(),
                prefix_len,
                broadcast,
            })
        }
        (None, Some(nic), Some(prefix_len)) => Ok(Placement {
            interface: nic.clone(),
            prefix_len,
            broadcast: address.broadcast,
        }),
        (None, nic, _) => Err(AddressError::NoNetwork {
            ip,
            nic: nic.clone().filter(|_| narrowed_to.is_some()),
        }),
    }
}

/// The lowest `nic:N` label not in use on `interface`.
fn first_free_alias(
    interface: &str,
    configured: &[InterfaceAddress],
) -> Result<String, AddressError> {
    (0..512)
        .map(|n| format!("{interface}:{n}"))
        .find(|candidate| {
            !configured
                .iter()
                .any(|a| a.label.as_deref() == Some(candidate.as_str()))
        })
        .ok_or_else(|| AddressError::NoFreeAlias {
            interface: interface.to_string(),
        })
}

/// The label to configure, checked against Linux's limit.
fn choose_label(
    address: &VirtualAddress,
    interface: &str,
    configured: &[InterfaceAddress],
) -> Result<Option<String>, AddressError> {
    if address.ip.is_ipv6() {
        // Linux keeps labels for IPv4 addresses only.
        return Ok(None);
    }
    let label = match &address.label {
        AliasLabel::None => return Ok(None),
        AliasLabel::Named(suffix) => format!("{interface}:{suffix}"),
        AliasLabel::FirstFree => first_free_alias(interface, configured)?,
    };
    if label.len() > MAX_LABEL_LEN {
        return Err(AddressError::LabelTooLong { label });
    }
    Ok(Some(label))
}

/// Checks the placement without changing anything: what validate-all reports.
pub fn validate(address: &VirtualAddress, host: &dyn Host) -> OperationOutcome {
    let configured = match host.addresses() {
        Ok(configured) => configured,
        Err(e) => return AddressError::from(e).outcome(),
    };
    match findif(address, &configured).and_then(|placement| {
        choose_label(address, &placement.interface, &configured).map(|_| placement)
    }) {
        Ok(placement) => OperationOutcome::success(format!(
            "{}/{} would go on {}",
            address.ip, placement.prefix_len, placement.interface
        )),
        Err(e) => e.outcome(),
    }
}

/// Adds the address where `findif` puts it, unless it is already there, then announces it.
/// Returns once the address is configured and the first announcement is sent.
pub fn start(address: &VirtualAddress, host: &dyn Host) -> OperationOutcome {
    let configured = match host.addresses() {
        Ok(configured) => configured,
        Err(e) => return AddressError::from(e).outcome(),
    };
    if let Served::Running(interface) = served(address, &configured) {
        return OperationOutcome::success(format!("{} is already on {interface}", address.ip));
    }
    let placement = match findif(address, &configured) {
        Ok(placement) => placement,
        Err(e) => return e.outcome(),
    };
    let label = match choose_label(address, &placement.interface, &configured) {
        Ok(label) => label,
        Err(e) => return e.outcome(),
    };
    let request = AddressRequest {
        interface: placement.interface.clone(),
        address: IpPrefix {
            address: address.ip,
            prefix_len: placement.prefix_len,
        },
        broadcast: placement.broadcast,
        label: label.clone(),
    };
    if let Err(e) = host.add_address(&request) {
        return OperationOutcome::new(
            OcfStatus::ErrGeneric,
            format!(
                "cannot add {} to {}: {e}",
                request.address, request.interface
            ),
        );
    }
    let announced = announce(address, &placement.interface, host);
    let label_note = label.map(|l| format!(" as {l}")).unwrap_or_default();
    OperationOutcome::success(format!(
        "{} added to {}{label_note}; {announced}",
        request.address, request.interface
    ))
}

/// Sends the gratuitous ARPs; a failure is logged and does not fail start, as in
/// resource-agents: the address is up, and peers learn it at their next ARP request.
fn announce(address: &VirtualAddress, interface: &str, host: &dyn Host) -> String {
    let plan = address.announcement;
    if plan.count == 0 {
        return "no gratuitous ARP requested".to_string();
    }
    let result = if plan.background {
        host.send_gratuitous_arp(interface, address.ip, plan.count, plan.interval)
    } else {
        (0..plan.count).try_for_each(|sent| {
            if sent > 0 {
                thread::sleep(plan.interval);
            }
            host.send_gratuitous_arp(interface, address.ip, 1, plan.interval)
        })
    };
    match result {
        Ok(()) => format!(
            "{} gratuitous ARP(s) {} apart",
            plan.count,
            humanize(plan.interval)
        ),
        Err(e) => {
            let message = format!(
                "gratuitous ARP for {} on {interface} failed: {e}",
                address.ip
            );
            host.log(LogLevel::Warning, &message);
            message
        }
    }
}

/// `200ms`, `1s`.
fn humanize(interval: Duration) -> String {
    if interval.subsec_millis() == 0 && interval.as_secs() > 0 {
        format!("{}s", interval.as_secs())
    } else {
        format!("{}ms", interval.as_millis())
    }
}

/// Removes the address from every interface that carries it, then checks it is gone.
/// Success when it was not configured at all.
pub fn stop(address: &VirtualAddress, host: &dyn Host) -> OperationOutcome {
    let configured = match host.addresses() {
        Ok(configured) => configured,
        Err(e) => return AddressError::from(e).outcome(),
    };
    let present: Vec<&InterfaceAddress> = configured
        .iter()
        .filter(|a| a.address.address == address.ip)
        .collect();
    if present.is_empty() {
        return OperationOutcome::success(format!("{} is not configured", address.ip));
    }
    let mut removed_from = Vec::new();
    for entry in &present {
        match host.remove_address(&entry.interface, entry.address) {
            Ok(AddressChange::Changed | AddressChange::Unchanged) => {
                removed_from.push(entry.interface.as_str());
            }
            Err(e) => {
                return OperationOutcome::new(
                    OcfStatus::ErrGeneric,
                    format!(
                        "cannot remove {} from {}: {e}",
                        entry.address, entry.interface
                    ),
                );
            }
        }
    }
    match host.addresses() {
        Ok(after) => {
            if let Some(left) = after.iter().find(|a| a.address.address == address.ip) {
                return OperationOutcome::new(
                    OcfStatus::ErrGeneric,
                    format!(
                        "{} is still on {} after removing it",
                        left.address, left.interface
                    ),
                );
            }
        }
        Err(e) => return AddressError::from(e).outcome(),
    }
    OperationOutcome::success(format!(
        "{} removed from {}",
        address.ip,
        removed_from.join(", ")
    ))
}

/// Where the address is served, as monitor and start see it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Served {
    /// Configured on the expected interface (or, when none can be told, on this one).
    Running(String),
    /// Not configured anywhere.
    Absent,
    /// Configured only on interfaces other than the expected one.
    Elsewhere {
        carriers: Vec<String>,
        expected: String,
    },
}

/// Finds the address among the configured ones. The expected interface is the `nic` given,
/// or else the one `findif` computes; when neither is known, any carrier counts.
fn served(address: &VirtualAddress, configured: &[InterfaceAddress]) -> Served {
    let carriers: Vec<String> = configured
        .iter()
        .filter(|a| a.address.address == address.ip)
        .map(|a| a.interface.clone())
        .collect();
    let Some(first) = carriers.first().cloned() else {
        return Served::Absent;
    };
    let expected = address
        .nic
        .clone()
        .or_else(|| findif(address, configured).ok().map(|p| p.interface));
    match expected {
        Some(expected) if carriers.contains(&expected) => Served::Running(expected),
        Some(expected) => Served::Elsewhere { carriers, expected },
        None => Served::Running(first),
    }
}

/// Success when the address is on the expected interface (the `nic` given, or the one
/// `findif` computes), `NotRunning` when it is nowhere, `ErrGeneric` when it is only on
/// another interface.
pub fn monitor(address: &VirtualAddress, host: &dyn Host) -> OperationOutcome {
    let configured = match host.addresses() {
        Ok(configured) => configured,
        Err(e) => return AddressError::from(e).outcome(),
    };
    match served(address, &configured) {
        Served::Running(interface) => {
            OperationOutcome::success(format!("{} is running on {interface}", address.ip))
        }
        Served::Absent => OperationOutcome::new(
            OcfStatus::NotRunning,
            format!("{} is not configured", address.ip),
        ),
        Served::Elsewhere { carriers, expected } => OperationOutcome::new(
            OcfStatus::ErrGeneric,
            format!(
                "{} is on {} instead of {expected}",
                address.ip,
                carriers.join(", ")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_host::MockHost;

    fn args(s: &str) -> Vec<String> {
        vec![s.to_string()]
    }

    fn vip(ip: &str) -> VirtualAddress {
        VirtualAddress {
            ip: ip.parse().unwrap(),
            prefix_len: None,
            nic: None,
            broadcast: None,
            label: AliasLabel::None,
            announcement: Announcement {
                count: 3,
                interval: Duration::from_millis(100),
                background: true,
            },
            nic_rule: NicRule::MatchNetwork,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn positional_forms_fill_ip_bits_nic_and_broadcast() {
        let cases = [
            ("198.18.0.100", map(&[("ip", "198.18.0.100")])),
            (
                "198.18.0.100/24",
                map(&[("ip", "198.18.0.100"), ("cidr_netmask", "24")]),
            ),
            (
                "198.18.0.100/24/eth0",
                map(&[
                    ("ip", "198.18.0.100"),
                    ("cidr_netmask", "24"),
                    ("nic", "eth0"),
                ]),
            ),
            (
                "198.18.0.100/24/eth0:web/198.18.0.255",
                map(&[
                    ("ip", "198.18.0.100"),
                    ("cidr_netmask", "24"),
                    ("nic", "eth0:web"),
                    ("broadcast", "198.18.0.255"),
                ]),
            ),
            (
                "198.18.0.100/24/198.18.0.255",
                map(&[
                    ("ip", "198.18.0.100"),
                    ("cidr_netmask", "24"),
                    ("broadcast", "198.18.0.255"),
                ]),
            ),
        ];
        for (argument, expected) in cases {
            assert_eq!(
                positional_address(&args(argument)).unwrap(),
                expected,
                "{argument}"
            );
        }
    }

    #[test]
    fn bad_positional_arguments_say_what_is_wrong() {
        let cases = [
            ("198.18.0", "is not an IPv4 or IPv6 address"),
            ("198.18.0.100/33", "a prefix length from 1 to 32"),
            (
                "198.18.0.100/24/eth0/nonsense",
                "is not an IPv4 broadcast address",
            ),
            ("198.18.0.100/24/198.18.0.255/eth0", "nothing may follow it"),
            ("198.18.0.100/24/eth0/198.18.0.255/x", "too many parts"),
        ];
        for (argument, expected) in cases {
            let err = positional_address(&args(argument)).unwrap_err();
            assert_eq!(err.status(), OcfStatus::ErrArgs);
            assert!(
                err.to_string().contains(expected),
                "{argument}: {err} should say {expected:?}"
            );
        }
        let two = positional_address(&["198.18.0.100".into(), "x".into()]).unwrap_err();
        assert!(two.to_string().contains("exactly one argument"), "{two}");
    }

    #[test]
    fn netmasks_are_read_in_cidr_and_dotted_quad_form() {
        let v4: IpAddr = "198.18.0.1".parse().unwrap();
        assert_eq!(parse_prefix_len("cidr_netmask", "24", v4), Ok(24));
        assert_eq!(
            parse_prefix_len("cidr_netmask", "255.255.254.0", v4),
            Ok(23)
        );
        assert!(parse_prefix_len("cidr_netmask", "255.0.255.0", v4).is_err());
        assert!(parse_prefix_len("cidr_netmask", "0", v4).is_err());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse_prefix_len("cidr_netmask", "64", v6), Ok(64));
        assert!(parse_prefix_len("cidr_netmask", "255.255.255.0", v6).is_err());
    }

    #[test]
    fn broadcast_is_derived_for_ipv4_networks_only() {
        let prefix = |s: &str, len| IpPrefix {
            address: s.parse().unwrap(),
            prefix_len: len,
        };
        assert_eq!(
            derived_broadcast(prefix("198.18.0.100", 24)),
            Some("198.18.0.255".parse().unwrap())
        );
        assert_eq!(
            derived_broadcast(prefix("198.18.0.100", 15)),
            Some("198.19.255.255".parse().unwrap())
        );
        assert_eq!(derived_broadcast(prefix("198.18.0.100", 32)), None);
        assert_eq!(derived_broadcast(prefix("2001:db8::1", 64)), None);
    }

    #[test]
    fn findif_picks_the_most_specific_network_and_takes_its_prefix_and_broadcast() {
        let host = MockHost::new()
            .with_address("eth0", "198.18.0.1/16")
            .with_address("eth1", "198.18.5.1/24")
            .with_address("eth2", "198.18.5.7/32");
        let configured = host.configured();
        let placement = findif(&vip("198.18.5.100"), &configured).unwrap();
        assert_eq!(
            placement,
            Placement {
                interface: "eth1".into(),
                prefix_len: 24,
                broadcast: Some("198.18.5.255".parse().unwrap()),
            }
        );
        let mut with_prefix = vip("198.18.5.100");
        with_prefix.prefix_len = Some(28);
        let placement = findif(&with_prefix, &configured).unwrap();
        assert_eq!((placement.prefix_len, placement.broadcast), (28, None));
    }

    #[test]
    fn findif_refuses_a_nic_that_disagrees_with_the_network() {
        let configured = MockHost::new()
            .with_address("eth0", "198.18.0.1/24")
            .with_interface("eth1")
            .configured();
        let mut address = vip("198.18.0.100");
        address.nic = Some("eth1".into());
        let err = findif(&address, &configured).unwrap_err();
        assert_eq!(err.status(), OcfStatus::ErrArgs);
        assert_eq!(
            err.to_string(),
            "nic eth1 disagrees with eth0, the interface whose network contains 198.18.0.100"
        );
    }

    #[test]
    fn findif_narrowed_to_a_nic_uses_the_given_netmask_without_a_network() {
        let configured = MockHost::new()
            .with_address("eth0", "198.18.0.1/24")
            .with_interface("eth1")
            .configured();
        let mut address = vip("198.18.0.100");
        address.nic_rule = NicRule::NarrowSearch;
        address.nic = Some("eth1".into());
        let err = findif(&address, &configured).unwrap_err();
        assert_eq!(err.status(), OcfStatus::ErrGeneric);
        assert!(
            err.to_string().contains("no configured network on eth1"),
            "{err}"
        );
        address.prefix_len = Some(24);
        assert_eq!(findif(&address, &configured).unwrap().interface, "eth1");
    }

    #[test]
    fn findif_without_any_network_asks_for_nic_and_netmask() {
        let err = findif(&vip("198.18.9.9"), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no configured network contains 198.18.9.9, so the interface or netmask is \
             unknown: set nic and cidr_netmask"
        );
    }

    #[test]
    fn first_free_alias_skips_taken_labels() {
        let host = MockHost::new().with_address("eth0", "198.18.0.1/24");
        let mut address = vip("198.18.0.100");
        address.label = AliasLabel::FirstFree;
        assert!(start(&address, &host).status == OcfStatus::Success);
        let mut second = vip("198.18.0.101");
        second.label = AliasLabel::FirstFree;
        assert!(start(&second, &host).status == OcfStatus::Success);
        let labels: Vec<Option<String>> = host.configured().into_iter().map(|a| a.label).collect();
        assert_eq!(labels, [None, Some("eth0:0".into()), Some("eth0:1".into())]);
    }

    #[test]
    fn start_is_idempotent_and_announces_only_when_it_adds() {
        let host = MockHost::new().with_address("eth0", "198.18.0.1/24");
        let address = vip("198.18.0.100");
        let first = start(&address, &host);
        assert_eq!(first.status, OcfStatus::Success, "{}", first.message);
        assert!(host.has_address("eth0", address.ip));
        let second = start(&address, &host);
        assert_eq!(second.status, OcfStatus::Success);
        assert!(second.message.contains("already"), "{}", second.message);
        assert_eq!(host.arps().len(), 1);
        assert_eq!(host.arps()[0].count, 3);
    }

    #[test]
    fn start_of_an_address_already_served_needs_no_network() {
        let host = MockHost::new().with_address("eth0", "198.18.9.9/32");
        let started = start(&vip("198.18.9.9"), &host);
        assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
        assert_eq!(started.message, "198.18.9.9 is already on eth0");
        assert!(host.arps().is_empty());
    }

    #[test]
    fn foreground_announcements_are_sent_one_by_one() {
        let host = MockHost::new().with_address("eth0", "198.18.0.1/24");
        let mut address = vip("198.18.0.100");
        address.announcement = Announcement {
            count: 3,
            interval: Duration::ZERO,
            background: false,
        };
        assert_eq!(start(&address, &host).status, OcfStatus::Success);
        let counts: Vec<u32> = host.arps().iter().map(|a| a.count).collect();
        assert_eq!(counts, [1, 1, 1]);
    }

    #[test]
    fn stop_removes_the_address_everywhere_and_is_idempotent() {
        let host = MockHost::new()
            .with_address("eth0", "198.18.0.1/24")
            .with_address("eth0", "198.18.0.100/24")
            .with_address("eth1", "198.18.0.100/32");
        let address = vip("198.18.0.100");
        let stopped = stop(&address, &host);
        assert_eq!(stopped.status, OcfStatus::Success, "{}", stopped.message);
        assert!(!host.has_address("eth0", address.ip));
        assert!(!host.has_address("eth1", address.ip));
        let again = stop(&address, &host);
        assert_eq!(again.status, OcfStatus::Success);
        assert!(again.message.contains("not configured"));
    }

    #[test]
    fn monitor_reports_running_stopped_and_misplaced() {
        let host = MockHost::new()
            .with_address("eth0", "198.18.0.1/24")
            .with_interface("eth1");
        let mut address = vip("198.18.0.100");
        assert_eq!(monitor(&address, &host).status, OcfStatus::NotRunning);
        assert_eq!(start(&address, &host).status, OcfStatus::Success);
        assert_eq!(monitor(&address, &host).status, OcfStatus::Success);
        address.nic = Some("eth1".into());
        let misplaced = monitor(&address, &host);
        assert_eq!(misplaced.status, OcfStatus::ErrGeneric);
        assert_eq!(misplaced.message, "198.18.0.100 is on eth0 instead of eth1");
    }
}
