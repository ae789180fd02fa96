//! Runs all five simulators on loopback ports and builds the matching adapters: what
//! `serve` does when no vendor has credentials, what `esim-gateway sandbox` runs, and what
//! integration tests stand on.

use crate::{
    config::VendorCredentials,
    sandbox::{
        RunningSim, SimCore, SimSettings, bind_loopback, esimaccess::EsimAccessSim,
        esimfx::EsimFxSim, esimgo::EsimGoSim, microesim::MicroEsimSim, multiverse::MultiverseSim,
        serve_on,
    },
    vendors::{
        AdapterOptions, VendorId,
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
}
