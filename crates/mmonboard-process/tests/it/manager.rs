use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mmonboard_app::{Clock, CommandContext, ManualClock, OnboardingService};
use mmonboard_domain::facts::{AccountStatus, WabaOnboardingStatus};
use mmonboard_domain::ids::{BusinessName, UserId, WebsiteUrl};
use mmonboard_domain::machine::WabaRouting;
use mmonboard_domain::{DomainConfig, OnboardingCommand, OnboardingEvent, Phase};
use mmonboard_eventlog::{EventLog, LogOptions};
use mmonboard_process::{
    ACTOR, LeaseOptions, ProcessConfig, ProcessManager, ProcessOptions, ProcessRole, RoleWatch,
};
use tokio::sync::oneshot;

use crate::fake::{FakeMeta, complete_obo, html_failure, portfolio};

type Store = Arc<EventLog>;
type Manager = ProcessManager<Store, ManualClock, FakeMeta>;

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
        .single()
        .expect("a valid time")
}

struct Fixture {
    _dir: tempfile::TempDir,
    url: String,
    clock: ManualClock,
    store: Store,
    meta: FakeMeta,
}

impl Fixture {
    async fn new(with_obo: bool) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("log.db").display());
        let store = Arc::new(
            EventLog::open(&url, &LogOptions::default())
                .await
                .expect("the log opens"),
        );
        Self {
            _dir: dir,
            url,
            clock: ManualClock::starting_at(start_time()),
            store,
            meta: FakeMeta::new(with_obo),
        }
    }

    async fn manager(&self) -> Manager {
        self.manager_with(ProcessConfig::default()).await
    }

    async fn manager_with(&self, config: ProcessConfig) -> Manager {
        ProcessManager::open(
            Arc::clone(&self.store),
            &self.url,
            self.clock.clone(),
            Arc::new(self.meta.clone()),
            DomainConfig::default(),
            config,
            ProcessOptions {
                tick: Duration::from_millis(5),
                ..ProcessOptions::default()
            },
        )
        .await
        .expect("the manager opens")
    }

    fn service(&self) -> OnboardingService<Store, ManualClock> {
        OnboardingService::new(
            Arc::clone(&self.store),
            self.clock.clone(),
            DomainConfig::default(),
        )
    }

    /// A person's command (the operator's steps the manager never takes).
    async fn operator(&self, command: OnboardingCommand) {
        self.service()
            .execute(&portfolio(), &command, &CommandContext::new("operator"))
            .await
            .expect("the log answers")
            .expect("the command is accepted");
    }

    async fn phase(&self) -> Phase {
        self.service()
            .load(&portfolio())
            .await
            .expect("loads")
            .phase()
    }

    async fn events(&self) -> Vec<(String, OnboardingEvent)> {
        self.service()
            .history(&portfolio())
            .await
            .expect("history")
            .into_iter()
            .map(|entry| {
                (
                    entry.logged.recorded.metadata.actor.clone(),
                    entry.logged.event,
                )
            })
            .collect()
    }

    /// Every event the manager recorded names, as its causation, the event of this stream its step was
    /// decided on: one recorded before it, and the same for every event of one decision.
    async fn assert_caused_by_earlier_events(&self) {
        let history = self.service().history(&portfolio()).await.expect("history");
        let mut checked = 0;
        for (index, entry) in history.iter().enumerate() {
            let recorded = &entry.logged.recorded;
            if recorded.metadata.actor != ACTOR {
                continue;
            }
            let name = entry.logged.event.type_name();
            let causation = recorded.metadata.causation_id.unwrap_or_else(|| {
                panic!(
                    "{name} (version {}) has no causation",
                    recorded.stream_version
                )
            });
            let cause = history[..index]
                .iter()
                .find(|earlier| earlier.logged.recorded.event_id == causation)
                .unwrap_or_else(|| {
                    panic!("{name}'s causation {causation} is no earlier event of the stream")
                });
            assert!(
                cause.logged.recorded.stream_version < recorded.stream_version,
                "{name} is caused by an event recorded before it"
            );
            checked += 1;
        }
        assert!(checked > 0, "the manager recorded something");
    }

    async fn count(&self, type_name: &str) -> usize {
        self.events()
            .await
            .iter()
            .filter(|(_, event)| event.type_name() == type_name)
            .count()
    }

    /// Started, eligibility read from Meta, reviewed and the business information entered: terms pending.
    async fn up_to_terms(&self, manager: &Manager) {
        self.operator(OnboardingCommand::StartOnboarding {}).await;
        manager.reconcile(&portfolio()).await.expect("reconciles");
        self.review_and_submit().await;
        assert_eq!(self.phase().await, Phase::TermsPending);
    }

    async fn review_and_submit(&self) {
        self.operator(OnboardingCommand::ReviewPermissions {
            reviewed_by: UserId::parse("106000000000001").expect("valid"),
        })
        .await;
        self.operator(OnboardingCommand::SubmitBusinessInfo {
            business_name: BusinessName::parse("Loja Aurora").expect("valid"),
            website: WebsiteUrl::parse("https://lojaaurora.example.com.br").expect("valid"),
        })
        .await;
    }
}

