//! The `StonithDevice` contract: one fencing device, shaped like cluster-glue's `stonith2`
//! plugin type so that every flag of the `stonith` tool maps onto one call.
//!
//! A device only knows how to reach its hardware (or its operator); it never decides whom to
//! fence or when, and it owns no retry policy: the daemon's failover machine decides, and
//! its fencing runner calls the device off the core thread with a deadline. Calls may block.
//! Also here: the `S_*` result codes and the positional parameter string of "stonith 1"
//! (`stonith_host` lines, `stonith -p`, the first line of a `-F` file), shared by every
//! device and tool.

use std::fmt;

use thiserror::Error;

use crate::PluginInfo;

/// cluster-glue's `S_*` failure codes, which are also the `stonith` tool's exit codes
/// (`S_OK`, 0, is `Ok(())`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StonithCode {
    /// `S_BADCONFIG` (1): the parameters do not fit the device.
    BadConfig = 1,
    /// `S_ACCESS` (2): the device refused us (login, permission).
    Access = 2,
    /// `S_INVAL` (3): the request makes no sense for this device (power on with `ssh`), or
    /// the device is not configured yet.
    Invalid = 3,
    /// `S_BADHOST` (4): the device does not control that host.
    BadHost = 4,
    /// `S_RESETFAIL` (5): the reset was tried and did not happen (or was refused by the
    /// operator, for meatware).
    ResetFailed = 5,
    /// `S_TIMEOUT` (6): the device did not answer in time.
    Timeout = 6,
    /// `S_ISOFF` (7): the host is powered off.
    IsOff = 7,
    /// `S_OOPS` (8): anything else, including an unknown device type.
    Oops = 8,
}

impl StonithCode {
    /// The number cluster-glue uses, and the `stonith` tool's exit status.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The code for a number (an `external/*` script's raw status, say); `None` for 0 (S_OK).
    /// Numbers cluster-glue does not define become `Oops`.
    pub fn from_number(number: i32) -> Option<StonithCode> {
        Some(match number {
            0 => return None,
            1 => StonithCode::BadConfig,
            2 => StonithCode::Access,
            3 => StonithCode::Invalid,
            4 => StonithCode::BadHost,
            5 => StonithCode::ResetFailed,
            6 => StonithCode::Timeout,
            7 => StonithCode::IsOff,
            _ => StonithCode::Oops,
        })
    }

    /// cluster-glue's name for it (`S_BADHOST`), for logs.
    pub fn name(self) -> &'static str {
        match self {
            StonithCode::BadConfig => "S_BADCONFIG",
            StonithCode::Access => "S_ACCESS",
            StonithCode::Invalid => "S_INVAL",
            StonithCode::BadHost => "S_BADHOST",
            StonithCode::ResetFailed => "S_RESETFAIL",
            StonithCode::Timeout => "S_TIMEOUT",
            StonithCode::IsOff => "S_ISOFF",
            StonithCode::Oops => "S_OOPS",
        }
    }
}

impl fmt::Display for StonithCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A device call failed: the code callers act on and a message for the operator.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{message} ({code})")]
pub struct StonithError {
    pub code: StonithCode,
    pub message: String,
}

impl StonithError {
    pub fn new(code: StonithCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What a reset request asks for (`req_reset`'s op; `stonith -T`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetRequest {
    /// Reset the host any way the device can (power cycle, reboot): op 1, the default.
    Reset,
    /// Power the host on: op 2.
    PowerOn,
    /// Power the host off: op 3.
    PowerOff,
}

impl ResetRequest {
    /// The word `stonith -T` takes and the `external/*` script protocol uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetRequest::Reset => "reset",
            ResetRequest::PowerOn => "on",
            ResetRequest::PowerOff => "off",
        }
    }

    /// The request named `word` (`reset`, `on`, `off`).
    pub fn from_word(word: &str) -> Option<ResetRequest> {
        match word {
            "reset" => Some(ResetRequest::Reset),
            "on" => Some(ResetRequest::PowerOn),
            "off" => Some(ResetRequest::PowerOff),
            _ => None,
        }
    }
}

impl fmt::Display for ResetRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `get_info` can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceInfo {
    /// `ST_CONF_XML`: the `<parameters>` XML of the meta-data (`stonith -m`).
    ConfigXml,
    /// `ST_DEVICEID`: the device's short identity.
    DeviceId,
    /// `ST_DEVICENAME`: the name of this device (only once configured).
    DeviceName,
    /// `ST_DEVICEDESCR`: the description `stonith -h` prints.
    Description,
    /// `ST_DEVICEURL`: where to read more.
    Url,
}

