//! The `serial` medium: Heartbeat's `serial <tty>` link over a serial line (a null-modem
//! cable, or a pty pair in tests), at the speed ha.cf's `baud` sets (spec §2.5).
//!
//! A serial line is a byte stream, so this module owns the framing Heartbeat 3.0.6 uses on
//! it: every frame is a classic-format message, `>>>\n`, one field per line, `<<<\n`. The
//! host hands this medium frames already in that format (the runtime encodes classic, with
//! the classic `auth` field, for serial media); the writer sends each in 512-byte chunks with
//! Heartbeat's pause of one chunk's transmission time between chunks, every write bounded by
//! 500 ms. The reader splits the stream back into frames the way Heartbeat's does: lines are
//! discarded until a `>>>` line, then collected up to the `<<<` line. Line noise, a frame cut
//! short by a new `>>>`, and a frame longer than Heartbeat's 256 KiB message limit are
//! dropped and counted ([`SerialMedium::counters`]), never handed on and never a panic. No
//! frame is forwarded to other ttys (3.0.6 no longer runs serial rings, spec §2.5).
//!
//! The line is set up as Heartbeat sets it: raw, 8 data bits, no parity, one stop bit,
//! RTS/CTS flow control, modem lines ignored (CLOCAL), opened without becoming the
//! controlling terminal and exclusively (TIOCEXCL and `flock`, where Heartbeat takes a UUCP
//! lock file). Carriage returns are ignored on input as Heartbeat's IGNCR does.
//!
//! The configuration line is `serial <tty>` (one medium per tty; the configuration layer
//! splits `serial /dev/ttyS0 /dev/ttyS1`), plus `baud=<rate>`, which the configuration adds
//! from ha.cf's `baud` directive (default 19200). This module owns only its tty; what a frame
//! says is the host's business.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use serialport::{DataBits, FlowControl, Parity, SerialPort, StopBits, TTYPort};
use vigil_plugin_api::{Medium, MediumError, MediumFactory, MediumSpec, PeerAddress, PluginInfo};

/// Heartbeat's speed when ha.cf has no `baud` line.
pub const DEFAULT_BAUD: u32 = 19200;

/// The speeds Heartbeat accepts for `baud`.
pub const BAUD_RATES: [u32; 7] = [9600, 19200, 38400, 57600, 115200, 230400, 460800];

/// The longest frame kept (Heartbeat's MAXMSG, 256 KiB): a longer one cannot be a message any
/// peer sent, so it is dropped rather than buffered without bound.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// The line that opens a frame (classic format's start marker without its newline).
const FRAME_START: &[u8] = b">>>";
/// The line that closes a frame.
const FRAME_END: &[u8] = b"<<<";

/// Heartbeat writes a frame in pieces of this size, pausing between them.
const CHUNK_BYTES: usize = 512;
/// How long one write may wait for the line (Heartbeat's per-write alarm), so a stuck line
/// (flow control never released) costs a lost frame, not a hung writer.
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a reader waiting for bytes looks whether the medium was shut down.
const READ_POLL: Duration = Duration::from_millis(100);
/// Bytes read from the tty in one call.
const READ_CHUNK: usize = 4096;

/// A `serial` line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConfig {
    /// The tty device; also the link name, as written.
    pub tty: PathBuf,
    /// The line speed in bits per second.
    pub baud: u32,
}

