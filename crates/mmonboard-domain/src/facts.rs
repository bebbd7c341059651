//! What Meta reports about a portfolio and its WABAs at the moment of an eligibility check. Meta's status
//! values are open enums: a value this build does not know is kept verbatim (`Unknown`), never a crash, because
//! Meta changes its rules (DOMAIN.md).

use serde::{Deserialize, Serialize};

use crate::country::{CountryCode, Subdivision};
use crate::ids::{PhoneNumberId, WabaId};

macro_rules! meta_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($variant,)+
            /// A value Meta sent that this build does not know; kept as sent.
            Unknown(String),
        }

        impl $name {
            /// Meta's spellings of the values this build knows.
            pub const KNOWN: &'static [&'static str] = &[$($wire),+];

            /// Meta's spelling of the value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(value) => value,
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $($wire => Self::$variant,)+
                    _ => Self::Unknown(value),
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                match value {
                    $name::Unknown(value) => value,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

meta_enum!(
    /// Who owns a WABA: the customer (shared) or the provider on the customer's behalf (OBO).
    OwnershipType {
        ClientOwned => "CLIENT_OWNED",
        OnBehalfOf => "ON_BEHALF_OF",
    }
);

meta_enum!(
    /// A WABA's account status.
    AccountStatus {
        Active => "ACTIVE",
        Restricted => "RESTRICTED",
        Disabled => "DISABLED",
    }
);

meta_enum!(
    /// Meta's per-WABA `marketing_messages_onboarding_status`.
    WabaOnboardingStatus {
        IneligibleOnBehalfOfWaba => "INELIGIBLE_ON_BEHALF_OF_WABA",
        IneligibleInactiveOrRestricted => "INELIGIBLE_INACTIVE_OR_RESTRICTED",
        IneligibleCountryNotSupported => "INELIGIBLE_COUNTRY_NOT_SUPPORTED",
        IneligibleUsingWhatsappBusinessApp => "INELIGIBLE_USING_WHATSAPP_BUSINESS_APP",
        Eligible => "ELIGIBLE",
        PendingValidPaymentMethod => "PENDING_VALID_PAYMENT_METHOD",
        PendingInternalSetup => "PENDING_INTERNAL_SETUP",
        Onboarded => "ONBOARDED",
    }
);

impl WabaOnboardingStatus {
    /// Meta itself says the WABA cannot be onboarded. Unknown values that start with `INELIGIBLE` count too:
    /// the stricter reading wins.
    pub fn is_ineligible(&self) -> bool {
        self.as_str().starts_with("INELIGIBLE")
    }
}

meta_enum!(
    /// Meta's portfolio-level terms status.
    TermsStatus {
        NotStarted => "NOT_STARTED",
        RequestSent => "REQUEST_SENT",
        TermOfServiceSigned => "TERM_OF_SERVICE_SIGNED",
    }
);

meta_enum!(
    /// The role of the person acting in the customer's business portfolio.
    PortfolioRole {
        Admin => "ADMIN",
        Employee => "EMPLOYEE",
        FinanceEditor => "FINANCE_EDITOR",
        FinanceAnalyst => "FINANCE_ANALYST",
        Developer => "DEVELOPER",
    }
);

meta_enum!(
    /// A template's category as Meta reports it; only the latest category counts.
    TemplateCategory {
        Marketing => "MARKETING",
        Utility => "UTILITY",
        Authentication => "AUTHENTICATION",
    }
);

meta_enum!(
    /// Why Meta suspended a WABA's MM routing after enablement (`account_update` webhook events).
    SuspensionReason {
        AccountRestriction => "ACCOUNT_RESTRICTION",
        DisabledUpdate => "DISABLED_UPDATE",
    }
);

meta_enum!(
    /// Why a WABA left MM routing for good.
    WabaExitReason {
        AccountOffboarded => "ACCOUNT_OFFBOARDED",
        PartnerRemoved => "PARTNER_REMOVED",
    }
);

/// One phone number of a WABA.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumberFacts {
    pub phone_number_id: PhoneNumberId,
    pub country: CountryCode,
    pub registered_on_cloud_api: bool,
    pub uses_business_app: bool,
}

/// What Meta reports about one WABA.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WabaFacts {
    pub waba_id: WabaId,
    pub ownership_type: OwnershipType,
    pub account_status: AccountStatus,
    pub tax_country: CountryCode,
    pub phone_numbers: Vec<PhoneNumberFacts>,
    /// Meta's own verdict, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_status: Option<WabaOnboardingStatus>,
}

/// What Meta reports about the portfolio as a whole, with every WABA in it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortfolioFacts {
    pub business_country: CountryCode,
    /// The business address's region, where it matters (sanctioned regions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_subdivision: Option<Subdivision>,
    /// Whether Meta offers the "enable" section for this portfolio at all.
    pub enable_offered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_status: Option<TermsStatus>,
    pub wabas: Vec<WabaFacts>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_meta_values_are_kept_verbatim() {
        let status: WabaOnboardingStatus =
            serde_json::from_str("\"PENDING_SOMETHING_NEW\"").unwrap();
        assert_eq!(
            status,
            WabaOnboardingStatus::Unknown("PENDING_SOMETHING_NEW".into())
        );
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            "\"PENDING_SOMETHING_NEW\""
        );
        let known: WabaOnboardingStatus = serde_json::from_str("\"ONBOARDED\"").unwrap();
        assert_eq!(known, WabaOnboardingStatus::Onboarded);
        assert!(WabaOnboardingStatus::Unknown("INELIGIBLE_NEW_RULE".into()).is_ineligible());
    }
}
