//! Simulated time: wall-clock epoch seconds, optionally sped up, and jumpable from the admin API.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Clock {
    started: Instant,
    epoch_at_start: f64,
    speed: f64,
    offset: f64,
}

impl Clock {
    /// A clock that starts at the real current time and runs `speed` times faster.
    pub fn new(speed: f64) -> Self {
        let epoch_at_start = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        Self { started: Instant::now(), epoch_at_start, speed: speed.max(0.0), offset: 0.0 }
    }

    /// Simulated epoch seconds.
    pub fn now(&self) -> f64 {
        self.epoch_at_start + self.started.elapsed().as_secs_f64() * self.speed + self.offset
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Change the speed factor without a jump in simulated time.
    pub fn set_speed(&mut self, speed: f64) {
        let now = self.now();
        self.started = Instant::now();
        self.epoch_at_start = now;
        self.offset = 0.0;
        self.speed = speed.max(0.0);
    }

    /// Jump forward (tests use this to let tasks and HA progress without waiting).
    pub fn advance(&mut self, secs: f64) {
        if secs > 0.0 {
            self.offset += secs;
        }
    }

    /// Real seconds that correspond to `sim_secs` of simulated time (for sleeps, e.g. delays).
    pub fn real_secs(&self, sim_secs: f64) -> f64 {
        if self.speed <= 0.0 { sim_secs } else { sim_secs / self.speed }
    }
}
