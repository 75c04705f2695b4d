//! The `hostlist` parameter and the host checks that `null`, `meatware` and `ssh` share.
//!
//! A host list is split as cluster-glue splits it (blanks and commas) and lower-cased, since
//! requests arrive lower-cased. This module also holds the parameter lookup with
//! cluster-glue's answer for a missing parameter, the refusal of a host a device does not
//! control (logged as cluster-glue's `ssh` device logs it) and the `<parameters>` XML of a
//! device whose only parameter is `hostlist`. It resets nothing.

use vigil_plugin_api::{StonithCode, StonithError};

use crate::device_log::{self, Severity};

/// The parameter naming the hosts a device controls.
pub const HOSTLIST: &str = "hostlist";

/// What separates host names in a host list (cluster-glue's `StringToHostList`).
const HOST_DELIMITERS: &[char] = &[' ', '\t', '\n', '\x0c', '\r', ','];

/// The `<parameters>` block of a device whose only parameter is `hostlist`, byte for byte
/// what Debian's cluster-glue 1.0.12 devices return (`stonith -m` prints it).
pub const HOSTLIST_PARAMETERS_XML: &str = "<parameters><parameter name=\"hostlist\" unique=\"0\" required=\"1\"><content type=\"string\" />\n<shortdesc lang=\"en\">\nHostlist</shortdesc>\n<longdesc lang=\"en\">\nThe list of hosts that the STONITH device controls</longdesc>\n</parameter>\n</parameters>";

/// The host names in `text`, lower case, in order.
pub fn parse_host_list(text: &str) -> Vec<String> {
    text.split(HOST_DELIMITERS)
        .filter(|name| !name.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The value given for `name`, the first one if given twice.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(given, _)| given == name)
        .map(|(_, value)| value.as_str())
}

/// The `hostlist` of `params`, parsed. A missing parameter is `missing_code` (cluster-glue's
/// devices differ: `S_INVAL` for most, `S_OOPS` for `ssh`); a list naming no host is
/// `empty_code`.
pub fn configured_hosts(
    device_id: &str,
    params: &[(String, String)],
    missing_code: StonithCode,
    empty_code: StonithCode,
) -> Result<Vec<String>, StonithError> {
    let Some(text) = param(params, HOSTLIST) else {
        return Err(StonithError::new(
            missing_code,
            format!("{device_id}: missing parameter `{HOSTLIST}` (the hosts it may reset)"),
        ));
    };
    let hosts = parse_host_list(text);
    if hosts.is_empty() {
        return Err(StonithError::new(
            empty_code,
            format!(
                "{device_id}: `{HOSTLIST}` names no host; give the hosts it may reset, separated by blanks or commas"
            ),
        ));
    }
    Ok(hosts)
}

/// The error for a call made before a successful `configure`.
pub fn not_configured(device_id: &str) -> StonithError {
    StonithError::new(
        StonithCode::Invalid,
        format!("{device_id} is not configured yet"),
    )
}

/// Checks that `host` is one of `hosts` (case-insensitively); otherwise logs and returns
/// cluster-glue's refusal, `S_BADHOST`.
pub fn check_controls(device_id: &str, hosts: &[String], host: &str) -> Result<(), StonithError> {
    if hosts.iter().any(|known| known.eq_ignore_ascii_case(host)) {
        return Ok(());
    }
    Err(refuse_host(device_id, host))
}

/// Logs and returns the refusal of a host the device does not control.
pub fn refuse_host(device_id: &str, host: &str) -> StonithError {
    let message = format!("{device_id} doesn't control host [{host}]");
    device_log::log(Severity::Critical, &message);
    StonithError::new(StonithCode::BadHost, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn host_lists_split_on_blanks_and_commas_and_are_lower_cased() {
        assert_eq!(
            parse_host_list(" hb1,HB2\tHb3\n, ,hb4 "),
            ["hb1", "hb2", "hb3", "hb4"]
        );
        assert!(parse_host_list(" , ").is_empty());
    }

    #[test]
    fn missing_and_empty_host_lists_get_the_codes_asked_for() {
        let missing = configured_hosts(
            "D",
            &params(&[("ipaddr", "x")]),
            StonithCode::Invalid,
            StonithCode::BadConfig,
        )
        .unwrap_err();
        assert_eq!(missing.code, StonithCode::Invalid);
        assert!(missing.message.contains("missing parameter `hostlist`"));
        let empty = configured_hosts(
            "D",
            &params(&[("hostlist", " ")]),
            StonithCode::Oops,
            StonithCode::Oops,
        )
        .unwrap_err();
        assert_eq!(empty.code, StonithCode::Oops);
        assert_eq!(
            configured_hosts(
                "D",
                &params(&[("hostlist", "a b")]),
                StonithCode::Invalid,
                StonithCode::BadConfig
            )
            .unwrap(),
            ["a", "b"]
        );
    }

    #[test]
    fn an_unlisted_host_is_refused_as_bad_host_naming_both() {
        let hosts = parse_host_list("hb1 hb2");
        assert!(check_controls("NULL STONITH device", &hosts, "HB2").is_ok());
        let err = check_controls("NULL STONITH device", &hosts, "hb9").unwrap_err();
        assert_eq!(err.code, StonithCode::BadHost);
        assert_eq!(
            err.message,
            "NULL STONITH device doesn't control host [hb9]"
        );
    }
}
