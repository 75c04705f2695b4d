//! `rps10`: Western Telematic's RPS-10M remote power switch on a serial line, one outlet per
//! host, behaving as cluster-glue's device of that name.
//!
//! Its one parameter, `serial_to_targets`, is `TTY NODE OUTLET [NODE OUTLET]…`: the serial
//! device, then up to ten hosts each with its outlet (`0`-`9`, or `*`/`A` for every outlet).
//! Each operation opens the line at 9600 8N1, flushes it, hangs up for two seconds (speed 0,
//! which drops DTR and makes the switch reset its serial interface), waits for
//! `RPS-10 Ready`, then sends the fixed password `^B^X^X^B^X^X`, the outlet and the command
//! (`T` toggle off and on, `0` off, `1` on) and a carriage return, and expects
//! `Plug N Off|On` and `Complete`, each line ending in CR/LF or LF/CR. `status` only waits
//! for `Ready`. A host not in the list is `S_BADHOST` before the line is touched; a switch
//! that stays silent is `S_TIMEOUT`. Unlike cluster-glue, no UUCP lock file is taken: the
//! port is opened for exclusive use instead.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serialport::{ClearBuffer, DataBits, FlowControl, Parity, SerialPort, StopBits, TTYPort};
use vigil_plugin_api::{
    DeviceInfo, ResetRequest, StonithCode, StonithDevice, StonithError, StonithFactory,
};

use crate::device_log::{self, Severity};
use crate::hostlist;
use crate::{SingleTypeFactory, built_in_device};

/// The device type.
pub const TYPE: &str = "rps10";

/// The one parameter: `TTY NODE OUTLET [NODE OUTLET]…`.
pub const SERIAL_TO_TARGETS: &str = "serial_to_targets";

/// cluster-glue's device id.
const DEVICE_ID: &str = "WTI RPS10 Power Switch";

/// The name cluster-glue's messages start with.
const PLUGIN_ID: &str = "WTI_RPS10";

/// What `stonith -h` says about it (cluster-glue's text ends with a newline).
const DESCRIPTION: &str = "Western Telematic Inc. (WTI) Remote Power Switch - RPS-10M.\n";

/// Byte for byte what Debian's cluster-glue 1.0.12 returns (`stonith -t rps10 -m`).
const PARAMETERS_XML: &str = "<parameters><parameter name=\"serial_to_targets\" unique=\"1\" required=\"1\"><content type=\"string\" />\n<shortdesc lang=\"en\">\nValue in the format \"serial_device remotenode outlet [remotenode outlet]...\"</shortdesc>\n<longdesc lang=\"en\">\nThe RPS-10 STONITH device configuration information in the format \"serial_device remotenode outlet [remotenode outlet]...\"</longdesc>\n</parameter>\n</parameters>";

/// The switch's fixed password, sent before every command.
const PASSWORD: &[u8] = &[2, 24, 24, 2, 24, 24];

/// One master switch addresses at most ten outlets.
const MAX_OUTLETS: usize = 10;

/// How long the line stays hung up (speed 0) before the switch is expected to be ready.
const HANG_UP_HOLD: Duration = Duration::from_secs(2);

/// How long the switch may take to say it is ready after the hang-up.
const READY_WITHIN: Duration = Duration::from_secs(12);

/// How long one byte of a command may take to be written.
const WRITE_WITHIN: Duration = Duration::from_secs(10);

/// The line endings the switch may send.
const LINE_ENDS: [&str; 2] = ["\n\r", "\r\n"];

/// The configuration: the serial line and who is on which outlet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SwitchConfig {
    /// The serial device (`/dev/ttyS0`).
    tty: String,
    /// Each host (lower case) with its outlet (`0`-`9` or `*`).
    outlets: Vec<(String, char)>,
}