/// One fencing device. Created unconfigured by its [`StonithFactory`]; every call but
/// `config_names` and `info` needs a successful `configure` first (else `Invalid`).
/// Calls may block (a serial switch, an operator): the daemon calls them off its core
/// thread, under a deadline.
pub trait StonithDevice: Send {
    /// The parameter names, in the order a positional string assigns them (`hostlist`).
    fn config_names(&self) -> Vec<String>;

    /// Finishes construction with `name=value` parameters (every config name given once);
    /// `BadConfig` when one is missing or wrong.
    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError>;

    /// Whether the device is reachable and working (`stonith -S`).
    fn status(&mut self) -> Result<(), StonithError>;

    /// The hosts this device can reset (`stonith -l`), lower case.
    fn hosts(&mut self) -> Result<Vec<String>, StonithError>;

    /// Resets, powers on or powers off `host` (lower case). A host the device does not
    /// control is `BadHost`.
    fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError>;

    /// Descriptive text; `None` when the device has none of that kind (or, for the device
    /// name, is not configured yet).
    fn info(&mut self, what: DeviceInfo) -> Option<String>;
}

/// Creates devices of one plugin. A plugin provides one device type (`null`) or a family
/// of them (`external`, one `external/NAME` per script).
pub trait StonithFactory: Send + Sync {
    /// The plugin's identity; its name is the type, or the family (`external`).
    fn info(&self) -> &PluginInfo;

    /// The device types it provides, as `stonith -L` lists them: its own name, or for a
    /// family one `family/NAME` per member found now.
    fn types(&self) -> Vec<String>;

    /// A new unconfigured device of `device_type` (its name, or `family/NAME`).
    fn create(&self, device_type: &str) -> Result<Box<dyn StonithDevice>, StonithError>;
}

/// Assigns a positional parameter string ("stonith 1" syntax) to `names`: split on
/// whitespace, one token per name in order, the last name taking the whole rest of the
/// string, spaces included. Too few tokens is `BadConfig`, naming what is missing.
pub fn positional_params(
    names: &[String],
    text: &str,
) -> Result<Vec<(String, String)>, StonithError> {
    let mut params = Vec::with_capacity(names.len());
    let mut rest = text.trim_start();
    for (index, name) in names.iter().enumerate() {
        if rest.is_empty() {
            return Err(StonithError::new(
                StonithCode::BadConfig,
                format!(
                    "expected {} parameter(s) ({}), got {}",
                    names.len(),
                    names.join(" "),
                    index
                ),
            ));
        }
        let value = if index + 1 == names.len() {
            let value = rest.trim_end();
            rest = "";
            value
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (value, after) = rest.split_at(end);
            rest = after.trim_start();
            value
        };
        params.push((name.clone(), value.to_string()));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_last_name_takes_the_rest_of_the_string() {
        let params = positional_params(&names(&["hostlist"]), "  hb1 hb2  hb3 ").unwrap();
        assert_eq!(
            params,
            [("hostlist".to_string(), "hb1 hb2  hb3".to_string())]
        );
        let params = positional_params(
            &names(&["ipaddr", "login", "password"]),
            "10.0.0.1 root s e c",
        )
        .unwrap();
        assert_eq!(params[0].1, "10.0.0.1");
        assert_eq!(params[1].1, "root");
        assert_eq!(params[2].1, "s e c");
    }

    #[test]
    fn too_few_tokens_is_a_bad_config_naming_what_is_expected() {
        let err = positional_params(&names(&["ipaddr", "login"]), "10.0.0.1").unwrap_err();
        assert_eq!(err.code, StonithCode::BadConfig);
        assert_eq!(err.message, "expected 2 parameter(s) (ipaddr login), got 1");
        assert!(positional_params(&[], "").unwrap().is_empty());
    }

    #[test]
    fn codes_round_trip_through_their_numbers() {
        for number in 1..=8 {
            assert_eq!(StonithCode::from_number(number).unwrap().number(), number);
        }
        assert_eq!(StonithCode::from_number(0), None);
        assert_eq!(StonithCode::from_number(42), Some(StonithCode::Oops));
        assert_eq!(ResetRequest::from_word("off"), Some(ResetRequest::PowerOff));
        assert_eq!(ResetRequest::from_word("cycle"), None);
    }
}
