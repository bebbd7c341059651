use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mmonboard_app::{
    AppError, Clock, CommandContext, ManualClock, OnboardingService, ServiceOptions,
};
use mmonboard_domain::command::MirroredAdAccount;
use mmonboard_domain::country::CountryCode;
use mmonboard_domain::facts::{
    AccountStatus, OwnershipType, PhoneNumberFacts, PortfolioFacts, PortfolioRole,
    TemplateCategory, WabaFacts,
};
use mmonboard_domain::ids::*;
use mmonboard_domain::{DomainConfig, OnboardingCommand, Phase};
use mmonboard_eventlog::{
    AppendError, AppendOutcome, AppendRequest, EventStore, RecordedEvent, SqliteEventStore,
    SqliteOptions, StoreError, StreamId, VerifyReport,
};

type Service = OnboardingService<SqliteEventStore, ManualClock>;

pub(crate) fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
        .single()
        .expect("a valid time")
}

struct Fixture {
    _dir: tempfile::TempDir,
    url: String,
    clock: ManualClock,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("log.db").display());
        Self {
            _dir: dir,
            url,
            clock: ManualClock::starting_at(start_time()),
        }
    }

    async fn service(&self) -> Service {
        let store = SqliteEventStore::open(&self.url, SqliteOptions::default())
            .await
            .expect("the log opens");
        OnboardingService::new(store, self.clock.clone(), DomainConfig::default())
    }
}

pub(crate) fn portfolio() -> PortfolioId {
    PortfolioId::parse("5550001").expect("valid")
}

pub(crate) fn waba() -> WabaId {
    WabaId::parse("1001").expect("valid")
}

pub(crate) fn template() -> TemplateId {
    TemplateId::parse("7001").expect("valid")
}

pub(crate) fn facts() -> PortfolioFacts {
    let brazil = CountryCode::parse("BR").expect("valid");
    PortfolioFacts {
        business_country: brazil,
        business_subdivision: None,
        enable_offered: true,
        terms_status: None,
        wabas: vec![WabaFacts {
            waba_id: waba(),
            ownership_type: OwnershipType::ClientOwned,
            account_status: AccountStatus::Active,
            tax_country: brazil,
            phone_numbers: vec![PhoneNumberFacts {
                phone_number_id: PhoneNumberId::parse("2001").expect("valid"),
                country: brazil,
                registered_on_cloud_api: true,
                uses_business_app: false,
            }],
            meta_status: None,
        }],
    }
}

/// The commands that take the test portfolio to `live` (the clock moves 15 minutes before the last).
pub(crate) fn to_live() -> Vec<OnboardingCommand> {
    let admin = UserId::parse("3001").expect("valid");
    vec![
        OnboardingCommand::StartOnboarding {},
        OnboardingCommand::CheckEligibility { facts: facts() },
        OnboardingCommand::ReviewPermissions {
            reviewed_by: admin.clone(),
        },
        OnboardingCommand::SubmitBusinessInfo {
            business_name: BusinessName::parse("Acme").expect("valid"),
            website: WebsiteUrl::parse("https://acme.example").expect("valid"),
        },
        OnboardingCommand::AcceptTerms {
            accepted_by: admin,
            role: PortfolioRole::Admin,
            terms_version: TermsVersion::parse("2025-07").expect("valid"),
        },
        OnboardingCommand::Connect {
            ad_accounts: vec![MirroredAdAccount {
                waba_id: waba(),
                ad_account_id: AdAccountId::parse("8001").expect("valid"),
            }],
        },
        OnboardingCommand::StartConfigSync {},
    ]
}

async fn accept(service: &Service, command: &OnboardingCommand) -> mmonboard_app::CommandOutcome {
    service
        .execute(&portfolio(), command, &CommandContext::new("test"))
        .await
        .expect("no infrastructure failure")
        .unwrap_or_else(|refusal| panic!("{} refused: {refusal}", command.type_name()))
}

async fn take_live(fixture: &Fixture, service: &Service) {
    for command in to_live() {
        accept(service, &command).await;
    }
    fixture.clock.advance(TimeDelta::minutes(15));
    let outcome = accept(service, &OnboardingCommand::CompleteSync {}).await;
    assert_eq!(outcome.phase, Phase::Live);
    accept(
        service,
        &OnboardingCommand::ChangeTemplate {
            waba_id: waba(),
            template_id: template(),
            name: TemplateName::parse("offer").expect("valid"),
            language: TemplateLanguage::parse("en_US").expect("valid"),
            category: TemplateCategory::Marketing,
        },
    )
    .await;
}

