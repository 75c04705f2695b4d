//! IPaddr2: a virtual IPv4 or IPv6 address added the iproute2 way (an extra address on the
//! interface, optionally labelled `nic:label`), announced with gratuitous ARP or, for IPv6,
//! unsolicited neighbour advertisements, like resource-agents' IPaddr2.
//!
//! Owns IPaddr2's parameters, its haresources form `IPaddr2::ip[/bits[/nic[:label][/bcast]]]`
//! and its meta-data. Placing, adding, removing and monitoring is [`crate::address`]'s job;
//! this module must not repeat it, and reaches the system only through [`Host`].
//!
//! resource-agents' IPaddr2 has grown parameters for CLUSTERIP load sharing, LVS, address
//! flags and namespaces. They are accepted, so an existing configuration still loads, and
//! listed in the meta-data as not supported here; setting one logs a warning at every
//! validate and start, never silently. The ARP defaults are resource-agents' (5 announcements 200 ms
//! apart, in the background for IPv4 and in the foreground for IPv6).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use vigil_plugin_api::{
    Host, LogLevel, OperationOutcome, PluginInfo, PluginKind, PluginOrigin, Registry,
    ResourceAgent, ResourceInstance,
};

use crate::address::{
    self, AddressError, AliasLabel, Announcement, MAX_LABEL_LEN, NicRule, VirtualAddress,
    aliased_param, parse_bool, parse_broadcast, parse_count, parse_ip, parse_prefix_len, split_nic,
};

/// How many announcements start sends unless told otherwise (resource-agents' arp_count).
pub const DEFAULT_ARP_COUNT: u32 = 5;
/// Milliseconds between them (resource-agents' arp_interval).
pub const DEFAULT_ARP_INTERVAL_MS: u32 = 200;

/// resource-agents' parameters that are accepted and not acted on: name, short description,
/// content type and default, for the meta-data and for the warning when one is set.
const ACCEPTED_UNSUPPORTED: &[(&str, &str, &str, &str)] = &[
    (
        "lvs_support",
        "Enable support for LVS DR",
        "boolean",
        "false",
    ),
    (
        "lvs_ipv6_addrlabel",
        "Enable adding IPv6 address label",
        "boolean",
        "false",
    ),
    (
        "lvs_ipv6_addrlabel_value",
        "IPv6 address label value",
        "integer",
        "99",
    ),
    ("mac", "Cluster IP MAC address", "string", ""),
    (
        "clusterip_hash",
        "Cluster IP hashing function",
        "string",
        "sourceip-sourceport",
    ),
    (
        "unique_clone_address",
        "Create a unique address for cloned instances",
        "boolean",
        "false",
    ),
    (
        "arp_count_refresh",
        "ARP packet count sent during monitoring",
        "integer",
        "0",
    ),
    ("arp_sender", "ARP sender", "string", ""),
    ("send_arp_opts", "Options for ARP sender", "string", ""),
    (
        "flush_routes",
        "Flush kernel routing table on stop",
        "boolean",
        "false",
    ),
    (
        "run_arping",
        "Run arping for IPv4 collision detection check",
        "boolean",
        "false",
    ),
    ("nodad", "Use nodad flag", "boolean", "false"),
    (
        "noprefixroute",
        "Use noprefixroute flag",
        "boolean",
        "false",
    ),
    (
        "preferred_lft",
        "IPv6 preferred lifetime",
        "string",
        "forever",
    ),
    (
        "network_namespace",
        "Network namespace to use",
        "string",
        "",
    ),
];

/// IPaddr2's parameters, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ipaddr2Params {
    /// The address and how to place and announce it.
    address: VirtualAddress,
    /// Accepted-but-unsupported parameters that were set to something other than their
    /// default, for the warning.
    ignored: Vec<String>,
}

