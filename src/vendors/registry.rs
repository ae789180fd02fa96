//! The vendors this gateway instance buys from, live or simulated.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdapterOptions, Vendor, VendorId, credentials::VendorCredentials};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VendorMode {
    /// Real credentials, the vendor's real API.
    Live,
    /// The built-in simulator.
    Sandbox,
}

#[derive(Clone)]
pub struct VendorEntry {
    pub adapter: Arc<dyn Vendor>,
    pub mode: VendorMode,
}

/// Enabled vendors of one mode by id. Vendors without credentials (and outside sandbox
/// mode) are absent.
#[derive(Clone, Default)]
pub struct Vendors {
    entries: BTreeMap<VendorId, VendorEntry>,
    /// Which mode's orders and catalogue these vendors serve: live vendors serve `sk_live_`
    /// keys, the simulators `sk_test_` ones (the default).
    pub livemode: bool,
    /// The built-in simulators behind these adapters, when they are ours (test mode): what
    /// storefront test scenarios arm their per-order faults on. Never set for live vendors.
    simulators: BTreeMap<VendorId, crate::sandbox::SimCore>,
    /// The vendors' recent answers on which top-ups fit which eSIM (shared by clones).
    pub topup_answers: Arc<super::topup_cache::TopupCache>,
}

impl Vendors {
    /// No vendor, in the given mode.
    pub fn none(livemode: bool) -> Vendors {
        Vendors {
            livemode,
            ..Vendors::default()
        }
    }

    pub fn insert(&mut self, adapter: Arc<dyn Vendor>, mode: VendorMode) {
        self.entries
            .insert(adapter.id(), VendorEntry { adapter, mode });
    }

    pub fn attach_simulator(&mut self, id: VendorId, core: crate::sandbox::SimCore) {
        self.simulators.insert(id, core);
    }

    /// The vendor's built-in simulator, if it is one of ours.
    pub fn simulator(&self, id: VendorId) -> Option<&crate::sandbox::SimCore> {
        self.simulators.get(&id)
    }

    pub fn get(&self, id: VendorId) -> Option<&VendorEntry> {
        self.entries.get(&id)
    }

    pub fn adapter(&self, id: VendorId) -> Option<Arc<dyn Vendor>> {
        self.entries.get(&id).map(|e| e.adapter.clone())
    }

    pub fn ids(&self) -> Vec<VendorId> {
        self.entries.keys().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (VendorId, &VendorEntry)> {
        self.entries.iter().map(|(id, e)| (*id, e))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

macro_rules! define_from_credentials {
    ($($id:ident $module:ident $name:literal $display:literal $adapter:ident $sim:ident $creds:ident ($topups:expr) ($seed_currency:literal $seed_level:literal);)*) => {
        impl Vendors {
            /// Adapters for the vendors that have credentials, all in `mode` (live
            /// credentials, or the sandbox's own pointing at its simulators).
            pub fn from_credentials(
                creds: &VendorCredentials,
                opts: &AdapterOptions,
                mode: VendorMode,
            ) -> Vendors {
                let mut vendors = Vendors::none(mode == VendorMode::Live);
                $(
                    if let Some(c) = creds.$module.clone() {
                        vendors.insert(Arc::new(super::$module::$adapter::new(c, opts)), mode);
                    }
                )*
                vendors
            }
        }
    };
}

super::vendor_table!(define_from_credentials);