pub(crate) fn use_template() -> OnboardingCommand {
    OnboardingCommand::RecordTemplateUse {
        waba_id: waba(),
        template_id: template(),
    }
}

#[tokio::test]
async fn a_portfolio_goes_live_and_replaying_its_log_gives_the_same_state() {
    let fixture = Fixture::new();
    let service = fixture.service().await;
    take_live(&fixture, &service).await;
    let live = service.load(&portfolio()).await.expect("loads");
    assert_eq!(live.phase(), Phase::Live);
    assert_eq!(live.version(), 9);
    // A fresh service (no cache) folds the stored log into the same state.
    let fresh = fixture.service().await;
    assert_eq!(fresh.load(&portfolio()).await.expect("loads"), live);
}

#[tokio::test]
async fn a_refused_command_appends_nothing() {
    let fixture = Fixture::new();
    let service = fixture.service().await;
    accept(&service, &OnboardingCommand::StartOnboarding {}).await;
    let head = service.store().head_position().await.expect("head");
    let refusal = service
        .execute(
            &portfolio(),
            &OnboardingCommand::CompleteSync {},
            &CommandContext::new("test"),
        )
        .await
        .expect("no infrastructure failure")
        .expect_err("refused");
    assert_eq!(refusal.phase, Phase::CheckingEligibility);
    assert_eq!(service.store().head_position().await.expect("head"), head);
    assert_eq!(service.stats().refused, 1);
}

#[tokio::test]
async fn a_command_id_applied_before_returns_the_original_events_and_appends_nothing() {
    let fixture = Fixture::new();
    let service = fixture.service().await;
    let context = CommandContext::new("test");
    let first = service
        .execute(
            &portfolio(),
            &OnboardingCommand::StartOnboarding {},
            &context,
        )
        .await;
    let first = first.expect("ok").expect("accepted");
    // Retried after the state moved on: still the original outcome, not "already started".
    let second = service
        .execute(
            &portfolio(),
            &OnboardingCommand::StartOnboarding {},
            &context,
        )
        .await;
    let second = second.expect("ok").expect("accepted");
    assert!(!first.already_applied);
    assert!(second.already_applied);
    let ids = |outcome: &mmonboard_app::CommandOutcome| {
        outcome
            .events
            .iter()
            .map(|logged| logged.recorded.event_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ids(&second));
    assert_eq!(service.store().head_position().await.expect("head"), 1);
}

#[tokio::test]
async fn state_as_of_a_time_folds_only_what_was_recorded_by_then() {
    let fixture = Fixture::new();
    let service = fixture.service().await;
    accept(&service, &OnboardingCommand::StartOnboarding {}).await;
    let after_start = fixture.clock.now();
    fixture.clock.advance(TimeDelta::minutes(5));
    accept(
        &service,
        &OnboardingCommand::CheckEligibility { facts: facts() },
    )
    .await;
    let then = service
        .load_as_of(&portfolio(), after_start)
        .await
        .expect("loads");
    assert_eq!(then.phase(), Phase::CheckingEligibility);
    assert_eq!(then.version(), 1);
    let before_everything = service
        .load_as_of(&portfolio(), start_time() - TimeDelta::seconds(1))
        .await;
    assert_eq!(before_everything.expect("loads").phase(), Phase::NotStarted);
    assert_eq!(
        service.load(&portfolio()).await.expect("loads").phase(),
        Phase::ReviewingPermissions
    );
}

#[tokio::test]
async fn history_records_the_transition_each_event_caused() {
    let fixture = Fixture::new();
    let service = fixture.service().await;
    take_live(&fixture, &service).await;
    let history = service.history(&portfolio()).await.expect("history");
    let transitions: Vec<(Phase, Phase)> = history
        .iter()
        .map(|entry| (entry.phase_before, entry.phase_after))
        .collect();
    assert_eq!(
        transitions[0],
        (Phase::NotStarted, Phase::CheckingEligibility)
    );
    assert_eq!(transitions[7], (Phase::SyncingConfig, Phase::Live));
    assert_eq!(transitions[8], (Phase::Live, Phase::Live));
    assert!(
        history
            .iter()
            .all(|entry| entry.logged.recorded.metadata.actor == "test")
    );
}

#[tokio::test]
async fn the_diagram_shows_the_path_a_stored_history_took() {
    let fixture = Fixture::new();
    let service = fixture.service().await;
    take_live(&fixture, &service).await;
    let history = service.history(&portfolio()).await.expect("history");
    let path = mmonboard_app::diagram::phase_path(&history);
    assert_eq!(
        path,
        vec![
            Phase::NotStarted,
            Phase::CheckingEligibility,
            Phase::ReviewingPermissions,
            Phase::EnteringBusinessInfo,
            Phase::TermsPending,
            Phase::Connecting,
            Phase::Connected,
            Phase::SyncingConfig,
            Phase::Live,
        ],
        "one entry per change of phase, none for the template event that kept it live"
    );
    let svg = mmonboard_app::diagram::state_machine_svg(&path);
    assert!(svg.contains(r#"data-phase="live" data-state="current""#));
    assert!(svg.contains(r#"data-phase="migrating_obo" data-state="other""#));
    assert_eq!(svg.matches(r#"class="edge taken""#).count(), path.len() - 1);
}

#[tokio::test]
async fn eight_concurrent_writers_on_one_portfolio_lose_nothing() {
    let fixture = Fixture::new();
    let service = Arc::new(fixture.service().await);
    take_live(&fixture, &service).await;
    let before = service.load(&portfolio()).await.expect("loads").version();
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                for _ in 0..50 {
                    accept(&service, &use_template()).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer finished");
    }
    let after = service.load(&portfolio()).await.expect("loads");
    assert_eq!(after.version(), before + 400);
    let recorded = service
        .store()
        .read_stream(&mmonboard_app::codec::stream_id(&portfolio()), 0)
        .await;
    let versions: Vec<u64> = recorded
        .expect("reads")
        .iter()
        .map(|event| event.stream_version)
        .collect();
    assert_eq!(versions, (1..=before + 400).collect::<Vec<_>>());
    assert!(
        service
            .store()
            .verify()
            .await
            .expect("verifies")
            .first_break
            .is_none()
    );
}

#[tokio::test]
async fn the_cache_catches_up_with_events_another_process_appended() {
    let fixture = Fixture::new();
    let first = fixture.service().await;
    let second = fixture.service().await;
    take_live(&fixture, &first).await;
    accept(&first, &use_template()).await; // `first` caches version 10
    accept(&second, &use_template()).await; // another process appends version 11
    let outcome = accept(&first, &use_template()).await;
    assert_eq!(
        outcome.version, 12,
        "the cached fold was brought up to date before the command was recorded"
    );
    assert_eq!(
        first.stats().conflicts_retried,
        1,
        "decided on the stale fold, the append conflicted and was decided again after the tail"
    );
    assert_eq!(
        first.load(&portfolio()).await.expect("loads"),
        fixture
            .service()
            .await
            .load(&portfolio())
            .await
            .expect("loads")
    );
}

/// A log where some other writer always got there first.
struct AlwaysConflicting {
    inner: SqliteEventStore,
    appends: std::sync::atomic::AtomicU32,
}

impl EventStore for AlwaysConflicting {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        self.appends
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let actual = self.inner.stream_version(&request.stream_id).await? + 1;
        Err(AppendError::Conflict {
            stream_id: request.stream_id,
            expected: request.expected_version,
            actual,
        })
    }
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream_id, from_version).await
    }
    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after_position, limit).await
    }
    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(stream_id).await
    }
    async fn find_command(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        self.inner.find_command(command_id).await
    }
    async fn head_position(&self) -> Result<u64, StoreError> {
        self.inner.head_position().await
    }
    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.inner.verify().await
    }
}

