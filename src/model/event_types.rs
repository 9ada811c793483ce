//! The data of events (`model::event` resolves and evaluates them): what a system holds,
//! apart from the code that builds it, so that `System` can hold events without the two
//! files importing each other.

/// The most events a system may have: each costs a condition per step in every kernel, and
/// the kernels keep one located time per event in registers.
pub const MAX_EVENTS: usize = 32;

/// How many event records each trajectory keeps, and from when: run settings that travel
/// with the system (`System::event_log`) so that every front-end and family sees them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventLogSpec {
    /// Records kept per trajectory (the first `k`); the count of fired events goes on.
    pub k: usize,
    /// Records (and counts) start at `t0 + transient`; actions act from `t0` on.
    pub transient: f64,
}

/// Records per trajectory when a run does not say (`--events K`).
pub const DEFAULT_RECORDS: usize = 64;

impl Default for EventLogSpec {
    fn default() -> Self {
        EventLogSpec {
            k: DEFAULT_RECORDS,
            transient: 0.0,
        }
    }
}

/// How an event's condition fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A zero crossing of the condition, located on the step's continuous extension.
    Continuous,
    /// Condition > 0 at the end of an accepted step; the event time is the step's end.
    Discrete,
}

/// Which zero crossings of a continuous condition fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From negative to zero or positive.
    Up,
    /// From positive to zero or negative.
    Down,
    Both,
}

impl Direction {
    pub const NAMES: [&'static str; 3] = ["up", "down", "both"];

    pub fn from_name(name: &str) -> Option<Direction> {
        match name {
            "up" => Some(Direction::Up),
            "down" => Some(Direction::Down),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Both => "both",
        }
    }

    /// The crossing rule every kernel and twin follows: `g0` the condition at a step's
    /// start, `g1` at its end. A root exactly on a step boundary fires once: as the end of
    /// one step (g1 = 0), never again as the start of the next (g0 = 0 fires nothing).
    pub fn crosses(self, g0: f64, g1: f64) -> bool {
        let up = g0 < 0.0 && g1 >= 0.0;
        let down = g0 > 0.0 && g1 <= 0.0;
        match self {
            Direction::Up => up,
            Direction::Down => down,
            Direction::Both => up || down,
        }
    }

    /// Bit 0: up crossings fire; bit 1: down crossings (the kernels' encoding).
    pub fn mask(self) -> u32 {
        match self {
            Direction::Up => 1,
            Direction::Down => 2,
            Direction::Both => 3,
        }
    }
}

/// What a fired event does. Every fired event is recorded (after the transient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Record,
    /// Ends the trajectory at the event with `Status::Terminated`.
    Terminate,
    /// Writes new values to states and parameters at the event.
    Assign,
}

impl Action {
    pub const NAMES: [&'static str; 3] = ["record", "terminate", "assign"];

    /// Whether the action cuts the step at the event (later crossings in it are dropped).
    pub fn cuts(self) -> bool {
        self != Action::Record
    }
}

/// What an assignment writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignTarget {
    State(usize),
    Param(usize),
}

/// One resolved event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub kind: EventKind,
    pub direction: Direction,
    pub action: Action,
    /// Over the system's states, parameters, inputs, `t` and auxiliaries.
    pub condition: super::expr::Node,
    /// `action = assign`: the targets and their new values, all evaluated at the event's
    /// time and state before any is written (simultaneous assignment).
    pub assign: Vec<(AssignTarget, super::expr::Node)>,
    /// The condition and the assignment lines as written.
    pub condition_text: String,
    pub assign_text: String,
}