impl SerialConfig {
    /// Parses `serial <tty> [baud=<rate>]`; the error names the line, the offending argument
    /// and what was expected.
    pub fn parse(spec: &MediumSpec) -> Result<Self, MediumError> {
        let bad = |reason: String| MediumError::bad_arguments(spec, reason);
        let (tty, baud) = match spec.args.as_slice() {
            [tty] => (tty, None),
            [tty, baud] => (tty, Some(baud)),
            _ => {
                return Err(bad(format!(
                    "expected one tty device (such as `serial /dev/ttyS0`), got {} arguments",
                    spec.args.len()
                )));
            }
        };
        if !tty.starts_with('/') || tty.ends_with('/') || tty.contains('\0') {
            return Err(bad(format!(
                "tty `{tty}`: expected the absolute path of a serial device, such as /dev/ttyS0"
            )));
        }
        let baud = baud
            .map(|token| Self::parse_baud(token))
            .transpose()
            .map_err(bad)?
            .unwrap_or(DEFAULT_BAUD);
        Ok(Self {
            tty: PathBuf::from(tty),
            baud,
        })
    }

    fn parse_baud(token: &str) -> Result<u32, String> {
        let Some(value) = token.strip_prefix("baud=") else {
            return Err(format!(
                "`{token}`: expected one tty device per medium (`serial /dev/ttyS0 /dev/ttyS1` \
                 gives two), or `baud=<rate>`"
            ));
        };
        value
            .parse::<u32>()
            .ok()
            .filter(|rate| BAUD_RATES.contains(rate))
            .ok_or_else(|| {
                format!(
                    "baud `{value}`: expected one of 9600, 19200, 38400, 57600, 115200, 230400, \
                     460800"
                )
            })
    }

    /// The pause between two chunks of one frame: the time the line needs to carry a chunk
    /// at 8 bits per byte, Heartbeat's 512/(baud/8) seconds.
    pub fn chunk_pause(&self) -> Duration {
        let bits = u64::try_from(CHUNK_BYTES * 8).unwrap_or(u64::MAX);
        Duration::from_micros(bits * 1_000_000 / u64::from(self.baud.max(1)))
    }
}

/// What the reader dropped instead of handing on, since the medium opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SerialCounters {
    /// Frames handed on.
    pub frames: u64,
    /// Bytes outside any frame (line noise, a peer starting mid-frame), not counting the
    /// carriage returns and NULs a line may carry between frames.
    pub garbage_bytes: u64,
    /// Frames cut short by a new `>>>` line before their `<<<`.
    pub broken_frames: u64,
    /// Frames longer than [`MAX_FRAME_BYTES`].
    pub oversized_frames: u64,
}

/// Where the splitter is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SplitState {
    /// Outside a frame: looking for a line that ends with `>>>`.
    Hunting,
    /// Inside a frame, collecting lines up to `<<<`.
    Collecting,
    /// Inside a frame that grew past the limit: discarding up to its `<<<`.
    Skipping,
}

/// Splits a serial byte stream into classic frames, as Heartbeat's reader does, with bounded
/// memory whatever the line carries.
#[derive(Debug)]
pub struct FrameSplitter {
    state: SplitState,
    /// The frame being collected, from its `>>>\n`.
    frame: Vec<u8>,
    /// Where the current line starts in `frame` (Collecting), for the marker checks.
    line_start: usize,
    /// While hunting or skipping: the last bytes of the current line (enough to see a marker)
    /// and the line's length.
    tail: [u8; 3],
    tail_len: usize,
    line_len: u64,
    /// Complete frames not yet taken.
    ready: VecDeque<Vec<u8>>,
    /// What was dropped.
    counters: SerialCounters,
}

impl Default for FrameSplitter {
    fn default() -> Self {
        Self {
            state: SplitState::Hunting,
            frame: Vec::new(),
            line_start: 0,
            tail: [0; 3],
            tail_len: 0,
            line_len: 0,
            ready: VecDeque::new(),
            counters: SerialCounters::default(),
        }
    }
}

