//! The network policy: which targets a guest may connect to, checked on
//! the name before resolution and on every address actually dialled.

use std::net::IpAddr;

/// What a guest may reach.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allow_any: bool,
}

impl Policy {
    /// Every target is allowed (the CLI's first cut; the allow-list is the
    /// sandbox issue's work).
    pub fn allow_all() -> Policy {
        Policy { allow_any: true }
    }

    /// Check a name and port before resolving it. Err names the rule.
    pub fn check_name(&self, host: &str, port: u16) -> Result<(), String> {
        if self.allow_any {
            return Ok(());
        }
        Err(format!("{host}:{port} is not in the allow-list"))
    }

    /// Check the address about to be dialled for `host`.
    pub fn check_addr(&self, host: &str, port: u16, addr: IpAddr) -> Result<(), String> {
        if self.allow_any {
            return Ok(());
        }
        Err(format!("{host}:{port} ({addr}) is not in the allow-list"))
    }
}
