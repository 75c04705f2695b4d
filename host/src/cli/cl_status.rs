//! `cl_status`: Heartbeat's status tool, answered by the `vigil` binary under that name.
//!
//! Owns the sub-commands, their output text and exit codes, matching Heartbeat 3.0.6 (spec
//! §9.4 and the captured outputs): scripts that parse `cl_status` keep working unchanged.
//! It reads everything from the daemon's status report and decides nothing itself.

use std::process::ExitCode;

use crate::api::{ApiClient, StatusReport, client_socket_path};
use crate::membership::{NodeState, NodeStatus};

/// Heartbeat's exit code when a node or link name is unknown.
const RC_BAD_NAME: u8 = 11;
/// Exit code for "could not talk to the daemon" (other error).
const RC_NO_DAEMON: u8 = 3;

const USAGE: &str = "Usage: cl_status <sub-command> [<options>] [<parameters>]

Sub-commands:
clientstatus <node-name> <client-id> [<timeout>]
\tShow the status of heartbeat clients.
hblinkstatus <node-name> <link-name>
\tShow the status of a heartbeat link
hbstatus
\tIndicate if heartbeat is running on the local system.
\tOptions:
\t\t-v\tverbose: also add \"listnodes -v\" output
listnodes [<option>]
\tList the nodes in the cluster.
\tOptions:
\t\t-p\tlist only 'ping' type nodes
\t\t-n\tlist only 'normal' type nodes
\t\t-v\tverbose: also list type and status,
\t\t\tthen add \"listhblinks -v\" output
listhblinks <node-name>
\tList the network interfaces used as hearbeat links.
\tOptions:
\t\t-v\tverbose: list link status as well
nodestatus <node-name>
\tList the node status.
nodeweight <node-name>
\tList the node weight.
nodesite <node-name>
\tList the node site.
nodetype <node-name>
\tList the nodes of a given type.
rscstatus
\tShow the status of cluster resources.
hbparameter -p <parameter-name>
\tRetrieve the value of a cluster parameter.
\tAs for the valid parameter names, please refer to the man page.
";

/// The options `cl_status` accepts anywhere on its command line.
#[derive(Debug, Default)]
struct Options {
    /// `-m`: human-readable sentences instead of bare values.
    sentences: bool,
    /// `-v`: verbose listings.
    verbose: bool,
    /// `-p`: ping nodes only (listnodes) — or, for hbparameter, the parameter name follows.
    ping_only: bool,
    /// `-n`: normal nodes only.
    normal_only: bool,
    /// Positional arguments after the sub-command.
    operands: Vec<String>,
}

fn parse_options(args: &[String]) -> Options {
    let mut options = Options::default();
    for arg in args {
        match arg.as_str() {
            "-m" => options.sentences = true,
            "-v" => options.verbose = true,
            "-p" => options.ping_only = true,
            "-n" => options.normal_only = true,
            _ => options.operands.push(arg.clone()),
        }
    }
    options
}

/// Runs `cl_status` with the arguments after the program name.
pub fn main(args: &[String]) -> ExitCode {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    };
    let options = parse_options(rest);
    let known = [
        "hbstatus",
        "listnodes",
        "nodestatus",
        "nodetype",
        "nodeweight",
        "nodesite",
        "listhblinks",
        "hblinkstatus",
        "hbparameter",
        "rscstatus",
    ];
    if !known.contains(&command.as_str()) {
        eprintln!("cl_status: ERROR: {command}: invalid sub-command.");
        return ExitCode::from(RC_BAD_NAME);
    }

    let socket = client_socket_path(None);
    let report = ApiClient::connect(&socket).and_then(|mut client| client.status());
    let report = match report {
        Ok(report) => report,
        Err(error) if command == "hbstatus" => {
            tracing::debug!(%error, "daemon not reachable");
            println!("Heartbeat is stopped on this machine.");
            return ExitCode::from(1);
        }
        Err(error) => {
            eprintln!("cl_status: ERROR: Cannot signon with heartbeat");
            eprintln!("cl_status: ERROR: REASON: {error}");
            return ExitCode::from(RC_NO_DAEMON);
        }
    };
    ExitCode::from(answer(command, &options, &report, &mut std::io::stdout()))
}