impl FrameSplitter {
    /// Feeds bytes read from the line.
    pub fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            // IGNCR: Heartbeat's line discipline drops carriage returns.
            if byte == b'\r' {
                continue;
            }
            match self.state {
                SplitState::Collecting => self.collect(byte),
                SplitState::Hunting | SplitState::Skipping => self.scan(byte),
            }
        }
    }

    /// Takes the oldest complete frame, `>>>\n` through `<<<\n`.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// What has been handed on and dropped so far.
    pub fn counters(&self) -> SerialCounters {
        self.counters
    }

    /// Outside a collected frame: remembers only how the current line ends.
    fn scan(&mut self, byte: u8) {
        if byte != b'\n' {
            if self.state == SplitState::Hunting && byte != 0 {
                self.counters.garbage_bytes += 1;
            }
            self.line_len += 1;
            self.tail.rotate_left(1);
            self.tail[2] = byte;
            self.tail_len = (self.tail_len + 1).min(3);
            return;
        }
        let line_end = &self.tail[3 - self.tail_len..];
        let state = self.state;
        let starts = line_end == FRAME_START;
        let ends = line_end == FRAME_END && self.line_len == 3;
        // A marker line is not garbage; what came before it on the line is.
        if starts && state == SplitState::Hunting {
            self.counters.garbage_bytes -= 3;
        } else if state == SplitState::Hunting {
            self.counters.garbage_bytes += 1;
        }
        self.tail_len = 0;
        self.line_len = 0;
        if starts {
            self.start_frame();
        } else if ends && state == SplitState::Skipping {
            self.state = SplitState::Hunting;
        }
    }

    fn start_frame(&mut self) {
        self.frame.clear();
        self.frame.extend_from_slice(b">>>\n");
        self.line_start = self.frame.len();
        self.state = SplitState::Collecting;
    }

    /// Inside a frame: keeps the byte, and at each line's end looks for the markers.
    fn collect(&mut self, byte: u8) {
        if self.frame.len() >= MAX_FRAME_BYTES {
            self.counters.oversized_frames += 1;
            self.frame = Vec::new();
            self.state = SplitState::Skipping;
            self.tail_len = 0;
            self.line_len = 0;
            return self.scan(byte);
        }
        self.frame.push(byte);
        if byte != b'\n' {
            return;
        }
        let line = &self.frame[self.line_start..self.frame.len() - 1];
        if line == FRAME_END {
            self.counters.frames += 1;
            self.ready.push_back(std::mem::take(&mut self.frame));
            self.state = SplitState::Hunting;
        } else if line == FRAME_START {
            self.counters.broken_frames += 1;
            self.start_frame();
        } else {
            self.line_start = self.frame.len();
        }
    }
}

/// The reading half of a medium: its own handle on the tty and the stream's state.
#[derive(Debug)]
struct ReadSide {
    port: TTYPort,
    splitter: FrameSplitter,
}

/// An open `serial` link.
#[derive(Debug)]
pub struct SerialMedium {
    /// The tty path as written, reported as the link name.
    link: String,
    /// The line's configuration, for the write pacing.
    config: SerialConfig,
    /// The reader's handle and stream state; only the reader thread takes it.
    reader: Mutex<ReadSide>,
    /// The writer's handle (a duplicate descriptor with its own write timeout).
    writer: Mutex<TTYPort>,
    /// Set by `shutdown`: the reader returns an error at its next poll.
    stopped: AtomicBool,
    /// Frames handed on and dropped, copied out of the reader's state after each read so
    /// they can be read without waiting for a blocked reader.
    counters: [AtomicU64; 4],
}

