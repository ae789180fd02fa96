//! The list of wholesale vendors and their ids. The list is here, at the bottom of the
//! crate, so every layer can name a vendor (the simulator core and the database rows too)
//! without importing the vendor layer; what a vendor *does* lives in `vendors/<vendor>/`.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// THE list of vendors: one line each, and everything that must name every vendor derives
/// from it ([`VendorId`] and its names, `vendors::credentials::VendorCredentials`, the registry,
/// the sandbox start-up, the webhook routes and their OpenAPI entries).
///
/// A `macro_rules!` table rather than a `&[&dyn VendorModule]` static because what derives
/// from it is mostly *types and items*: an enum with serde and OpenAPI names, a struct with
/// one typed credentials field per vendor (`creds.esimgo`), a struct with one typed simulator
/// per vendor (`sandbox.esimgo`), and one `#[utoipa::path]` handler per route. A trait object
/// could give none of those. It is used as `vendor_table!(some_macro)`: `some_macro` receives
/// every line and expands what it needs from them.
///
/// Columns: the [`VendorId`] variant; the vendor's module (its folder under `src/vendors/`);
/// its name in routes, the database and metrics (must equal the module name); its display
/// name; the adapter type (`<module>::<Adapter>`); the simulator type (`<module>::sim::<Sim>`);
/// the credentials type (`<module>::credentials::<Credentials>`); whether the vendor documents
/// a top-up operation (see [`VendorId::topups_documented`]); the simulator's currency and
/// price level, a multiplier on the seed catalogue's reference prices (see
/// `sandbox::catalog::vendor_pricing`).
///
/// Adding a vendor is one folder with the files every other vendor has, one line here, and
/// its tests (`CONTRIBUTING.md` has the checklist); the compiler then points at every
/// exhaustive `match` on [`VendorId`] that needs an arm.
///
/// Only tokens live here: the module, adapter, simulator and credentials columns are
/// expanded by the vendor layer's own macros, so this module depends on nothing.
macro_rules! vendor_table {
    ($then:ident) => {
        $then! {
            EsimAccess esimaccess "esimaccess" "eSIM Access"  EsimAccess EsimAccessSim EsimAccessCredentials (true) ("USD" "0.92");
            EsimGo     esimgo     "esimgo"     "eSIM Go"      EsimGo     EsimGoSim     EsimGoCredentials     (true) ("GBP" "0.95");
            EsimFx     esimfx     "esimfx"     "Nomad eSIMfx" EsimFx     EsimFxSim     EsimFxCredentials     (true) ("USD" "1.00");
            MicroEsim  microesim  "microesim"  "MicroEsim"    MicroEsim  MicroEsimSim  MicroEsimCredentials  (microesim::assumptions::SUPPORTS_TOPUP) ("HKD" "0.90");
            Multiverse multiverse "multiverse" "Multiverse"   Multiverse MultiverseSim MultiverseCredentials (multiverse::assumptions::TOPUP_DOCUMENTED) ("EUR" "1.04");
        }
    };
}

pub(crate) use vendor_table;

macro_rules! define_vendor_ids {
    ($($id:ident $module:ident $name:literal $display:literal $adapter:ident $sim:ident $creds:ident ($topups:expr) ($seed_currency:literal $seed_level:literal);)*) => {
        /// The five wholesale vendors. The string form is used in routes (`/webhooks/{vendor}`),
        /// env variable prefixes, the database and metrics labels.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
        )]
        // The OpenAPI derive reads `rename_all`, not a `rename` that comes from a macro
        // argument: names are the lower-cased variants (a lib test holds the table to it).
        #[serde(rename_all = "lowercase")]
        pub enum VendorId {
            $(#[serde(rename = $name)] $id,)*
        }

        impl VendorId {
            pub const ALL: [VendorId; [$(VendorId::$id),*].len()] = [$(VendorId::$id),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(VendorId::$id => $name,)*
                }
            }

            pub fn display_name(self) -> &'static str {
                match self {
                    $(VendorId::$id => $display,)*
                }
            }
        }
    };
}

vendor_table!(define_vendor_ids);

impl fmt::Display for VendorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment (`{id:<11}` in `vendors check`).
        f.pad(self.as_str())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownVendor(pub String);

impl fmt::Display for UnknownVendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = VendorId::ALL.iter().map(|v| v.as_str()).collect();
        write!(
            f,
            "unknown vendor {:?} (expected one of {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownVendor {}

impl FromStr for VendorId {
    type Err = UnknownVendor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VendorId::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownVendor(s.to_string()))
    }
}
