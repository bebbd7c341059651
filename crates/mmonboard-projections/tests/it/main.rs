//! The read models against a real log: rebuild equals incremental, resume after a crash, live following,
//! and what each read model says.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mmonboard_app::{CommandContext, ManualClock, OnboardingService};
use mmonboard_domain::ids::PortfolioId;
use mmonboard_domain::testing::ModelState;
use mmonboard_domain::testing::strategies::{command_for, time_step};
use mmonboard_domain::{DomainConfig, OnboardingCommand};
use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use mmonboard_eventlog::{EventLog, LogOptions};
use mmonboard_projections::{Projector, ProjectorOptions, ReadModels, TemplateSyncStatus};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

type Service = OnboardingService<Arc<EventLog>, ManualClock>;

struct Fixture {
    store: Arc<EventLog>,
    url: String,
    clock: ManualClock,
    service: Service,
    // Last: the database outlives every connection to it.
    _database: TestDatabase,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid time")
}

impl Fixture {
    /// A fresh log on `backend` (`None` when that backend is skipped here).
    async fn new(backend: TestBackend) -> Option<Self> {
        let database = TestDatabase::on(backend).await?;
        let url = database.url().to_owned();
        let store = Arc::new(
            EventLog::open(&url, &LogOptions::default())
                .await
                .expect("opens"),
        );
        let clock = ManualClock::starting_at(start());
        let service =
            OnboardingService::new(Arc::clone(&store), clock.clone(), DomainConfig::default());
        Some(Self {
            store,
            url,
            clock,
            service,
            _database: database,
        })
    }

    async fn projector(&self, page_size: usize) -> Projector {
        let read_models = ReadModels::open(&self.url).await.expect("read models open");
        Projector::new(
            Arc::clone(&self.store),
            read_models,
            ProjectorOptions {
                page_size,
                ..ProjectorOptions::default()
            },
        )
    }

    /// Run random commands (biased towards valid ones by the reference model) for a few portfolios.
    async fn random_history(&self, seed: u8, steps: usize) {
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
        );
        let portfolios = ["1111", "2222", "3333"];
        let mut models: Vec<ModelState> = portfolios
            .iter()
            .map(|_| ModelState::new(DomainConfig::default()))
            .collect();
        for step in 0..steps {
            let index = step % portfolios.len();
            let (seconds, command) = (time_step(), command_for(&models[index]))
                .new_tree(&mut runner)
                .expect("a step")
                .current();
            self.clock.advance(TimeDelta::seconds(seconds));
            // The model only steers generation towards commands its portfolio's phase accepts.
            models[index] = models[index].step(seconds, &command);
            let portfolio = PortfolioId::parse(portfolios[index]).expect("valid");
            self.service
                .execute(&portfolio, &command, &CommandContext::new("test"))
                .await
                .expect("no failure")
                .ok();
        }
    }
}

