//! Runs all five simulators on loopback ports and builds the matching adapters: what
//! `serve` does when no vendor has credentials, what `esim-gateway sandbox` runs, and what
//! integration tests stand on. [`VendorsFile`] describes running simulators to a gateway in
//! another process (`esim-gateway sandbox --vendors-only`), so the vendors can outlive it.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

use crate::{
    config::VendorCredentials,
    sandbox::{RunningSim, SimCore, SimSettings, bind_loopback, serve_on},
    vendors::{
        AdapterOptions, VendorId,
        esimaccess::sim::EsimAccessSim,
        esimfx::sim::EsimFxSim,
        esimgo::sim::EsimGoSim,
        microesim::sim::MicroEsimSim,
        multiverse::sim::MultiverseSim,
        registry::{VendorMode, Vendors},
    },
};

/// The running simulators, their credentials, and adapters pointed at them.
pub struct Sandbox {
    pub esimaccess: EsimAccessSim,
    pub esimgo: EsimGoSim,
    pub esimfx: EsimFxSim,
    pub microesim: MicroEsimSim,
    pub multiverse: MultiverseSim,
    /// What each adapter was configured with (base URLs point at the simulators).
    pub credentials: VendorCredentials,
    running: Vec<RunningSim>,
}

impl Sandbox {
    /// Starts every simulator. `webhook_base` is the gateway's public base URL: each
    /// simulator calls back to `<webhook_base>/webhooks/<vendor>`.
    pub async fn start(
        settings: SimSettings,
        webhook_base: Option<&url::Url>,
    ) -> std::io::Result<Sandbox> {
        let mut running = Vec::new();
        let mut credentials = VendorCredentials::default();

        let (listener, base) = bind_loopback().await?;
        let creds = EsimAccessSim::sandbox_credentials(base);
        let esimaccess = EsimAccessSim::new(&creds, settings);
        running.push(serve_on(listener, esimaccess.router())?);
        credentials.esimaccess = Some(creds);

        let (listener, base) = bind_loopback().await?;
        let creds = EsimGoSim::sandbox_credentials(base);
        let esimgo = EsimGoSim::new(&creds, settings);
        running.push(serve_on(listener, esimgo.router())?);
        credentials.esimgo = Some(creds);

        let (listener, base) = bind_loopback().await?;
        let creds = EsimFxSim::sandbox_credentials(base);
        let esimfx = EsimFxSim::new(&creds, settings);
        running.push(serve_on(listener, esimfx.router())?);
        credentials.esimfx = Some(creds);

        let (listener, base) = bind_loopback().await?;
        let creds = MicroEsimSim::sandbox_credentials(base);
        let microesim = MicroEsimSim::new(&creds, settings);
        running.push(serve_on(listener, microesim.router())?);
        credentials.microesim = Some(creds);

        let (listener, base) = bind_loopback().await?;
        let creds = MultiverseSim::sandbox_credentials(base);
        let multiverse = MultiverseSim::new(&creds, settings);
        running.push(serve_on(listener, multiverse.router())?);
        credentials.multiverse = Some(creds);

        let sandbox = Sandbox {
            esimaccess,
            esimgo,
            esimfx,
            microesim,
            multiverse,
            credentials,
            running,
        };
        sandbox.set_webhook_base(webhook_base);
        Ok(sandbox)
    }

    pub fn core(&self, vendor: VendorId) -> &SimCore {
        match vendor {
            VendorId::EsimAccess => self.esimaccess.core(),
            VendorId::EsimGo => self.esimgo.core(),
            VendorId::EsimFx => self.esimfx.core(),
            VendorId::MicroEsim => self.microesim.core(),
            VendorId::Multiverse => self.multiverse.core(),
        }
    }

    /// Points every simulator's callbacks at `<base>/webhooks/<vendor>` (or stops them).
    pub fn set_webhook_base(&self, base: Option<&url::Url>) {
        for v in VendorId::ALL {
            let url = base.and_then(|b| b.join(&format!("/webhooks/{v}")).ok());
            self.core(v).set_callback_url(url);
        }
    }