/// Writes the answer to one sub-command and returns its exit code. Separate from `main` so
/// the outputs can be tested against Heartbeat's without a daemon.
fn answer(
    command: &str,
    options: &Options,
    report: &StatusReport,
    out: &mut dyn std::io::Write,
) -> u8 {
    let nodes = listing_order(report);
    let find = |name: &str| {
        nodes
            .iter()
            .copied()
            .find(|n| n.name == name.to_ascii_lowercase())
    };
    let operand = |i: usize| options.operands.get(i).map(String::as_str).unwrap_or("");
    let result = (|| -> std::io::Result<u8> {
        match command {
            "hbstatus" => {
                if options.verbose {
                    writeln!(out, "version:\tvigil {}", report.version)?;
                    writeln!(out, "managed by:\t\"haresources\"")?;
                    write_verbose_nodes(out, &nodes)?;
                } else {
                    writeln!(out, "Heartbeat is running on this machine.")?;
                }
                Ok(0)
            }
            "listnodes" => {
                let chosen = nodes.iter().filter(|n| {
                    (!options.ping_only || n.node_type == "ping")
                        && (!options.normal_only || n.node_type == "normal")
                });
                if options.verbose {
                    write_verbose_nodes(out, &chosen.copied().collect::<Vec<_>>())?;
                } else {
                    for node in chosen {
                        writeln!(out, "{}", node.name)?;
                    }
                }
                Ok(0)
            }
            "nodestatus" => match find(operand(0)) {
                Some(node) => {
                    if options.sentences {
                        writeln!(
                            out,
                            "The cluster node {} is {}",
                            node.name,
                            node.status.as_str()
                        )?;
                    } else {
                        writeln!(out, "{}", node.status.as_str())?;
                    }
                    Ok(if node.status == NodeStatus::Dead {
                        1
                    } else {
                        0
                    })
                }
                None => bad_name(out),
            },
            "nodetype" => match find(operand(0)) {
                Some(node) => {
                    writeln!(out, "{}", node.node_type)?;
                    Ok(0)
                }
                None => bad_name(out),
            },
            "nodeweight" => match find(operand(0)) {
                Some(_) => {
                    writeln!(out, "100")?;
                    Ok(0)
                }
                None => bad_name(out),
            },
            "nodesite" => match find(operand(0)) {
                Some(_) => {
                    writeln!(out)?;
                    Ok(0)
                }
                None => bad_name(out),
            },
            "listhblinks" => match find(operand(0)) {
                Some(node) => {
                    for link in &node.links {
                        if options.verbose {
                            writeln!(out, "\t{}\t{}", link.name, link_word(link.up))?;
                        } else {
                            writeln!(out, "\t{}", link.name)?;
                        }
                    }
                    Ok(0)
                }
                None => bad_name(out),
            },
            "hblinkstatus" => {
                let link =
                    find(operand(0)).and_then(|n| n.links.iter().find(|l| l.name == operand(1)));
                match link {
                    Some(link) => {
                        if options.sentences {
                            writeln!(
                                out,
                                "The node {}'s heartbeat link {} is {}",
                                operand(0),
                                link.name,
                                link_word(link.up)
                            )?;
                        } else {
                            writeln!(out, "{}", link_word(link.up))?;
                        }
                        Ok(if link.up { 0 } else { 1 })
                    }
                    None => bad_name(out),
                }
            }
            "hbparameter" => {
                let name = operand(0);
                match report.parameters.get(name).filter(|_| options.ping_only) {
                    Some(value) => {
                        if options.sentences {
                            writeln!(out, "Heartbeat parameter {name}'s value: {value}")?;
                        } else {
                            writeln!(out, "{value}")?;
                        }
                        Ok(0)
                    }
                    None => {
                        eprintln!("cl_status: ERROR: Cannot get parameter {name}'s value");
                        eprintln!("cl_status: ERROR: REASON: ");
                        Ok(1)
                    }
                }
            }
            "rscstatus" => {
                let word = report.failover.rsc_status.as_str();
                if options.sentences {
                    writeln!(out, "This node is holding {word} resources.")?;
                } else {
                    writeln!(out, "{word}")?;
                }
                Ok(0)
            }
            _ => Ok(RC_BAD_NAME),
        }
    })();
    result.unwrap_or(1)
}

