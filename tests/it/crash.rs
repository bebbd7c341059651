//! The crash harness: the real `mmonboard serve` under 16 concurrent HTTP clients, killed with SIGKILL at a
//! random moment in every round and started again on the same database. After each restart every
//! acknowledged command must still be there (its `Idempotency-Key` sent again gives 200 with the same
//! events), no command may be half there, and `verify` must pass.
//!
//! The suite runs 3 rounds; `MMONBOARD_CRASH_ROUNDS=20 cargo test --test it crash` is the full run
//! (docs/testing.md). The kill moment is drawn from a seed printed at the start
//! (`MMONBOARD_CRASH_SEED` replays it): the server is killed once that many commands have been
//! acknowledged in the round, so the moment depends on progress, not on the wall clock.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use mmonboard_eventlog::testing::{TestBackend, TestDatabase};

use crate::support::{Run, finish};

const CLIENTS: usize = 16;
const DEADLINE: Duration = Duration::from_secs(60);

/// A command the server answered 201 or 200: what must survive every later crash.
#[derive(Debug, Clone)]
struct Acknowledged {
    portfolio: String,
    key: String,
    body: String,
    events: Value,
}

/// A command sent while the server was killed: it may or may not have been applied, but never in part.
#[derive(Debug, Clone)]
struct InDoubt {
    portfolio: String,
    key: String,
    body: String,
}

struct Server {
    child: Child,
    base: String,
    /// Everything the server wrote to stderr, drained by a thread so that a full pipe never blocks it.
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(database: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mmonboard"))
            .args(["--database", database])
            .args(["serve", "--listen", "127.0.0.1:0", "--insecure-no-auth"])
            .args(["--rate-limit-per-second", "1000000"])
            .args(["--rate-limit-burst", "1000000"])
            .env_remove("MMONBOARD_DATABASE_URL")
            .env_remove("META_BASE_URL")
            .env_remove("META_APP_SECRET")
            .env_remove("META_WEBHOOK_VERIFY_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mmonboard serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("mmonboard serving ") {
                    let address = rest.split_whitespace().next().unwrap_or_default();
                    let _ = address_tx.send(address.to_owned());
                }
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = address_rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            panic!(
                "the server did not say where it listens:\n{}",
                log.lock().expect("log")
            )
        });
        Self { child, base, log }
    }

    fn kill(mut self) {
        // `Child::kill` is SIGKILL on Unix: no shutdown code runs.
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the killed server is reaped");
    }

    fn stop(mut self) {
        self.child.kill().expect("stop");
        self.child.wait().expect("reaped");
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }
}

/// A small deterministic generator for the kill moments (xorshift64*), seeded from the environment or
/// the clock, so that a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

fn commands_of(portfolio_index: usize) -> [Value; 2] {
    let phone = format!("{}", 200_000 + portfolio_index);
    let waba = format!("{}", 100_000 + portfolio_index);
    [
        json!({"type": "start_onboarding"}),
        json!({
            "type": "check_eligibility",
            "facts": {
                "business_country": "BR",
                "enable_offered": true,
                "wabas": [{
                    "waba_id": waba,
                    "ownership_type": "CLIENT_OWNED",
                    "account_status": "ACTIVE",
                    "tax_country": "BR",
                    "phone_numbers": [{
                        "phone_number_id": phone,
                        "country": "BR",
                        "registered_on_cloud_api": true,
                        "uses_business_app": false
                    }]
                }]
            }
        }),
    ]
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    portfolio: &str,
    key: &str,
    body: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let response = http
        .post(format!("{base}/v1/portfolios/{portfolio}/commands"))
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    let status = response.status().as_u16();
    let value = response.json::<Value>().await?;
    Ok((status, value))
}

/// One client: portfolios of its own, two commands each, until the server goes away.
async fn client(
    base: String,
    round: usize,
    client: usize,
    acknowledged: Arc<AtomicUsize>,
) -> (Vec<Acknowledged>, Vec<InDoubt>) {
    let http = reqwest::Client::new();
    let mut done = Vec::new();
    for n in 0.. {
        let index = (round * CLIENTS + client) * 10_000 + n;
        let portfolio = format!("{}", 1_000_000_000 + index);
        for (step, command) in commands_of(index).iter().enumerate() {
            let key = format!("crash-{portfolio}-{step}");
            let body = command.to_string();
            match post(&http, &base, &portfolio, &key, &body).await {
                Ok((201 | 200, answer)) => {
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                    done.push(Acknowledged {
                        portfolio: portfolio.clone(),
                        key,
                        body,
                        events: answer["events"].clone(),
                    });
                }
                Ok((status, answer)) => {
                    panic!("round {round}: {key} answered {status}: {answer}")
                }
                // The server was killed with this request in flight (or before it was read).
                Err(_) => {
                    return (
                        done,
                        vec![InDoubt {
                            portfolio,
                            key,
                            body,
                        }],
                    );
                }
            }
        }
    }
    unreachable!("the loop ends when the server is killed")
}