    /// Applies the same settings to every simulator.
    pub fn set_settings(&self, settings: SimSettings) {
        for v in VendorId::ALL {
            self.core(v).set_settings(settings);
        }
    }

    /// Base URL of each simulator.
    pub fn base_urls(&self) -> Vec<(VendorId, url::Url)> {
        VendorId::ALL
            .into_iter()
            .zip(self.running.iter().map(|r| r.base_url.clone()))
            .collect()
    }

    /// Adapters for all five simulators.
    pub fn vendors(&self, opts: &AdapterOptions) -> Vendors {
        Vendors::from_credentials(&self.credentials, opts, VendorMode::Sandbox)
    }

    /// What a gateway in another process needs to use these simulators as live vendors.
    pub fn vendors_file(&self) -> VendorsFile {
        let vendors = self
            .base_urls()
            .into_iter()
            .map(|(vendor, control_url)| SimEndpoint {
                vendor,
                api_base_url: self.api_base_url(vendor).to_string(),
                control_url: control_url.to_string(),
                callback_url: self.core(vendor).callback_url().map(String::from),
            })
            .collect();
        VendorsFile {
            vendors,
            env: live_env(&self.credentials),
        }
    }

    /// The base URL the vendor's adapter is configured with (eSIM Go's carries its API
    /// version path; the others are the simulator's root).
    fn api_base_url(&self, vendor: VendorId) -> url::Url {
        let c = &self.credentials;
        let url = match vendor {
            VendorId::EsimAccess => c.esimaccess.as_ref().map(|c| &c.base_url),
            VendorId::EsimGo => c.esimgo.as_ref().map(|c| &c.base_url),
            VendorId::EsimFx => c.esimfx.as_ref().map(|c| &c.base_url),
            VendorId::MicroEsim => c.microesim.as_ref().map(|c| &c.base_url),
            VendorId::Multiverse => c.multiverse.as_ref().map(|c| &c.base_url),
        };
        url.cloned().expect("every simulator has credentials")
    }
}

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

/// The variables `Config::from_env` reads for each vendor, set to these credentials.
fn live_env(c: &VendorCredentials) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        env.insert(k.to_string(), v.to_string());
    };
    if let Some(c) = &c.esimaccess {
        set("ESIMACCESS_ACCESS_CODE", c.access_code.expose());
        set("ESIMACCESS_SECRET_KEY", c.secret_key.expose());
        set("ESIMACCESS_BASE_URL", c.base_url.as_str());
    }
    if let Some(c) = &c.esimgo {
        set("ESIMGO_API_KEY", c.api_key.expose());
        set("ESIMGO_BASE_URL", c.base_url.as_str());
    }
    if let Some(c) = &c.esimfx {
        set("ESIMFX_CLIENT_ID", c.client_id.expose());
        set("ESIMFX_CLIENT_KEY", c.client_key.expose());
        if let Some(t) = &c.webhook_token {
            set("ESIMFX_WEBHOOK_TOKEN", t.expose());
        }
        set("ESIMFX_BASE_URL", c.base_url.as_str());
    }
    if let Some(c) = &c.microesim {
        set("MICROESIM_ACCOUNT", c.account.expose());
        set("MICROESIM_SECRET", c.secret.expose());
        set("MICROESIM_SALT_HEX", c.salt_hex.expose());
        set("MICROESIM_BASE_URL", c.base_url.as_str());
    }
    if let Some(c) = &c.multiverse {
        set("MULTIVERSE_USER_ID", c.user_id.expose());
        set("MULTIVERSE_SECURITY_TOKEN", c.security_token.expose());
        set("MULTIVERSE_CLIENT_ID", c.client_id.expose());
        set("MULTIVERSE_CLIENT_SECRET", c.client_secret.expose());
        set("MULTIVERSE_BASE_URL", c.base_url.as_str());
    }
    env
}
