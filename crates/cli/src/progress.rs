//! What a command is waiting for, on stderr, while it waits.
//!
//! On a terminal a [`Progress`] is one line, redrawn every 100 ms with the
//! time waited and the bound (`softbus: waiting for 127.0.0.2:5684 … 1.3 s
//! of 5 s`), shown only once a wait has lasted 200 ms and erased when the
//! wait ends. When stderr is not a terminal (a script, a log) it prints
//! nothing, or with [`Progress::logged`] the wait's first words once, so
//! logs stay one line per step.
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a wait lasts before its line appears, and how often it is redrawn.
const SHOW_AFTER: Duration = Duration::from_millis(200);
const REDRAW: Duration = Duration::from_millis(100);

/// Whether a progress line is on the screen now (there is one stderr).
static ON_SCREEN: Mutex<bool> = Mutex::new(false);

/// Erases the progress line, if one is shown, so what comes next on the
/// terminal (an error, a result) starts on a clean line. The next redraw of a
/// wait still going on puts it back.
pub fn erase() {
    if let Ok(mut shown) = ON_SCREEN.lock() {
        if *shown {
            eprint!("\r\x1b[K");
            *shown = false;
        }
    }
}

struct Line {
    what: String,
    /// The wait is over: a redraw already under way must not draw again.
    done: bool,
    /// Since when this step has been waited for.
    since: Instant,
}

/// One wait's line; erased on drop.
pub struct Progress {
    line: Arc<Mutex<Line>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `what` (e.g. "authenticating to 127.0.0.2:4321") on a
    /// terminal, for a wait of at most `bound`.
    pub fn start(what: impl Into<String>, bound: Duration) -> Progress {
        Self::on(std::io::stderr().is_terminal(), false, what.into(), bound)
    }

    /// The same, and off a terminal `softbus: WHAT` once.
    pub fn logged(what: impl Into<String>, bound: Duration) -> Progress {
        Self::on(std::io::stderr().is_terminal(), true, what.into(), bound)
    }

    fn on(terminal: bool, log: bool, what: String, bound: Duration) -> Progress {
        if !terminal && log {
            eprintln!("softbus: {what}");
        }
        let line = Arc::new(Mutex::new(Line {
            what,
            done: false,
            since: Instant::now(),
        }));
        let task = terminal.then(|| {
            let line = line.clone();
            tokio::spawn(async move {
                tokio::time::sleep(SHOW_AFTER).await;
                loop {
                    // The wait's lock is held while drawing, so the drop
                    // (which takes it first) erases after any draw.
                    if let Ok(l) = line.lock() {
                        if l.done {
                            return;
                        }
                        if let Ok(mut shown) = ON_SCREEN.lock() {
                            eprint!("\r\x1b[K{}", render(&l.what, l.since.elapsed(), bound));
                            let _ = std::io::stderr().flush();
                            *shown = true;
                        }
                    }
                    tokio::time::sleep(REDRAW).await;
                }
            })
        });
        Progress { line, task }
    }

    /// The next step of the wait (the next redraw shows it, timed from now).
    pub fn set(&self, what: impl Into<String>) {
        if let Ok(mut l) = self.line.lock() {
            l.what = what.into();
            l.since = Instant::now();
        }
    }

    /// Changes what the line says, the wait going on.
    pub fn say(&self, what: impl Into<String>) {
        if let Ok(mut l) = self.line.lock() {
            l.what = what.into();
        }
    }

    /// Runs `print` (output on stdout) with the line out of its way.
    pub fn above(&self, print: impl FnOnce()) {
        // Holding the wait's lock keeps the next redraw after the print.
        let _l = self.line.lock();
        erase();
        print();
        let _ = std::io::stdout().flush();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Ok(mut l) = self.line.lock() {
            l.done = true;
        }
        erase();
    }
}

/// `softbus: WHAT … 1.3 s of 5 s`.
fn render(what: &str, waited: Duration, bound: Duration) -> String {
    format!(
        "softbus: {what} … {:.1} s of {} s",
        waited.as_secs_f64(),
        fmt_secs(bound)
    )
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_and_how_long() {
        assert_eq!(
            render(
                "waiting for 127.0.0.2:5684",
                Duration::from_millis(1260),
                Duration::from_secs(5)
            ),
            "softbus: waiting for 127.0.0.2:5684 … 1.3 s of 5 s"
        );
        assert_eq!(fmt_secs(Duration::from_millis(2500)), "2.5");
    }
}
