//! The HTTP figures: commands and route questions through a real server, from 64 concurrent clients, each on
//! its own keep-alive connection, as a load generator such as wrk would send them. Every command is a real
//! POST answered after its durable commit; every answer is read whole before the next request.
//!
//! HTTP/1.1 is written by hand here, not through reqwest (which the live stream's lag uses): a load
//! generator's own cost per request is part of what it measures, and a few writes and reads on a socket keep
//! it near wrk's, so the figure is the server's throughput rather than a client library's. And the clients
//! run on a runtime of their own, with two threads of their own (as `wrk -t2` is a process of its own): on
//! the server's runtime they would take turns with the server's tasks on its two worker threads, and every
//! answer would wake a client queued behind the next request, which no real client does.

use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::BenchError;
use crate::live::{Served, failed};
use crate::seed;

/// The load generator's runtime (see the module's doc). Shut down without waiting when dropped: its tasks
/// have all been awaited by then, or a failed one is being reported.
struct LoadGenerator {
    runtime: Option<tokio::runtime::Runtime>,
}

impl LoadGenerator {
    fn new() -> Result<Self, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("load-generator")
            .enable_all()
            .build()
            .map_err(failed("starting the load generator's runtime"))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    fn spawn<F>(&self, task: F) -> Result<tokio::task::JoinHandle<F::Output>, BenchError>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime
            .as_ref()
            .map(|runtime| runtime.spawn(task))
            .ok_or_else(|| BenchError::Workload("the load generator has stopped".to_owned()))
    }

    /// `clients` connections, opened on the generator's runtime (a socket belongs to the runtime it was
    /// opened on).
    async fn connect(
        &self,
        served: &Served,
        clients: usize,
    ) -> Result<Vec<Connection>, BenchError> {
        let address = served.address.clone();
        let token = served.token.clone();
        self.spawn(async move {
            let mut connections = Vec::with_capacity(clients);
            for _ in 0..clients {
                connections.push(Connection::open(&address, &token).await?);
            }
            Ok::<_, BenchError>(connections)
        })?
        .await
        .map_err(|error| BenchError::Workload(format!("opening the connections failed: {error}")))?
    }
}

impl Drop for LoadGenerator {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One keep-alive HTTP/1.1 connection to the server.
struct Connection {
    stream: BufReader<TcpStream>,
    host: String,
    token: String,
}

impl Connection {
    async fn open(address: &str, token: &str) -> Result<Self, BenchError> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(failed("connecting to the server"))?;
        stream
            .set_nodelay(true)
            .map_err(failed("setting TCP_NODELAY"))?;
        Ok(Self {
            stream: BufReader::new(stream),
            host: address.to_owned(),
            token: token.to_owned(),
        })
    }

    /// Send one request and read its whole answer: the status code.
    async fn request(&mut self, method: &str, path: &str, body: &str) -> Result<u16, BenchError> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.token,
            body.len()
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(failed("sending a request"))?;
        let mut line = String::new();
        self.stream
            .read_line(&mut line)
            .await
            .map_err(failed("reading the status line"))?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| BenchError::Workload(format!("not an HTTP answer: {line:?}")))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream
                .read_line(&mut line)
                .await
                .map_err(failed("reading the headers"))?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(|_| {
                    BenchError::Workload(format!("a bad Content-Length: {header:?}"))
                })?;
            }
        }
        let mut body = vec![0; length];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(failed("reading the body"))?;
        Ok(status)
    }
}

pub(crate) struct HttpRun {
    pub requests: usize,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn summary(mut latencies: Vec<f64>, elapsed: f64) -> HttpRun {
    latencies.sort_by(f64::total_cmp);
    let at = |quantile: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * quantile).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    HttpRun {
        requests: latencies.len(),
        rate: latencies.len() as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    }
}

/// The commands of W1 each portfolio gets over HTTP: all but the last, `complete_sync`.
pub(crate) const COMMANDS_PER_PORTFOLIO: usize = 7;