/// Reads `serial_to_targets` as cluster-glue does: a host left without an outlet at the end
/// is ignored; `A` means `*`; no host at all is `S_BADCONFIG`.
fn parse_config(text: &str) -> Result<SwitchConfig, StonithError> {
    let bad = |message: String| {
        device_log::log(Severity::Critical, &message);
        StonithError::new(StonithCode::BadConfig, message)
    };
    let mut words = text.split([' ', '\t', '\n']).filter(|w| !w.is_empty());
    let Some(tty) = words.next() else {
        return Err(bad(format!(
            "{PLUGIN_ID}: Can't find serial device on config line '{text}'"
        )));
    };
    let mut outlets = Vec::new();
    while let (Some(node), Some(outlet)) = (words.next(), words.next()) {
        let id = match outlet.chars().next() {
            Some(c @ ('0'..='9' | '*')) => c,
            Some('A') => '*',
            _ => {
                return Err(bad(format!(
                    "{PLUGIN_ID}: the outlet_id {outlet} must be between 0 and 9 or '*' / 'A'"
                )));
            }
        };
        if outlets.len() >= MAX_OUTLETS {
            return Err(bad(format!(
                "{PLUGIN_ID}: Tried to configure too many controllers"
            )));
        }
        outlets.push((node.to_lowercase(), id));
    }
    if outlets.is_empty() {
        return Err(StonithError::new(
            StonithCode::BadConfig,
            format!("{PLUGIN_ID}: no `NODE OUTLET` pair after the serial device in '{text}'"),
        ));
    }
    Ok(SwitchConfig {
        tty: tty.to_string(),
        outlets,
    })
}

/// The serial line to the switch, open for one operation.
struct SwitchLine {
    /// The open port.
    port: TTYPort,
    /// Its path, for messages.
    tty: String,
}

impl SwitchLine {
    /// Opens the line at 9600 8N1 for exclusive use and flushes it.
    fn open(tty: &str) -> Result<SwitchLine, StonithError> {
        let port = serialport::new(tty, 9600)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open_native()
            .map_err(|err| {
                let message = format!("{PLUGIN_ID}: Can't open {tty} : {err}");
                device_log::log(Severity::Critical, &message);
                StonithError::new(StonithCode::Oops, message)
            })?;
        let line = SwitchLine {
            port,
            tty: tty.to_string(),
        };
        line.port
            .clear(ClearBuffer::All)
            .map_err(|err| line.failed(StonithCode::Oops, format!("Can't flush {tty} : {err}")))?;
        Ok(line)
    }

    fn failed(&self, code: StonithCode, what: String) -> StonithError {
        let message = format!("{PLUGIN_ID}: {what}");
        device_log::log(Severity::Critical, &message);
        StonithError::new(code, message)
    }