async fn await_ready(base: &str, server: &Server) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the server never became ready:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn verify(database: &str) -> Run {
    finish(
        Command::new(env!("CARGO_BIN_EXE_mmonboard"))
            .args(["--database", database, "verify", "--json"])
            .env_remove("MMONBOARD_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mmonboard verify starts"),
    )
}

async fn acknowledged_commands_survive_sigkill_rounds(backend: TestBackend) {
    let Some(database) = TestDatabase::on(backend).await else {
        return;
    };
    let rounds: usize = std::env::var("MMONBOARD_CRASH_ROUNDS")
        .ok()
        .map(|value| value.parse().expect("MMONBOARD_CRASH_ROUNDS is a number"))
        .unwrap_or(3);
    let seed: u64 = std::env::var("MMONBOARD_CRASH_SEED")
        .ok()
        .map(|value| value.parse().expect("MMONBOARD_CRASH_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos() as u64
        });
    eprintln!("crash harness: {rounds} rounds, MMONBOARD_CRASH_SEED={seed}");
    // xorshift needs a state other than 0.
    let mut rng = Rng(seed | 1);
    let mut survivors: Vec<Acknowledged> = Vec::new();
    let http = reqwest::Client::new();

    for round in 0..rounds {
        let server = Server::start(database.url());
        let base = server.base.clone();
        await_ready(&base, &server).await;

        // Everything acknowledged before the earlier crashes is still there, exactly as answered.
        for command in &survivors {
            let (status, answer) = post(
                &http,
                &base,
                &command.portfolio,
                &command.key,
                &command.body,
            )
            .await
            .expect("the restarted server answers");
            assert_eq!(
                status, 200,
                "round {round}: {} lost after a crash: {answer}",
                command.key
            );
            assert_eq!(
                answer["events"], command.events,
                "round {round}: {} answered other events after a crash",
                command.key
            );
        }

        let acknowledged = Arc::new(AtomicUsize::new(0));
        let kill_after = 20 + rng.below(300) as usize;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|index| {
                tokio::spawn(client(
                    base.clone(),
                    round,
                    index,
                    Arc::clone(&acknowledged),
                ))
            })
            .collect();
        let started = Instant::now();
        while acknowledged.load(Ordering::SeqCst) < kill_after {
            assert!(
                started.elapsed() < DEADLINE,
                "round {round}: only {} of {kill_after} commands acknowledged:\n{}",
                acknowledged.load(Ordering::SeqCst),
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.kill();

        let mut in_doubt = Vec::new();
        for handle in clients {
            let (done, doubt) = tokio::time::timeout(DEADLINE, handle)
                .await
                .expect("a client stops once the server is gone")
                .expect("a client does not panic");
            survivors.extend(done);
            in_doubt.extend(doubt);
        }

        // Restart and settle what was in flight at the kill: applied whole or not at all, so the same
        // key now gives either the original events (200) or a first application (201), never a refusal.
        let server = Server::start(database.url());
        let base = server.base.clone();
        await_ready(&base, &server).await;
        for command in in_doubt {
            let (status, answer) = post(
                &http,
                &base,
                &command.portfolio,
                &command.key,
                &command.body,
            )
            .await
            .expect("the restarted server answers");
            assert!(
                status == 200 || status == 201,
                "round {round}: {} in flight at the kill answered {status}: {answer}",
                command.key
            );
            survivors.push(Acknowledged {
                portfolio: command.portfolio,
                key: command.key,
                body: command.body,
                events: answer["events"].clone(),
            });
        }
        server.stop();

        let verify = verify(database.url());
        assert_eq!(
            verify.code, 0,
            "round {round}: verify after the crash: {}{}",
            verify.stdout, verify.stderr
        );
        eprintln!(
            "crash harness ({backend:?}): round {} survived (killed after {kill_after} acknowledgements; {} commands kept so far)",
            round + 1,
            survivors.len()
        );
    }
    assert!(
        survivors.len() >= rounds * 20,
        "every round acknowledged commands"
    );
    database.cleanup().await;
}

mmonboard_eventlog::on_both_backends!(acknowledged_commands_survive_sigkill_rounds);
