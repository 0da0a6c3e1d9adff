//! What `rvs realserver` changed, kept in a JSON file so `--undo` reverts exactly that.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Mode, RealServerError};
use crate::lab::process::ProcessId;

/// An address `rvs realserver` added (it did not exist before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedAddress {
    /// Device (`lo`).
    pub dev: String,
    /// The VIP.
    pub addr: IpAddr,
    /// 32 or 128.
    pub prefix_len: u8,
}

/// A sysctl `rvs realserver` changed: the value before and the value it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlChange {
    /// Key with slashes, relative to `/proc/sys` (`net/ipv4/conf/all/arp_ignore`).
    pub key: String,
    /// Value before the first change.
    pub old: String,
    /// Value written.
    pub new: String,
}

/// How TUN decapsulation is provided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DecapState {
    /// The kernel's fallback tunnel devices (`tunl0`, `ip6tnl0`) decapsulate.
    Kernel {
        /// Tunnel devices in use.
        devices: Vec<String>,
    },
    /// rvs's XDP program strips the outer header; a foreground `rvs realserver tun` holds it.
    Xdp {
        /// Interfaces the program is attached to.
        interfaces: Vec<String>,
        /// The process holding the program (it detaches when that process exits).
        holder: ProcessId,
    },
}

/// Everything one `rvs realserver dr|tun` changed in one network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerState {
    /// DR or TUN.
    pub mode: Mode,
    /// Inode of the network namespace the changes were made in.
    pub netns_inode: u64,
    /// The VIPs prepared.
    pub vips: Vec<IpAddr>,
    /// Links that were down and were set up (undo sets them down again).
    pub links_set_up: Vec<String>,
    /// Addresses added.
    pub addresses: Vec<AddedAddress>,
    /// Sysctls changed, in the order they were changed (undo walks them backwards).
    pub sysctls: Vec<SysctlChange>,
    /// Decapsulation (TUN only).
    pub decap: Option<DecapState>,
}

impl RealServerState {
    /// An empty record.
    pub fn new(mode: Mode, netns_inode: u64) -> Self {
        Self {
            mode,
            netns_inode,
            vips: Vec::new(),
            links_set_up: Vec::new(),
            addresses: Vec::new(),
            sysctls: Vec::new(),
            decap: None,
        }
    }

    /// Loads a state file; `Ok(None)` if there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, RealServerError> {
        match fs::read(path) {
            Ok(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| RealServerError::State {
                    path: path.to_owned(),
                    source: e,
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RealServerError::Os {
                what: format!("read {}", path.display()),
                source: e,
            }),
        }
    }

    /// Writes the state file atomically (write to a temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), RealServerError> {
        let os = |e| RealServerError::Os {
            what: format!("write {}", path.display()),
            source: e,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(os)?;
        }
        let raw = serde_json::to_vec_pretty(self).map_err(|e| RealServerError::State {
            path: path.to_owned(),
            source: e,
        })?;
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, raw).map_err(os)?;
        fs::rename(&tmp, path).map_err(os)
    }
}