impl Ipaddr2Params {
    fn from_instance(instance: &ResourceInstance) -> Result<Self, AddressError> {
        let ip = parse_ip(
            "ip",
            instance
                .param("ip")
                .ok_or(AddressError::Missing { param: "ip" })?,
        )?;
        let prefix_len = aliased_param(instance, "cidr_netmask", "netmask")?
            .map(|v| parse_prefix_len("cidr_netmask", v, ip))
            .transpose()?;
        let (nic, nic_label) = match instance.param("nic") {
            Some(nic) => {
                let (base, label) = split_nic(nic.trim());
                (Some(base.to_string()), label.map(str::to_string))
            }
            None => (None, None),
        };
        let broadcast = match instance.param("broadcast") {
            Some(value) => parse_broadcast("broadcast", value)?,
            None => None,
        };
        // As in resource-agents, a label written into nic wins over iflabel.
        let label = match nic_label.or_else(|| instance.param("iflabel").map(str::to_string)) {
            Some(suffix) => {
                if let Some(nic) = &nic {
                    let full = format!("{nic}:{suffix}");
                    if full.len() > MAX_LABEL_LEN {
                        return Err(AddressError::LabelTooLong { label: full });
                    }
                }
                AliasLabel::Named(suffix)
            }
            None => AliasLabel::None,
        };
        let count = instance
            .param("arp_count")
            .map(|v| parse_count("arp_count", v))
            .transpose()?
            .unwrap_or(DEFAULT_ARP_COUNT);
        let interval_ms = instance
            .param("arp_interval")
            .map(|v| parse_count("arp_interval", v))
            .transpose()?
            .unwrap_or(DEFAULT_ARP_INTERVAL_MS);
        let background = instance
            .param("arp_bg")
            .map(|v| parse_bool("arp_bg", v))
            .transpose()?
            .unwrap_or(ip.is_ipv4());
        let ignored = ACCEPTED_UNSUPPORTED
            .iter()
            .filter(|(name, _, kind, default)| {
                instance.param(name).is_some_and(|value| {
                    let value = value.trim();
                    if *kind == "boolean" {
                        parse_bool("", value).ok() != parse_bool("", default).ok()
                    } else {
                        value != *default
                    }
                })
            })
            .map(|(name, ..)| name.to_string())
            .collect();
        Ok(Ipaddr2Params {
            address: VirtualAddress {
                ip,
                prefix_len,
                nic,
                broadcast,
                label,
                announcement: Announcement {
                    count,
                    interval: Duration::from_millis(u64::from(interval_ms)),
                    background,
                },
                nic_rule: NicRule::NarrowSearch,
            },
            ignored,
        })
    }

    /// Reads the parameters and, for validate and start, warns about the ones set but not
    /// acted on (not on every monitor, which would flood the log).
    fn read(
        instance: &ResourceInstance,
        host: &dyn Host,
        warn: bool,
    ) -> Result<Self, AddressError> {
        let params = Self::from_instance(instance)?;
        if warn && !params.ignored.is_empty() {
            host.log(
                LogLevel::Warning,
                &format!(
                    "parameters accepted but not supported here, and ignored: {}",
                    params.ignored.join(", ")
                ),
            );
        }
        Ok(params)
    }
}

/// The IPaddr2 agent; stateless, one value serves every IPaddr2 resource.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ipaddr2;

impl ResourceAgent for Ipaddr2 {
    fn metadata(&self) -> String {
        let mut unsupported = String::new();
        for (name, shortdesc, kind, default) in ACCEPTED_UNSUPPORTED {
            // Writing to a String cannot fail.
            let _ = write!(
                unsupported,
                r#"<parameter name="{name}">
<longdesc lang="en">resource-agents' {name}: accepted so that existing configurations load, not supported here; setting it logs a warning at start.</longdesc>
<shortdesc lang="en">{shortdesc} (not supported)</shortdesc>
<content type="{kind}" default="{default}"/>
</parameter>
"#
            );
        }
        format!(
            r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="IPaddr2" version="1.0">
<version>1.0</version>
<longdesc lang="en">
Adds a virtual IPv4 or IPv6 address to an interface (as iproute2 does, optionally with a
label nic:label) and announces it with gratuitous ARP or unsolicited neighbour
advertisements, so that a service address follows the node that runs the service. The
interface and netmask are found from the network that contains the address when not given.
In haresources: IPaddr2::ip[/bits[/nic[:label][/broadcast]]].
</longdesc>
<shortdesc lang="en">Manages virtual IPv4 and IPv6 addresses (Linux specific version)</shortdesc>
<parameters>
<parameter name="ip" unique="1" required="1">
<longdesc lang="en">The IPv4 address (198.18.0.100) or IPv6 address (2001:db8::100).</longdesc>
<shortdesc lang="en">IPv4 or IPv6 address</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="nic" unique="0">
<longdesc lang="en">
The interface to add the address to, optionally with a label (eth0:web). When empty, the
interface whose configured network contains the address is used. When given with
cidr_netmask, no containing network is needed.
</longdesc>
<shortdesc lang="en">Network interface</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="cidr_netmask">
<longdesc lang="en">
The prefix length (24, 64) or, for IPv4, a netmask (255.255.255.0). When empty, the
containing network's. The older name netmask is read too.
</longdesc>
<shortdesc lang="en">CIDR netmask</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="broadcast">
<longdesc lang="en">
The IPv4 broadcast address. When empty (or + or -), the containing network's, or derived
from the netmask.
</longdesc>
<shortdesc lang="en">Broadcast address</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="iflabel">
<longdesc lang="en">
The label suffix: the IPv4 address is labelled nic:iflabel (at most 15 characters in all).
A label written into nic wins. IPv6 addresses carry no label.
</longdesc>
<shortdesc lang="en">Interface label</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="arp_count">
<longdesc lang="en">How many gratuitous ARPs (IPv6: neighbour advertisements) to send after adding the address (0: none).</longdesc>
<shortdesc lang="en">ARP/NA packet count sent during initialization</shortdesc>
<content type="integer" default="{count}"/>
</parameter>
<parameter name="arp_interval">
<longdesc lang="en">Milliseconds between two announcements.</longdesc>
<shortdesc lang="en">ARP/NA packet interval in ms</shortdesc>
<content type="integer" default="{interval}"/>
</parameter>
<parameter name="arp_bg">
<longdesc lang="en">
When true, start returns after the first announcement and the rest follow in the
background; when false, start returns after the last. Default: true for IPv4, false for IPv6.
</longdesc>
<shortdesc lang="en">ARP/NA from background</shortdesc>
<content type="boolean" default=""/>
</parameter>
{unsupported}</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="20s"/>
<action name="status" depth="0" timeout="20s" interval="10s"/>
<action name="monitor" depth="0" timeout="20s" interval="10s"/>
<action name="validate-all" timeout="20s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
"#,
            count = DEFAULT_ARP_COUNT,
            interval = DEFAULT_ARP_INTERVAL_MS,
        )
    }

