//! The lab's record of what it created: `/run/rvs/<lab>/state.json`.
//!
//! Namespaces are recorded *before* they are created and processes right after they are spawned,
//! so `rvs lab down` can clean up after a failed or interrupted `up`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LabError;
use super::process::ProcessId;
use super::topology::LabMode;

/// Root of the lab's runtime files.
pub const RUN_DIR: &str = "/run/rvs";

/// A process the lab started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabProcess {
    /// What it is (`rvsd`, `rs1 http`, …).
    pub role: String,
    /// Namespace it runs in.
    pub netns: String,
    /// Identity.
    pub id: ProcessId,
    /// Its stdout/stderr.
    pub log: PathBuf,
}

/// Everything one `rvs lab up` created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// Lab name.
    pub name: String,
    /// Forwarding method.
    pub mode: LabMode,
    /// Scheduler of the services.
    pub scheduler: String,
    /// Weights of rs1..rs3.
    pub weights: Vec<u32>,
    /// Whether IPv6 services are configured.
    pub ipv6: bool,
    /// Namespaces created (or about to be).
    pub namespaces: Vec<String>,
    /// Processes started.
    pub processes: Vec<LabProcess>,
    /// rvsd's control socket, once rvsd runs.
    pub director_socket: Option<PathBuf>,
    /// Whether `up` completed.
    pub complete: bool,
}

/// `/run/rvs/<lab>`.
pub fn lab_dir(name: &str) -> PathBuf {
    Path::new(RUN_DIR).join(name)
}

/// `/run/rvs/<lab>/state.json`.
pub fn state_path(name: &str) -> PathBuf {
    lab_dir(name).join("state.json")
}

/// `/run/rvs/<lab>.sock`, rvsd's control socket in the lab.
pub fn socket_path(name: &str) -> PathBuf {
    Path::new(RUN_DIR).join(format!("{name}.sock"))
}

impl LabState {
    /// Loads the state of lab `name`; `Ok(None)` if there is none.
    pub fn load(name: &str) -> Result<Option<Self>, LabError> {
        let path = state_path(name);
        match fs::read(&path) {
            Ok(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| LabError::State { path, source: e }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LabError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Writes the state atomically.
    pub fn save(&self) -> Result<(), LabError> {
        let path = state_path(&self.name);
        let dir = lab_dir(&self.name);
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        let raw = serde_json::to_vec_pretty(self).map_err(|e| LabError::State {
            path: path.clone(),
            source: e,
        })?;
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, raw).map_err(|e| LabError::io(format!("write {}", tmp.display()), e))?;
        fs::rename(&tmp, &path).map_err(|e| LabError::io(format!("write {}", path.display()), e))
    }
}