async fn dump(read_models: &ReadModels) -> String {
    let mut text = String::new();
    for status in read_models.statuses().await.expect("statuses") {
        let accounts = read_models
            .ad_accounts(&status.portfolio_id)
            .await
            .expect("ad accounts");
        let templates = read_models
            .templates(&status.portfolio_id)
            .await
            .expect("templates");
        text.push_str(&format!("{status:?}\n{accounts:?}\n{templates:?}\n"));
    }
    text
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

proptest! {
    #![proptest_config(Config { cases: 200, failure_persistence: None, .. Config::default() })]
    /// Projecting as events arrive, in pages of any size, gives exactly what a rebuild from zero gives, and
    /// each status row agrees with the domain's own fold.
    #[test]
    fn rebuild_equals_incremental(seed in any::<u8>(), chunks in 1usize..6, page_size in 1usize..50) {
        runtime().block_on(async {
            let fixture = Fixture::new(TestBackend::Sqlite).await.expect("SQLite is always there");
            let mut projector = fixture.projector(page_size).await;
            for chunk in 0..chunks {
                fixture.random_history(seed.wrapping_add(chunk as u8), 20).await;
                projector.catch_up(|_, _| {}).await.expect("projects");
            }
            let incremental = dump(projector.read_models()).await;
            prop_assert_eq!(projector.lag().await.expect("lag"), 0);
            for status in projector.read_models().statuses().await.expect("statuses") {
                let portfolio = PortfolioId::parse(&status.portfolio_id).expect("valid");
                let aggregate = fixture.service.load(&portfolio).await.expect("loads");
                prop_assert_eq!(&status.phase, aggregate.phase().as_str());
                prop_assert_eq!(status.version, aggregate.version());
            }
            let mut fresh = fixture.projector(1_000).await;
            fresh.rebuild(|_, _| {}).await.expect("rebuilds");
            prop_assert_eq!(dump(fresh.read_models()).await, incremental);
            Ok(())
        })?;
    }
}

async fn take_live(fixture: &Fixture, portfolio: &str) {
    let portfolio = PortfolioId::parse(portfolio).expect("valid");
    let facts = serde_json::json!({"type":"check_eligibility","facts":{"business_country":"BR","enable_offered":true,
        "wabas":[{"waba_id":"1001","ownership_type":"CLIENT_OWNED","account_status":"ACTIVE","tax_country":"BR",
        "phone_numbers":[{"phone_number_id":"51","country":"BR","registered_on_cloud_api":true,"uses_business_app":false}]}]}});
    let commands: Vec<OnboardingCommand> = [
        serde_json::json!({"type":"start_onboarding"}),
        facts,
        serde_json::json!({"type":"review_permissions","reviewed_by":"7"}),
        serde_json::json!({"type":"submit_business_info","business_name":"Acme","website":"https://acme.example"}),
        serde_json::json!({"type":"accept_terms","accepted_by":"7","role":"ADMIN","terms_version":"v1"}),
        serde_json::json!({"type":"connect","ad_accounts":[{"waba_id":"1001","ad_account_id":"81001"}]}),
        serde_json::json!({"type":"start_config_sync"}),
    ]
    .into_iter()
    .map(|json| serde_json::from_value(json).expect("a command"))
    .collect();
    for command in commands {
        fixture
            .service
            .execute(&portfolio, &command, &CommandContext::new("test"))
            .await
            .expect("ok")
            .expect("accepted");
    }
    fixture.clock.advance(TimeDelta::minutes(15));
    let complete: OnboardingCommand =
        serde_json::from_value(serde_json::json!({"type":"complete_sync"})).expect("a command");
    fixture
        .service
        .execute(&portfolio, &complete, &CommandContext::new("test"))
        .await
        .expect("ok")
        .expect("accepted");
    let change: OnboardingCommand = serde_json::from_value(
        serde_json::json!({"type":"change_template","waba_id":"1001",
        "template_id":"3001","name":"offer","language":"en_US","category":"MARKETING"}),
    )
    .expect("a command");
    fixture
        .service
        .execute(&portfolio, &change, &CommandContext::new("test"))
        .await
        .expect("ok")
        .expect("accepted");
}

async fn the_read_models_say_where_a_live_portfolio_stands(backend: TestBackend) {
    let Some(fixture) = Fixture::new(backend).await else {
        return;
    };
    take_live(&fixture, "4444").await;
    let mut projector = fixture.projector(100).await;
    assert_eq!(projector.lag().await.expect("lag"), 9);
    projector.catch_up(|_, _| {}).await.expect("projects");
    let read_models = projector.read_models();
    let status = read_models
        .status("4444")
        .await
        .expect("query")
        .expect("a row");
    assert_eq!(
        (status.phase.as_str(), status.stage.as_str(), status.version),
        ("live", "enabled", 9)
    );
    assert!(status.blocked_by.is_empty(), "{:?}", status.blocked_by);
    let accounts = read_models.ad_accounts("4444").await.expect("query");
    assert_eq!(accounts.len(), 1);
    assert_eq!(
        (
            accounts[0].waba_id.as_str(),
            accounts[0].ad_account_id.as_str()
        ),
        ("1001", "81001")
    );
    assert_eq!(accounts[0].status, "onboarded");
    let templates = read_models.templates("4444").await.expect("query");
    let config = DomainConfig::default();
    let changed_at = templates[0].changed_at;
    assert_eq!(
        templates[0].status_at(changed_at + TimeDelta::minutes(5), &config),
        TemplateSyncStatus::Syncing
    );
    assert_eq!(
        templates[0].status_at(changed_at + TimeDelta::days(8), &config),
        TemplateSyncStatus::Dormant
    );
    assert!(read_models.status("9999").await.expect("query").is_none());
}

async fn a_projector_that_crashed_resumes_from_its_checkpoint(backend: TestBackend) {
    let Some(fixture) = Fixture::new(backend).await else {
        return;
    };
    fixture.random_history(9, 60).await;
    let mut first = fixture.projector(7).await;
    // Project some pages, then "crash": the in-memory cache is lost, the committed checkpoint stays.
    let head = {
        use mmonboard_eventlog::EventStore;
        fixture.store.head_position().await.expect("head")
    };
    let mut seen = 0;
    first
        .catch_up(|position, _| {
            seen = position;
        })
        .await
        .expect("projects");
    assert_eq!(seen, head);
    drop(first);
    fixture.random_history(10, 30).await;
    let mut second = fixture.projector(7).await;
    second.catch_up(|_, _| {}).await.expect("resumes");
    let resumed = dump(second.read_models()).await;
    let mut rebuilt = fixture.projector(1_000).await;
    rebuilt.rebuild(|_, _| {}).await.expect("rebuilds");
    assert_eq!(dump(rebuilt.read_models()).await, resumed);
}

async fn a_running_projector_follows_new_events(backend: TestBackend) {
    let Some(fixture) = Fixture::new(backend).await else {
        return;
    };
    let mut projector = fixture.projector(100).await;
    let read_models = projector.read_models().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        projector
            .run(async { stopped.await.unwrap_or(()) })
            .await
            .expect("runs");
    });
    take_live(&fixture, "5555").await;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if read_models
                .status("5555")
                .await
                .expect("query")
                .is_some_and(|status| status.version == 9)
            {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the projector caught up with the live events before the deadline");
    stop.send(()).expect("stop sent");
    running.await.expect("the projector stopped cleanly");
}

