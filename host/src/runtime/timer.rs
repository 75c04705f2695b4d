//! The core's one protocol timer: a `timerfd` armed at the machines' next deadline.
//!
//! It owns the descriptor and the conversion from the machines' deadlines (time since the
//! core's origin on CLOCK_MONOTONIC) to absolute kernel time. It does not decide when to
//! fire; the machines do. A timerfd rather than a tokio sleep because tokio's timer wheel
//! wakes a deadline more than 64 ms away twice (once at the coarse slot, once at the exact
//! millisecond), and each wake-up of an idle daemon costs more than the heartbeat it serves.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A monotonic timer that fires at most once per arming.
pub struct DeadlineTimer {
    fd: AsyncFd<TimerFd>,
    /// CLOCK_MONOTONIC at the core's origin, so a deadline since the origin is absolute.
    origin: Duration,
    /// What the timer is armed for, to skip re-arming it with the same deadline.
    armed: Option<Duration>,
}

/// The timerfd as tokio's reactor wants it.
struct TimerFd(OwnedFd);

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl DeadlineTimer {
    /// A disarmed timer whose deadlines count from now; returns it with the origin as an
    /// offset of CLOCK_MONOTONIC, which the caller's clock must share.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain system call; the result is checked before use.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor just returned to us and owned by nothing else.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the `TimerFd` owns the descriptor, so it stays open and the same for as long
        // as it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(TimerFd(owned), Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Self {
            fd,
            origin: monotonic_now()?,
            armed: None,
        })
    }

    /// Time since the origin on CLOCK_MONOTONIC, the clock the deadlines are on.
    pub fn elapsed(&self) -> Duration {
        monotonic_now()
            .map(|now| now.saturating_sub(self.origin))
            .unwrap_or_default()
    }

    /// Arms the timer for `deadline` (since the origin), or disarms it with `None`. A
    /// deadline already passed fires at once.
    pub fn set(&mut self, deadline: Option<Duration>) -> io::Result<()> {
        if deadline == self.armed {
            return Ok(());
        }
        let value = match deadline {
            // A zero it_value disarms, so the earliest absolute time is 1 ns.
            Some(at) => timespec((self.origin + at).max(Duration::from_nanos(1))),
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: the descriptor is a live timerfd; `spec` is a valid itimerspec and the old
        // value is not asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = deadline;
        Ok(())
    }

    /// Waits until the armed deadline has passed, then leaves the timer disarmed. Never
    /// returns while disarmed.
    ///
    /// The expiration count is never read (one system call less per wake-up): arming again
    /// resets it, the descriptor is edge-triggered, and the clock, not the readiness (which
    /// may be stale or spurious), says whether the armed deadline has passed.
    pub async fn fired(&mut self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            guard.clear_ready();
            if self
                .armed
                .is_some_and(|deadline| self.elapsed() >= deadline)
            {
                self.armed = None;
                return Ok(());
            }
        }
    }
}

fn monotonic_now() -> io::Result<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid place for the kernel to write the time.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let seconds = u64::try_from(now.tv_sec).unwrap_or_default();
    let nanos = u32::try_from(now.tv_nsec).unwrap_or_default();
    Ok(Duration::new(seconds, nanos))
}

fn timespec(at: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(at.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(at.subsec_nanos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_at_its_deadline_and_not_before() {
        let mut timer = DeadlineTimer::new().expect("timerfd");
        let deadline = timer.elapsed() + Duration::from_millis(30);
        timer.set(Some(deadline)).expect("arm");
        timer.fired().await.expect("fired");
        assert!(timer.elapsed() >= deadline);
    }

    #[tokio::test]
    async fn a_passed_deadline_fires_at_once_and_rearming_moves_it() {
        let mut timer = DeadlineTimer::new().expect("timerfd");
        timer.set(Some(Duration::from_secs(3600))).expect("arm far");
        timer.set(Some(Duration::ZERO)).expect("re-arm in the past");
        tokio::time::timeout(Duration::from_secs(5), timer.fired())
            .await
            .expect("a passed deadline fires at once")
            .expect("fired");
    }

    #[tokio::test]
    async fn a_disarmed_timer_does_not_fire() {
        let mut timer = DeadlineTimer::new().expect("timerfd");
        timer.set(Some(timer.elapsed())).expect("arm");
        timer.set(None).expect("disarm");
        let waited = tokio::time::timeout(Duration::from_millis(50), timer.fired()).await;
        assert!(waited.is_err(), "a disarmed timer fired");
    }

    #[tokio::test]
    async fn an_expiration_left_unread_does_not_fire_the_next_arming() {
        let mut timer = DeadlineTimer::new().expect("timerfd");
        timer.set(Some(timer.elapsed())).expect("arm now");
        timer.fired().await.expect("fired");
        // An arming that expires without being waited for, then one well ahead.
        timer.set(Some(timer.elapsed())).expect("arm now again");
        std::thread::sleep(Duration::from_millis(5));
        let later = timer.elapsed() + Duration::from_millis(300);
        timer.set(Some(later)).expect("arm later");
        let early = tokio::time::timeout(Duration::from_millis(150), timer.fired()).await;
        assert!(early.is_err(), "fired 150 ms before its deadline");
        timer.fired().await.expect("fired");
        assert!(timer.elapsed() >= later);
    }
}