#[tokio::test]
async fn conflict_retries_are_bounded_and_then_reported() {
    let fixture = Fixture::new();
    let inner = SqliteEventStore::open(&fixture.url, SqliteOptions::default())
        .await
        .expect("opens");
    let store = AlwaysConflicting {
        inner,
        appends: Default::default(),
    };
    let service = OnboardingService::new(store, fixture.clock.clone(), DomainConfig::default())
        .with_options(ServiceOptions {
            max_conflict_retries: 3,
            cached_aggregates: 0,
            ..ServiceOptions::default()
        });
    let outcome = service
        .execute(
            &portfolio(),
            &OnboardingCommand::StartOnboarding {},
            &CommandContext::new("t"),
        )
        .await;
    match outcome {
        Err(AppError::ConflictRetriesExhausted { attempts, .. }) => assert_eq!(attempts, 4),
        other => panic!("expected exhausted retries, got {other:?}"),
    }
    assert_eq!(
        service
            .store()
            .appends
            .load(std::sync::atomic::Ordering::SeqCst),
        4
    );
    assert_eq!(service.stats().conflicts_retried, 3);
    assert_eq!(
        service.store().inner.head_position().await.expect("head"),
        0
    );
}

#[tokio::test]
async fn two_processes_writing_one_portfolio_lose_nothing() {
    let fixture = Fixture::new();
    let first = Arc::new(fixture.service().await);
    let second = Arc::new(fixture.service().await);
    take_live(&fixture, &first).await;
    let before = first.load(&portfolio()).await.expect("loads").version();
    let writers: Vec<_> = [&first, &second, &first, &second]
        .into_iter()
        .map(|service| {
            let service = Arc::clone(service);
            tokio::spawn(async move {
                for _ in 0..50 {
                    accept(&service, &use_template()).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer finished");
    }
    assert_eq!(
        first.load(&portfolio()).await.expect("loads").version(),
        before + 200
    );
    assert!(
        first
            .store()
            .verify()
            .await
            .expect("verifies")
            .first_break
            .is_none()
    );
}

/// The log, counting what the service asks of it.
struct Counting {
    inner: SqliteEventStore,
    calls: std::sync::Mutex<Vec<&'static str>>,
}

impl Counting {
    fn note(&self, call: &'static str) {
        self.calls.lock().expect("not poisoned").push(call);
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().expect("not poisoned"))
    }
}

impl EventStore for Counting {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        self.note("append");
        self.inner.append(request).await
    }
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.note("read_stream");
        self.inner.read_stream(stream_id, from_version).await
    }
    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.note("read_all");
        self.inner.read_all(after_position, limit).await
    }
    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, StoreError> {
        self.note("stream_version");
        self.inner.stream_version(stream_id).await
    }
    async fn find_command(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        self.note("find_command");
        self.inner.find_command(command_id).await
    }
    async fn head_position(&self) -> Result<u64, StoreError> {
        self.note("head_position");
        self.inner.head_position().await
    }
    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.note("verify");
        self.inner.verify().await
    }
}