impl SerialMedium {
    /// Opens the tty and sets the line up as Heartbeat does.
    pub fn open(config: &SerialConfig) -> io::Result<Self> {
        let path = config.tty.to_string_lossy();
        let port = serialport::new(path.as_ref(), config.baud)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::Hardware)
            .timeout(READ_POLL)
            .open_native()
            .map_err(|err| {
                let kind = io::Error::from(err.clone()).kind();
                io::Error::new(kind, format!("cannot open tty {path}: {err}"))
            })?;
        Self::from_port(config.clone(), port)
    }

    /// A medium on an already open tty, which must be set up already.
    fn from_port(config: SerialConfig, port: TTYPort) -> io::Result<Self> {
        let mut writer = port.try_clone_native().map_err(io::Error::from)?;
        writer.set_timeout(WRITE_TIMEOUT).map_err(io::Error::from)?;
        let mut reader = port;
        reader.set_timeout(READ_POLL).map_err(io::Error::from)?;
        Ok(Self {
            link: config.tty.display().to_string(),
            config,
            reader: Mutex::new(ReadSide {
                port: reader,
                splitter: FrameSplitter::default(),
            }),
            writer: Mutex::new(writer),
            stopped: AtomicBool::new(false),
            counters: Default::default(),
        })
    }

    /// The tty this medium reads and writes.
    pub fn tty(&self) -> &Path {
        &self.config.tty
    }

    /// The speed the line is set to now, read back from the tty.
    pub fn baud_rate(&self) -> io::Result<u32> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        writer.baud_rate().map_err(io::Error::from)
    }

    /// Frames handed on and what was dropped; the drops reach `vigil status` through
    /// `Medium::link_drops`.
    pub fn counters(&self) -> SerialCounters {
        let [frames, garbage_bytes, broken_frames, oversized_frames] =
            self.counters.each_ref().map(|c| c.load(Ordering::Relaxed));
        SerialCounters {
            frames,
            garbage_bytes,
            broken_frames,
            oversized_frames,
        }
    }

    fn publish_counters(&self, counters: SerialCounters) {
        let values = [
            counters.frames,
            counters.garbage_bytes,
            counters.broken_frames,
            counters.oversized_frames,
        ];
        for (slot, value) in self.counters.iter().zip(values) {
            slot.store(value, Ordering::Relaxed);
        }
    }

    fn shut_down_error() -> io::Error {
        io::Error::new(
            io::ErrorKind::NotConnected,
            "the serial medium was shut down",
        )
    }
}

impl Medium for SerialMedium {
    fn link_name(&self) -> &str {
        &self.link
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        for (index, chunk) in frame.chunks(CHUNK_BYTES).enumerate() {
            if index > 0 {
                thread::sleep(self.config.chunk_pause());
            }
            writer.write_all(chunk)?;
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        let mut side = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            if self.stopped.load(Ordering::Acquire) {
                return Err(Self::shut_down_error());
            }
            if let Some(frame) = side.splitter.next_frame() {
                self.publish_counters(side.splitter.counters());
                let len = frame.len().min(buf.len());
                buf[..len].copy_from_slice(&frame[..len]);
                return Ok((len, PeerAddress::Link));
            }
            match side.port.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("tty {} was hung up", self.link),
                    ));
                }
                Ok(len) => {
                    side.splitter.push(&chunk[..len]);
                    self.publish_counters(side.splitter.counters());
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                            | io::ErrorKind::WouldBlock
                    ) => {}
                Err(err) => return Err(err),
            }
        }
    }

    fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    fn link_drops(&self) -> Vec<(&'static str, u64)> {
        let counters = self.counters();
        vec![
            ("serial_garbage_bytes", counters.garbage_bytes),
            ("serial_broken_frames", counters.broken_frames),
            ("serial_oversized_frames", counters.oversized_frames),
        ]
    }
}

/// Creates `serial` media; registered under the directive name `serial`.
#[derive(Debug)]
pub struct SerialFactory {
    /// The plugin's identity as listed by `vigil plugins`.
    info: PluginInfo,
}

impl Default for SerialFactory {
    fn default() -> Self {
        Self {
            info: crate::built_in_medium("serial", "serial ring"),
        }
    }
}