/// Heartbeat walks its node table from the last configured node to the first.
fn listing_order(report: &StatusReport) -> Vec<&NodeState> {
    report.membership.nodes.iter().rev().collect()
}

fn write_verbose_nodes(out: &mut dyn std::io::Write, nodes: &[&NodeState]) -> std::io::Result<()> {
    for node in nodes {
        writeln!(out)?;
        writeln!(
            out,
            "{}\t{}\t(nodetype: {})",
            node.name,
            node.status.as_str(),
            node.node_type
        )?;
        for link in &node.links {
            writeln!(out, "\t{}\t{}", link.name, link_word(link.up))?;
        }
    }
    Ok(())
}

fn link_word(up: bool) -> &'static str {
    if up { "up" } else { "dead" }
}

fn bad_name(out: &mut dyn std::io::Write) -> std::io::Result<u8> {
    writeln!(out, "Error. May be due to incorrect node name")?;
    Ok(RC_BAD_NAME)
}

#[cfg(test)]
mod tests {
    //! Outputs compared with Heartbeat 3.0.6's own `cl_status` on the captured lab cluster
    //! (fixture `cl_status-hb_standby.txt`: nodes hb1 and hb2, bcast eth0, both active).

    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::config::{self, HaFiles};
    use crate::failover::{FailoverStatus, ResourceStatus};
    use crate::membership::{LinkState, MembershipCounters, MembershipStatus};

    fn node(name: &str, status: NodeStatus, link_up: bool) -> NodeState {
        NodeState {
            name: name.into(),
            node_type: "normal".into(),
            status,
            generation: 1,
            last_seq: None,
            deadtime_ms: 1000,
            missing: 0,
            links: vec![LinkState {
                name: "eth0".into(),
                up: link_up,
            }],
        }
    }

    fn lab_report(hb2: NodeStatus) -> StatusReport {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
        let ha_cf = std::fs::read_to_string(fixtures.join("bcast-sha1.ha.cf")).unwrap();
        let authkeys = std::fs::read_to_string(fixtures.join("bcast-sha1.authkeys")).unwrap();
        let files = HaFiles {
            dir: Path::new("/etc/ha.d"),
            ha_cf: &ha_cf,
            authkeys: &authkeys,
            haresources: None,
        };
        let config = config::parse_ha_files(&files, &crate::registry::builtin()).unwrap();
        StatusReport {
            version: "0.1.0".into(),
            membership: MembershipStatus {
                local_node: "hb1".into(),
                local_status: NodeStatus::Active,
                generation: 1,
                communications_up: true,
                flow_control: true,
                clients_paused: false,
                nodes: vec![
                    node("hb1", NodeStatus::Active, true),
                    node("hb2", hb2, hb2 != NodeStatus::Dead),
                ],
                counters: MembershipCounters::default(),
            },
            failover: FailoverStatus {
                local_node: "hb1".into(),
                rsc_status: ResourceStatus::None,
                auto_failback: "on".into(),
                groups: Vec::new(),
                fencing: Vec::new(),
            },
            drops: BTreeMap::new(),
            parameters: config.recorded_parameters(),
        }
    }

