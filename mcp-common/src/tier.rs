//! The four safety tiers and what they mean for MCP annotations.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How much a tool can change. Ordered: `Green < Yellow < Red < Black`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Read-only, no side effects.
    Green,
    /// Safe, reversible operations (start, snapshot, backup, download, copy).
    Yellow,
    /// Disruptive (stop, reboot, rollback, delete snapshot, migrate, deploy).
    Red,
    /// Never run by the agent (node reboot/shutdown, destroying guests or data).
    Black,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Green, Tier::Yellow, Tier::Red, Tier::Black];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Green => "green",
            Tier::Yellow => "yellow",
            Tier::Red => "red",
            Tier::Black => "black",
        }
    }

    /// `readOnlyHint`: only GREEN tools are read-only.
    pub fn read_only(self) -> bool {
        self == Tier::Green
    }

    /// `destructiveHint`: RED and BLACK tools may destroy or disrupt.
    pub fn destructive(self) -> bool {
        self >= Tier::Red
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "green" => Ok(Tier::Green),
            "yellow" => Ok(Tier::Yellow),
            "red" => Ok(Tier::Red),
            "black" => Ok(Tier::Black),
            other => Err(format!("unknown tier '{other}' (expected green, yellow, red or black)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_ordered_and_parse() {
        assert!(Tier::Green < Tier::Yellow && Tier::Yellow < Tier::Red && Tier::Red < Tier::Black);
        assert_eq!("RED".parse::<Tier>(), Ok(Tier::Red));
        assert!("purple".parse::<Tier>().is_err());
        assert!(Tier::Green.read_only() && !Tier::Yellow.read_only());
        assert!(Tier::Red.destructive() && Tier::Black.destructive() && !Tier::Yellow.destructive());
    }
}