impl MediumFactory for SerialFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
        SerialConfig::parse(spec).map(drop)
    }

    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
        let config = SerialConfig::parse(spec)?;
        let medium = SerialMedium::open(&config).map_err(|err| MediumError::open(spec, err))?;
        Ok(Box::new(medium))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::spec;
    use std::sync::Arc;
    use std::time::Instant;

    /// A classic frame with `lines` as its body.
    fn frame(lines: &[&str]) -> Vec<u8> {
        let mut out = b">>>\n".to_vec();
        for line in lines {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b"<<<\n");
        out
    }

    fn split(bytes: &[u8]) -> (Vec<Vec<u8>>, SerialCounters) {
        let mut splitter = FrameSplitter::default();
        splitter.push(bytes);
        let frames = std::iter::from_fn(|| splitter.next_frame()).collect();
        (frames, splitter.counters())
    }

    /// A pty pair: the medium opened on the slave's path, the master as the far end of the
    /// cable. The pair's own slave handle is returned too, to keep the slave side open.
    fn medium_on_pty(baud: u32) -> (SerialMedium, TTYPort, TTYPort) {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        master.set_timeout(Duration::from_secs(5)).expect("timeout");
        let path = slave.name().expect("a pty slave has a path");
        let config = SerialConfig::parse(&spec("serial", &format!("{path} baud={baud}"), 694))
            .expect("valid");
        let medium = SerialMedium::open(&config).expect("open the pty slave");
        (medium, master, slave)
    }

    fn recv_frame(medium: &dyn Medium) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_FRAME_BYTES + 1];
        let (len, from) = medium.recv(&mut buf).expect("recv");
        assert_eq!(from, PeerAddress::Link);
        buf.truncate(len);
        buf
    }

    fn read_exactly(port: &mut TTYPort, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        port.read_exact(&mut out).expect("read from the far end");
        out
    }

    #[test]
    fn serial_parses_a_tty_and_the_baud_the_configuration_adds() {
        assert_eq!(
            SerialConfig::parse(&spec("serial", "/dev/ttyS0", 694)).expect("valid"),
            SerialConfig {
                tty: PathBuf::from("/dev/ttyS0"),
                baud: DEFAULT_BAUD,
            }
        );
        let config =
            SerialConfig::parse(&spec("serial", "/dev/ttyUSB1 baud=115200", 694)).expect("valid");
        assert_eq!(config.baud, 115200);
        assert_eq!(config.chunk_pause(), Duration::from_micros(35_555));
    }

    #[test]
    fn serial_names_each_malformed_argument_and_what_it_expected() {
        let cases = [
            (
                "ttyS0",
                "tty `ttyS0`: expected the absolute path of a serial device",
            ),
            ("/dev/", "tty `/dev/`: expected the absolute path"),
            (
                "/dev/ttyS0 /dev/ttyS1",
                "`/dev/ttyS1`: expected one tty device per medium",
            ),
            (
                "/dev/ttyS0 baud=12345",
                "baud `12345`: expected one of 9600, 19200",
            ),
            (
                "/dev/ttyS0 baud=fast",
                "baud `fast`: expected one of 9600, 19200",
            ),
            (
                "/dev/ttyS0 baud=9600 x",
                "expected one tty device (such as `serial /dev/ttyS0`), got 3 arguments",
            ),
        ];
        for (args, expected) in cases {
            let message = SerialFactory::default()
                .check(&spec("serial", args, 694))
                .expect_err(args)
                .to_string();
            assert!(message.contains(expected), "{args}: {message}");
        }
        let message = SerialFactory::default()
            .check(&spec("serial", "", 694))
            .expect_err("no tty")
            .to_string();
        assert!(message.contains("got 0 arguments"), "{message}");
    }

    #[test]
    fn splitter_returns_whole_frames_however_the_bytes_are_cut() {
        let first = frame(&["t=status", "src=node1", "auth=1 abc"]);
        let second = frame(&["t=status", "src=node2"]);
        let stream = [first.clone(), second.clone()].concat();
        for cut in 0..stream.len() {
            let mut splitter = FrameSplitter::default();
            splitter.push(&stream[..cut]);
            splitter.push(&stream[cut..]);
            assert_eq!(splitter.next_frame().as_ref(), Some(&first), "cut at {cut}");
            assert_eq!(
                splitter.next_frame().as_ref(),
                Some(&second),
                "cut at {cut}"
            );
            assert_eq!(splitter.next_frame(), None);
            assert_eq!(
                splitter.counters(),
                SerialCounters {
                    frames: 2,
                    ..Default::default()
                }
            );
        }
    }

    #[test]
    fn splitter_resynchronises_after_garbage_and_counts_it() {
        let good = frame(&["t=status", "src=node1"]);
        let mut stream = b"noise\n\x00\xff\xfe<<<\n".to_vec();
        stream.extend_from_slice(&good);
        // Noise without a newline before the start marker still lets the frame through.
        stream.extend_from_slice(b"xy");
        stream.extend_from_slice(&good);
        let (frames, counters) = split(&stream);
        assert_eq!(frames, [good.clone(), good]);
        assert_eq!(counters.frames, 2);
        // "noise\n" (6) + "\xff\xfe<<<\n" (6; the NUL is not counted) + "xy" (2).
        assert_eq!(counters.garbage_bytes, 14);
        assert_eq!(counters.broken_frames, 0);
    }

    #[test]
    fn splitter_drops_a_frame_cut_short_by_a_new_start_marker() {
        let good = frame(&["t=status", "src=node2"]);
        let mut stream = b">>>\nt=status\nsrc=node1\n".to_vec();
        stream.extend_from_slice(&good);
        let (frames, counters) = split(&stream);
        assert_eq!(frames, [good]);
        assert_eq!(counters.broken_frames, 1);
        assert_eq!(counters.frames, 1);
    }

    #[test]
    fn splitter_ignores_carriage_returns_as_heartbeats_igncr_does() {
        let (frames, _) = split(b">>>\r\nt=status\r\n<<<\r\n");
        assert_eq!(frames, [b">>>\nt=status\n<<<\n".to_vec()]);
    }

    #[test]
    fn splitter_drops_an_oversized_frame_and_keeps_the_next_one() {
        let mut stream = b">>>\n".to_vec();
        let long_line = vec![b'a'; 1000];
        while stream.len() <= MAX_FRAME_BYTES + 5000 {
            stream.extend_from_slice(b"x=");
            stream.extend_from_slice(&long_line);
            stream.push(b'\n');
        }
        stream.extend_from_slice(b"<<<\n");
        let good = frame(&["t=status"]);
        stream.extend_from_slice(&good);
        let mut splitter = FrameSplitter::default();
        for piece in stream.chunks(333) {
            splitter.push(piece);
            assert!(splitter.frame.capacity() <= 2 * MAX_FRAME_BYTES + 4096);
        }
        assert_eq!(splitter.next_frame(), Some(good));
        assert_eq!(splitter.next_frame(), None);
        let counters = splitter.counters();
        assert_eq!(counters.oversized_frames, 1);
        assert_eq!(counters.frames, 1);
        assert_eq!(
            counters.garbage_bytes, 0,
            "the oversized frame is not noise"
        );
    }

    #[test]
    fn splitter_survives_arbitrary_bytes() {
        // A fixed pseudo-random stream with markers sprinkled in: no panic, bounded memory.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut stream = Vec::new();
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 50 {
                0 => stream.extend_from_slice(b"\n>>>\n"),
                1 => stream.extend_from_slice(b"\n<<<\n"),
                n => stream.push(if n < 10 { b'\n' } else { (state >> 24) as u8 }),
            }
        }
        let (frames, counters) = split(&stream);
        assert_eq!(counters.frames, frames.len() as u64);
        for frame in frames {
            assert!(frame.starts_with(b">>>\n") && frame.ends_with(b"<<<\n"));
            assert!(frame.len() <= MAX_FRAME_BYTES + 4);
        }
    }

    #[test]
    fn opening_a_tty_sets_the_configured_baud() {
        for baud in [9600, 115200] {
            let (medium, _master, slave) = medium_on_pty(baud);
            assert_eq!(medium.baud_rate().expect("read back"), baud);
            // The same tty seen through another descriptor.
            assert_eq!(slave.baud_rate().expect("read back"), baud);
            assert_eq!(medium.link_name(), slave.name().expect("path"));
        }
    }

    #[test]
    fn serial_medium_sends_frames_whole_and_receives_them_from_the_stream() {
        let (medium, mut master, _slave) = medium_on_pty(115200);
        let outbound = frame(&["t=status", "src=node1", "auth=1 00ff"]);
        medium.send(&outbound).expect("send");
        assert_eq!(read_exactly(&mut master, outbound.len()), outbound);

        let inbound = frame(&["t=status", "src=node2", "auth=1 abcd"]);
        master.write_all(b"line noise\n").expect("write");
        master.write_all(&inbound[..7]).expect("write");
        master.flush().expect("flush");
        master.write_all(&inbound[7..]).expect("write");
        assert_eq!(recv_frame(&medium), inbound);
        let counters = medium.counters();
        assert_eq!(counters.frames, 1);
        assert_eq!(counters.garbage_bytes, 11);
    }

    #[test]
    fn a_frame_longer_than_one_chunk_arrives_whole_after_the_pacing_pause() {
        let (medium, mut master, _slave) = medium_on_pty(460800);
        let long_value = "v".repeat(1500);
        let outbound = frame(&["t=status", &format!("x={long_value}")]);
        let started = Instant::now();
        medium.send(&outbound).expect("send");
        let chunks = outbound.len().div_ceil(CHUNK_BYTES) as u32;
        let config = SerialConfig {
            tty: PathBuf::from("/dev/null"),
            baud: 460800,
        };
        assert!(started.elapsed() >= config.chunk_pause() * (chunks - 1));
        assert_eq!(read_exactly(&mut master, outbound.len()), outbound);
    }

    #[test]
    fn two_serial_media_on_a_pty_pair_exchange_frames_both_ways() {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        let config = |port: &TTYPort| SerialConfig {
            tty: PathBuf::from(port.name().unwrap_or_else(|| "/dev/ptmx".into())),
            baud: DEFAULT_BAUD,
        };
        let node1 = SerialMedium::from_port(config(&master), master).expect("master side");
        let node2 = SerialMedium::from_port(config(&slave), slave).expect("slave side");
        let hello = frame(&["t=status", "src=node1"]);
        node1.send(&hello).expect("send");
        assert_eq!(recv_frame(&node2), hello);
        let reply = frame(&["t=status", "src=node2"]);
        node2.send(&reply).expect("send");
        assert_eq!(recv_frame(&node1), reply);
    }

    #[test]
    fn serial_shutdown_unblocks_a_reader_blocked_in_recv() {
        let (medium, _master, _slave) = medium_on_pty(DEFAULT_BAUD);
        let medium: Arc<dyn Medium> = Arc::new(medium);
        let reader = {
            let medium = Arc::clone(&medium);
            thread::spawn(move || {
                let mut buf = [0u8; 64];
                medium.recv(&mut buf).map(|(len, _)| len)
            })
        };
        thread::sleep(Duration::from_millis(150));
        medium.shutdown();
        let outcome = reader.join().expect("reader did not panic");
        assert!(
            outcome.is_err(),
            "recv after shutdown must fail: {outcome:?}"
        );
    }

    #[test]
    fn opening_a_missing_tty_fails_naming_it() {
        let line = spec("serial", "/dev/vigil-no-such-tty", 694);
        let Err(err) = SerialFactory::default().open(&line) else {
            panic!("no such tty");
        };
        let message = err.to_string();
        assert!(
            message.contains("ha.cf:7: `serial /dev/vigil-no-such-tty`: cannot open: cannot open tty /dev/vigil-no-such-tty"),
            "{message}"
        );
    }
}
