//! The web console in headless Chromium, driven over WebDriver (chromedriver) against the real server on
//! port 0 with a fresh database. Meta's answers are recorded through the API with the admin token, as the
//! process manager would record them; the browser does only what a person does. Every wait polls the page
//! for a condition, with a deadline. Each page is saved as a screenshot under
//! `<target>/console-screenshots/`.
//!
//! Without chromedriver and Chromium the tests say so and pass, unless `CI=true` (then they fail): `.ci/run`
//! installs Debian's `chromium` and `chromium-driver`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::{App, spawn_app, start_time};

/// Generous: a loaded CI machine runs several browsers at once. Only a failure waits this long.
const DEADLINE: Duration = Duration::from_secs(60);

/// chromedriver and a browser session; both end when this is dropped (the session by `close`).
struct Browser {
    client: Client,
    driver: Child,
    name: &'static str,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

fn screenshot_dir() -> PathBuf {
    // The test binary is <target>/debug/deps/it-<hash>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

/// A fresh browser, or `None` (with a note) when chromedriver or Chromium is missing outside CI.
async fn browser(name: &'static str) -> Option<Browser> {
    let driver_path = find_program("chromedriver");
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(find_program);
    let (Some(driver_path), Some(chromium)) = (driver_path, chromium) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but chromedriver or Chromium is missing: apt-get install chromium chromium-driver"
        );
        eprintln!("skipping {name}: chromedriver or Chromium is not installed");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let driver = Command::new(driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let capabilities: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1200", "--lang=en-GB"],
        }
    }))
    .expect("capabilities");
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let started = tokio::time::Instant::now();
    // chromedriver takes a moment to listen: poll until the session is created.
    let client = loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => break client,
            Err(error) => {
                assert!(
                    started.elapsed() < DEADLINE,
                    "no browser session within the deadline: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    Some(Browser {
        client,
        driver,
        name,
    })
}

impl Browser {
    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    async fn shot(&self, page: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = screenshot_dir().join(format!("{}-{page}.png", self.name));
        std::fs::write(&path, png).expect("the screenshot is saved");
    }