async fn a_stall_blocks_the_status_until_the_next_event_and_the_waba_index_finds_the_portfolio(
    backend: TestBackend,
) {
    let Some(fixture) = Fixture::new(backend).await else {
        return;
    };
    take_live(&fixture, "4445").await;
    let portfolio = PortfolioId::parse("4445").expect("valid");
    let execute = |json: serde_json::Value| {
        let command: OnboardingCommand = serde_json::from_value(json).expect("a command");
        let fixture = &fixture;
        let portfolio = portfolio.clone();
        async move {
            fixture
                .service
                .execute(&portfolio, &command, &CommandContext::new("test"))
                .await
                .expect("ok")
                .expect("accepted");
        }
    };
    execute(
        serde_json::json!({"type":"record_process_stall","step":"complete_sync","attempts":5,
        "error":"Meta answered HTTP 500 with error 1"}),
    )
    .await;
    let mut projector = fixture.projector(100).await;
    projector.catch_up(|_, _| {}).await.expect("projects");
    let status = projector
        .read_models()
        .status("4445")
        .await
        .expect("query")
        .expect("a row");
    assert_eq!(status.blocked_by.len(), 1, "{:?}", status.blocked_by);
    assert_eq!(status.blocked_by[0].code, "meta_failing");
    assert!(status.blocked_by[0].message.contains("complete_sync"));
    assert!(status.blocked_by[0].message.contains("5 attempts"));

    // Any later event ends the stall.
    execute(
        serde_json::json!({"type":"record_template_use","waba_id":"1001","template_id":"3001"}),
    )
    .await;
    projector.catch_up(|_, _| {}).await.expect("projects");
    let status = projector
        .read_models()
        .status("4445")
        .await
        .expect("query")
        .expect("a row");
    assert!(status.blocked_by.is_empty(), "{:?}", status.blocked_by);

    // Webhooks that name only a WABA find its portfolio here.
    assert_eq!(
        projector
            .read_models()
            .portfolio_of_waba("1001")
            .await
            .expect("query")
            .as_deref(),
        Some("4445")
    );
    assert_eq!(
        projector
            .read_models()
            .portfolio_of_waba("1999")
            .await
            .expect("query"),
        None
    );
}

/// A crash in the middle of a page, after the rows and before the checkpoint: neither is committed, and the
/// resumed projector, redelivered the same events, ends exactly where a rebuild does.
async fn a_crash_between_the_rows_and_the_checkpoint_commits_neither(backend: TestBackend) {
    let Some(fixture) = Fixture::new(backend).await else {
        return;
    };
    fixture.random_history(21, 45).await;
    let mut first = fixture.projector(10).await;
    first.catch_up(|_, _| {}).await.expect("projects");
    let before = dump(first.read_models()).await;
    let checkpoint = first
        .read_models()
        .checkpoint(mmonboard_projections::STATUS_PROJECTION)
        .await
        .expect("checkpoint");

    fixture.random_history(22, 30).await;
    first.read_models().fail_next_write_before_checkpoint();
    let crashed = first.catch_up(|_, _| {}).await;
    assert!(crashed.is_err(), "the injected failure surfaces");
    assert_eq!(
        dump(first.read_models()).await,
        before,
        "the rows of the failed batch were rolled back with it"
    );
    assert_eq!(
        first
            .read_models()
            .checkpoint(mmonboard_projections::STATUS_PROJECTION)
            .await
            .expect("checkpoint"),
        checkpoint,
        "the checkpoint did not move"
    );
    drop(first);

    let mut resumed = fixture.projector(10).await;
    resumed.catch_up(|_, _| {}).await.expect("resumes");
    let mut rebuilt = fixture.projector(1_000).await;
    rebuilt.rebuild(|_, _| {}).await.expect("rebuilds");
    assert_eq!(
        dump(resumed.read_models()).await,
        dump(rebuilt.read_models()).await
    );
    assert_eq!(resumed.lag().await.expect("lag"), 0);
}

mmonboard_eventlog::on_both_backends!(
    the_read_models_say_where_a_live_portfolio_stands,
    a_projector_that_crashed_resumes_from_its_checkpoint,
    a_running_projector_follows_new_events,
    a_stall_blocks_the_status_until_the_next_event_and_the_waba_index_finds_the_portfolio,
    a_crash_between_the_rows_and_the_checkpoint_commits_neither,
);
