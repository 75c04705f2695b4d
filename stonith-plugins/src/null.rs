//! `null`: a device that pretends to reset the hosts of its `hostlist`, for tests and demos.
//!
//! Like cluster-glue's, it logs `Host null-reset: HOST` and succeeds at once for any request
//! kind. Unlike cluster-glue's, which "resets" any host at all, it refuses a host that is not
//! in its list (`S_BADHOST`), so a test cluster fails the same way a real one would.

use std::sync::Arc;

use vigil_plugin_api::{
    DeviceInfo, ResetRequest, StonithCode, StonithDevice, StonithError, StonithFactory,
};

use crate::device_log::{self, Severity};
use crate::hostlist::{self, HOSTLIST, HOSTLIST_PARAMETERS_XML};
use crate::{SingleTypeFactory, built_in_device};

/// The device type.
pub const TYPE: &str = "null";

/// cluster-glue's device id, the start of its messages.
const DEVICE_ID: &str = "NULL STONITH device";

/// What `stonith -h` says about it.
const DESCRIPTION: &str = "Dummy (do-nothing) STONITH device\nFOR TESTING ONLY!";

/// A `null` device.
#[derive(Debug, Default)]
pub struct NullDevice {
    /// The hosts it pretends to reset; `None` until configured.
    hosts: Option<Vec<String>>,
}

impl NullDevice {
    fn hosts_or_invalid(&self) -> Result<&[String], StonithError> {
        self.hosts
            .as_deref()
            .ok_or_else(|| hostlist::not_configured(DEVICE_ID))
    }
}

impl StonithDevice for NullDevice {
    fn config_names(&self) -> Vec<String> {
        vec![HOSTLIST.to_string()]
    }

    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError> {
        let hosts = hostlist::configured_hosts(
            DEVICE_ID,
            params,
            StonithCode::Invalid,
            StonithCode::BadConfig,
        )?;
        self.hosts = Some(hosts);
        Ok(())
    }

    fn status(&mut self) -> Result<(), StonithError> {
        self.hosts_or_invalid().map(|_| ())
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        self.hosts_or_invalid().map(<[String]>::to_vec)
    }

    fn reset(&mut self, _request: ResetRequest, host: &str) -> Result<(), StonithError> {
        let host = host.to_lowercase();
        hostlist::check_controls(DEVICE_ID, self.hosts_or_invalid()?, &host)?;
        device_log::log(Severity::Info, &format!("Host null-reset: {host}"));
        Ok(())
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        match what {
            DeviceInfo::DeviceId => Some(DEVICE_ID.to_string()),
            DeviceInfo::DeviceName => Some("(nil)".to_string()),
            DeviceInfo::Description => Some(DESCRIPTION.to_string()),
            DeviceInfo::ConfigXml => Some(HOSTLIST_PARAMETERS_XML.to_string()),
            DeviceInfo::Url => None,
        }
    }
}

/// The `null` plugin.
pub fn factory() -> Arc<dyn StonithFactory> {
    Arc::new(SingleTypeFactory {
        info: built_in_device(TYPE, "Dummy (do-nothing) STONITH device, for testing only"),
        make: Box::new(|| Box::new(NullDevice::default())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(hostlist: &str) -> NullDevice {
        let mut device = NullDevice::default();
        device
            .configure(&[(HOSTLIST.to_string(), hostlist.to_string())])
            .unwrap();
        device
    }

    #[test]
    fn resets_listed_hosts_whatever_the_request() {
        let mut device = configured("hb1 HB2");
        assert_eq!(device.hosts().unwrap(), ["hb1", "hb2"]);
        assert_eq!(device.status(), Ok(()));
        for request in [
            ResetRequest::Reset,
            ResetRequest::PowerOn,
            ResetRequest::PowerOff,
        ] {
            assert_eq!(device.reset(request, "hb2"), Ok(()));
        }
    }

    #[test]
    fn an_unlisted_host_is_bad_host() {
        let err = configured("hb1 hb2")
            .reset(ResetRequest::Reset, "hb9")
            .unwrap_err();
        assert_eq!(err.code, StonithCode::BadHost);
    }

    #[test]
    fn parameters_are_checked_as_cluster_glue_checks_them() {
        let mut device = NullDevice::default();
        let missing = device
            .configure(&[("ipaddr".to_string(), "x".to_string())])
            .unwrap_err();
        assert_eq!(missing.code, StonithCode::Invalid);
        let empty = device
            .configure(&[(HOSTLIST.to_string(), String::new())])
            .unwrap_err();
        assert_eq!(empty.code, StonithCode::BadConfig);
    }

    #[test]
    fn nothing_but_info_works_before_configure() {
        let mut device = NullDevice::default();
        assert_eq!(device.status().unwrap_err().code, StonithCode::Invalid);
        assert_eq!(device.hosts().unwrap_err().code, StonithCode::Invalid);
        assert_eq!(
            device.reset(ResetRequest::Reset, "hb1").unwrap_err().code,
            StonithCode::Invalid
        );
        assert_eq!(
            device.info(DeviceInfo::DeviceId).as_deref(),
            Some("NULL STONITH device")
        );
        assert_eq!(device.info(DeviceInfo::Url), None);
    }
}
