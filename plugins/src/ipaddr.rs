//! IPaddr: a virtual IPv4 address as an interface alias (`eth0:0`), announced with
//! gratuitous ARP, like Heartbeat's and resource-agents' IPaddr.
//!
//! Owns IPaddr's parameters (the OCF names, the legacy `ARP_*` names, and the haresources
//! form `IPaddr::ip[/bits[/nic[/broadcast]]]`) and its meta-data. Placing, adding, removing
//! and monitoring the address is [`crate::address`]'s job; this module must not repeat it,
//! and like every agent it reaches the system only through [`Host`].
//!
//! Differences from resource-agents, on purpose: the address is added over netlink with an
//! alias label instead of by `ifconfig`; `lvs_support` is accepted but the loopback copy of
//! an LVS address is not moved; `ARP_NETMASK` is accepted and unused (it only ever mattered
//! to the libnet send_arp). The ARP defaults are resource-agents' own (10 announcements
//! 500 ms apart), so a converted cluster announces exactly as before.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use vigil_plugin_api::{
    Host, LogLevel, OcfStatus, OperationOutcome, PluginInfo, PluginKind, PluginOrigin, Registry,
    ResourceAgent, ResourceInstance,
};

use crate::address::{
    self, AddressError, AliasLabel, Announcement, NicRule, VirtualAddress, aliased_param,
    parse_bool, parse_broadcast, parse_count, parse_ip, parse_prefix_len, split_nic,
};

/// How many gratuitous ARPs start sends unless told otherwise (resource-agents' ARP_REPEAT).
pub const DEFAULT_ARP_COUNT: u32 = 10;
/// Milliseconds between them (resource-agents' ARP_INTERVAL_MS).
pub const DEFAULT_ARP_INTERVAL_MS: u32 = 500;

/// IPaddr's parameters, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IpaddrParams {
    /// The address and how to place and announce it.
    address: VirtualAddress,
    /// Run before the address is added (`local_start_script`).
    local_start_script: Option<String>,
    /// Run before the address is removed (`local_stop_script`).
    local_stop_script: Option<String>,
    /// Whether `lvs_support` was asked for; only warned about.
    lvs_support: bool,
}

impl IpaddrParams {
    fn from_instance(instance: &ResourceInstance) -> Result<Self, AddressError> {
        let ip_text = instance
            .param("ip")
            .ok_or(AddressError::Missing { param: "ip" })?;
        let ip = parse_ip("ip", ip_text)?;
        if !ip.is_ipv4() {
            return Err(AddressError::BadValue {
                param: "ip",
                value: ip_text.to_string(),
                expected: "an IPv4 address (IPaddr2 manages IPv6 addresses)",
            });
        }
        let prefix_len = aliased_param(instance, "cidr_netmask", "netmask")?
            .map(|v| parse_prefix_len("cidr_netmask", v, ip))
            .transpose()?;
        // IPaddr takes the base interface; an alias written as eth0:1 means eth0.
        let nic = instance
            .param("nic")
            .map(|nic| split_nic(nic.trim()).0.to_string());
        let broadcast = match instance.param("broadcast") {
            Some(value) => parse_broadcast("broadcast", value)?,
            None => None,
        };
        let label = match instance.param("iflabel") {
            Some(suffix) => AliasLabel::Named(suffix.trim().to_string()),
            None => AliasLabel::FirstFree,
        };
        let count = aliased_param(instance, "arp_count", "ARP_REPEAT")?
            .map(|v| parse_count("arp_count", v))
            .transpose()?
            .unwrap_or(DEFAULT_ARP_COUNT);
        let interval_ms = aliased_param(instance, "arp_interval", "ARP_INTERVAL_MS")?
            .map(|v| parse_count("arp_interval", v))
            .transpose()?
            .unwrap_or(DEFAULT_ARP_INTERVAL_MS);
        let background = instance
            .param("ARP_BACKGROUND")
            .map(|v| parse_bool("ARP_BACKGROUND", v))
            .transpose()?
            .unwrap_or(true);
        let lvs_support = instance
            .param("lvs_support")
            .map(|v| parse_bool("lvs_support", v))
            .transpose()?
            .unwrap_or(false);
        Ok(IpaddrParams {
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
                nic_rule: NicRule::MatchNetwork,
            },
            local_start_script: instance.param("local_start_script").map(str::to_string),
            local_stop_script: instance.param("local_stop_script").map(str::to_string),
            lvs_support,
        })
    }

    /// Says once per operation that LVS loopback handling is not done here.
    fn warn_unsupported(&self, host: &dyn Host) {
        if self.lvs_support {
            host.log(
                LogLevel::Warning,
                "lvs_support is accepted but not supported: a loopback copy of the address \
                 is neither moved away on start nor restored on stop",
            );
        }
    }
}

