use esim_gateway::domain::secret::ExposeSecret;
use std::{process::ExitCode, sync::Arc, time::Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use esim_gateway::{
    AppShared, AppState, build_app,
    catalog::pricing::Pricing,
    config::Config,
    sandbox::SimSettings,
    store, telemetry,
    vendors::{
        AdapterOptions, VendorError, VendorId,
        registry::{VendorMode, Vendors},
        sandbox::Sandbox,
    },
    workers,
};
use tokio::net::TcpListener;

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// buffers on whichever worker thread runs it, and glibc's malloc and free were a sixth of
/// a catalogue read's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "esim-gateway",
    version,
    about = "Sell travel eSIMs from the cheapest wholesale vendor through one REST API"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default). Configuration comes from the environment; with no
    /// vendor credentials the five vendors are built-in simulators (sandbox mode).
    Serve,
    /// Run the five vendor simulators on loopback ports and the gateway configured to them,
    /// whatever vendor credentials are set.
    Sandbox(SandboxArgs),
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Sync every enabled vendor's catalogue once, then exit.
    Sync,
    /// Print the OpenAPI document to stdout.
    Openapi,
    /// Vendor diagnostics.
    Vendors {
        #[command(subcommand)]
        command: VendorsCommand,
    },
}

#[derive(clap::Args)]
struct SandboxArgs {
    /// Run only the simulators, no gateway and no database: print the environment a live
    /// gateway in another process needs to use them (`export VAR=…` lines) and serve until
    /// Ctrl-C or SIGTERM. Orders stay in memory for the life of this process, so the
    /// vendors outlive any gateway that crashes and restarts against them.
    #[arg(long)]
    vendors_only: bool,
    /// Also write `vendors.json` (addresses, control URLs, environment) and `vendors.env`
    /// (the export lines) into this directory once every simulator listens.
    #[arg(long, requires = "vendors_only", value_name = "DIR")]
    state_dir: Option<std::path::PathBuf>,
    /// Where the simulators send callbacks (`<URL>/webhooks/<vendor>`): the gateway's
    /// public base URL, or a proxy in front of several replicas. Default: PUBLIC_BASE_URL.
    #[arg(long, requires = "vendors_only", value_name = "URL")]
    callback_base: Option<url::Url>,
}

