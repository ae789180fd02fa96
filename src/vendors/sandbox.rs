//! Runs every vendor's simulator on a loopback port and builds the matching adapters: what
//! `serve` does when no vendor has credentials, what `esim-gateway sandbox` runs, and what
//! integration tests stand on. The list of simulators comes from the vendor table; the
//! vendor-independent plumbing (ports, callbacks, faults, [`VendorsFile`]) is `crate::sandbox`.

use crate::{
    sandbox::{
        RunningSim, SimCore, SimSettings, bind_loopback,
        runtime::{SimEndpoint, VendorsFile},
        serve_on,
    },
    vendors::{
        AdapterOptions, VendorId,
        credentials::VendorCredentials,
        registry::{VendorMode, Vendors},
    },
};

macro_rules! define_sandbox {
    ($($id:ident $module:ident $name:literal $display:literal $adapter:ident $sim:ident $creds:ident ($topups:expr) ($seed_currency:literal $seed_level:literal);)*) => {
        /// The running simulators (one field per vendor, named by its module), their
        /// credentials, and adapters pointed at them.
        pub struct Sandbox {
            $(pub $module: super::$module::sim::$sim,)*
            /// What each adapter was configured with (base URLs point at the simulators).
            pub credentials: VendorCredentials,
            running: Vec<(VendorId, RunningSim)>,
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
                $(
                    let (listener, base) = bind_loopback().await?;
                    let creds = super::$module::sim::$sim::sandbox_credentials(base);
                    let $module = super::$module::sim::$sim::new(&creds, settings);
                    let router = crate::sandbox::scope_faults($module.router(), $module.core().clone());
                    running.push((VendorId::$id, serve_on(listener, router)?));
                    credentials.$module = Some(creds);
                )*
                let sandbox = Sandbox {
                    $($module,)*
                    credentials,
                    running,
                };
                sandbox.set_webhook_base(webhook_base);
                Ok(sandbox)
            }

            pub fn core(&self, vendor: VendorId) -> &SimCore {
                match vendor {
                    $(VendorId::$id => self.$module.core(),)*
                }
            }

            /// How many orders each simulator holds for our order `order_id` (vendors with
            /// none left out).
            pub fn orders_for(&self, order_id: &str) -> Vec<(VendorId, usize)> {
                VendorId::ALL
                    .into_iter()
                    .map(|v| (v, self.core(v).orders().iter().filter(|o| o.is_for(order_id)).count()))
                    .filter(|(_, n)| *n > 0)
                    .collect()
            }

            /// The simulated prepaid balance, in the vendor's own currency.
            pub fn balance(&self, vendor: VendorId) -> rust_decimal::Decimal {
                match vendor {
                    $(VendorId::$id => self.$module.balance(),)*
                }
            }

            /// Sets the simulated prepaid balance (in the vendor's own currency): orders it
            /// cannot pay are refused the vendor's way, and its balance operation reports it.
            pub fn set_balance(&self, vendor: VendorId, amount: rust_decimal::Decimal) {
                match vendor {
                    $(VendorId::$id => self.$module.set_balance(amount),)*
                }
            }
        }

        /// How each vendor's simulator plays the storefront test scenarios.
        pub fn scenario_codes(vendor: VendorId) -> crate::sandbox::ScenarioCodes {
            match vendor {
                $(VendorId::$id => super::$module::sim::SCENARIO_CODES,)*
            }
        }
    };
}

super::vendor_table!(define_sandbox);

impl Sandbox {
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
        self.running
            .iter()
            .map(|(vendor, r)| (*vendor, r.base_url.clone()))
            .collect()
    }

    /// Adapters for every simulator, each with its simulator's handle (test scenarios arm
    /// faults scoped to one order through it).
    pub fn vendors(&self, opts: &AdapterOptions) -> Vendors {
        let mut vendors = Vendors::from_credentials(&self.credentials, opts, VendorMode::Sandbox);
        for v in VendorId::ALL {
            vendors.attach_simulator(v, self.core(v).clone());
        }
        vendors
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
            env: self.credentials.to_env(),
        }
    }

    /// The base URL the vendor's adapter is configured with (eSIM Go's carries its API
    /// version path; the others are the simulator's root).
    fn api_base_url(&self, vendor: VendorId) -> url::Url {
        self.credentials
            .base_url(vendor)
            .cloned()
            .expect("every simulator has credentials")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::credentials::CredentialEnv;

    /// `vendors.env` hands the simulators to a gateway in another process: what it holds
    /// must read back as the same vendors, every one of them live.
    #[tokio::test]
    async fn the_written_environment_reads_back_as_every_simulated_vendor() {
        let sandbox = Sandbox::start(SimSettings::fast(), None).await.unwrap();
        let env = sandbox.credentials.to_env();
        let lookup = |k: &str| env.get(k).cloned();
        let back = VendorCredentials::from_env(&CredentialEnv::new(&lookup)).unwrap();
        for v in VendorId::ALL {
            let base = back.base_url(v);
            assert!(base.is_some(), "{v} has credentials");
            assert_eq!(base, sandbox.credentials.base_url(v), "{v}");
        }
        assert_eq!(back.to_env(), env);
        assert_eq!(sandbox.base_urls().len(), VendorId::ALL.len());
        assert_eq!(
            sandbox.vendors(&AdapterOptions::default()).ids(),
            VendorId::ALL
        );
    }
}
