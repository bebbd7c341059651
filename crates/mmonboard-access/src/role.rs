//! The roles a token carries, and which roles may send which command. Least privilege: an operator drives
//! its own steps, a recorder records what Meta reported, an auditor and a subscriber only read, and an admin
//! may do all of it and manage tokens. The split of the commands is an exhaustive match, so a new command
//! cannot be added without deciding who may send it.

use std::fmt;
use std::str::FromStr;

use mmonboard_domain::OnboardingCommand;

use crate::error::AccessError;

/// What a token may do. The names are stored with each token and recorded in every event's actor: never
/// rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The operator's own steps (start, review permissions, submit business information, offboard) and
    /// every read.
    Operator,
    /// The commands that record what Meta reported, for manual operation without Meta. The process manager
    /// and the webhook endpoint act with it internally.
    Recorder,
    /// Every read, nothing that writes.
    Auditor,
    /// The event feed only (`/v1/events`, `/v1/events/stream`).
    Subscriber,
    /// All of the above, and token management over HTTP.
    Admin,
}

impl Role {
    /// Every role, in the order the matrix shows them.
    pub const ALL: [Role; 5] = [
        Role::Operator,
        Role::Recorder,
        Role::Auditor,
        Role::Subscriber,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Recorder => "recorder",
            Role::Auditor => "auditor",
            Role::Subscriber => "subscriber",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccessError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| AccessError::UnknownRole(text.to_owned()))
    }
}

/// Who is entitled to issue a command: the operator of the onboarding, or Meta (whose reports a recorder
/// writes down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandClass {
    /// One of the operator's own steps.
    OperatorStep,
    /// A record of what Meta reported.
    MetaReport,
}

impl CommandClass {
    /// The class of `command`. Exhaustive on purpose: no wildcard arm, so each new command is classified
    /// where it is added.
    pub fn of(command: &OnboardingCommand) -> Self {
        match command {
            OnboardingCommand::StartOnboarding {}
            | OnboardingCommand::ReviewPermissions { .. }
            | OnboardingCommand::SubmitBusinessInfo { .. }
            | OnboardingCommand::Offboard { .. } => CommandClass::OperatorStep,
            OnboardingCommand::CheckEligibility { .. }
            | OnboardingCommand::RequestOboMigration { .. }
            | OnboardingCommand::CompleteOboMigration { .. }
            | OnboardingCommand::AcceptTerms { .. }
            | OnboardingCommand::RecordTermsRequest { .. }
            | OnboardingCommand::RecordTermsSigned { .. }
            | OnboardingCommand::RecordProcessStall { .. }
            | OnboardingCommand::Connect { .. }
            | OnboardingCommand::StartConfigSync {}
            | OnboardingCommand::CompleteSync {}
            | OnboardingCommand::ChangeTemplate { .. }
            | OnboardingCommand::RecordTemplateMirrorSynced { .. }
            | OnboardingCommand::RecordTemplateUse { .. }
            | OnboardingCommand::RestrictWaba { .. }
            | OnboardingCommand::ReinstateWaba { .. }
            | OnboardingCommand::OffboardWaba { .. } => CommandClass::MetaReport,
        }
    }

    /// The matrix's row for sending a command of this class.
    pub fn endpoint(self) -> crate::Endpoint {
        match self {
            CommandClass::OperatorStep => crate::Endpoint::SendOperatorCommand,
            CommandClass::MetaReport => crate::Endpoint::SendRecorderCommand,
        }
    }
}