/// Run `manager` on its own task until the returned sender fires; the task gives the manager back.
fn spawn_run(manager: Manager) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Manager>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        manager
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("runs");
        manager
    });
    (stop, running)
}

/// Await a condition with a deadline (real time): the manager runs on its own task.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn each_step_is_taken_when_its_state_and_time_call_for_it() {
    let fx = Fixture::new(true).await;
    let manager = fx.manager().await;
    fx.operator(OnboardingCommand::StartOnboarding {}).await;

    manager.reconcile(&portfolio()).await.expect("reconciles");
    // Eligibility read from Meta, the OBO transfer asked for at once.
    assert_eq!(fx.phase().await, Phase::MigratingObo);
    assert_eq!(fx.meta.calls().obo_writes, 1);
    assert_eq!(fx.count("obo_migration_requested").await, 1);

    // Not transferred yet: the manager looks again a poll interval later, not before.
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.phase().await, Phase::MigratingObo);
    complete_obo(&fx.meta, "1002");
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(
        fx.phase().await,
        Phase::MigratingObo,
        "the poll is not due yet"
    );
    fx.clock.advance(TimeDelta::minutes(1));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.phase().await, Phase::ReviewingPermissions);

    // A person reviews and enters the business information; the manager sends the terms request once.
    fx.review_and_submit().await;
    manager.reconcile(&portfolio()).await.expect("reconciles");
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.meta.calls().terms_writes, 1);
    assert_eq!(fx.count("terms_requested").await, 1);
    assert_eq!(fx.phase().await, Phase::TermsPending);

    // No webhook came: the terms status is read again after the terms poll interval.
    fx.meta.admin_signs_and_meta_sets_up();
    fx.clock.advance(TimeDelta::minutes(10));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    // Signed → connected with Meta's ad accounts → templates recorded → the sync window starts.
    assert_eq!(fx.phase().await, Phase::SyncingConfig);
    assert_eq!(fx.count("terms_signed").await, 1);
    assert_eq!(fx.count("marketing_template_changed").await, 1);

    // The window is 15 minutes; then Meta must also report the WABAs onboarded.
    fx.clock.advance(TimeDelta::minutes(14));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.phase().await, Phase::SyncingConfig);
    fx.clock.advance(TimeDelta::minutes(1));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(
        fx.phase().await,
        Phase::SyncingConfig,
        "Meta has not reported the WABAs onboarded"
    );
    fx.meta.wabas_onboarded();
    fx.meta.ads_mirrored();
    fx.clock.advance(TimeDelta::minutes(1));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.phase().await, Phase::Live);
    assert_eq!(fx.count("template_mirror_synced").await, 1);

    // Every step the manager took is recorded with its actor and the event that caused it.
    for (actor, event) in fx.events().await {
        let by_manager = !matches!(
            event,
            OnboardingEvent::OnboardingStarted(_)
                | OnboardingEvent::PermissionsReviewed(_)
                | OnboardingEvent::BusinessInformationSubmitted(_)
        );
        assert_eq!(
            actor == ACTOR,
            by_manager,
            "{} by {actor}",
            event.type_name()
        );
    }
    fx.assert_caused_by_earlier_events().await;
    assert!(
        manager.timers().all().await.expect("timers").is_empty(),
        "nothing left waiting"
    );
}

