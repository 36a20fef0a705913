//! Progress on stderr for long inputs: nothing for runs that finish quickly, a live line on a
//! terminal, a line every 10 % otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress reporter for one phase after another.
pub struct Progress {
    enabled: bool,
    tty: bool,
    start: Instant,
    label: String,
    shown: bool,
    last_decile: usize,
    last_draw: Instant,
}

/// Progress is shown only once a phase has run this long.
const AFTER: Duration = Duration::from_millis(400);

impl Progress {
    /// Reports on stderr unless `quiet`.
    #[must_use]
    pub fn new(quiet: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled: !quiet,
            tty: std::io::stderr().is_terminal(),
            start: now,
            label: String::new(),
            shown: false,
            last_decile: 0,
            last_draw: now,
        }
    }

    /// Reports nothing.
    #[cfg(test)]
    #[must_use]
    pub fn quiet() -> Progress {
        Progress::new(true)
    }

    /// Starts a phase.
    pub fn phase(&mut self, label: &str) {
        self.finish();
        self.label = label.to_string();
        self.start = Instant::now();
        self.last_decile = 0;
    }

    /// `done` of `total` units of the current phase are done.
    pub fn tick(&mut self, done: usize, total: usize) {
        if !self.enabled || total == 0 {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.start) < AFTER {
            return;
        }
        let pct = done * 100 / total;
        let mut err = std::io::stderr().lock();
        if self.tty {
            if now.duration_since(self.last_draw) >= Duration::from_millis(100) || !self.shown {
                let _ = write!(err, "\r\x1b[2K{}: {pct:3} % ({done}/{total})", self.label);
                self.last_draw = now;
            }
        } else if pct / 10 > self.last_decile {
            self.last_decile = pct / 10;
            let _ = writeln!(err, "{}: {pct} % ({done}/{total})", self.label);
        }
        self.shown = true;
    }

    /// Ends the current phase's line.
    pub fn finish(&mut self) {
        if self.shown && self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
        self.shown = false;
    }
}
