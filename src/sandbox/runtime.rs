//! What a `sandbox --vendors-only` process tells a gateway in another process about its
//! running simulators ([`VendorsFile`]), so the vendors can outlive the gateway. Starting
//! the simulators themselves needs every vendor and lives in `vendors::sandbox`.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

use crate::domain::vendor::VendorId;

/// One running simulator, as seen from another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimEndpoint {
    pub vendor: VendorId,
    /// Where the vendor's API lives: the `<VENDOR>_BASE_URL` of a gateway using it.
    pub api_base_url: String,
    /// The simulator's root, where its `/_sandbox/*` control API answers.
    pub control_url: String,
    /// Where its callbacks go (`<callback base>/webhooks/<vendor>`).
    pub callback_url: Option<String>,
}

/// The simulators of a `sandbox --vendors-only` process and the environment a gateway
/// needs to use them as live vendors. The credentials are throwaway ones generated for this
/// process; they are printed on purpose, because handing them over is the point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorsFile {
    pub vendors: Vec<SimEndpoint>,
    /// `ESIMGO_API_KEY=…`, `ESIMGO_BASE_URL=…`, … for every vendor.
    pub env: BTreeMap<String, String>,
}

impl VendorsFile {
    pub const JSON: &str = "vendors.json";
    pub const ENV: &str = "vendors.env";

    /// `export VAR='value'` lines, for a shell to `source`.
    pub fn shell_exports(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', "'\\''")))
            .collect()
    }

    /// Writes `vendors.json` and `vendors.env` into `dir` (created if missing), each through
    /// a temporary file and a rename so a reader never sees half a file; owner-only, since
    /// they hold credentials.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_private(&dir.join(Self::ENV), self.shell_exports().as_bytes())?;
        write_private(&dir.join(Self::JSON), &json)
    }

    pub fn read_from(dir: &Path) -> std::io::Result<VendorsFile> {
        let raw = std::fs::read(dir.join(Self::JSON))?;
        serde_json::from_slice(&raw).map_err(std::io::Error::other)
    }

    pub fn endpoint(&self, vendor: VendorId) -> Option<&SimEndpoint> {
        self.vendors.iter().find(|e| e.vendor == vendor)
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