#[tokio::test]
async fn a_manager_stopped_in_the_middle_resumes_and_repeats_nothing() {
    let fx = Fixture::new(true).await;
    fx.operator(OnboardingCommand::StartOnboarding {}).await;

    // First run: follows the log until the OBO transfer is requested, then stops.
    let (stop, running) = spawn_run(fx.manager().await);
    eventually("the OBO transfer requested", || async {
        fx.count("obo_migration_requested").await == 1
    })
    .await;
    let _ = stop.send(());
    let stopped_manager = running.await.expect("joins");
    // A pending deadline survives: the poll of the transfer waits in the timers table.
    let pending = stopped_manager.timers().all().await.expect("timers");
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].step_key, "await_obo_transfer:1002");
    stopped_manager.timers().close().await;
    drop(stopped_manager);

    // Meanwhile Meta completes the transfer and a person does their part.
    complete_obo(&fx.meta, "1002");
    fx.clock.advance(TimeDelta::minutes(1));

    // Second run, a new instance: the due timer fires, the flow goes on from the log.
    let (stop, running) = spawn_run(fx.manager().await);
    eventually("the OBO WABA migrated", || async {
        fx.phase().await == Phase::ReviewingPermissions
    })
    .await;
    fx.review_and_submit().await;
    eventually("the terms requested", || async {
        fx.count("terms_requested").await == 1
    })
    .await;
    fx.meta.admin_signs_and_meta_sets_up();
    fx.meta.wabas_onboarded();
    fx.meta.ads_mirrored();
    fx.clock.advance(TimeDelta::minutes(10));
    eventually("the sync window started", || async {
        fx.phase().await == Phase::SyncingConfig
    })
    .await;
    fx.clock.advance(TimeDelta::minutes(16));
    eventually("live", || async { fx.phase().await == Phase::Live }).await;
    let _ = stop.send(());
    running.await.expect("joins");

    // Nothing was asked of Meta twice, and nothing recorded twice.
    let calls = fx.meta.calls();
    assert_eq!((calls.obo_writes, calls.terms_writes), (1, 1), "{calls:?}");
    for type_name in [
        "eligibility_checked",
        "obo_migration_requested",
        "obo_waba_migrated",
        "terms_requested",
        "terms_signed",
        "connected",
        "config_sync_started",
        "sync_completed",
    ] {
        assert_eq!(fx.count(type_name).await, 1, "{type_name}");
    }
}

#[tokio::test]
async fn a_timer_fired_again_after_its_step_does_nothing() {
    let fx = Fixture::new(false).await;
    let manager = fx.manager().await;
    fx.up_to_terms(&manager).await;
    fx.meta.admin_signs_and_meta_sets_up();
    fx.meta.wabas_onboarded();
    manager.reconcile(&portfolio()).await.expect("reconciles");
    fx.clock.advance(TimeDelta::minutes(10));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.phase().await, Phase::SyncingConfig);
    let timers = manager.timers().all().await.expect("timers");
    let sync = timers
        .iter()
        .find(|timer| timer.step_key == "complete_sync")
        .expect("the end of the sync window is a timer")
        .clone();

    fx.clock.advance(TimeDelta::minutes(15));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.phase().await, Phase::Live);
    let version = fx
        .service()
        .load(&portfolio())
        .await
        .expect("loads")
        .version();

    // A crash between the step and the removal of its timer: the row comes back, due.
    manager
        .timers()
        .set(&sync, fx.clock.now())
        .await
        .expect("the timer is set again");
    manager.reconcile(&portfolio()).await.expect("reconciles");
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.count("sync_completed").await, 1);
    assert_eq!(
        fx.service()
            .load(&portfolio())
            .await
            .expect("loads")
            .version(),
        version,
        "nothing appended"
    );
    assert!(
        !manager
            .timers()
            .all()
            .await
            .expect("timers")
            .iter()
            .any(|timer| timer.step_key == "complete_sync"),
        "the stale timer is gone"
    );
}

