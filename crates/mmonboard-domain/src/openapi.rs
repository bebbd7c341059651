//! OpenAPI schemas (utoipa's `ToSchema`) of the checked values, for the HTTP API's generated document
//! (feature `openapi`). Each of these types is a string on the wire through serde's `try_from`/`into`, which
//! utoipa's derive cannot see, so its schema is written here from the same constants its `parse` checks.
//! The commands, facts and refusals derive theirs where they are declared.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::country::{CountryCode, Subdivision};
use crate::facts::{
    AccountStatus, OwnershipType, PortfolioRole, SuspensionReason, TemplateCategory, TermsStatus,
    WabaExitReason, WabaOnboardingStatus,
};
use crate::ids::{
    AdAccountId, BusinessName, MAX_META_ID_DIGITS, MetaRequestId, PhoneNumberId, PortfolioId,
    Reason, StepName, TemplateId, TemplateLanguage, TemplateName, TermsVersion, UserId, WabaId,
    WebsiteUrl,
};

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

/// Meta's decimal object ids: digits, no leading zero, at most `MAX_META_ID_DIGITS`.
fn meta_id(description: &str, example: &str) -> ObjectBuilder {
    string(description)
        .pattern(Some(format!(
            "^[1-9][0-9]{{0,{}}}$",
            MAX_META_ID_DIGITS - 1
        )))
        .examples([example])
}

/// Trimmed free text: not blank, at most `max_chars` characters, no control characters (the pattern only
/// says "not blank": `\p{Cc}` is not in every validator's regex dialect).
fn text(description: &str, max_chars: usize, example: &str) -> ObjectBuilder {
    string(description)
        .min_length(Some(1))
        .max_length(Some(max_chars))
        .pattern(Some(r"\S"))
        .examples([example])
}

/// Meta's open enums: the values this build knows, and any other Meta sends, kept as sent.
fn open_enum(description: &str, known: &[&str]) -> ObjectBuilder {
    string(&format!(
        "{description}. Meta's values known to this build: {}; any other value Meta sends is kept as sent",
        known.join(", ")
    ))
    .examples(known.iter().copied())
}

macro_rules! schemas {
    ($($name:ty => $schema:expr;)+) => {
        $(
            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    $schema.into()
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        )+
    };
}

schemas! {
    PortfolioId => meta_id("A Meta business portfolio id: the unit of onboarding", "5550000001");
    WabaId => meta_id("A WhatsApp Business Account id", "1001");
    PhoneNumberId => meta_id("A phone number id of a WABA", "2001");
    TemplateId => meta_id("A message template id of a WABA", "3001");
    UserId => meta_id("A person's Meta user id", "4001");
    AdAccountId => meta_id("The read-only ad account Meta mirrors for a WABA", "6001");
    BusinessName => text("The business name entered during onboarding", BusinessName::MAX_CHARS, "Acme Ltda");
    TermsVersion => text("The version of the MM API terms of service accepted", TermsVersion::MAX_CHARS, "2025-06");
    TemplateName => text("A template's name as Meta knows it", TemplateName::MAX_CHARS, "spring_sale");
    TemplateLanguage => text("A template's language code", TemplateLanguage::MAX_CHARS, "en_US");
    MetaRequestId => text("The id Meta gave a terms request", MetaRequestId::MAX_CHARS, "req-1");
    StepName => text("What a process step was doing when Meta kept failing", StepName::MAX_CHARS, "request_terms");
    Reason => text("A free-text reason", Reason::MAX_CHARS, "customer left");
    WebsiteUrl => string("The business website: an absolute http or https URL with a host and no credentials")
        .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".to_owned())))
        .pattern(Some("^[hH][tT][tT][pP][sS]?://"))
        .examples(["https://acme.example"]);
    CountryCode => string("An assigned ISO 3166-1 alpha-2 country code (lower case is accepted and upper-cased)")
        .enum_values(Some(CountryCode::all().map(|code| code.as_str().to_owned())))
        .examples(["BR"]);
    Subdivision => string("An ISO 3166-2 subdivision: an assigned country, '-', 1 to 3 letters or digits")
        .pattern(Some("^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$"))
        .examples(["UA-43"]);
    OwnershipType => open_enum("Who owns a WABA: the customer (shared) or the provider on the customer's behalf (OBO)", OwnershipType::KNOWN);
    AccountStatus => open_enum("A WABA's account status", AccountStatus::KNOWN);
    WabaOnboardingStatus => open_enum("Meta's per-WABA marketing_messages_onboarding_status", WabaOnboardingStatus::KNOWN);
    TermsStatus => open_enum("Meta's portfolio-level terms status", TermsStatus::KNOWN);
    PortfolioRole => open_enum("The role of the person acting in the customer's business portfolio", PortfolioRole::KNOWN);
    TemplateCategory => open_enum("A template's category as Meta reports it", TemplateCategory::KNOWN);
    SuspensionReason => open_enum("Why Meta suspended a WABA's MM routing", SuspensionReason::KNOWN);
    WabaExitReason => open_enum("Why a WABA left MM routing for good", WabaExitReason::KNOWN);
}