#[derive(Subcommand)]
enum VendorsCommand {
    /// Call every configured vendor's balance and catalogue; one line per vendor.
    Check,
    /// Print one vendor's normalized offers.
    Offers {
        /// The vendor's name (the possible values come from the vendor table).
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(VendorId::ALL.map(VendorId::as_str)))]
        vendor: String,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", esim_gateway::http::openapi_json());
        return ExitCode::SUCCESS;
    }
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("esim-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Sandbox(args) if args.vendors_only => vendors_only(config, args).await,
        Command::Sandbox(_) => {
            config.sandbox = true;
            serve(config).await
        }
        Command::Migrate => migrate(&config).await.map(|_| ()),
        Command::Sync => sync_once(config).await,
        Command::Vendors { command } => vendors_command(config, command).await,
        Command::Openapi => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("esim-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    let url = config.database_url.expose_secret();
    store::ensure_database(url).await?;
    let pool = store::connect(url).await?;
    store::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(pool)
}

/// The two vendor sets: live (those with credentials, none when `SANDBOX` is on) and test
/// (all five simulators, unless `TEST_MODE=off`). The returned sandbox must outlive the
/// vendors (it owns the simulators' listeners).
struct EnabledVendors {
    live: Vendors,
    test: Vendors,
    _sandbox: Option<Sandbox>,
}

impl EnabledVendors {
    /// The deployment's own mode: live when it has live vendors.
    fn deployment(&self) -> &Vendors {
        if self.live.is_empty() {
            &self.test
        } else {
            &self.live
        }
    }
}

async fn enabled_vendors(config: &Config) -> anyhow::Result<EnabledVendors> {
    let opts = AdapterOptions::default();
    let live = if config.sandbox {
        if config.vendors.any_live() {
            tracing::warn!(
                "SANDBOX is on: vendor credentials are ignored; every key is served in test mode"
            );
        }
        Vendors::default()
    } else {
        Vendors::from_credentials(&config.vendors, &opts, VendorMode::Live)
    };
    if !config.test_mode {
        return Ok(EnabledVendors {
            live,
            test: Vendors::default(),
            _sandbox: None,
        });
    }
    let settings = SimSettings {
        catalog_size: config.sandbox_catalog_size,
        ..SimSettings::default()
    };
    let sandbox = Sandbox::start(settings, Some(&config.public_base_url))
        .await
        .context("cannot start the sandbox simulators")?;
    for (vendor, url) in sandbox.base_urls() {
        // A gateway with nothing but simulators says so loudly (and where they are, which
        // tools such as bench/run.sh read); beside live vendors it is routine.
        if live.is_empty() {
            tracing::warn!(%vendor, %url, "test mode only: simulated vendor for sk_test_ keys (no real eSIMs are bought)");
        } else {
            tracing::info!(%vendor, %url, "test mode: simulated vendor for sk_test_ keys (no real eSIMs are bought)");
        }
    }
    if live.is_empty() {
        tracing::warn!("no live vendor: only test mode (sk_test_ keys) is available");
    }
    Ok(EnabledVendors {
        live,
        test: sandbox.vendors(&opts),
        _sandbox: Some(sandbox),
    })
}

/// Rows from before test mode: adopted once into this deployment's mode, before anything
/// of either mode is written (so no row of the other mode can collide with them).
async fn adopt_legacy(pool: &sqlx::PgPool, enabled: &EnabledVendors) -> anyhow::Result<()> {
    let live = !enabled.live.is_empty();
    let adopted = store::modes::adopt_legacy(pool, live).await?;
    if adopted > 0 {
        tracing::info!(
            adopted,
            livemode = live,
            "rows from before test mode adopted into live mode"
        );
    }
    Ok(())
}

/// `sandbox --vendors-only`: the simulators alone, described for a gateway elsewhere.
async fn vendors_only(config: Config, args: SandboxArgs) -> anyhow::Result<()> {
    let settings = SimSettings {
        catalog_size: config.sandbox_catalog_size,
        ..SimSettings::default()
    };
    let callback_base = args.callback_base.unwrap_or(config.public_base_url);
    let sandbox = Sandbox::start(settings, Some(&callback_base))
        .await
        .context("cannot start the sandbox simulators")?;
    let file = sandbox.vendors_file();
    for e in &file.vendors {
        tracing::warn!(vendor = %e.vendor, api = %e.api_base_url, control = %e.control_url,
            callbacks = e.callback_url.as_deref().unwrap_or("off"),
            "SANDBOX: simulated vendor for a gateway in another process (no real eSIMs are bought)");
    }
    if let Some(dir) = &args.state_dir {
        file.write_to(dir)
            .with_context(|| format!("cannot write the vendors file into {}", dir.display()))?;
    }
    // The throwaway credentials of this process, for `eval` or copying into a gateway's env.
    print!("{}", file.shell_exports());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    shutdown_signal().await;
    drop(sandbox);
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let pool = migrate(&config).await?;
    let enabled = enabled_vendors(&config).await?;
    adopt_legacy(&pool, &enabled).await?;
    let (live, test) = (
        Arc::new(enabled.live.clone()),
        Arc::new(enabled.test.clone()),
    );

    let listener = TcpListener::bind(config.bind_addr)
        .await
        .with_context(|| format!("cannot listen on BIND_ADDR {}", config.bind_addr))?;
    tracing::info!(addr = %config.bind_addr, public_base_url = %config.public_base_url, "esim-gateway listening");
    if config.admin_token.is_none() {
        tracing::warn!("ADMIN_TOKEN is not set: the admin API is disabled");
    }
    // One catalogue per mode, each from its own vendors.
    let syncs = [&live, &test].map(|vendors| {
        workers::catalog_sync::spawn(
            pool.clone(),
            vendors.clone(),
            Pricing::from_config(&config),
            config.catalog_sync_interval,
        )
    });
    let state = AppState::new(AppShared {
        cache: esim_gateway::cache::ReplicaCache::new(pool.clone()),
        pool,
        config: Arc::new(config),
        metrics: telemetry::metrics_handle(),
        live_vendors: live,
        test_vendors: test,
    });
    let provisioner = workers::provisioner::spawn(esim_gateway::ordering::Ctx::from_state(&state));
    let balances = workers::balances::spawn(esim_gateway::ordering::Ctx::from_state(&state));
    let outbox = workers::outbox::OutboxWorker::new(
        state.pool.clone(),
        std::time::Duration::from_secs(10),
        state.config.sandbox,
    )
    .with_operator(state.config.operator_webhook.clone())
    .spawn();
    let limits = state.config.server;
    esim_gateway::serve_with(listener, build_app(state), limits, shutdown_signal())
        .await
        .context("server error")?;
    // Work in progress is safe to drop: leases expire and other replicas (or the next
    // start) pick it up from the database.
    for task in syncs.into_iter().chain([provisioner, balances, outbox]) {
        task.abort();
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn sync_once(config: Config) -> anyhow::Result<()> {
    let pool = migrate(&config).await?;
    let enabled = enabled_vendors(&config).await?;
    adopt_legacy(&pool, &enabled).await?;
    for vendors in [&enabled.live, &enabled.test] {
        let vendors = Arc::new(vendors.clone());
        workers::catalog_sync::sync_all(&pool, &vendors, &Pricing::from_config(&config)).await;
    }
    for s in store::offers::sync_states(&pool).await? {
        match &s.last_error {
            Some(e) => println!("{:<11} FAILED  {e}", s.vendor),
            None => println!(
                "{:<11} ok      {} offers ({} not understood)",
                s.vendor, s.offer_count, s.unparsed_count
            ),
        }
    }
    Ok(())
}

async fn vendors_command(config: Config, command: VendorsCommand) -> anyhow::Result<()> {
    let enabled = enabled_vendors(&config).await?;
    let vendors = enabled.deployment();
    match command {
        VendorsCommand::Check => {
            if vendors.is_empty() {
                anyhow::bail!("no vendor is configured (set credentials, or SANDBOX=true)");
            }
            let mut failed = 0;
            for (id, entry) in vendors.iter() {
                let started = Instant::now();
                let balance = entry.adapter.balance().await;
                let offers = entry.adapter.list_offers().await;
                let ms = started.elapsed().as_millis();
                let mode = format!("{:?}", entry.mode).to_lowercase();
                // A vendor whose API has no balance call is fine: say so, do not fail.
                let balance = match balance {
                    Ok(b) => Ok(b.to_string()),
                    Err(VendorError::Unsupported) => {
                        Ok("not offered by the vendor's API".to_string())
                    }
                    Err(e) => Err(e),
                };
                match (balance, offers) {
                    (Ok(b), Ok(o)) => println!(
                        "{id:<11} ok      {mode:<7} balance: {b}, {} offers ({ms} ms)",
                        o.len()
                    ),
                    (Err(e), _) | (_, Err(e)) => {
                        failed += 1;
                        println!("{id:<11} FAILED  {mode:<7} {e} ({ms} ms)");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} vendor(s) failed the check");
            }
            Ok(())
        }
        VendorsCommand::Offers { vendor, json } => {
            let id: VendorId = vendor.parse()?;
            let adapter = vendors
                .adapter(id)
                .with_context(|| format!("{id} is not enabled (no credentials and SANDBOX off)"))?;
            let offers = adapter.list_offers().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&offers)?);
                return Ok(());
            }
            for o in &offers {
                let data = match o.data {
                    Some(d) => match d.marketed_bytes {
                        Some(b) => format!(
                            "{:?} {}",
                            d.kind,
                            esim_gateway::domain::plan::human_bytes(b)
                        ),
                        None => "Unlimited".to_string(),
                    },
                    None => "?".to_string(),
                };
                println!(
                    "{:<28} {:<24} {:<16} {:>4}d {:>10} {}{}",
                    o.sku,
                    o.countries.join(","),
                    data,
                    o.validity_days,
                    o.cost.amount,
                    o.cost.currency,
                    if o.is_topup { "  (top-up)" } else { "" }
                );
            }
            eprintln!("{} offers", offers.len());
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM; in-flight requests then finish before the server exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}