#[tokio::test]
async fn meta_failing_a_step_backs_off_then_becomes_a_visible_stall_then_recovers() {
    let fx = Fixture::new(false).await;
    let manager = fx.manager().await;
    let config = ProcessConfig::default();
    fx.operator(OnboardingCommand::StartOnboarding {}).await;
    // A proxy's HTML error page: its line breaks must not keep the stall from being recorded.
    fx.meta.with(|state| state.failing = Some(html_failure()));

    for attempt in 1..=config.stall_after {
        manager.reconcile(&portfolio()).await.expect("reconciles");
        let timers = manager.timers().all().await.expect("timers");
        assert_eq!(timers.len(), 1);
        assert_eq!(timers[0].attempts, attempt);
        assert_eq!(timers[0].due_at, fx.clock.now() + config.backoff(attempt));
        assert!(
            timers[0]
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("502")
        );
        // Not again before the backoff ends.
        manager.reconcile(&portfolio()).await.expect("reconciles");
        assert_eq!(fx.meta.calls().business_reads, attempt);
        fx.clock.advance(config.backoff(attempt));
    }
    let stalled = fx.service().load(&portfolio()).await.expect("loads");
    let stall = stalled.stall().expect("the stall is visible in the state");
    assert_eq!(stall.step.as_str(), "check_eligibility");
    assert_eq!(stall.attempts, config.stall_after);
    assert!(
        stall.error.as_str().contains("502 Bad Gateway"),
        "{}",
        stall.error
    );
    assert_eq!(fx.count("process_stalled").await, 1);

    // Recorded once, however long Meta keeps failing.
    for _ in 0..3 {
        fx.clock.advance(config.max_backoff);
        manager.reconcile(&portfolio()).await.expect("reconciles");
    }
    assert!(fx.meta.calls().business_reads > config.stall_after + 2);
    assert_eq!(fx.count("process_stalled").await, 1);

    // Meta recovers: the step goes through and the stall is over.
    fx.meta.with(|state| state.failing = None);
    fx.clock.advance(config.max_backoff);
    manager.reconcile(&portfolio()).await.expect("reconciles");
    let recovered = fx.service().load(&portfolio()).await.expect("loads");
    assert_eq!(recovered.phase(), Phase::ReviewingPermissions);
    assert!(recovered.stall().is_none());
    fx.assert_caused_by_earlier_events().await;
}

#[tokio::test]
async fn a_terms_request_whose_answer_was_lost_is_recorded_from_what_meta_shows() {
    let fx = Fixture::new(false).await;
    let manager = fx.manager().await;
    fx.up_to_terms(&manager).await;
    fx.meta.with(|state| state.lose_next_terms_answer = true);

    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(
        fx.count("terms_requested").await,
        0,
        "the outcome was unknown"
    );
    fx.clock.advance(ProcessConfig::default().backoff(1));
    manager.reconcile(&portfolio()).await.expect("reconciles");

    // Meta shows our request out: recorded as sent with its answer lost, never sent again.
    assert_eq!(fx.meta.calls().terms_writes, 1);
    let requested = fx
        .events()
        .await
        .into_iter()
        .find_map(|(_, event)| match event {
            OnboardingEvent::TermsRequested(requested) => Some(requested),
            _ => None,
        })
        .expect("the terms request is recorded");
    assert!(!requested.already_invited, "no 1752041 ever came");
    assert_eq!(requested.request_id, None);
}

