//! [`Iface`]: a network interface as the user names it, by address, name
//! or index.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::GroupError;

/// A network interface, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iface {
    /// An IPv4 address of the interface (IPv4 groups only).
    Addr(IpAddr),
    /// An interface by name (`lo`, `eth0`) or number, with its index.
    Index {
        /// What the user wrote.
        name: String,
        /// The kernel's index of it.
        index: u32,
    },
}

impl FromStr for Iface {
    type Err = GroupError;

    /// An address (`127.0.0.1`), a name (`lo`) or an index (`1`). A name
    /// is looked up now, so that a typo fails before anything is bound.
    fn from_str(s: &str) -> Result<Self, GroupError> {
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Self::Addr(addr));
        }
        let index = match s.parse::<u32>() {
            Ok(index) => index,
            Err(_) => index_of(s).unwrap_or(0),
        };
        if index == 0 {
            return Err(GroupError::NoSuchInterface { name: s.to_owned() });
        }
        Ok(Self::Index {
            name: s.to_owned(),
            index,
        })
    }
}

impl fmt::Display for Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(addr) => write!(f, "{addr}"),
            Self::Index { name, .. } => f.write_str(name),
        }
    }
}

/// The kernel's index of the interface called `name`, if there is one.
#[cfg(unix)]
fn index_of(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

#[cfg(not(unix))]
fn index_of(_name: &str) -> Option<u32> {
    None
}