    /// Hangs the line up for `hold` (speed 0 drops DTR), then restores it and waits for
    /// `RPS-10 Ready`: the switch's serial interface is then in a known state.
    fn connect(&mut self, hold: Duration) -> Result<(), StonithError> {
        let fd = self.port.as_raw_fd();
        // SAFETY: termios is plain data for which all zeroes is a valid value.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr fills the termios it is given from an open descriptor.
        if unsafe { libc::tcgetattr(fd, &mut saved) } < 0 {
            let err = io::Error::last_os_error();
            return Err(self.failed(
                StonithCode::Oops,
                format!("Can't get attributes {} : {err}", self.tty),
            ));
        }
        let mut hung_up = saved;
        // SAFETY: these only write fields of the local termios and hand it to the kernel.
        let set = unsafe {
            libc::cfsetospeed(&mut hung_up, libc::B0);
            libc::cfsetispeed(&mut hung_up, libc::B0);
            libc::tcsetattr(fd, libc::TCSANOW, &hung_up)
        };
        if set < 0 {
            let err = io::Error::last_os_error();
            return Err(self.failed(
                StonithCode::Oops,
                format!("Can't hang up {} : {err}", self.tty),
            ));
        }
        thread::sleep(hold);
        // SAFETY: restores the settings read above on the same open descriptor.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) } < 0 {
            let err = io::Error::last_os_error();
            return Err(self.failed(
                StonithCode::Oops,
                format!("Can't set attributes {} : {err}", self.tty),
            ));
        }
        self.expect(&["RPS-10 Ready"], READY_WITHIN)?;
        self.expect(&LINE_ENDS, Duration::from_secs(2))?;
        Ok(())
    }

    /// Sends one command to one outlet.
    fn send(&mut self, outlet: char, command: char) -> Result<(), StonithError> {
        let mut message = PASSWORD.to_vec();
        message.extend(format!("{outlet}{command}\r").bytes());
        let deadline = Instant::now() + WRITE_WITHIN;
        let mut rest = &message[..];
        while !rest.is_empty() {
            match self.port.write(rest) {
                Ok(written) => rest = &rest[written..],
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::TimedOut
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::Interrupted
                    ) && Instant::now() < deadline => {}
                Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                    return Err(self.failed(
                        StonithCode::Timeout,
                        format!("Timeout writing to {}", self.tty),
                    ));
                }
                Err(err) => {
                    return Err(self.failed(
                        StonithCode::Oops,
                        format!("Error writing to  {} : {err}", self.tty),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads until one of `tokens` has arrived (the index of the one that did) or `within`
    /// passed (`S_TIMEOUT`). What comes before the token is skipped, as cluster-glue skips it.
    fn expect(&mut self, tokens: &[&str], within: Duration) -> Result<usize, StonithError> {
        let deadline = Instant::now() + within;
        let longest = tokens.iter().map(|t| t.len()).max().unwrap_or(0);
        let mut seen: Vec<u8> = Vec::with_capacity(longest);
        let mut byte = [0u8; 1];
        while Instant::now() < deadline {
            match self.port.read(&mut byte) {
                Ok(1) => {
                    if seen.len() == longest {
                        seen.remove(0);
                    }
                    seen.push(byte[0]);
                    if let Some(found) = tokens.iter().position(|t| seen.ends_with(t.as_bytes())) {
                        return Ok(found);
                    }
                }
                Ok(_) => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::TimedOut
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => {
                    return Err(self.failed(
                        StonithCode::Oops,
                        format!("Error reading from {} : {err}", self.tty),
                    ));
                }
            }
        }
        Err(self.failed(
            StonithCode::Timeout,
            format!(
                "no \"{}\" from {} within {} s",
                tokens.join("\" or \"").escape_debug(),
                self.tty,
                within.as_secs()
            ),
        ))
    }

    /// Expects the switch's report of one outlet (`Plug N Off|On`, line end).
    fn expect_plug(&mut self, state: &str) -> Result<(), StonithError> {
        const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        self.expect(&["Plug"], Duration::from_secs(5))?;
        self.expect(&DIGITS, Duration::from_secs(2))?;
        self.expect(&[state], Duration::from_secs(2))?;
        self.expect(&LINE_ENDS, Duration::from_secs(2))?;
        Ok(())
    }

    /// Expects the end of a command (`Complete`, line end).
    fn expect_complete(&mut self, within: Duration) -> Result<(), StonithError> {
        self.expect(&["Complete"], within)?;
        self.expect(&LINE_ENDS, Duration::from_secs(2))?;
        Ok(())
    }
}

/// An `rps10` device.
#[derive(Debug)]
pub struct Rps10Device {
    /// How long the line stays hung up before each operation.
    hang_up_hold: Duration,
    /// The line and outlets; `None` until configured.
    config: Option<SwitchConfig>,
}

impl Default for Rps10Device {
    fn default() -> Self {
        Self {
            hang_up_hold: HANG_UP_HOLD,
            config: None,
        }
    }
}

impl Rps10Device {
    fn config_or_invalid(&self) -> Result<&SwitchConfig, StonithError> {
        self.config
            .as_ref()
            .ok_or_else(|| hostlist::not_configured(DEVICE_ID))
    }
}

impl StonithDevice for Rps10Device {
    fn config_names(&self) -> Vec<String> {
        vec![SERIAL_TO_TARGETS.to_string()]
    }

    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError> {
        if self.config.is_some() {
            return Err(StonithError::new(
                StonithCode::Oops,
                format!("{DEVICE_ID} is configured already"),
            ));
        }
        let Some(text) = hostlist::param(params, SERIAL_TO_TARGETS) else {
            return Err(StonithError::new(
                StonithCode::Invalid,
                format!(
                    "{DEVICE_ID}: missing parameter `{SERIAL_TO_TARGETS}` (TTY NODE OUTLET [NODE OUTLET]...)"
                ),
            ));
        };
        self.config = Some(parse_config(text)?);
        Ok(())
    }

    fn status(&mut self) -> Result<(), StonithError> {
        let config = self.config_or_invalid()?;
        let mut line = SwitchLine::open(&config.tty)?;
        line.connect(self.hang_up_hold)
            .map_err(|err| StonithError::new(StonithCode::Oops, err.message))
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        let config = self.config_or_invalid()?;
        Ok(config
            .outlets
            .iter()
            .map(|(host, _)| host.clone())
            .collect())
    }

    fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError> {
        let config = self.config_or_invalid()?;
        let host = host.to_lowercase();
        let Some(&(_, outlet)) = config.outlets.iter().find(|(known, _)| *known == host) else {
            // cluster-glue logs this one as a warning.
            let message = format!("{PLUGIN_ID}: {} doesn't control host [{host}]", config.tty);
            device_log::log(Severity::Warning, &message);
            return Err(StonithError::new(StonithCode::BadHost, message));
        };
        let mut line = SwitchLine::open(&config.tty)?;
        line.connect(self.hang_up_hold)?;
        match request {
            ResetRequest::Reset => {
                line.send(outlet, 'T')?;
                line.expect_plug("Off")?;
                device_log::log(Severity::Info, &format!("Host is being rebooted: {host}"));
                line.expect_complete(Duration::from_secs(14))
            }
            ResetRequest::PowerOn => {
                line.send(outlet, '1')?;
                line.expect_plug("On")?;
                device_log::log(Severity::Info, &format!("Host is being turned on: {host}"));
                line.expect_complete(Duration::from_secs(5))
            }
            ResetRequest::PowerOff => {
                line.send(outlet, '0')?;
                line.expect_plug("Off")?;
                device_log::log(Severity::Info, &format!("Host is being turned off: {host}"));
                line.expect_complete(Duration::from_secs(5))
            }
        }
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        match what {
            DeviceInfo::DeviceId => Some(DEVICE_ID.to_string()),
            DeviceInfo::DeviceName => self.config.as_ref().map(|c| c.tty.clone()),
            DeviceInfo::Description => Some(DESCRIPTION.to_string()),
            DeviceInfo::Url => Some("http://www.wti.com/".to_string()),
            DeviceInfo::ConfigXml => Some(PARAMETERS_XML.to_string()),
        }
    }
}

/// The `rps10` plugin.
pub fn factory() -> Arc<dyn StonithFactory> {
    Arc::new(SingleTypeFactory {
        info: built_in_device(TYPE, "WTI RPS-10M remote power switch on a serial line"),
        make: Box::new(|| Box::new(Rps10Device::default())),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// How a simulated switch answers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Behaviour {
        /// As an RPS-10M does.
        Answers,
        /// Never says anything.
        Silent,
    }

    /// An RPS-10M on the far end of a pseudo-terminal: it says `RPS-10 Ready` when the line
    /// comes back from a hang-up (the pty's speed goes from 0 to non-zero; both ends share
    /// it), answers commands as the switch does, and records them.
    pub(crate) struct SimulatedSwitch {
        /// The path the device opens.
        pub(crate) tty: String,
        /// Commands received, as `OUTLET COMMAND` (`3 T`).
        pub(crate) commands: Arc<Mutex<Vec<String>>>,
        /// Hang-ups seen.
        pub(crate) hang_ups: Arc<Mutex<u32>>,
        stop: Arc<AtomicBool>,
        thread: Option<thread::JoinHandle<()>>,
    }

    impl SimulatedSwitch {
        pub(crate) fn start(behaviour: Behaviour) -> SimulatedSwitch {
            // The device opens its end by name, for exclusive use: ours is closed at once.
            let (mut switch_end, device_end) = TTYPort::pair().expect("a pty pair");
            switch_end.set_timeout(Duration::from_millis(20)).unwrap();
            let tty = device_end.name().expect("the pty has a name");
            drop(device_end);
            let commands = Arc::new(Mutex::new(Vec::new()));
            let hang_ups = Arc::new(Mutex::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let (commands, hang_ups, stop) = (commands.clone(), hang_ups.clone(), stop.clone());
                thread::spawn(move || {
                    run_switch(&mut switch_end, behaviour, &commands, &hang_ups, &stop)
                })
            };
            SimulatedSwitch {
                tty,
                commands,
                hang_ups,
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for SimulatedSwitch {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn line_speed(port: &TTYPort) -> libc::speed_t {
        // SAFETY: termios is plain data; tcgetattr fills it from an open descriptor.
        unsafe {
            let mut termios: libc::termios = std::mem::zeroed();
            libc::tcgetattr(port.as_raw_fd(), &mut termios);
            libc::cfgetospeed(&termios)
        }
    }

    fn run_switch(
        port: &mut TTYPort,
        behaviour: Behaviour,
        commands: &Mutex<Vec<String>>,
        hang_ups: &Mutex<u32>,
        stop: &AtomicBool,
    ) {
        let mut hung_up = false;
        let mut received: Vec<u8> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let speed = line_speed(port);
            if speed == libc::B0 {
                hung_up = true;
            } else if hung_up {
                hung_up = false;
                *hang_ups.lock().unwrap() += 1;
                if behaviour == Behaviour::Answers {
                    let _ = port.write_all(b"RPS-10 Ready\r\n");
                }
            }
            let mut byte = [0u8; 1];
            match port.read(&mut byte) {
                Ok(1) if byte[0] == b'\r' => {
                    let text = String::from_utf8_lossy(&received).into_owned();
                    received.clear();
                    let Some(order) = text.strip_prefix("\u{2}\u{18}\u{18}\u{2}\u{18}\u{18}")
                    else {
                        continue;
                    };
                    let mut chars = order.chars();
                    let (Some(outlet), Some(command)) = (chars.next(), chars.next()) else {
                        continue;
                    };
                    commands.lock().unwrap().push(format!("{outlet} {command}"));
                    if behaviour == Behaviour::Silent {
                        continue;
                    }
                    let plug = if outlet == '*' { '0' } else { outlet };
                    let reply = match command {
                        'T' => format!("Plug {plug} Off\r\nPlug {plug} On\r\nComplete\r\n"),
                        '1' => format!("Plug {plug} On\r\nComplete\r\n"),
                        '0' => format!("Plug {plug} Off\r\nComplete\r\n"),
                        _ => "Complete\r\n".to_string(),
                    };
                    let _ = port.write_all(reply.as_bytes());
                }
                Ok(1) => received.push(byte[0]),
                _ => thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn device(config: &str) -> Rps10Device {
        let mut device = Rps10Device {
            hang_up_hold: Duration::from_millis(200),
            config: None,
        };
        device
            .configure(&[(SERIAL_TO_TARGETS.to_string(), config.to_string())])
            .unwrap();
        device
    }

    #[test]
    fn configuration_is_read_as_cluster_glue_reads_it() {
        let config = parse_config("/dev/ttyS0 HB1 0 hb2 A hb3").unwrap();
        assert_eq!(config.tty, "/dev/ttyS0");
        assert_eq!(
            config.outlets,
            [("hb1".to_string(), '0'), ("hb2".to_string(), '*')]
        );
        for bad in ["", "/dev/ttyS0", "/dev/ttyS0 hb1 x", "/dev/ttyS0 hb1"] {
            assert_eq!(
                parse_config(bad).unwrap_err().code,
                StonithCode::BadConfig,
                "{bad}"
            );
        }
        let eleven: String = (0..11).map(|i| format!(" h{i} {}", i % 10)).collect();
        assert!(parse_config(&format!("/dev/ttyS0{eleven}")).is_err());
        let mut unconfigured = Rps10Device::default();
        assert_eq!(
            unconfigured.configure(&[]).unwrap_err().code,
            StonithCode::Invalid
        );
        assert_eq!(unconfigured.hosts().unwrap_err().code, StonithCode::Invalid);
    }

    #[test]
    fn a_reset_hangs_up_and_toggles_the_hosts_outlet() {
        let switch = SimulatedSwitch::start(Behaviour::Answers);
        let mut device = device(&format!("{} hb1 3 hb2 5", switch.tty));
        assert_eq!(device.hosts().unwrap(), ["hb1", "hb2"]);
        assert_eq!(device.reset(ResetRequest::Reset, "HB2"), Ok(()));
        assert_eq!(device.reset(ResetRequest::PowerOff, "hb1"), Ok(()));
        assert_eq!(device.reset(ResetRequest::PowerOn, "hb1"), Ok(()));
        assert_eq!(device.status(), Ok(()));
        assert_eq!(*switch.commands.lock().unwrap(), ["5 T", "3 0", "3 1"]);
        assert_eq!(*switch.hang_ups.lock().unwrap(), 4);
        assert_eq!(
            device.info(DeviceInfo::DeviceName),
            Some(switch.tty.clone())
        );
    }

    #[test]
    fn an_unlisted_host_is_refused_without_touching_the_line() {
        let switch = SimulatedSwitch::start(Behaviour::Answers);
        let mut device = device(&format!("{} hb1 3", switch.tty));
        let err = device.reset(ResetRequest::Reset, "hb9").unwrap_err();
        assert_eq!(err.code, StonithCode::BadHost);
        thread::sleep(Duration::from_millis(100));
        assert_eq!(*switch.hang_ups.lock().unwrap(), 0);
    }

    #[test]
    fn a_silent_switch_times_out() {
        let switch = SimulatedSwitch::start(Behaviour::Silent);
        let mut device = device(&format!("{} hb1 3", switch.tty));
        let started = Instant::now();
        let err = device.reset(ResetRequest::Reset, "hb1").unwrap_err();
        assert_eq!(err.code, StonithCode::Timeout, "{}", err.message);
        assert!(started.elapsed() >= READY_WITHIN);
    }

    #[test]
    fn a_missing_serial_device_is_oops() {
        let mut device = device("/dev/vigil-no-such-tty hb1 0");
        assert_eq!(
            device.reset(ResetRequest::Reset, "hb1").unwrap_err().code,
            StonithCode::Oops
        );
    }
}