#[tokio::test]
async fn a_manager_killed_between_metas_answer_and_its_record_does_not_ask_again() {
    let fx = Fixture::new(false).await;
    let manager = fx.manager().await;
    fx.up_to_terms(&manager).await;
    fx.meta
        .with(|state| state.crash_after_next_terms_answer = true);
    let crashed = tokio::spawn(async move { manager.reconcile(&portfolio()).await }).await;
    assert!(crashed.expect_err("the task died").is_panic());
    assert_eq!(fx.meta.calls().terms_writes, 1, "Meta has the request");
    assert_eq!(fx.count("terms_requested").await, 0, "the log does not");

    // A new instance: the intent recorded before the call says an attempt may have gone through.
    let manager = fx.manager().await;
    fx.clock.advance(ProcessConfig::default().backoff(1));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.meta.calls().terms_writes, 1, "not sent again");
    let requested = fx
        .events()
        .await
        .into_iter()
        .find_map(|(_, event)| match event {
            OnboardingEvent::TermsRequested(requested) => Some(requested),
            _ => None,
        })
        .expect("the terms request is recorded");
    assert!(!requested.already_invited);
}

#[tokio::test]
async fn two_managers_on_one_log_record_each_step_once() {
    let fx = Fixture::new(false).await;
    let (first, second) = (fx.manager().await, fx.manager().await);
    let portfolio = portfolio();
    fx.operator(OnboardingCommand::StartOnboarding {}).await;
    let (a, b) = tokio::join!(first.reconcile(&portfolio), second.reconcile(&portfolio));
    a.expect("reconciles");
    b.expect("reconciles");
    assert_eq!(fx.count("eligibility_checked").await, 1);

    fx.review_and_submit().await;
    let (a, b) = tokio::join!(first.reconcile(&portfolio), second.reconcile(&portfolio));
    a.expect("reconciles");
    b.expect("reconciles");
    // Both may have asked Meta (Meta answers the second with 1752041); the log holds one terms request.
    assert_eq!(fx.count("terms_requested").await, 1);
    assert_eq!(fx.phase().await, Phase::TermsPending);
}

/// Up to the sync window's end, with Meta having signed and set up everything but the WABAs' onboarding.
async fn syncing(fx: &Fixture, manager: &Manager) {
    fx.up_to_terms(manager).await;
    fx.meta.admin_signs_and_meta_sets_up();
    manager.reconcile(&portfolio()).await.expect("reconciles");
    fx.clock.advance(TimeDelta::minutes(10));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.phase().await, Phase::SyncingConfig);
    fx.clock.advance(TimeDelta::minutes(15));
}

#[tokio::test]
async fn a_wait_meta_never_ends_becomes_a_visible_stall_with_what_meta_reports() {
    let fx = Fixture::new(false).await;
    let config = ProcessConfig {
        max_wait: TimeDelta::minutes(10),
        ..ProcessConfig::default()
    };
    let manager = fx.manager_with(config.clone()).await;
    syncing(&fx, &manager).await;
    fx.meta.with(|state| {
        for waba in state.wabas.values_mut() {
            waba.facts.meta_status = Some(WabaOnboardingStatus::PendingValidPaymentMethod);
        }
    });
    fx.meta.ads_mirrored();
    for _ in 0..10 {
        manager.reconcile(&portfolio()).await.expect("reconciles");
        assert_eq!(fx.count("process_stalled").await, 0);
        fx.clock.advance(config.poll_interval);
    }
    manager.reconcile(&portfolio()).await.expect("reconciles");
    let aggregate = fx.service().load(&portfolio()).await.expect("loads");
    assert_eq!(aggregate.phase(), Phase::SyncingConfig);
    let stall = aggregate.stall().expect("the wait is visible");
    assert_eq!(stall.step.as_str(), "complete_sync");
    assert!(
        stall
            .error
            .as_str()
            .contains("PENDING_VALID_PAYMENT_METHOD"),
        "{}",
        stall.error
    );
    // Recorded once, however long the wait goes on.
    for _ in 0..5 {
        fx.clock.advance(config.poll_interval);
        manager.reconcile(&portfolio()).await.expect("reconciles");
    }
    assert_eq!(fx.count("process_stalled").await, 1);
    // A later event (a template changed at Meta) takes the stall out of the state, but the wait goes on: the
    // next look records it again, once.
    fx.operator(OnboardingCommand::ChangeTemplate {
        waba_id: mmonboard_domain::ids::WabaId::parse("1001").expect("valid"),
        template_id: mmonboard_domain::ids::TemplateId::parse("3002").expect("valid"),
        name: mmonboard_domain::ids::TemplateName::parse("autumn_sale").expect("valid"),
        language: mmonboard_domain::ids::TemplateLanguage::parse("en_US").expect("valid"),
        category: mmonboard_domain::facts::TemplateCategory::Marketing,
    })
    .await;
    assert!(
        fx.service()
            .load(&portfolio())
            .await
            .expect("loads")
            .stall()
            .is_none()
    );
    for _ in 0..3 {
        fx.clock.advance(config.poll_interval);
        manager.reconcile(&portfolio()).await.expect("reconciles");
    }
    assert_eq!(fx.count("process_stalled").await, 2);
    let shown = fx.service().load(&portfolio()).await.expect("loads");
    assert_eq!(
        shown.stall().map(|stall| stall.step.as_str()),
        Some("complete_sync")
    );
    // Meta gets there: the sync completes and the stall is over.
    fx.meta.wabas_onboarded();
    fx.clock.advance(config.poll_interval);
    manager.reconcile(&portfolio()).await.expect("reconciles");
    let aggregate = fx.service().load(&portfolio()).await.expect("loads");
    assert_eq!(aggregate.phase(), Phase::Live);
    assert!(aggregate.stall().is_none());
    fx.assert_caused_by_earlier_events().await;
}

