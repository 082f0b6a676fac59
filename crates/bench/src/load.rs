//! Was the machine busy while we measured? Other processes' share of the CPU time during a
//! measurement (from the kernel's counters: `/proc/stat` for the machine, `/proc/self/stat`
//! for this process and its waited-for children), the time the hypervisor gave to other
//! guests (steal), and the load average before. Linux only; elsewhere nothing is reported.

use std::fmt;

use serde::Serialize;

/// Other processes' share of the machine above which a measurement counts as disturbed, %.
const BUSY_OTHERS_PCT: f64 = 10.0;
/// Steal above which a measurement counts as disturbed, % of the machine.
const BUSY_STEAL_PCT: f64 = 5.0;

/// CPU counters at one moment, in clock ticks.
#[derive(Clone, Copy, Debug)]
struct Counters {
    /// Every CPU's time, idle included.
    total: u64,
    /// Every CPU's non-idle time (steal included: those cycles were not ours to use).
    busy: u64,
    /// Every CPU's steal time.
    steal: u64,
    /// This process's and its waited-for children's user and system time.
    own: u64,
}

impl Counters {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
        // already counted in user and nice.
        let field = |i: usize| fields.get(i).copied().unwrap_or(0);
        let total: u64 = (0..8).map(field).sum();
        let idle = field(3) + field(4);
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces: count fields after its closing paren.
        let after_name = own_stat.rsplit_once(')')?.1;
        let own_fields: Vec<u64> = after_name
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        Some(Self {
            total,
            busy: total - idle,
            steal: field(7),
            own: own_fields.iter().sum(),
        })
    }
}

/// Watches the machine from [`LoadWatch::start`] to [`LoadWatch::finish`].
#[derive(Clone, Copy, Debug)]
pub struct LoadWatch {
    start: Option<Counters>,
    load_average_before: Option<f64>,
}

impl LoadWatch {
    /// Reads the counters and the one-minute load average now.
    pub fn start() -> Self {
        let load_average_before = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok());
        Self {
            start: Counters::read(),
            load_average_before,
        }
    }

    /// What other processes and the hypervisor took since [`start`](Self::start); `None`
    /// where the counters cannot be read (not Linux) or no time has passed on them.
    pub fn finish(&self) -> Option<MachineLoad> {
        let (start, end) = (self.start?, Counters::read()?);
        let total = end.total.checked_sub(start.total).filter(|&t| t > 0)? as f64;
        let busy = end.busy.saturating_sub(start.busy) as f64;
        let own = end.own.saturating_sub(start.own) as f64;
        let steal = end.steal.saturating_sub(start.steal) as f64;
        Some(MachineLoad {
            others_pct: (100.0 * (busy - own).max(0.0) / total).min(100.0),
            steal_pct: (100.0 * steal / total).min(100.0),
            load_average_before: self.load_average_before,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }
}

/// The machine's load during a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MachineLoad {
    /// CPU time other processes (and the hypervisor, as steal) took, % of all cores' time.
    pub others_pct: f64,
    /// The part of it the hypervisor gave to other guests, % of all cores' time.
    pub steal_pct: f64,
    /// The one-minute load average when the measurement started.
    pub load_average_before: Option<f64>,
    /// Cores of the machine.
    pub cores: usize,
}

impl MachineLoad {
    /// Whether others took enough of the machine to slow the measurement and make its ratios
    /// unreliable.
    pub fn busy(&self) -> bool {
        self.others_pct >= BUSY_OTHERS_PCT || self.steal_pct >= BUSY_STEAL_PCT
    }
}

impl fmt::Display for MachineLoad {
    /// `machine load: other processes took 3.1 % of the 2 cores' time during the run (steal
    /// 0.0 %); load average before 0.42`, and where [`busy`](Self::busy) a warning sentence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "machine load: other processes took {:.1} % of the {} cores' time during the run (steal {:.1} %)",
            self.others_pct, self.cores, self.steal_pct
        )?;
        if let Some(load) = self.load_average_before {
            write!(f, "; load average before {load:.2}")?;
        }
        if self.busy() {
            write!(
                f,
                "\nwarning: the machine was busy while this ran: the figures are slower than a quiet machine's and ratios between them may not repeat; rerun when it is quiet"
            )?;
        }
        Ok(())
    }
}

/// How far apart a set of timed calls lie: `(max - min) / median`, as a fraction.
pub fn spread(min: f64, median: f64, max: f64) -> f64 {
    if median > 0.0 {
        (max - min) / median
    } else {
        f64::NAN
    }
}

/// Spread of timed calls from which a ratio between two sets is flagged as one that may not
/// repeat.
pub const NOISY_SPREAD: f64 = 0.25;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_process_spinning_is_counted_as_others() {
        if Counters::read().is_none() {
            return; // not Linux: `finish` reports nothing there
        }
        let watch = LoadWatch::start();
        // A child spins for 400 ms while we sleep; not yet waited for, its time is not ours.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "end=$(($(date +%s%N) + 400000000)); while [ $(date +%s%N) -lt $end ]; do :; done",
            ])
            .spawn()
            .expect("sh runs");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let load = watch.finish().expect("the counters advance over 500 ms");
        child.wait().unwrap();
        // One core of `cores` for most of 500 ms (less what `date` forks cost to start).
        let expected = 100.0 / load.cores as f64 * 0.4;
        assert!(
            load.others_pct >= expected,
            "{load:?}, expected at least {expected:.0} %"
        );
        assert!(load.busy(), "{load:?}");
        assert!(
            load.to_string().starts_with("machine load: other processes took "),
            "{load}"
        );
    }

    #[test]
    fn busy_is_decided_by_the_thresholds() {
        let quiet = MachineLoad {
            others_pct: 2.0,
            steal_pct: 0.0,
            load_average_before: Some(0.1),
            cores: 2,
        };
        assert!(!quiet.busy());
        assert!(!quiet.to_string().contains("warning"));
        let loaded = MachineLoad {
            others_pct: 45.0,
            ..quiet
        };
        assert!(loaded.busy());
        assert!(loaded.to_string().contains("\nwarning: the machine was busy"));
        let stolen = MachineLoad {
            others_pct: 6.0,
            steal_pct: 6.0,
            ..quiet
        };
        assert!(stolen.busy());
    }

    #[test]
    fn spread_is_relative_to_the_median() {
        assert!((spread(90.0, 100.0, 130.0) - 0.4).abs() < 1e-12);
        assert!(spread(1.0, 0.0, 2.0).is_nan());
    }
}