    async fn text(&self, css: &str) -> Option<String> {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.ok(),
            Err(_) => None,
        }
    }

    /// Waits until the element `css` exists and its text contains `needle`; its text.
    async fn await_text(&self, css: &str, needle: &str) -> String {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(text) = self.text(css).await
                && text.contains(needle)
            {
                return text;
            }
            if started.elapsed() > DEADLINE {
                let source = self.client.source().await.unwrap_or_default();
                panic!(
                    "{css} did not show {needle:?} within the deadline; it shows {:?}; the page:\n{source}",
                    self.text(css).await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|found| found.len())
            .unwrap_or(0)
    }

    /// Runs `act` on the element `css`, finding it again when a live refresh replaced it meanwhile (a stale
    /// element), until the deadline.
    async fn with_element<T>(
        &self,
        css: &str,
        act: impl AsyncFn(fantoccini::elements::Element) -> Result<T, fantoccini::error::CmdError>,
    ) -> T {
        let started = tokio::time::Instant::now();
        loop {
            let attempt = match self.client.find(Locator::Css(css)).await {
                Ok(element) => act(element).await,
                Err(error) => Err(error),
            };
            match attempt {
                Ok(done) => return done,
                Err(error) if started.elapsed() > DEADLINE => panic!("{css}: {error}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn fill(&self, css: &str, value: &str) {
        self.with_element(css, async |field| {
            field.clear().await?;
            field.send_keys(value).await?;
            // Read back: a refresh between typing and reading would have emptied the field.
            match field.prop("value").await? {
                Some(typed) if typed == value => Ok(()),
                _ => Err(fantoccini::error::CmdError::InvalidArgument(
                    css.to_owned(),
                    "the field lost what was typed".to_owned(),
                )),
            }
        })
        .await;
    }

    async fn click(&self, css: &str) {
        self.with_element(css, async |element| element.click().await)
            .await;
    }

    async fn sign_in(&self, app: &App, token: &str) {
        self.goto(&format!("{}/", app.base)).await;
        self.await_text("h1", "Sign in").await;
        self.fill("#token", token).await;
        self.click("#sign-in").await;
        self.await_text("h1", "Portfolios").await;
    }

    async fn close(self) {
        let client = self.client.clone();
        let _ = client.close().await;
    }
}

/// A token created through the API (which the server's token cache sees at once, whatever its clock).
async fn token(app: &App, name: &str, role: mmonboard_access::Role) -> String {
    app.token(name, role.as_str(), None).await
}

/// Eligibility facts: 1001 eligible and shared, 1002 OBO (migrated first), 1003 without a number on Cloud API.
fn three_wabas() -> Value {
    let waba = |id: &str, ownership: &str, on_cloud: bool| {
        json!({"waba_id": id, "ownership_type": ownership, "account_status": "ACTIVE", "tax_country": "BR",
               "phone_numbers": [{"phone_number_id": format!("2{id}"), "country": "BR",
                                  "registered_on_cloud_api": on_cloud, "uses_business_app": false}]})
    };
    json!({"type": "check_eligibility", "facts": {"business_country": "BR", "enable_offered": true, "wabas": [
        waba("1001", "CLIENT_OWNED", true), waba("1002", "ON_BEHALF_OF", true), waba("1003", "CLIENT_OWNED", false)
    ]}})
}

fn one_waba() -> Value {
    crate::support::eligibility()
}

#[tokio::test]
async fn the_enable_flow_goes_from_a_new_portfolio_to_the_sync_notice() {
    let app = spawn_app().await;
    let Some(browser) = browser("enable").await else {
        return;
    };
    let operator = token(&app, "console-operator", mmonboard_access::Role::Operator).await;
    browser.goto(&format!("{}/", app.base)).await;
    browser.await_text("h1", "Sign in").await;
    browser.shot("01-sign-in").await;
    browser.sign_in(&app, &operator).await;
    browser
        .await_text("#signed-in-as", "console-operator")
        .await;
    browser.shot("02-portfolios-empty").await;

    browser.goto(&format!("{}/enable", app.base)).await;
    browser.fill("#portfolio_id", "4242").await;
    browser.click("#choose-portfolio button").await;
    browser
        .await_text(
            "#enable-section",
            "Enable Marketing Messages (formerly MM Lite)",
        )
        .await;
    browser.shot("03-overview").await;
    browser.click("#enable").await;
    browser
        .await_text("#enable-section", "Checking with Meta")
        .await;

    // Meta's answers, recorded as the process manager would; the page follows by itself.
    app.accept("4242", three_wabas()).await;
    browser
        .await_text("#enable-section", "being migrated to shared accounts")
        .await;
    browser.shot("04-obo-migration").await;
    app.accept(
        "4242",
        json!({"type": "request_obo_migration", "waba_id": "1002"}),
    )
    .await;
    app.accept(
        "4242",
        json!({"type": "complete_obo_migration", "waba_id": "1002"}),
    )
    .await;
    browser
        .await_text("#enable-section", "Permissions granted to the provider")
        .await;
    browser.shot("05-permissions").await;
    browser.fill("#reviewed_by", "106000000000001").await;
    browser.click("#continue").await;

    browser
        .await_text("#enable-section", "Business information")
        .await;
    browser.fill("#business_name", "Acme Shoes").await;
    browser.fill("#website", "acme shoes").await;
    browser.click("#next").await;
    let error = browser.await_text("#website-error", "").await;
    assert!(
        error.to_lowercase().contains("website") || error.contains("acme shoes"),
        "the error names the website: {error}"
    );
    browser.shot("06-business-info-refused").await;
    browser.fill("#website", "https://acme.example").await;
    browser.click("#next").await;
    browser
        .await_text("#enable-section", "accept the Marketing Messages API terms")
        .await;
    browser.shot("07-terms-pending").await;

    app.accept(
        "4242",
        json!({"type": "record_terms_request", "request_id": "55501", "already_invited": false}),
    )
    .await;
    app.accept(
        "4242",
        json!({"type": "record_terms_signed", "waba_id": "1001"}),
    )
    .await;
    app.accept("4242", json!({"type": "connect", "ad_accounts": [
        {"waba_id": "1001", "ad_account_id": "8001"}, {"waba_id": "1002", "ad_account_id": "8002"}]}))
        .await;
    browser.await_text("#connected", "Account connected").await;
    let connected = browser.await_text("#enable-section", "8002").await;
    assert!(
        connected.contains("migrated to shared"),
        "the OBO WABA: {connected}"
    );
    assert!(connected.contains("left out"), "WABA 1003: {connected}");
    assert!(
        connected.to_lowercase().contains("cloud api"),
        "why 1003 is left out: {connected}"
    );
    browser.shot("08-account-connected").await;

    app.accept("4242", json!({"type": "start_config_sync"}))
        .await;
    browser.click("#done").await;
    let notice = browser
        .await_text(
            "#enable-section",
            "Marketing traffic will be routed through the Marketing Messages API where possible",
        )
        .await;
    assert!(notice.contains("may fail"), "{notice}");
    let ends = (start_time() + chrono::TimeDelta::minutes(15))
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    assert!(notice.contains(&ends), "the window's end {ends}: {notice}");
    let countdown = browser.await_text("#countdown", ":").await;
    assert!(
        countdown.starts_with("15:") || countdown.starts_with("14:"),
        "{countdown}"
    );
    browser.shot("09-sync-notice").await;

    // The operator's view of the same portfolio: WABAs, ad accounts, templates, the machine, a route probe.
    app.accept(
        "4242",
        json!({"type": "change_template", "waba_id": "1001", "template_id": "7001",
        "name": "spring_sale", "language": "en_US", "category": "MARKETING"}),
    )
    .await;
    browser.goto(&format!("{}/portfolios/4242", app.base)).await;
    browser.await_text("#waba-table", "8002").await;
    browser.await_text("#template-table", "spring_sale").await;
    assert_eq!(
        browser
            .count("svg.state-machine [data-phase=\"syncing_config\"][data-state=\"current\"]")
            .await,
        1
    );
    browser.click("#route-probe button").await;
    browser
        .await_text("#route-answer", "configuration sync is still running")
        .await;
    // Tall enough for the whole page in one screenshot (a screenshot is of the window).
    browser
        .client
        .set_window_size(1280, 2300)
        .await
        .expect("the window resizes");
    browser.shot("10-portfolio").await;
    browser
        .client
        .set_window_size(1280, 1200)
        .await
        .expect("the window resizes");
    browser.goto(&format!("{}/integrity", app.base)).await;
    browser.await_text("#verify-result", "intact").await;
    browser.shot("11-integrity").await;
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_refused_step_is_shown_in_words_beside_it() {
    let app = spawn_app().await;
    let Some(browser) = browser("refusal").await else {
        return;
    };
    let operator = token(&app, "console-operator", mmonboard_access::Role::Operator).await;
    app.accept("5151", crate::support::start()).await;
    app.accept("5151", one_waba()).await;
    browser.sign_in(&app, &operator).await;
    browser
        .goto(&format!("{}/portfolios/5151/enable", app.base))
        .await;
    browser.await_text("#continue", "Continue").await;
    // The page goes stale (its live updates stop), and the portfolio moves on elsewhere.
    browser
        .client
        .execute("window.mmonboardLive.close();", vec![])
        .await
        .expect("the script runs");
    app.accept(
        "5151",
        json!({"type": "offboard", "reason": "the customer withdrew"}),
    )
    .await;
    browser.fill("#reviewed_by", "106000000000001").await;
    browser.click("#continue").await;
    let refusal = browser.await_text("#step-error", "offboarded").await;
    assert!(!refusal.contains('{'), "words, not JSON: {refusal}");
    browser.shot("01-refused").await;
    // Nothing was appended by the refused step.
    let (_, history) = app.get("/v1/portfolios/5151/history").await;
    assert_eq!(history.as_array().map(Vec::len), Some(3));
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn the_portfolio_list_follows_commands_issued_elsewhere() {
    let app = spawn_app().await;
    let Some(browser) = browser("live").await else {
        return;
    };
    let auditor = token(&app, "console-auditor", mmonboard_access::Role::Auditor).await;
    browser.sign_in(&app, &auditor).await;
    browser.await_text("#no-portfolios", "No portfolio").await;
    app.accept("7001", crate::support::start()).await;
    browser
        .await_text("tr[data-portfolio=\"7001\"]", "checking eligibility")
        .await;
    app.accept("7002", crate::support::start()).await;
    app.accept("7002", one_waba()).await;
    browser
        .await_text("tr[data-portfolio=\"7002\"]", "reviewing permissions")
        .await;
    browser
        .await_text("tr[data-portfolio=\"7001\"]", "check eligibility with Meta")
        .await;
    // The counts by phase above the table follow too.
    browser.await_text("nav.filters", "All (2)").await;
    browser.shot("01-portfolios").await;
    // The filter keeps one phase.
    browser
        .goto(&format!("{}/?phase=reviewing_permissions", app.base))
        .await;
    browser.await_text("#portfolio-table", "7002").await;
    assert_eq!(browser.count("tr[data-portfolio=\"7001\"]").await, 0);
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn the_timeline_shows_the_state_as_of_a_chosen_time() {
    let app = spawn_app().await;
    let Some(browser) = browser("as-of").await else {
        return;
    };
    let auditor = token(&app, "console-auditor", mmonboard_access::Role::Auditor).await;
    app.accept("6161", crate::support::start()).await;
    app.clock.advance(chrono::TimeDelta::minutes(1));
    app.accept("6161", one_waba()).await;
    app.clock.advance(chrono::TimeDelta::minutes(1));
    app.accept(
        "6161",
        json!({"type": "review_permissions", "reviewed_by": "3001"}),
    )
    .await;
    browser.sign_in(&app, &auditor).await;
    browser
        .goto(&format!("{}/portfolios/6161/timeline", app.base))
        .await;
    let timeline = browser
        .await_text("#timeline-table", "eligibility_checked")
        .await;
    assert!(timeline.contains("console-auditor") || timeline.contains("test-admin"));
    // The state right after the eligibility check, from its row's link.
    browser
        .click("tr[data-event=\"eligibility_checked\"] a.as-of-link")
        .await;
    browser
        .await_text("#as-of-phase", "reviewing permissions")
        .await;
    browser.await_text("#as-of-version", "2 of 3").await;
    browser.shot("01-as-of-link").await;
    // A time typed in: half a minute after the start, before the check.
    browser
        .goto(&format!(
            "{}/portfolios/6161/timeline?as_of=2026-11-25T09:00:30",
            app.base
        ))
        .await;
    browser
        .await_text("#as-of-phase", "checking eligibility")
        .await;
    assert_eq!(
        browser
            .count("#as-of svg [data-phase=\"checking_eligibility\"][data-state=\"current\"]")
            .await,
        1
    );
    browser.shot("02-as-of-typed").await;
    browser
        .goto(&format!(
            "{}/portfolios/6161/timeline?as_of=yesterday",
            app.base
        ))
        .await;
    browser.await_text("#as-of-error", "is not a time").await;
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn an_auditor_sees_no_buttons_and_an_operator_does() {
    let app = spawn_app().await;
    let Some(browser) = browser("auditor").await else {
        return;
    };
    let auditor = token(&app, "console-auditor", mmonboard_access::Role::Auditor).await;
    let operator = token(&app, "console-operator", mmonboard_access::Role::Operator).await;
    app.accept("8181", crate::support::start()).await;
    app.accept("8181", one_waba()).await;
    // Command buttons carry data-command; forms that change something are POSTs.
    let actions = "main [data-command], main form[method=\"post\"]";
    let pages = [
        "/",
        "/portfolios/8181",
        "/portfolios/8181/enable",
        "/portfolios/9999/enable",
        "/portfolios/8181/timeline",
        "/integrity",
    ];
    browser.sign_in(&app, &auditor).await;
    for page in pages {
        browser.goto(&format!("{}{page}", app.base)).await;
        browser.await_text("main", "").await;
        assert_eq!(browser.count(actions).await, 0, "an action on {page}");
    }
    browser
        .goto(&format!("{}/portfolios/8181/enable", app.base))
        .await;
    browser
        .await_text(
            "#enable-section",
            "An operator or admin of the provider takes this step",
        )
        .await;
    browser.shot("01-auditor-enable").await;
    browser.goto(&format!("{}/portfolios/8181", app.base)).await;
    browser.shot("02-auditor-portfolio").await;
    // A form posted anyway (as if forged) is refused by the same check as the API's.
    let session_cookie = browser
        .client
        .get_named_cookie("mmonboard_console")
        .await
        .expect("the session cookie");
    assert_eq!(session_cookie.http_only(), Some(true));
    assert_eq!(session_cookie.same_site(), Some(cookie::SameSite::Strict));

    browser
        .client
        .delete_all_cookies()
        .await
        .expect("signed out");
    browser.sign_in(&app, &operator).await;
    browser
        .goto(&format!("{}/portfolios/8181/enable", app.base))
        .await;
    browser.await_text("#continue", "Continue").await;
    assert!(browser.count(actions).await > 0);
    browser
        .goto(&format!("{}/portfolios/9999/enable", app.base))
        .await;
    browser.await_text("#enable", "Enable").await;
    browser.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_form_from_another_site_or_without_the_session_token_is_refused() {
    let app = spawn_app().await;
    let operator = token(&app, "console-operator", mmonboard_access::Role::Operator).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    // Signing in from another site is refused; from this one it sets the cookie.
    let refused = client
        .post(format!("{}/sign-in", app.base))
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={operator}"))
        .send()
        .await
        .expect("a response");
    assert_eq!(refused.status(), 403);
    let signed_in = client
        .post(format!("{}/sign-in", app.base))
        .header("origin", app.base.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={operator}"))
        .send()
        .await
        .expect("a response");
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .expect("a cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().expect("name=value").to_owned();
    // A command form with the cookie but no CSRF token, or from another origin, appends nothing.
    for (origin, csrf) in [(app.base.as_str(), "wrong"), ("http://evil.example", "")] {
        let response = client
            .post(format!("{}/portfolios/3131/enable/start", app.base))
            .header("cookie", &session)
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&version=0"))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 403, "from {origin} with csrf {csrf:?}");
    }
    let (status, _) = app.get("/v1/portfolios/3131").await;
    assert_eq!(status, 404, "nothing was started");
    // Without a session a page sends the person to sign in.
    let page = client
        .get(format!("{}/portfolios/3131/enable", app.base))
        .send()
        .await
        .expect("a response");
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers()
            .get("location")
            .and_then(|value| value.to_str().ok()),
        Some("/sign-in")
    );
    app.shutdown().await;
}