#[tokio::test]
async fn a_waba_meta_restricted_before_enablement_is_suspended_when_the_sync_completes() {
    let fx = Fixture::new(true).await;
    let manager = fx.manager().await;
    fx.operator(OnboardingCommand::StartOnboarding {}).await;
    manager.reconcile(&portfolio()).await.expect("reconciles");
    complete_obo(&fx.meta, "1002");
    fx.clock.advance(TimeDelta::minutes(1));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    fx.review_and_submit().await;
    fx.meta.admin_signs_and_meta_sets_up();
    manager.reconcile(&portfolio()).await.expect("reconciles");
    fx.clock.advance(TimeDelta::minutes(10));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.phase().await, Phase::SyncingConfig);
    // Meta restricted WABA 1002 while its webhook could not be recorded (before enablement).
    fx.meta.wabas_onboarded();
    fx.meta.with(|state| {
        let waba = state
            .wabas
            .get_mut(&crate::fake::waba("1002"))
            .expect("known");
        waba.facts.account_status = AccountStatus::Restricted;
        waba.facts.meta_status = Some(WabaOnboardingStatus::IneligibleInactiveOrRestricted);
    });
    fx.clock.advance(TimeDelta::minutes(15));
    manager.reconcile(&portfolio()).await.expect("reconciles");
    let aggregate = fx.service().load(&portfolio()).await.expect("loads");
    assert_eq!(
        aggregate.phase(),
        Phase::Live,
        "the other WABA is not held back"
    );
    assert!(matches!(
        aggregate.data().wabas[&crate::fake::waba("1002")].routing,
        WabaRouting::Suspended { .. }
    ));
    assert_eq!(fx.count("waba_restricted").await, 1);
    fx.assert_caused_by_earlier_events().await;
}

/// A manager whose lease runs on `lease_clock`, with `lease` options.
async fn leased_manager_with(
    fx: &Fixture,
    lease_clock: &ManualClock,
    lease: LeaseOptions,
) -> Manager {
    ProcessManager::open(
        Arc::clone(&fx.store),
        &fx.url,
        fx.clock.clone(),
        Arc::new(fx.meta.clone()),
        DomainConfig::default(),
        ProcessConfig::default(),
        ProcessOptions {
            tick: Duration::from_millis(5),
            lease,
            ..ProcessOptions::default()
        },
    )
    .await
    .expect("the manager opens")
    .with_lease_clock(Arc::new(lease_clock.clone()))
}

async fn leased_manager(fx: &Fixture, lease_clock: &ManualClock) -> Manager {
    leased_manager_with(fx, lease_clock, LeaseOptions::default()).await
}