/// Runs a local start or stop script, as IPaddr does, without arguments. Its exit status
/// is logged, not acted on: resource-agents ignores it too.
fn run_local_script(
    param: &str,
    script: &str,
    instance: &ResourceInstance,
    ip: IpAddr,
    host: &dyn Host,
) {
    let env = vec![("OCF_RESKEY_ip".to_string(), ip.to_string())];
    match host.run_command(&[script.to_string()], &env, instance.timeout) {
        Ok(output) if output.exit_code == Some(0) => {}
        Ok(output) => host.log(
            LogLevel::Warning,
            &format!(
                "{param} {script} exited with {:?}: {}",
                output.exit_code,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ),
        Err(e) => host.log(LogLevel::Warning, &format!("{param} {script}: {e}")),
    }
}

/// The IPaddr agent; stateless, one value serves every IPaddr resource.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ipaddr;

impl ResourceAgent for Ipaddr {
    fn metadata(&self) -> String {
        format!(
            r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="IPaddr" version="1.0">
<version>1.0</version>
<longdesc lang="en">
Adds a virtual IPv4 address to an interface as an alias (eth0:0) and announces it with
gratuitous ARP, so that a service address follows the node that runs the service. The
interface and netmask are found from the network that contains the address when not given.
In haresources: IPaddr::ip[/bits[/nic[/broadcast]]], or the bare address.
</longdesc>
<shortdesc lang="en">Manages virtual IPv4 addresses (alias style)</shortdesc>
<parameters>
<parameter name="ip" unique="1" required="1">
<longdesc lang="en">The IPv4 address, in dotted quad notation (198.18.0.100).</longdesc>
<shortdesc lang="en">IPv4 address</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="nic" unique="0">
<longdesc lang="en">
The base interface to add the address to (eth0; an alias such as eth0:1 is read as eth0).
When empty, the interface whose configured network contains the address is used; a nic
that names another interface is an error.
</longdesc>
<shortdesc lang="en">Network interface</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="cidr_netmask">
<longdesc lang="en">
The prefix length (24) or netmask (255.255.255.0). When empty, the containing network's.
The older name netmask is read too.
</longdesc>
<shortdesc lang="en">Netmask</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="broadcast">
<longdesc lang="en">The broadcast address. When empty, the containing network's, or derived from the netmask.</longdesc>
<shortdesc lang="en">Broadcast address</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="iflabel">
<longdesc lang="en">
The alias label suffix: the address is labelled nic:iflabel (at most 15 characters in all).
When empty, the lowest free nic:N is used.
</longdesc>
<shortdesc lang="en">Interface label</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="arp_count">
<longdesc lang="en">How many gratuitous ARPs to send after adding the address (0: none). Also read as ARP_REPEAT.</longdesc>
<shortdesc lang="en">Gratuitous ARP count</shortdesc>
<content type="integer" default="{count}"/>
</parameter>
<parameter name="arp_interval">
<longdesc lang="en">Milliseconds between two gratuitous ARPs. Also read as ARP_INTERVAL_MS.</longdesc>
<shortdesc lang="en">Gratuitous ARP interval (ms)</shortdesc>
<content type="integer" default="{interval}"/>
</parameter>
<parameter name="ARP_REPEAT">
<longdesc lang="en">resource-agents' name for arp_count.</longdesc>
<shortdesc lang="en">Gratuitous ARP count (legacy name)</shortdesc>
<content type="integer" default="{count}"/>
</parameter>
<parameter name="ARP_INTERVAL_MS">
<longdesc lang="en">resource-agents' name for arp_interval.</longdesc>
<shortdesc lang="en">Gratuitous ARP interval (legacy name)</shortdesc>
<content type="integer" default="{interval}"/>
</parameter>
<parameter name="ARP_BACKGROUND">
<longdesc lang="en">
When yes, start returns after the first gratuitous ARP and the rest follow in the
background; when no, start returns after the last.
</longdesc>
<shortdesc lang="en">Announce in the background</shortdesc>
<content type="boolean" default="yes"/>
</parameter>
<parameter name="ARP_NETMASK">
<longdesc lang="en">Accepted for compatibility and not used: announcements go to the Ethernet broadcast address.</longdesc>
<shortdesc lang="en">Netmask for ARP (not used)</shortdesc>
<content type="string" default="ffffffffffff"/>
</parameter>
<parameter name="lvs_support">
<longdesc lang="en">Accepted for compatibility and not supported here: a loopback copy of the address is not moved.</longdesc>
<shortdesc lang="en">LVS direct routing support (not supported)</shortdesc>
<content type="boolean" default="false"/>
</parameter>
<parameter name="local_start_script">
<longdesc lang="en">A program run, without arguments, before the address is added; its exit status is only logged.</longdesc>
<shortdesc lang="en">Script run before adding the address</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="local_stop_script">
<longdesc lang="en">A program run, without arguments, before the address is removed; its exit status is only logged.</longdesc>
<shortdesc lang="en">Script run before removing the address</shortdesc>
<content type="string" default=""/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="20s"/>
<action name="monitor" depth="0" timeout="20s" interval="5s"/>
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
        match IpaddrParams::from_instance(instance) {
            Ok(params) => address::validate(&params.address, host),
            Err(e) => e.outcome(),
        }
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let params = match IpaddrParams::from_instance(instance) {
            Ok(params) => params,
            Err(e) => return e.outcome(),
        };
        params.warn_unsupported(host);
        if let Some(script) = &params.local_start_script
            && address::monitor(&params.address, host).status == OcfStatus::NotRunning
        {
            run_local_script(
                "local_start_script",
                script,
                instance,
                params.address.ip,
                host,
            );
        }
        address::start(&params.address, host)
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let params = match IpaddrParams::from_instance(instance) {
            Ok(params) => params,
            Err(e) => return e.outcome(),
        };
        params.warn_unsupported(host);
        if let Some(script) = &params.local_stop_script
            && address::monitor(&params.address, host).status != OcfStatus::NotRunning
        {
            run_local_script(
                "local_stop_script",
                script,
                instance,
                params.address.ip,
                host,
            );
        }
        address::stop(&params.address, host)
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        match IpaddrParams::from_instance(instance) {
            Ok(params) => address::monitor(&params.address, host),
            Err(e) => e.outcome(),
        }
    }
}

/// Registers IPaddr as a built-in agent.
pub fn register(registry: &mut Registry) {
    registry
        .add_agent(
            PluginInfo {
                kind: PluginKind::ResourceAgent,
                name: "IPaddr".to_string(),
                origin: PluginOrigin::BuiltIn,
                version: env!("CARGO_PKG_VERSION").to_string(),
                description: "virtual IPv4 address as an interface alias, with gratuitous ARP"
                    .to_string(),
            },
            Arc::new(Ipaddr),
        )
        .expect("built-in agent names are unique");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_host::{MockCapability, MockHost, check_metadata};
    use vigil_plugin_api::{CommandOutput, HostError};

    fn instance(params: &[(&str, &str)]) -> ResourceInstance {
        ResourceInstance {
            name: "IPaddr_198.18.0.100".into(),
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
            .with_address("eth1", "198.19.0.1/24")
    }

    #[test]
    fn metadata_is_well_formed_and_lists_every_parameter() {
        let summary = check_metadata(&Ipaddr.metadata()).unwrap();
        assert_eq!(summary.agent_name, "IPaddr");
        for param in [
            "ip",
            "nic",
            "cidr_netmask",
            "broadcast",
            "iflabel",
            "arp_count",
            "arp_interval",
            "ARP_REPEAT",
            "ARP_INTERVAL_MS",
            "ARP_BACKGROUND",
            "ARP_NETMASK",
            "lvs_support",
            "local_start_script",
            "local_stop_script",
        ] {
            assert!(summary.parameters.iter().any(|p| p == param), "{param}");
        }
    }

    #[test]
    fn haresources_argument_becomes_named_parameters() {
        let params = Ipaddr
            .positional_params(&["198.18.0.100/24/eth0:1/198.18.0.255".into()])
            .unwrap();
        let named = instance(
            &params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        let parsed = IpaddrParams::from_instance(&named).unwrap();
        assert_eq!(parsed.address.nic.as_deref(), Some("eth0"));
        assert_eq!(parsed.address.prefix_len, Some(24));
        assert_eq!(
            parsed.address.broadcast,
            Some("198.18.0.255".parse().unwrap())
        );
        assert_eq!(parsed.address.announcement.count, DEFAULT_ARP_COUNT);
        assert!(Ipaddr.positional_params(&["not-an-ip".into()]).is_err());
    }

    #[test]
    fn bad_parameters_are_configuration_errors_that_name_the_parameter() {
        let host = lan();
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[], "required parameter ip is missing"),
            (&[("ip", "2001:db8::1")], "IPaddr2 manages IPv6"),
            (
                &[("ip", "198.18.0.100"), ("cidr_netmask", "40")],
                "parameter cidr_netmask: \"40\" is not a prefix length from 1 to 32",
            ),
            (
                &[("ip", "198.18.0.100"), ("ARP_REPEAT", "many")],
                "parameter arp_count: \"many\" is not a whole number",
            ),
            (
                &[
                    ("ip", "198.18.0.100"),
                    ("arp_count", "3"),
                    ("ARP_REPEAT", "4"),
                ],
                "arp_count (\"3\") and ARP_REPEAT (\"4\") disagree",
            ),
        ];
        for (params, expected) in cases {
            let outcome = Ipaddr.validate(&instance(params), &host);
            assert_eq!(outcome.status, OcfStatus::ErrConfigured, "{params:?}");
            assert!(outcome.message.contains(expected), "{}", outcome.message);
        }
    }

    #[test]
    fn a_nic_that_disagrees_with_the_network_is_an_argument_error() {
        let outcome = Ipaddr.validate(
            &instance(&[("ip", "198.18.0.100"), ("nic", "eth1")]),
            &lan(),
        );
        assert_eq!(outcome.status, OcfStatus::ErrArgs);
    }

    #[test]
    fn start_adds_an_alias_on_the_computed_interface_and_announces_it() {
        let host = lan();
        let vip = instance(&[("ip", "198.18.0.100")]);
        assert_eq!(Ipaddr.monitor(&vip, &host).status, OcfStatus::NotRunning);
        let started = Ipaddr.start(&vip, &host);
        assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
        let added = host.configured().pop().unwrap();
        assert_eq!(added.interface, "eth0");
        assert_eq!(added.address.to_string(), "198.18.0.100/24");
        assert_eq!(added.label.as_deref(), Some("eth0:0"));
        let arps = host.arps();
        assert_eq!(arps.len(), 1);
        assert_eq!(
            (arps[0].count, arps[0].interval),
            (DEFAULT_ARP_COUNT, Duration::from_millis(500))
        );
        assert_eq!(Ipaddr.monitor(&vip, &host).status, OcfStatus::Success);
        assert_eq!(Ipaddr.start(&vip, &host).status, OcfStatus::Success);
        assert_eq!(host.configured().len(), 3);
        assert_eq!(Ipaddr.stop(&vip, &host).status, OcfStatus::Success);
        assert_eq!(Ipaddr.stop(&vip, &host).status, OcfStatus::Success);
        assert_eq!(Ipaddr.monitor(&vip, &host).status, OcfStatus::NotRunning);
    }

    #[test]
    fn iflabel_names_the_alias() {
        let host = lan();
        let vip = instance(&[("ip", "198.18.0.100"), ("iflabel", "web")]);
        assert_eq!(Ipaddr.start(&vip, &host).status, OcfStatus::Success);
        assert_eq!(
            host.configured().pop().unwrap().label.as_deref(),
            Some("eth0:web")
        );
        let long = instance(&[("ip", "198.18.0.101"), ("iflabel", "much-too-long")]);
        assert_eq!(Ipaddr.start(&long, &host).status, OcfStatus::ErrConfigured);
    }

    #[test]
    fn failed_gratuitous_arp_is_logged_and_start_still_succeeds() {
        let host = lan();
        host.refuse(
            MockCapability::GratuitousArp,
            HostError::Failed {
                capability: "send_gratuitous_arp".into(),
                reason: "network is down".into(),
            },
        );
        let started = Ipaddr.start(&instance(&[("ip", "198.18.0.100")]), &host);
        assert_eq!(started.status, OcfStatus::Success);
        assert!(
            host.logs()
                .iter()
                .any(|(level, m)| *level == LogLevel::Warning && m.contains("network is down"))
        );
    }

    #[test]
    fn a_refused_address_change_fails_start_with_the_reason() {
        let host = lan();
        host.refuse(
            MockCapability::AddAddress,
            HostError::NotGranted {
                capability: "add_address".into(),
            },
        );
        let started = Ipaddr.start(&instance(&[("ip", "198.18.0.100")]), &host);
        assert_eq!(started.status, OcfStatus::ErrGeneric);
        assert!(
            started.message.contains("capability not granted"),
            "{}",
            started.message
        );
    }

    #[test]
    fn local_scripts_run_only_when_the_address_changes() {
        let host = lan();
        let vip = instance(&[
            ("ip", "198.18.0.100"),
            ("local_start_script", "/usr/local/bin/vip-up"),
            ("local_stop_script", "/usr/local/bin/vip-down"),
        ]);
        host.push_command_reply(Ok(CommandOutput {
            exit_code: Some(3),
            stdout: Vec::new(),
            stderr: b"not today".to_vec(),
        }));
        assert_eq!(Ipaddr.start(&vip, &host).status, OcfStatus::Success);
        assert_eq!(Ipaddr.start(&vip, &host).status, OcfStatus::Success);
        assert_eq!(Ipaddr.stop(&vip, &host).status, OcfStatus::Success);
        assert_eq!(Ipaddr.stop(&vip, &host).status, OcfStatus::Success);
        let run: Vec<String> = host
            .commands()
            .into_iter()
            .map(|c| c.argv.join(" "))
            .collect();
        assert_eq!(run, ["/usr/local/bin/vip-up", "/usr/local/bin/vip-down"]);
        assert!(host.logs().iter().any(|(_, m)| m.contains("not today")));
    }

    #[test]
    fn register_adds_ipaddr_as_a_built_in_agent() {
        let mut registry = Registry::new();
        register(&mut registry);
        let registered = registry.agent("IPaddr").unwrap();
        assert_eq!(registered.info.origin, PluginOrigin::BuiltIn);
        assert_eq!(registered.info.kind, PluginKind::ResourceAgent);
    }
}