    fn positional_params(&self, args: &[String]) -> Result<BTreeMap<String, String>, String> {
        address::positional_address(args).map_err(|e| e.to_string())
    }

    fn validate(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        match Ipaddr2Params::read(instance, host, true) {
            Ok(params) => address::validate(&params.address, host),
            Err(e) => e.outcome(),
        }
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        match Ipaddr2Params::read(instance, host, true) {
            Ok(params) => address::start(&params.address, host),
            Err(e) => e.outcome(),
        }
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        match Ipaddr2Params::read(instance, host, false) {
            Ok(params) => address::stop(&params.address, host),
            Err(e) => e.outcome(),
        }
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        match Ipaddr2Params::read(instance, host, false) {
            Ok(params) => address::monitor(&params.address, host),
            Err(e) => e.outcome(),
        }
    }
}

/// Registers IPaddr2 as a built-in agent.
pub fn register(registry: &mut Registry) {
    registry
        .add_agent(
            PluginInfo {
                kind: PluginKind::ResourceAgent,
                name: "IPaddr2".to_string(),
                origin: PluginOrigin::BuiltIn,
                version: env!("CARGO_PKG_VERSION").to_string(),
                description: "virtual IPv4/IPv6 address, iproute2 style, with gratuitous ARP"
                    .to_string(),
            },
            Arc::new(Ipaddr2),
        )
        .expect("built-in agent names are unique");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_host::{MockHost, check_metadata};
    use vigil_plugin_api::OcfStatus;

    fn instance(params: &[(&str, &str)]) -> ResourceInstance {
        ResourceInstance {
            name: "IPaddr2_198.18.0.100".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout: Duration::from_secs(20),
            grants: Default::default(),
        }
    }

    fn lan() -> MockHost {
        MockHost::new()
            .with_address("eth0", "198.18.0.1/24")
            .with_address("eth0", "2001:db8::1/64")
            .with_interface("eth1")
    }

    #[test]
    fn metadata_is_well_formed_and_lists_supported_and_accepted_parameters() {
        let summary = check_metadata(&Ipaddr2.metadata()).unwrap();
        assert_eq!(summary.agent_name, "IPaddr2");
        let supported = [
            "ip",
            "nic",
            "cidr_netmask",
            "broadcast",
            "iflabel",
            "arp_count",
            "arp_interval",
            "arp_bg",
        ];
        let accepted = ACCEPTED_UNSUPPORTED.iter().map(|(name, ..)| *name);
        let expected: Vec<&str> = supported.into_iter().chain(accepted).collect();
        assert_eq!(summary.parameters, expected);
    }

    #[test]
    fn positional_nic_label_becomes_the_address_label() {
        let params = Ipaddr2
            .positional_params(&["198.18.0.100/24/eth0:web".into()])
            .unwrap();
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let host = lan();
        let vip = instance(&pairs);
        let started = Ipaddr2.start(&vip, &host);
        assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
        let added = host.configured().pop().unwrap();
        assert_eq!(added.interface, "eth0");
        assert_eq!(added.label.as_deref(), Some("eth0:web"));
    }

    #[test]
    fn a_label_longer_than_linux_allows_is_a_configuration_error() {
        let outcome = Ipaddr2.validate(
            &instance(&[
                ("ip", "198.18.0.100"),
                ("nic", "eth0"),
                ("iflabel", "0123456789a"),
            ]),
            &lan(),
        );
        assert_eq!(outcome.status, OcfStatus::ErrConfigured);
        assert_eq!(
            outcome.message,
            "interface label \"eth0:0123456789a\" is longer than 15 characters"
        );
    }

    #[test]
    fn nic_with_netmask_places_the_address_without_a_containing_network() {
        let host = lan();
        let vip = instance(&[
            ("ip", "198.18.7.7"),
            ("nic", "eth1"),
            ("cidr_netmask", "24"),
        ]);
        assert_eq!(Ipaddr2.start(&vip, &host).status, OcfStatus::Success);
        assert!(host.has_address("eth1", "198.18.7.7".parse().unwrap()));
        assert_eq!(Ipaddr2.monitor(&vip, &host).status, OcfStatus::Success);
        let without_mask = instance(&[("ip", "198.18.8.8"), ("nic", "eth1")]);
        assert_eq!(
            Ipaddr2.start(&without_mask, &host).status,
            OcfStatus::ErrGeneric
        );
    }

    #[test]
    fn ipv6_address_is_added_without_label_and_announced_in_the_foreground() {
        let host = lan();
        let vip = instance(&[
            ("ip", "2001:db8::100"),
            ("iflabel", "v6"),
            ("arp_interval", "0"),
        ]);
        let started = Ipaddr2.start(&vip, &host);
        assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
        let added = host.configured().pop().unwrap();
        assert_eq!(added.address.to_string(), "2001:db8::100/64");
        assert_eq!(added.label, None);
        let counts: Vec<u32> = host.arps().iter().map(|a| a.count).collect();
        assert_eq!(counts, vec![1; DEFAULT_ARP_COUNT as usize]);
        assert_eq!(Ipaddr2.stop(&vip, &host).status, OcfStatus::Success);
        assert_eq!(Ipaddr2.monitor(&vip, &host).status, OcfStatus::NotRunning);
    }

    #[test]
    fn ipv4_defaults_announce_five_times_in_the_background() {
        let host = lan();
        let vip = instance(&[("ip", "198.18.0.100")]);
        assert_eq!(Ipaddr2.start(&vip, &host).status, OcfStatus::Success);
        let arps = host.arps();
        assert_eq!(arps.len(), 1);
        assert_eq!(
            (arps[0].count, arps[0].interval),
            (5, Duration::from_millis(200))
        );
    }

    #[test]
    fn unsupported_parameters_are_accepted_with_a_warning_only_when_set() {
        let host = lan();
        let plain = instance(&[("ip", "198.18.0.100"), ("lvs_support", "false")]);
        assert_eq!(Ipaddr2.validate(&plain, &host).status, OcfStatus::Success);
        assert!(host.logs().is_empty(), "{:?}", host.logs());
        let tuned = instance(&[
            ("ip", "198.18.0.100"),
            ("lvs_support", "true"),
            ("preferred_lft", "0"),
        ]);
        assert_eq!(Ipaddr2.validate(&tuned, &host).status, OcfStatus::Success);
        assert_eq!(Ipaddr2.monitor(&tuned, &host).status, OcfStatus::NotRunning);
        assert_eq!(
            host.logs(),
            [(
                LogLevel::Warning,
                "parameters accepted but not supported here, and ignored: lvs_support, \
                 preferred_lft"
                    .to_string()
            )]
        );
    }

    #[test]
    fn start_stop_monitor_cycle_is_idempotent() {
        let host = lan();
        let vip = instance(&[("ip", "198.18.0.100"), ("nic", "eth0")]);
        assert_eq!(Ipaddr2.monitor(&vip, &host).status, OcfStatus::NotRunning);
        for _ in 0..2 {
            assert_eq!(Ipaddr2.start(&vip, &host).status, OcfStatus::Success);
            assert_eq!(Ipaddr2.monitor(&vip, &host).status, OcfStatus::Success);
        }
        for _ in 0..2 {
            assert_eq!(Ipaddr2.stop(&vip, &host).status, OcfStatus::Success);
            assert_eq!(Ipaddr2.monitor(&vip, &host).status, OcfStatus::NotRunning);
        }
        assert_eq!(host.arps().len(), 1);
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let outcome = Ipaddr2.validate(
            &instance(&[("ip", "198.18.0.100"), ("arp_bg", "maybe")]),
            &lan(),
        );
        assert_eq!(outcome.status, OcfStatus::ErrConfigured);
        assert_eq!(
            outcome.message,
            "parameter arp_bg: \"maybe\" is not a boolean (yes/no, true/false, 1/0, on/off)"
        );
    }

    #[test]
    fn register_adds_ipaddr2_as_a_built_in_agent() {
        let mut registry = Registry::new();
        register(&mut registry);
        assert_eq!(
            registry.agent("IPaddr2").unwrap().info.origin,
            PluginOrigin::BuiltIn
        );
    }
}
