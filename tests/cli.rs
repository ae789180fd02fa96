//! The command line: diagnostics against the sandbox and start-up configuration errors.

use std::process::Command;

fn gateway() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_esim-gateway"));
    // Start from a clean environment so a developer's variables cannot leak in.
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "error");
    cmd
}

#[test]
fn vendors_check_prints_one_ok_line_per_sandbox_vendor() {
    let out = gateway().args(["vendors", "check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    for (line, vendor) in
        lines
            .iter()
            .zip(["esimaccess", "esimgo", "esimfx", "microesim", "multiverse"])
    {
        assert!(
            line.starts_with(vendor) && line.contains(" ok ") && line.contains("sandbox"),
            "{line}"
        );
        assert!(
            line.contains("balance") && line.contains("offers"),
            "{line}"
        );
    }
}

#[test]
fn vendors_check_names_the_error_of_an_unreachable_vendor() {
    let out = gateway()
        .args(["vendors", "check"])
        .env("ESIMGO_API_KEY", "test-key")
        .env("ESIMGO_BASE_URL", "http://127.0.0.1:9/v2.4")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.starts_with("esimgo") && stdout.contains("FAILED") && stdout.contains("unreachable"),
        "{stdout}"
    );
    assert!(!stdout.contains("test-key"), "secrets never printed");
}

#[test]
fn vendors_offers_prints_normalized_offers_as_json() {
    let out = gateway()
        .args(["vendors", "offers", "microesim", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let offers = offers.as_array().unwrap();
    assert!(offers.len() > 100);
    let first = &offers[0];
    assert_eq!(first["vendor"], "microesim");
    assert_eq!(first["cost"]["currency"], "HKD");
    assert!(first["countries"].as_array().is_some_and(|c| !c.is_empty()));
    let out = gateway()
        .args(["vendors", "offers", "acme"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn a_bad_configuration_value_stops_with_one_line_naming_the_variable() {
    let out = gateway().env("MARKUP_PERCENT", "lots").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("MARKUP_PERCENT"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

/// `serve` with no vendor credentials: the sandbox starts in-process, catalogues sync, and an
/// order placed through the API completes through the real background workers.
#[test]
fn serve_in_sandbox_mode_sells_an_esim_end_to_end() {
    let server = std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut db_url = url::Url::parse(&server).unwrap();
    let db_name = format!("esim_cli_{}", std::process::id());
    db_url.set_path(&db_name);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = "cli-admin-token-0123456789";
    let mut child = gateway()
        .arg("serve")
        .env("DATABASE_URL", db_url.as_str())
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("ADMIN_TOKEN", admin)
        .env("PROVISION_RETRY_BASE", "500ms")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let base = format!("http://127.0.0.1:{port}");
            let http = reqwest::Client::new();
            let wait = |what: &'static str| {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                move || {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "timed out waiting for {what}"
                    )
                }
            };
            let check = wait("readiness");
            while http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .map(|r| r.status() != 200)
                .unwrap_or(true)
            {
                check();
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            let check = wait("the start-up catalogue sync");
            loop {
                let v: serde_json::Value = http
                    .get(format!("{base}/admin/vendors"))
                    .bearer_auth(admin)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if v["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|v| v["last_sync_at"].is_string() && v["mode"] == "sandbox")
                {
                    break;
                }
                check();
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            let sf: serde_json::Value = http
                .post(format!("{base}/admin/storefronts"))
                .bearer_auth(admin)
                .json(&serde_json::json!({"name": "CLI shop"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let key = sf["api_key"].as_str().unwrap().to_string();
            let order: serde_json::Value = http
                .post(format!("{base}/v1/orders"))
                .bearer_auth(&key)
                .header("Idempotency-Key", "cli-1")
                .json(&serde_json::json!({"plan_id": "jp-10gb-30d"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = order["id"].as_str().unwrap().to_string();
            let check = wait("the order to complete");
            loop {
                let o: serde_json::Value = http
                    .get(format!("{base}/v1/orders/{id}"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if o["status"] == "completed" {
                    assert!(
                        o["esims"][0]["activation"]["lpa"]
                            .as_str()
                            .unwrap()
                            .starts_with("LPA:1$")
                    );
                    break;
                }
                assert_ne!(o["status"], "failed", "{o}");
                check();
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
    });
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        if let Ok(mut c) = sqlx::PgConnection::connect(&server).await {
            let _ = c
                .execute(format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)").as_str())
                .await;
        }
    });
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// `sandbox --vendors-only`: the simulators alone, in their own process, described in
/// `vendors.json`/`vendors.env`; a gateway given that environment uses them as live vendors
/// (`vendors check` here), and each simulator's order records answer on `/_sandbox/orders`.
#[test]
fn sandbox_vendors_only_serves_the_simulators_to_a_live_gateway() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("vendors-only-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut sims = gateway()
        .args(["sandbox", "--vendors-only", "--state-dir"])
        .arg(&dir)
        .args(["--callback-base", "http://127.0.0.1:9/"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let file = loop {
            if let Ok(f) = esim_gateway::sandbox::runtime::VendorsFile::read_from(&dir) {
                break f;
            }
            assert!(std::time::Instant::now() < deadline, "no vendors.json");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let vendors: Vec<String> = file.vendors.iter().map(|v| v.vendor.to_string()).collect();
        assert_eq!(
            vendors,
            ["esimaccess", "esimgo", "esimfx", "microesim", "multiverse"]
        );
        for v in &file.vendors {
            assert_eq!(
                v.callback_url.as_deref(),
                Some(format!("http://127.0.0.1:9/webhooks/{}", v.vendor).as_str())
            );
        }
        // The environment is a complete live configuration of all five vendors.
        let env = file.env.clone();
        let config =
            esim_gateway::config::Config::from_lookup(&move |k| env.get(k).cloned()).unwrap();
        assert!(
            !config.sandbox,
            "credentials for every vendor turn the sandbox off"
        );
        let v = &config.vendors;
        assert!(
            v.esimaccess.is_some()
                && v.esimgo.is_some()
                && v.esimfx.is_some()
                && v.microesim.is_some()
                && v.multiverse.is_some()
        );
        let exports = std::fs::read_to_string(dir.join("vendors.env")).unwrap();
        assert_eq!(exports.lines().count(), file.env.len());
        assert!(exports.contains("export ESIMGO_BASE_URL='http://127.0.0.1:"));

        let out = gateway()
            .args(["vendors", "check"])
            .envs(&file.env)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert_eq!(stdout.lines().count(), 5, "{stdout}");
        assert!(
            stdout
                .lines()
                .all(|l| l.contains(" ok ") && l.contains("live")),
            "{stdout}"
        );

        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            for v in &file.vendors {
                let orders: serde_json::Value =
                    reqwest::get(format!("{}_sandbox/orders", v.control_url))
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                assert_eq!(orders, serde_json::json!([]), "{}", v.vendor);
            }
        });
    });
    // SIGTERM: the simulators stop cleanly and the exports were on stdout.
    let _ = Command::new("kill").arg(sims.id().to_string()).status();
    let status = sims.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut sims.stdout.take().unwrap(), &mut stdout).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(status.success(), "{status:?}");
    assert!(stdout.contains("export MULTIVERSE_USER_ID='"), "{stdout}");
}