    fn run(report: &StatusReport, args: &[&str]) -> (String, u8) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let options = parse_options(&args[1..]);
        let mut out = Vec::new();
        let rc = answer(&args[0], &options, report, &mut out);
        (String::from_utf8(out).unwrap(), rc)
    }

    #[test]
    fn node_queries_match_heartbeat() {
        let report = lab_report(NodeStatus::Active);
        assert_eq!(run(&report, &["listnodes"]), ("hb2\nhb1\n".into(), 0));
        assert_eq!(run(&report, &["listnodes", "-n"]), ("hb2\nhb1\n".into(), 0));
        assert_eq!(run(&report, &["listnodes", "-p"]), ("".into(), 0));
        assert_eq!(run(&report, &["nodestatus", "hb2"]), ("active\n".into(), 0));
        assert_eq!(run(&report, &["nodetype", "hb1"]), ("normal\n".into(), 0));
        assert_eq!(run(&report, &["nodeweight", "hb1"]), ("100\n".into(), 0));
        assert_eq!(run(&report, &["nodesite", "hb1"]), ("\n".into(), 0));
        let bad = ("Error. May be due to incorrect node name\n".to_string(), 11);
        assert_eq!(run(&report, &["nodestatus", "nosuchnode"]), bad);
        assert_eq!(run(&report, &["nodetype", "normal"]), bad);
        assert_eq!(
            run(&report, &["nodestatus", "hb2", "-m", "hb2 is up"]),
            ("The cluster node hb2 is active\n".into(), 0)
        );
    }

    #[test]
    fn verbose_listings_match_heartbeat() {
        let report = lab_report(NodeStatus::Active);
        let nodes = "\nhb2\tactive\t(nodetype: normal)\n\teth0\tup\n\nhb1\tactive\t(nodetype: normal)\n\teth0\tup\n";
        assert_eq!(run(&report, &["listnodes", "-v"]), (nodes.into(), 0));
        let (out, rc) = run(&report, &["hbstatus", "-v"]);
        assert_eq!(rc, 0);
        assert!(out.starts_with("version:\tvigil 0.1.0\nmanaged by:\t\"haresources\"\n"));
        assert!(out.ends_with(nodes));
        assert_eq!(
            run(&report, &["listhblinks", "hb1"]),
            ("\teth0\n".into(), 0)
        );
        assert_eq!(
            run(&report, &["listhblinks", "-v", "hb2"]),
            ("\teth0\tup\n".into(), 0)
        );
        assert_eq!(
            run(&report, &["hblinkstatus", "hb2", "eth0"]),
            ("up\n".into(), 0)
        );
    }

    #[test]
    fn a_dead_node_and_its_link_answer_dead_with_exit_code_one() {
        let report = lab_report(NodeStatus::Dead);
        assert_eq!(run(&report, &["nodestatus", "hb2"]), ("dead\n".into(), 1));
        assert_eq!(
            run(&report, &["hblinkstatus", "hb2", "eth0"]),
            ("dead\n".into(), 1)
        );
        assert_eq!(run(&report, &["hblinkstatus", "hb2", "eth9"]).1, 11);
    }

    #[test]
    fn parameters_are_answered_as_written_or_as_heartbeat_defaults() {
        let report = lab_report(NodeStatus::Active);
        for (name, value) in [
            ("keepalive", "200ms"),
            ("deadtime", "1"),
            ("warntime", "500ms"),
            ("initdead", "2"),
            ("udpport", "694"),
            ("auto_failback", "on"),
            ("crm", "off"),
            ("logfile", "/var/log/hb/ha-log"),
            ("baud", "19200"),
            ("hopfudge", "1"),
        ] {
            assert_eq!(
                run(&report, &["hbparameter", "-p", name]),
                (format!("{value}\n"), 0),
                "parameter {name}"
            );
        }
        assert_eq!(run(&report, &["hbparameter", "-p", "node"]), ("".into(), 1));
    }

    #[test]
    fn rscstatus_says_none_on_a_node_that_holds_nothing() {
        let mut report = lab_report(NodeStatus::Active);
        assert_eq!(run(&report, &["rscstatus"]), ("none\n".into(), 0));
        report.failover.rsc_status = ResourceStatus::All;
        assert_eq!(run(&report, &["rscstatus"]), ("all\n".into(), 0));
        assert_eq!(
            run(&report, &["rscstatus", "-m"]),
            ("This node is holding all resources.\n".into(), 0)
        );
    }
}
