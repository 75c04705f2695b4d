//! The line syntax of Heartbeat's ha.cf (spec §3.1): comments, the directive word, the rest.
//!
//! Owns only how a line is cut up; what each directive means lives in `draft`, so the YAML
//! front end shares it. Reads no file: it gets the text and the name to put in messages.

use vigil_plugin_api::Registry;

use super::draft::{ClusterDraft, Settings, is_delimiter};
use super::error::ConfigError;

/// What separates the directive word from its value.
fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// Reads the text of a ha.cf named `file` (used in messages as `file:line`) into checked
/// settings. Media lines are checked by their plugins in `registry`.
pub(crate) fn parse(text: &str, file: &str, registry: &Registry) -> Result<Settings, ConfigError> {
    let mut draft = ClusterDraft::new(registry, file);
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.trim_start_matches(is_whitespace);
        // A `#` starts a comment anywhere, and a stray carriage return ends the line, as in
        // Heartbeat's reader.
        let line = line.split('#').next().unwrap_or_default();
        let line = line.split('\r').next().unwrap_or_default();
        if line.is_empty() {
            continue;
        }
        let (directive, rest) = line.split_once(is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim_start_matches(is_delimiter);
        draft.directive(directive, rest, &format!("{file}:{}", index + 1))?;
    }
    draft.finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::draft::tests::test_registry;
    use super::super::model::{AutoFailback, GenerationMethod, MsgFormat, StonithParams};
    use super::*;

    const MINIMAL: &str = "node hb1 hb2\nbcast eth0\n";

    fn parse_ok(text: &str) -> Settings {
        match parse(text, "ha.cf", &test_registry()) {
            Ok(settings) => settings,
            Err(err) => panic!("{text:?} was refused: {err}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse(text, "ha.cf", &test_registry()) {
            Ok(settings) => panic!("{text:?} was accepted: {settings:?}"),
            Err(err) => err.to_string(),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn defaults_follow_heartbeat() {
        let settings = parse_ok(MINIMAL);
        assert_eq!(settings.timing.keepalive, ms(1000));
        assert_eq!(settings.timing.deadtime, ms(30_000));
        assert_eq!(settings.timing.warntime, ms(15_000));
        assert_eq!(settings.timing.initdead, ms(30_000));
        assert_eq!(settings.timing.deadping, ms(30_000));
        assert_eq!(settings.timing.max_rexmit_delay, ms(250));
        assert_eq!(settings.udp_port, 694);
        assert_eq!(settings.hopfudge, 1);
        assert_eq!(settings.msgfmt, MsgFormat::Classic);
        assert_eq!(settings.generation_method, GenerationMethod::File);
        assert_eq!(settings.auto_failback, AutoFailback::Legacy);
        assert!(settings.manages_resources);
        assert!(settings.parameters.is_empty());
        assert!(settings.ignored_directives.is_empty());
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_anywhere() {
        let settings = parse_ok(
            "# a comment\n\n   \t\nnode hb1 # trailing comment\r\n  node hb2#glued\nbcast eth0\n",
        );
        assert_eq!(settings.nodes, ["hb1", "hb2"]);
    }

    #[test]
    fn option_values_split_on_whitespace_and_commas() {
        let settings = parse_ok("node a b,c ,d\nbcast eth0\n");
        assert_eq!(settings.nodes, ["a", "b", "c", "d"]);
    }

    #[test]
    fn node_names_are_lower_cased_and_duplicates_refused() {
        assert_eq!(parse_ok("node HB1 Hb2\nbcast eth0\n").nodes, ["hb1", "hb2"]);
        assert_eq!(
            parse_err("node hb1 hb2\nbcast eth0\nnode HB1\n"),
            "ha.cf:3: node `hb1` given twice (first at ha.cf:1)"
        );
    }

    #[test]
    fn per_token_media_give_one_medium_per_interface() {
        let settings = parse_ok("node hb1\nbcast eth0 eth1,eth2\n");
        let args: Vec<&[String]> = settings.media.iter().map(|m| m.args.as_slice()).collect();
        assert_eq!(args, [["eth0"], ["eth1"], ["eth2"]]);
        assert!(
            settings
                .media
                .iter()
                .all(|m| m.kind == "bcast" && m.origin == "ha.cf:2")
        );
    }

    #[test]
    fn whole_line_media_keep_their_words_together() {
        let settings = parse_ok("node hb1\nmcast eth0 239.0.0.94 694 1 0\nucast eth0 198.18.0.2\n");
        assert_eq!(settings.media.len(), 2);
        assert_eq!(settings.media[0].kind, "mcast");
        assert_eq!(
            settings.media[0].args,
            ["eth0", "239.0.0.94", "694", "1", "0"]
        );
        assert_eq!(settings.media[1].args, ["eth0", "198.18.0.2"]);
        assert_eq!(settings.media[1].origin, "ha.cf:3");
    }

    #[test]
    fn the_old_udp_directive_means_bcast() {
        let settings = parse_ok("node hb1\nudp eth0\n");
        assert_eq!(settings.media[0].kind, "bcast");
    }

    #[test]
    fn media_carry_the_configured_udp_port() {
        let settings = parse_ok("udpport 7000\nnode hb1\nbcast eth0\n");
        assert_eq!(settings.udp_port, 7000);
        assert_eq!(settings.media[0].udp_port, 7000);
        assert_eq!(parse_ok(MINIMAL).media[0].udp_port, 694);
    }

    #[test]
    fn udpport_and_baud_after_a_medium_are_refused_naming_both_lines() {
        assert_eq!(
            parse_err("node hb1\nbcast eth0\nudpport 7000\n"),
            "ha.cf:3: udpport must come before the first medium (ha.cf:2)"
        );
        assert_eq!(
            parse_err("node hb1\nucast eth0 198.18.0.2\n\nbaud 19200\n"),
            "ha.cf:4: baud must come before the first medium (ha.cf:2)"
        );
    }

    #[test]
    fn a_medium_plugin_refusing_its_line_is_reported_with_the_line() {
        let err = parse_err("node hb1\nmcast eth0 239.0.0.94\n");
        assert!(
            err.starts_with("ha.cf:2: `mcast eth0 239.0.0.94`: expected"),
            "{err}"
        );
    }

    #[test]
    fn unknown_directives_are_refused_naming_the_media() {
        assert_eq!(
            parse_err("node hb1\nkeepalive_ms 200\n"),
            "ha.cf:2: unknown directive `keepalive_ms` (expected a ha.cf directive or a medium: \
             bcast, mcast, ucast)"
        );
    }

    #[test]
    fn ipv6_media_of_the_built_in_registry_are_whole_line_media() {
        let registry = crate::registry::builtin();
        let text = "node hb1\nudpport 7000\nmcast6 eth0 ff12::1:2:3:4 694 1 0\n\
                    ucast6 eth1 fe80::2%eth1 bind=fe80::1\n";
        let settings = parse(text, "ha.cf", &registry)
            .unwrap_or_else(|err| panic!("{text:?} was refused: {err}"));
        let media: Vec<(&str, &[String], u16, &str)> = settings
            .media
            .iter()
            .map(|m| {
                (
                    m.kind.as_str(),
                    m.args.as_slice(),
                    m.udp_port,
                    m.origin.as_str(),
                )
            })
            .collect();
        assert_eq!(
            media,
            [
                (
                    "mcast6",
                    &["eth0", "ff12::1:2:3:4", "694", "1", "0"].map(String::from)[..],
                    7000,
                    "ha.cf:3"
                ),
                (
                    "ucast6",
                    &["eth1", "fe80::2%eth1", "bind=fe80::1"].map(String::from)[..],
                    7000,
                    "ha.cf:4"
                ),
            ]
        );
        let refused = parse(
            "node hb1\nmcast6 eth0 ff0e::1 694 1 0\n",
            "ha.cf",
            &registry,
        )
        .expect_err("a global-scope group");
        assert!(
            refused
                .to_string()
                .starts_with("ha.cf:2: `mcast6 eth0 ff0e::1 694 1 0`: group `ff0e::1`: scope e"),
            "{refused}"
        );
    }

    #[test]
    fn heartbeat_media_missing_from_this_build_are_reported_as_unavailable() {
        for line in ["ping6 2001:2::fe", "hbaping fc0"] {
            let kind = line.split(' ').next().unwrap_or_default();
            assert_eq!(
                parse_err(&format!("node hb1\n{line}\n")),
                format!(
                    "ha.cf:2: medium `{kind}` is not available in this build (available: \
                     bcast, mcast, ucast)"
                )
            );
        }
    }

    #[test]
    fn times_accept_heartbeat_units() {
        let settings = parse_ok(&format!(
            "keepalive 200ms\ndeadtime 1.5\nwarntime 500000us\ninitdead 3\ndeadping 2000msec\n\
             max_rexmit_delay 400\n{MINIMAL}"
        ));
        assert_eq!(settings.timing.keepalive, ms(200));
        assert_eq!(settings.timing.deadtime, ms(1500));
        assert_eq!(settings.timing.warntime, ms(500));
        assert_eq!(settings.timing.initdead, ms(3000));
        assert_eq!(settings.timing.deadping, ms(2000));
        assert_eq!(settings.timing.max_rexmit_delay, ms(400));
    }

    #[test]
    fn unset_timers_are_derived_from_deadtime() {
        let settings = parse_ok(&format!("keepalive 1\ndeadtime 5\n{MINIMAL}"));
        assert_eq!(settings.timing.warntime, ms(2500));
        assert_eq!(settings.timing.initdead, ms(12_000));
        assert_eq!(settings.timing.deadping, ms(5000));
        let settings = parse_ok(&format!("deadtime 8\n{MINIMAL}"));
        assert_eq!(settings.timing.initdead, ms(16_000));
    }

    #[test]
    fn deadtime_must_exceed_twice_keepalive() {
        assert_eq!(
            parse_err(&format!("keepalive 250ms\ndeadtime 400ms\n{MINIMAL}")),
            "ha.cf:2: deadtime 400ms must be more than twice keepalive (250ms)"
        );
        assert_eq!(
            parse_err(&format!("keepalive 200ms\ndeadtime 400ms\n{MINIMAL}")),
            "ha.cf:2: deadtime 400ms must be more than twice keepalive (200ms)"
        );
        assert_eq!(
            parse_err(&format!("keepalive 20\n{MINIMAL}")),
            "ha.cf:1: keepalive 20s is too long: deadtime (30s, the default) must be more than \
             twice keepalive"
        );
        parse_ok(&format!("keepalive 200ms\ndeadtime 401ms\n{MINIMAL}"));
    }

    #[test]
    fn initdead_must_not_be_shorter_than_deadtime() {
        assert_eq!(
            parse_err(&format!("deadtime 10\ninitdead 5\n{MINIMAL}")),
            "ha.cf:2: initdead 5s must not be shorter than deadtime (10s)"
        );
        parse_ok(&format!("deadtime 10\ninitdead 10\n{MINIMAL}"));
    }

    #[test]
    fn deadping_must_exceed_twice_keepalive() {
        assert_eq!(
            parse_err(&format!("keepalive 1\ndeadping 2\n{MINIMAL}")),
            "ha.cf:2: deadping 2s must be more than twice keepalive (1s)"
        );
    }

    #[test]
    fn warntime_must_be_shorter_than_deadtime() {
        assert_eq!(
            parse_err(&format!("deadtime 10\nwarntime 10\n{MINIMAL}")),
            "ha.cf:2: warntime 10s must be shorter than deadtime (10s)"
        );
    }

    #[test]
    fn zero_keepalive_and_malformed_times_are_refused() {
        assert_eq!(
            parse_err("keepalive 0\n"),
            "ha.cf:1: keepalive `0` is not valid (expected a time above zero: a number in \
             seconds, or followed by ms or us)"
        );
        let err = parse_err("deadtime 10 minutes\n");
        assert!(
            err.starts_with("ha.cf:1: deadtime `minutes` is not valid (expected a time"),
            "{err}"
        );
    }

    #[test]
    fn a_directive_without_value_is_refused() {
        assert_eq!(
            parse_err("node\n"),
            "ha.cf:1: node needs a value (expected a node name without spaces or commas)"
        );
        assert_eq!(
            parse_err("node hb1\nbcast\n"),
            "ha.cf:2: bcast needs a value (expected at least one device)"
        );
    }

    #[test]
    fn every_cluster_needs_nodes_and_media() {
        assert_eq!(
            parse_err("bcast eth0\n"),
            "ha.cf: no nodes configured (expected at least one node)"
        );
        assert_eq!(
            parse_err("node hb1\n"),
            "ha.cf: no medium configured (expected at least one of: bcast, mcast, ucast)"
        );
    }

    #[test]
    fn typed_options_accept_their_words_only() {
        let settings = parse_ok(&format!(
            "msgfmt netstring\nhbgenmethod time\nhopfudge 3\nauto_failback ON\n{MINIMAL}"
        ));
        assert_eq!(settings.msgfmt, MsgFormat::Netstring);
        assert_eq!(settings.generation_method, GenerationMethod::Time);
        assert_eq!(settings.hopfudge, 3);
        assert_eq!(settings.auto_failback, AutoFailback::On);
        assert_eq!(
            parse_ok(&format!("auto_failback legacy\n{MINIMAL}")).auto_failback,
            AutoFailback::Legacy
        );
        assert_eq!(
            parse_ok(&format!("auto_failback no\n{MINIMAL}")).auto_failback,
            AutoFailback::Off
        );
        assert_eq!(
            parse_err("msgfmt binary\n"),
            "ha.cf:1: msgfmt `binary` is not valid (expected classic or netstring)"
        );
        assert_eq!(
            parse_err("hopfudge 256\n"),
            "ha.cf:1: hopfudge `256` is not valid (expected a whole number from 0 to 255)"
        );
        assert_eq!(
            parse_err("udpport 0\n"),
            "ha.cf:1: udpport `0` is not valid (expected a port number from 1 to 65535)"
        );
        assert_eq!(
            parse_err("auto_failback maybe\n"),
            "ha.cf:1: auto_failback `maybe` is not valid (expected on, off or legacy)"
        );
    }

    #[test]
    fn nice_failback_maps_to_auto_failback() {
        let on = parse_ok(&format!("nice_failback on\n{MINIMAL}"));
        assert_eq!(on.auto_failback, AutoFailback::Off);
        assert_eq!(
            on.parameters,
            [("auto_failback".to_string(), "off".to_string())]
        );
        let off = parse_ok(&format!("nice_failback off\n{MINIMAL}"));
        assert_eq!(off.auto_failback, AutoFailback::Legacy);
    }

    #[test]
    fn recorded_parameters_keep_the_last_value_as_written() {
        let settings = parse_ok(&format!(
            "keepalive 2\nkeepalive 200ms\ndeadtime 1,5\nlogfile /var/log/ha-log\n{MINIMAL}"
        ));
        assert_eq!(
            settings.parameters,
            [
                ("deadtime".to_string(), "5".to_string()),
                ("keepalive".to_string(), "200ms".to_string()),
                ("logfile".to_string(), "/var/log/ha-log".to_string()),
            ]
        );
        assert_eq!(settings.timing.deadtime, ms(5000));
    }

    #[test]
    fn ping_is_one_medium_per_host_and_ping_group_one_per_line() {
        let registry = crate::registry::builtin();
        let text = format!(
            "bcast eth0\nping 198.18.0.254 198.18.0.253\n\
             ping_group routers 198.18.0.251 198.18.0.252\n{MINIMAL}"
        );
        let settings = parse(&text, "ha.cf", &registry).unwrap_or_else(|err| panic!("{err}"));
        let media: Vec<(&str, Vec<&str>)> = settings
            .media
            .iter()
            .map(|m| (m.kind.as_str(), m.args.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            media[1..4],
            [
                ("ping", vec!["198.18.0.254"]),
                ("ping", vec!["198.18.0.253"]),
                (
                    "ping_group",
                    vec!["routers", "198.18.0.251", "198.18.0.252"]
                ),
            ]
        );
        let refused = parse(
            &format!("ping_group routers\n{MINIMAL}"),
            "ha.cf",
            &registry,
        )
        .expect_err("a group without hosts");
        assert_eq!(
            refused.to_string(),
            "ha.cf:1: `ping_group routers`: group `routers` has no host \
             (ping_group <name> <host> …)"
        );
    }

    #[test]
    fn baud_is_given_to_each_serial_medium_and_to_no_other() {
        let registry = crate::registry::builtin();
        let text = format!("baud 115200\nserial /dev/ttyS0, /dev/ttyS1\nbcast eth0\n{MINIMAL}");
        let settings = parse(&text, "ha.cf", &registry).unwrap_or_else(|err| panic!("{err}"));
        let media: Vec<(&str, Vec<&str>)> = settings
            .media
            .iter()
            .map(|m| (m.kind.as_str(), m.args.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            media[..3],
            [
                ("serial", vec!["/dev/ttyS0", "baud=115200"]),
                ("serial", vec!["/dev/ttyS1", "baud=115200"]),
                ("bcast", vec!["eth0"]),
            ]
        );
        assert!(settings.ignored_directives.is_empty());
        assert!(
            settings
                .parameters
                .contains(&("baud".to_string(), "115200".to_string()))
        );

        let settings = parse(&format!("serial /dev/ttyS0\n{MINIMAL}"), "ha.cf", &registry)
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            settings.media[0].args,
            ["/dev/ttyS0"],
            "the medium's default speed"
        );
    }

    #[test]
    fn directives_without_effect_are_checked_and_listed_as_ignored() {
        let settings = parse_ok(&format!(
            "logfile /var/log/hb/ha-log\nuse_logd no\ncrm off\nrealtime yes\n\
             logfacility local0\n\
             apiauth ipfail uid=hacluster\nstonith_host * null hb1 hb2\n\
             stonith external/ssh /etc/ha.d/stonith.cfg\nbaud 19200\nautojoin none\nenv FOO=bar\n{MINIMAL}"
        ));
        let ignored: Vec<(&str, &str)> = settings
            .ignored_directives
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            ignored,
            [
                ("logfile", "/var/log/hb/ha-log"),
                ("use_logd", "no"),
                ("crm", "off"),
                ("realtime", "yes"),
                ("logfacility", "local0"),
                ("autojoin", "none"),
                ("env", "FOO=bar"),
            ]
        );
        assert!(settings.manages_resources);
        assert_eq!(settings.api_auth.len(), 1);
        assert_eq!(settings.api_auth[0].client, "ipfail");
        assert_eq!(settings.api_auth[0].users, ["hacluster"]);
        assert!(settings.api_auth[0].groups.is_empty());
    }

    #[test]
    fn stonith_lines_become_devices_and_the_last_applicable_one_wins() {
        let settings = parse_ok(&format!(
            "stonith_host * null hb1 hb2\nstonith external/ssh /etc/ha.d/stonith.cfg\n\
             stonith_host HB2 meatware  hb1 hb2 \n{MINIMAL}"
        ));
        let lines: Vec<(Option<&str>, &str, &StonithParams)> = settings
            .stonith
            .iter()
            .map(|l| (l.node.as_deref(), l.device_type.as_str(), &l.params))
            .collect();
        assert_eq!(
            lines,
            [
                (None, "null", &StonithParams::Line("hb1 hb2".into())),
                (
                    None,
                    "external/ssh",
                    &StonithParams::File("/etc/ha.d/stonith.cfg".into())
                ),
                (
                    Some("hb2"),
                    "meatware",
                    &StonithParams::Line("hb1 hb2".into())
                ),
            ]
        );
        assert_eq!(settings.stonith[0].origin, "ha.cf:1");
        let err = parse_err(&format!("stonith_host hb9 null hb1\n{MINIMAL}"));
        assert!(err.contains("hb9"), "{err}");
        let err = parse_err(&format!("stonith_host *\n{MINIMAL}"));
        assert!(err.contains("stonith_host <host|*> <type>"), "{err}");
    }

    #[test]
    fn respawn_and_failfast_lines_become_programs_in_file_order() {
        let settings = parse_ok(&format!(
            "respawn root /usr/lib/heartbeat/ipfail\nfailfast  nobody\t/bin/sleep 30 # nap\n\
             respawn root /bin/sh -c 'exit 3'\n{MINIMAL}"
        ));
        let programs: Vec<(&str, &str, bool, &str)> = settings
            .clients
            .iter()
            .map(|c| {
                (
                    c.user.as_str(),
                    c.command.as_str(),
                    c.failfast,
                    c.origin.as_str(),
                )
            })
            .collect();
        assert_eq!(
            programs,
            [
                ("root", "/usr/lib/heartbeat/ipfail", false, "ha.cf:1"),
                ("nobody", "/bin/sleep 30", true, "ha.cf:2"),
                ("root", "/bin/sh -c 'exit 3'", false, "ha.cf:3"),
            ]
        );
        assert_eq!(settings.clients[1].path(), "/bin/sleep");
        assert!(settings.ignored_directives.is_empty());
    }

    #[test]
    fn a_program_for_an_unknown_user_is_refused_naming_the_line() {
        assert_eq!(
            parse_err(&format!("{MINIMAL}respawn no-such-user-vigil /bin/true\n")),
            "ha.cf:3: respawn: user `no-such-user-vigil` does not exist on this machine \
             (expected a user name from the password database, such as hacluster)"
        );
        let err = parse_err(&format!("failfast root\n{MINIMAL}"));
        assert!(
            err.starts_with("ha.cf:1: failfast `root` is not valid (expected `<user>"),
            "{err}"
        );
    }

    #[test]
    fn watchdog_names_one_device_and_is_recorded() {
        let settings = parse_ok(&format!("watchdog /dev/watchdog\n{MINIMAL}"));
        assert_eq!(
            settings.watchdog.as_deref(),
            Some(std::path::Path::new("/dev/watchdog"))
        );
        assert_eq!(
            settings.parameters,
            [("watchdog".to_string(), "/dev/watchdog".to_string())]
        );
        assert!(settings.ignored_directives.is_empty());
        assert_eq!(
            parse_err(&format!(
                "watchdog /dev/watchdog\n{MINIMAL}watchdog /dev/watchdog1\n"
            )),
            "ha.cf:4: watchdog given twice (first at ha.cf:1)"
        );
    }

    #[test]
    fn malformed_directives_without_effect_are_still_refused() {
        for (line, expected) in [
            (
                "use_logd maybe",
                "use_logd `maybe` is not valid (expected a boolean",
            ),
            (
                "respawn hacluster ipfail",
                "respawn `hacluster ipfail` is not valid (expected `<user> <absolute path",
            ),
            (
                "apiauth ipfail",
                "apiauth `ipfail` is not valid (expected `apiauth <client>",
            ),
            (
                "stonith null",
                "stonith `null` is not valid (expected `stonith <type> <config-file>`)",
            ),
            (
                "baud 12345",
                "baud `12345` is not valid (expected one of 9600",
            ),
            ("logfacility local9", "logfacility `local9` is not valid"),
            ("rtprio 100", "rtprio `100` is not valid"),
            ("env =x", "env `=x` is not valid (expected NAME=value)"),
            ("crm sometimes", "crm `sometimes` is not valid"),
            (
                "uuidfrom random",
                "uuidfrom `random` is not valid (expected file or nodename)",
            ),
        ] {
            let err = parse_err(&format!("{line}\n{MINIMAL}"));
            assert!(
                err.starts_with(&format!("ha.cf:1: {expected}")),
                "{line}: {err}"
            );
        }
    }

    #[test]
    fn once_only_directives_are_refused_when_repeated() {
        assert_eq!(
            parse_err("baud 9600\nbaud 19200\n"),
            "ha.cf:2: baud given twice (first at ha.cf:1)"
        );
        assert_eq!(
            parse_err("crm off\npacemaker off\n"),
            "ha.cf:2: crm/pacemaker given twice (first at ha.cf:1)"
        );
        assert_eq!(
            parse_err("crm on\ncrm_daemon_dir /usr/lib/pacemaker\n"),
            "ha.cf:2: crm_daemon_dir must come before crm/pacemaker (ha.cf:1)"
        );
    }

    #[test]
    fn crm_on_turns_resource_management_off() {
        let settings = parse_ok(&format!("crm respawn\n{MINIMAL}"));
        assert!(!settings.manages_resources);
        assert!(
            settings
                .parameters
                .contains(&("pacemaker".to_string(), "respawn".to_string()))
        );
    }

    #[test]
    fn autojoin_conflicts_with_haresources_management() {
        assert_eq!(
            parse_err(&format!("autojoin any\n{MINIMAL}")),
            "ha.cf:1: autojoin any cannot be used with haresources resource management (remove \
             autojoin, or turn `crm` on)"
        );
        parse_ok(&format!("crm on\nautojoin any\n{MINIMAL}"));
    }
}
