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