async fn role_becomes(role: &RoleWatch, expected: ProcessRole, what: &str) {
    eventually(what, || async { role.get() == expected }).await;
}

#[tokio::test]
async fn of_two_running_managers_only_the_lease_holder_acts_and_a_standby_takes_over() {
    let fx = Fixture::new(false).await;
    let lease_clock = ManualClock::starting_at(start_time());
    let LeaseOptions { ttl, renew_every } = LeaseOptions::default();
    let seconds = |duration: Duration| TimeDelta::seconds(duration.as_secs() as i64);

    // The first takes the lease and acts; the second, started after, stands by.
    let first = leased_manager(&fx, &lease_clock).await;
    let (first_role, first_name) = (first.role(), first.lease().holder_name().to_owned());
    assert_eq!(first_role.get(), ProcessRole::Starting);
    let first_task = tokio::spawn(async move {
        let _ = first.run(std::future::pending::<()>()).await;
    });
    role_becomes(
        &first_role,
        ProcessRole::Active,
        "the first manager holds the lease",
    )
    .await;
    let second = leased_manager(&fx, &lease_clock).await;
    let (second_role, second_name) = (second.role(), second.lease().holder_name().to_owned());
    let lease = second.lease().clone();
    let (stop_second, second_task) = spawn_run(second);
    role_becomes(
        &second_role,
        ProcessRole::Standby,
        "the second manager stands by",
    )
    .await;
    fx.operator(OnboardingCommand::StartOnboarding {}).await;
    eventually("eligibility read from Meta", || async {
        fx.count("eligibility_checked").await == 1
    })
    .await;
    assert_eq!(
        lease
            .current()
            .await
            .expect("reads")
            .map(|held| held.holder),
        Some(first_name.clone())
    );
    assert_eq!(second_role.get(), ProcessRole::Standby);
    // Only the holder read Meta: one business read for one eligibility check.
    assert_eq!(fx.meta.calls().business_reads, 1);

    // The holder dies without a word (its task aborted, its lease left in the table). While the lease runs,
    // nobody may take it; once it lapses, the standby does at its next try and the flow goes on.
    first_task.abort();
    let _ = first_task.await;
    assert_eq!(first_role.get(), ProcessRole::Stopped);
    lease_clock.advance(seconds(renew_every));
    assert!(
        !lease
            .try_hold(lease_clock.now(), ttl)
            .await
            .expect("the lease table answers"),
        "a live lease is nobody else's"
    );
    lease_clock.advance(seconds(ttl));
    role_becomes(&second_role, ProcessRole::Active, "the standby takes over").await;
    assert_eq!(
        lease
            .current()
            .await
            .expect("reads")
            .map(|held| held.holder),
        Some(second_name.clone())
    );
    fx.review_and_submit().await;
    eventually("the terms requested by the new holder", || async {
        fx.count("terms_requested").await == 1
    })
    .await;
    assert_eq!(fx.meta.calls().terms_writes, 1);

    // A running standby takes a released lease at its next try, without waiting for it to lapse.
    let third = leased_manager(&fx, &lease_clock).await;
    let third_role = third.role();
    let (stop_third, third_task) = spawn_run(third);
    role_becomes(
        &third_role,
        ProcessRole::Standby,
        "a third manager stands by",
    )
    .await;
    let _ = stop_second.send(());
    let second = second_task.await.expect("joins");
    assert_eq!(second.role().get(), ProcessRole::Stopped);
    assert_eq!(lease.current().await.expect("reads"), None);
    lease_clock.advance(seconds(renew_every));
    role_becomes(
        &third_role,
        ProcessRole::Active,
        "the standby takes the released lease",
    )
    .await;
    let _ = stop_third.send(());
    third_task.await.expect("joins");
    assert_ne!(first_name, second_name);
}

