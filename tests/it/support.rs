//! Running the real binary on a temporary database.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub struct Workspace {
    dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.dir.path().join("log.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.database_path().display())
    }

    /// Run `mmonboard --database <tmp> args...` with `stdin` as standard input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        finish(self.spawn(args, stdin))
    }

    /// Start `mmonboard --database <tmp> args...` without waiting for it; `command` goes to its stdin.
    pub fn spawn(&self, args: &[&str], stdin: &str) -> std::process::Child {
        self.spawn_with_env(args, stdin, &[])
    }

    /// `run` with these environment variables set (and Meta's secrets otherwise unset).
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        finish(self.spawn_with_env(args, "", env))
    }

    fn spawn_with_env(
        &self,
        args: &[&str],
        stdin: &str,
        env: &[(&str, &str)],
    ) -> std::process::Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mmonboard"));
        for name in [
            "META_ACCESS_TOKEN",
            "META_APP_SECRET",
            "META_WEBHOOK_VERIFY_TOKEN",
            "META_BASE_URL",
        ] {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        let mut child = command
            .arg("--database")
            .arg(self.database_url())
            .args(args)
            .env_remove("MMONBOARD_DATABASE_URL")
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the mmonboard binary starts");
        // A command refused before it reads its input (an invalid argument) may exit before the
        // write: a broken pipe then is its answer, which the caller checks through the exit code.
        match child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
        {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(error) => panic!("stdin not written: {error}"),
        }
        child
    }

    pub fn exec(&self, portfolio: &str, command: &str) -> Run {
        self.run(&["exec", "--portfolio", portfolio], command)
    }

    /// Run a command that must be accepted.
    pub fn accept(&self, portfolio: &str, command: &str) -> Value {
        let run = self.exec(portfolio, command);
        assert_eq!(
            run.code, 0,
            "command {command} not accepted:\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run.json()
    }

    /// The number of events in the whole log, as `verify` counts them.
    pub fn event_count(&self) -> u64 {
        let run = self.run(&["verify", "--json"], "");
        assert_eq!(run.code, 0, "verify failed: {}", run.stderr);
        run.json()["events_checked"]
            .as_u64()
            .expect("events_checked")
    }
}

/// Wait for a started process and collect what it printed.
pub fn finish(child: std::process::Child) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("mmonboard finishes");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

pub const PORTFOLIO: &str = "1234567890";

pub fn eligibility_command() -> String {
    serde_json::json!({
        "type": "check_eligibility",
        "facts": {
            "business_country": "BR",
            "enable_offered": true,
            "wabas": [{
                "waba_id": "1001",
                "ownership_type": "CLIENT_OWNED",
                "account_status": "ACTIVE",
                "tax_country": "BR",
                "phone_numbers": [{
                    "phone_number_id": "2001",
                    "country": "BR",
                    "registered_on_cloud_api": true,
                    "uses_business_app": false
                }]
            }]
        }
    })
    .to_string()
}

/// Take the test portfolio to `terms_pending`.
pub fn up_to_terms(workspace: &Workspace) {
    workspace.accept(PORTFOLIO, r#"{"type":"start_onboarding"}"#);
    workspace.accept(PORTFOLIO, &eligibility_command());
    workspace.accept(
        PORTFOLIO,
        r#"{"type":"review_permissions","reviewed_by":"3001"}"#,
    );
    workspace.accept(
        PORTFOLIO,
        r#"{"type":"submit_business_info","business_name":"Acme","website":"https://acme.example"}"#,
    );
}