/// `clients` concurrent clients, each taking `portfolios_each` portfolios of its own through the first
/// [`COMMANDS_PER_PORTFOLIO`] commands of W1, one POST at a time; every command must be answered 201.
pub(crate) async fn commands(
    url: &str,
    clients: usize,
    portfolios_each: usize,
    first_number: u64,
) -> Result<HttpRun, BenchError> {
    let generator = LoadGenerator::new()?;
    let served = Served::start(url).await?;
    let connections = generator.connect(&served, clients).await?;
    let started = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(client, mut connection)| {
            generator.spawn(async move {
                let mut latencies = Vec::with_capacity(portfolios_each * COMMANDS_PER_PORTFOLIO);
                for index in 0..portfolios_each {
                    let number = first_number + (client * portfolios_each + index) as u64;
                    let path = format!("/v1/portfolios/{}/commands", seed::portfolio_id(number)?);
                    // The server keeps the default 15-minute sync window: its flow stops before
                    // complete_sync, which W1's zero window allows at once.
                    let commands = seed::onboarding_commands(number)?;
                    for command in commands.into_iter().take(COMMANDS_PER_PORTFOLIO) {
                        let body = serde_json::to_string(&command)
                            .map_err(|error| BenchError::Workload(error.to_string()))?;
                        let sent = Instant::now();
                        let status = connection.request("POST", &path, &body).await?;
                        latencies.push(sent.elapsed().as_secs_f64() * 1_000.0);
                        if status != 201 {
                            return Err(BenchError::Workload(format!(
                                "{} answered {status}",
                                command.type_name()
                            )));
                        }
                    }
                }
                Ok::<_, BenchError>(latencies)
            })
        })
        .collect::<Result<_, _>>()?;
    let parts = joined(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    served.stop().await?;
    Ok(summary(parts?.concat(), elapsed))
}

/// Every client's result, once all have ended; a client's failure (the last one seen) fails the whole.
async fn joined<T>(
    tasks: Vec<tokio::task::JoinHandle<Result<T, BenchError>>>,
) -> Result<Vec<T>, BenchError> {
    let mut parts = Vec::with_capacity(tasks.len());
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(part)) => parts.push(part),
            Ok(Err(error)) => failure = Some(error),
            Err(error) => failure = Some(BenchError::Workload(format!("a client failed: {error}"))),
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(parts),
    }
}

/// What the route questions measured: the questions, and the same clients sending a request the server
/// refuses at once (a route question without its parameters: 400) through the same stack, the ceiling of
/// the server's HTTP layer and of this load generator on this machine.
pub(crate) struct RouteRuns {
    pub questions: HttpRun,
    pub trivial: HttpRun,
}

/// `clients` concurrent clients asking `questions_each` route questions each about portfolio `number`'s
/// marketing template (every one must be answered 200), then as many trivial requests (each answered 400).
pub(crate) async fn route_questions(
    url: &str,
    clients: usize,
    questions_each: usize,
    number: u64,
) -> Result<RouteRuns, BenchError> {
    let path = format!(
        "/v1/route?portfolio_id={}&waba_id={}&template_id={}",
        seed::portfolio_id(number)?,
        seed::waba_id(number)?,
        seed::template_id(number)?
    );
    let generator = LoadGenerator::new()?;
    let served = Served::start(url).await?;
    let measured = async {
        let mut connections = generator.connect(&served, clients).await?;
        // One first question folds the portfolio; the figure is of the questions after it.
        let rest = connections.split_off(1);
        let (warmed, _) = ask(&generator, connections, &path, 200, 1).await?;
        let connections = warmed.into_iter().chain(rest).collect();
        let (connections, questions) =
            ask(&generator, connections, &path, 200, questions_each).await?;
        let (_, trivial) = ask(&generator, connections, "/v1/route", 400, questions_each).await?;
        Ok::<_, BenchError>(RouteRuns { questions, trivial })
    }
    .await;
    served.stop().await?;
    measured
}

/// Every connection sends `each` GETs of `path`, one at a time, all at once; each must be answered
/// `expected`. The connections come back for the next round.
async fn ask(
    generator: &LoadGenerator,
    connections: Vec<Connection>,
    path: &str,
    expected: u16,
    each: usize,
) -> Result<(Vec<Connection>, HttpRun), BenchError> {
    let started = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let path = path.to_owned();
            generator.spawn(async move {
                let mut latencies = Vec::with_capacity(each);
                for _ in 0..each {
                    let sent = Instant::now();
                    let status = connection.request("GET", &path, "").await?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1_000.0);
                    if status != expected {
                        return Err(BenchError::Workload(format!(
                            "GET {path} answered {status}, not {expected}"
                        )));
                    }
                }
                Ok::<_, BenchError>((connection, latencies))
            })
        })
        .collect::<Result<_, _>>()?;
    let parts = joined(tasks).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let (connections, latencies): (Vec<_>, Vec<Vec<f64>>) = parts.into_iter().unzip();
    Ok((connections, summary(latencies.concat(), elapsed)))
}