#[tokio::test]
async fn a_holder_that_loses_its_lease_while_meta_is_slow_drops_the_step_and_stands_by() {
    let fx = Fixture::new(false).await;
    let lease_clock = ManualClock::starting_at(start_time());
    let options = LeaseOptions {
        ttl: Duration::from_secs(2),
        renew_every: Duration::from_millis(100),
    };
    let holder = leased_manager_with(&fx, &lease_clock, options).await;
    let role = holder.role();
    let (stop, running) = spawn_run(holder);
    role_becomes(&role, ProcessRole::Active, "the manager holds the lease").await;

    // Meta takes its time over the eligibility read...
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    fx.meta
        .with(|state| state.business_gate = Some(Arc::clone(&gate)));
    fx.operator(OnboardingCommand::StartOnboarding {}).await;
    eventually("the business read under way", || async {
        fx.meta.calls().business_reads == 1
    })
    .await;
    // ...so long that the lease lapses and another instance takes it.
    lease_clock.advance(TimeDelta::seconds(3));
    let other = leased_manager_with(&fx, &lease_clock, options).await;
    assert!(
        other
            .lease()
            .try_hold(lease_clock.now(), options.ttl)
            .await
            .expect("the lease table answers")
    );
    // The old holder notices at its next renewal, drops the step in flight and stands by.
    role_becomes(&role, ProcessRole::Standby, "the old holder stands by").await;
    gate.add_permits(10);
    let _ = stop.send(());
    let stopped = running.await.expect("joins");
    assert_eq!(
        fx.count("eligibility_checked").await,
        0,
        "the dropped step recorded nothing"
    );
    assert_eq!(
        stopped
            .lease()
            .current()
            .await
            .expect("reads")
            .map(|held| held.holder),
        Some(other.lease().holder_name().to_owned()),
        "stopping did not release a lease that is not its own"
    );
    // The step is the new holder's: nothing was acknowledged past it.
    other.reconcile(&portfolio()).await.expect("reconciles");
    assert_eq!(fx.count("eligibility_checked").await, 1);
}

#[tokio::test]
async fn lease_settings_that_cannot_work_are_refused() {
    let fx = Fixture::new(false).await;
    for (lease, named) in [
        (
            LeaseOptions {
                ttl: Duration::from_secs(10),
                renew_every: Duration::from_secs(6),
            },
            "renewed at least twice",
        ),
        (
            LeaseOptions {
                ttl: Duration::from_secs(30 * 24 * 3600),
                renew_every: Duration::from_secs(5),
            },
            "longer than",
        ),
    ] {
        let refused = ProcessManager::open(
            Arc::clone(&fx.store),
            &fx.url,
            fx.clock.clone(),
            Arc::new(fx.meta.clone()),
            DomainConfig::default(),
            ProcessConfig::default(),
            ProcessOptions {
                lease,
                ..ProcessOptions::default()
            },
        )
        .await;
        let Err(error) = refused else {
            panic!("{lease:?} accepted")
        };
        assert!(error.to_string().contains(named), "{error}");
    }
}

#[tokio::test]
async fn replicas_opening_a_fresh_database_at_once_all_start() {
    // sqlx takes no lock around SQLite migrations: every instance must still come up, whoever migrates.
    for _ in 0..3 {
        let fx = Fixture::new(false).await;
        let (a, b, c, d) = tokio::join!(fx.manager(), fx.manager(), fx.manager(), fx.manager());
        for manager in [a, b, c, d] {
            assert!(
                manager
                    .timers()
                    .all()
                    .await
                    .expect("the timers table")
                    .is_empty()
            );
        }
    }
}

#[tokio::test]
async fn a_manager_runs_once_at_a_time() {
    let fx = Fixture::new(false).await;
    let manager = Arc::new(fx.manager().await);
    let role = manager.role();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn({
        let manager = Arc::clone(&manager);
        async move {
            manager
                .run(async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    role_becomes(&role, ProcessRole::Active, "the manager runs").await;
    let again = manager.run(std::future::ready(())).await;
    assert!(
        again.is_err_and(|error| error.to_string().contains("running already")),
        "a second run beside the first"
    );
    assert_eq!(role.get(), ProcessRole::Active);
    let _ = stop.send(());
    running
        .await
        .expect("joins")
        .expect("the first run ends well");
    // Once stopped, it may run again.
    manager
        .run(std::future::ready(()))
        .await
        .expect("runs again");
}