async fn current_version(service: &OnboardingService<Counting, ManualClock>) -> u64 {
    service
        .current(&portfolio())
        .await
        .expect("loads")
        .version()
}

/// What a lone command waits for: on a portfolio whose fold is cached, the append alone (no look-up of its
/// id, no read of the stream's tail); a refusal is given after one read showing the fold is current and one
/// look-up of its id. A question reads the log's head and, only when something was appended since the fold
/// was last found current (here by another writer of the same log), the stream's tail.
#[tokio::test]
async fn a_lone_command_on_a_cached_portfolio_costs_one_append() {
    let fixture = Fixture::new();
    let inner = SqliteEventStore::open(&fixture.url, SqliteOptions::default())
        .await
        .expect("opens");
    let service = OnboardingService::new(
        Counting {
            inner,
            calls: Default::default(),
        },
        fixture.clock.clone(),
        DomainConfig::default(),
    );
    let run = |command: OnboardingCommand| {
        let service = &service;
        async move {
            service
                .execute(&portfolio(), &command, &CommandContext::new("test"))
                .await
                .expect("no infrastructure failure")
        }
    };
    run(OnboardingCommand::StartOnboarding {})
        .await
        .expect("accepted");
    assert_eq!(
        service.store().take(),
        ["read_stream", "append"],
        "a portfolio not cached is read once"
    );
    run(OnboardingCommand::CheckEligibility { facts: facts() })
        .await
        .expect("accepted");
    assert_eq!(service.store().take(), ["append"]);
    run(OnboardingCommand::CompleteSync {})
        .await
        .expect_err("refused");
    assert_eq!(service.store().take(), ["read_stream", "find_command"]);
    assert_eq!(current_version(&service).await, 2);
    assert_eq!(
        service.store().take(),
        ["head_position"],
        "nothing appended since its own append: the cached fold answers"
    );
    // Another writer of the same log (another process) appends to another portfolio, then to this one.
    let other = fixture.service().await;
    other
        .execute(
            &PortfolioId::parse("5550002").expect("valid"),
            &OnboardingCommand::StartOnboarding {},
            &CommandContext::new("other"),
        )
        .await
        .expect("no failure")
        .expect("accepted");
    assert_eq!(current_version(&service).await, 2);
    assert_eq!(
        service.store().take(),
        ["head_position", "read_stream"],
        "the head moved: the tail is read, and is empty"
    );
    assert_eq!(current_version(&service).await, 2);
    assert_eq!(
        service.store().take(),
        ["head_position"],
        "current as of the new head"
    );
    other
        .execute(
            &portfolio(),
            &OnboardingCommand::ReviewPermissions {
                reviewed_by: UserId::parse("3001").expect("valid"),
            },
            &CommandContext::new("other"),
        )
        .await
        .expect("no failure")
        .expect("accepted");
    assert_eq!(
        current_version(&service).await,
        3,
        "the other writer's event is seen"
    );
    assert_eq!(service.store().take(), ["head_position", "read_stream"]);
}
