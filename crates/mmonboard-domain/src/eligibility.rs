//! DOMAIN.md's eligibility rules as a pure function from Meta's facts to a verdict with every reason. The
//! verdict is recorded in the `EligibilityChecked` event, so history shows why, under the rules of that day.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::country::{CountryCode, CountryPolicy, Subdivision};
use crate::facts::{AccountStatus, OwnershipType, PortfolioFacts, WabaFacts, WabaOnboardingStatus};
use crate::ids::{PhoneNumberId, WabaId};

/// Why one WABA cannot use the MM API.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum WabaIneligibility {
    /// Rule 1: no phone number registered on Cloud API.
    NotOnCloudApi,
    /// Rule 2: not active, or restricted for policy violations.
    InactiveOrRestricted { status: AccountStatus },
    /// Rule 3: owned on behalf of the customer; must be migrated to a shared WABA first.
    OnBehalfOf,
    /// Rule 3, conservatively: Meta reported an ownership this build does not know.
    UnrecognisedOwnership { ownership_type: OwnershipType },
    /// Rule 4: the WABA's tax country is not served.
    TaxCountryNotSupported { country: CountryCode },
    /// Rule 4 (seed): a phone number's country is not served.
    PhoneCountryNotSupported {
        phone_number_id: PhoneNumberId,
        country: CountryCode,
    },
    /// A number of the WABA is used in the WhatsApp Business app.
    UsingWhatsAppBusinessApp { phone_number_id: PhoneNumberId },
    /// Meta's own status says ineligible (kept even when our rules would pass: the stricter one wins).
    MetaReportsIneligible { status: WabaOnboardingStatus },
}

impl WabaIneligibility {
    /// Meta's status value for this reason, for mapping and display.
    pub fn meta_status(&self) -> WabaOnboardingStatus {
        match self {
            Self::OnBehalfOf | Self::UnrecognisedOwnership { .. } => {
                WabaOnboardingStatus::IneligibleOnBehalfOfWaba
            }
            Self::NotOnCloudApi | Self::InactiveOrRestricted { .. } => {
                WabaOnboardingStatus::IneligibleInactiveOrRestricted
            }
            Self::TaxCountryNotSupported { .. } | Self::PhoneCountryNotSupported { .. } => {
                WabaOnboardingStatus::IneligibleCountryNotSupported
            }
            Self::UsingWhatsAppBusinessApp { .. } => {
                WabaOnboardingStatus::IneligibleUsingWhatsappBusinessApp
            }
            Self::MetaReportsIneligible { status } => status.clone(),
        }
    }
}

impl fmt::Display for WabaIneligibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOnCloudApi => write!(f, "no phone number is registered on Cloud API"),
            Self::InactiveOrRestricted { status } => {
                write!(f, "account is not active (status {status})")
            }
            Self::OnBehalfOf => write!(
                f,
                "WABA is owned on behalf of the business (OBO) and must be migrated"
            ),
            Self::UnrecognisedOwnership { ownership_type } => {
                write!(f, "unrecognised ownership type {ownership_type}")
            }
            Self::TaxCountryNotSupported { country } => {
                write!(f, "tax country {country} is not supported")
            }
            Self::PhoneCountryNotSupported {
                phone_number_id,
                country,
            } => {
                write!(
                    f,
                    "phone number {phone_number_id} is in unsupported country {country}"
                )
            }
            Self::UsingWhatsAppBusinessApp { phone_number_id } => {
                write!(
                    f,
                    "phone number {phone_number_id} is used in the WhatsApp Business app"
                )
            }
            Self::MetaReportsIneligible { status } => write!(f, "Meta reports {status}"),
        }
    }
}

/// Why the portfolio as a whole cannot proceed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum PortfolioIneligibility {
    /// Meta does not offer the "enable" section: contact your account manager or support.
    EnableNotOffered,
    BusinessCountryNotSupported {
        country: CountryCode,
    },
    BusinessRegionNotSupported {
        subdivision: Subdivision,
    },
    NoWabas,
    /// No WABA is eligible, even counting OBO WABAs as eligible once migrated.
    NoEligibleWaba,
}

impl PortfolioIneligibility {
    /// The reason's stable code: its stored `reason` tag, also the blocker code of the read models.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EnableNotOffered => "enable_not_offered",
            Self::BusinessCountryNotSupported { .. } => "business_country_not_supported",
            Self::BusinessRegionNotSupported { .. } => "business_region_not_supported",
            Self::NoWabas => "no_wabas",
            Self::NoEligibleWaba => "no_eligible_waba",
        }
    }
}

impl fmt::Display for PortfolioIneligibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EnableNotOffered => write!(
                f,
                "Meta does not offer enablement for this portfolio: contact your account manager or support"
            ),
            Self::BusinessCountryNotSupported { country } => {
                write!(f, "business country {country} is not supported")
            }
            Self::BusinessRegionNotSupported { subdivision } => {
                write!(f, "business region {subdivision} is not supported")
            }
            Self::NoWabas => write!(f, "the portfolio has no WhatsApp Business Account"),
            Self::NoEligibleWaba => write!(
                f,
                "no WhatsApp Business Account of the portfolio is eligible"
            ),
        }
    }
}

/// The verdict for one WABA: eligible when `reasons` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WabaVerdict {
    pub reasons: Vec<WabaIneligibility>,
}

impl WabaVerdict {
    pub fn is_eligible(&self) -> bool {
        self.reasons.is_empty()
    }

    /// Eligible once its OBO migration completes: OBO is the only thing in the way.
    pub fn is_eligible_after_migration(&self) -> bool {
        self.reasons
            .iter()
            .all(|reason| matches!(reason, WabaIneligibility::OnBehalfOf))
    }

    pub fn needs_obo_migration(&self) -> bool {
        self.reasons.contains(&WabaIneligibility::OnBehalfOf)
    }
}

/// The recorded outcome of an eligibility check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityVerdict {
    pub portfolio_reasons: Vec<PortfolioIneligibility>,
    pub wabas: BTreeMap<WabaId, WabaVerdict>,
}

impl EligibilityVerdict {
    /// The portfolio may go on to enablement (perhaps after migrating its OBO WABAs).
    pub fn may_proceed(&self) -> bool {
        self.portfolio_reasons.is_empty()
    }

    pub fn obo_wabas(&self) -> impl Iterator<Item = &WabaId> {
        self.wabas
            .iter()
            .filter(|(_, verdict)| verdict.needs_obo_migration())
            .map(|(id, _)| id)
    }
}

/// Evaluate one WABA. `business_country` is checked at portfolio level, not here.
pub fn evaluate_waba(waba: &WabaFacts, countries: &CountryPolicy) -> WabaVerdict {
    let mut reasons = Vec::new();
    if !waba
        .phone_numbers
        .iter()
        .any(|number| number.registered_on_cloud_api)
    {
        reasons.push(WabaIneligibility::NotOnCloudApi);
    }
    if waba.account_status != AccountStatus::Active {
        reasons.push(WabaIneligibility::InactiveOrRestricted {
            status: waba.account_status.clone(),
        });
    }
    match &waba.ownership_type {
        OwnershipType::ClientOwned => {}
        OwnershipType::OnBehalfOf => reasons.push(WabaIneligibility::OnBehalfOf),
        unknown @ OwnershipType::Unknown(_) => {
            reasons.push(WabaIneligibility::UnrecognisedOwnership {
                ownership_type: unknown.clone(),
            })
        }
    }
    if !countries.is_supported(waba.tax_country) {
        reasons.push(WabaIneligibility::TaxCountryNotSupported {
            country: waba.tax_country,
        });
    }
    for number in &waba.phone_numbers {
        if !countries.is_supported(number.country) {
            reasons.push(WabaIneligibility::PhoneCountryNotSupported {
                phone_number_id: number.phone_number_id.clone(),
                country: number.country,
            });
        }
        if number.uses_business_app {
            reasons.push(WabaIneligibility::UsingWhatsAppBusinessApp {
                phone_number_id: number.phone_number_id.clone(),
            });
        }
    }
    if let Some(status) = &waba.meta_status {
        // OBO is already explained by our own rule and is resolved by migration; every other ineligible status
        // Meta reports is kept.
        let explained_obo = *status == WabaOnboardingStatus::IneligibleOnBehalfOfWaba
            && reasons.contains(&WabaIneligibility::OnBehalfOf);
        if status.is_ineligible() && !explained_obo {
            reasons.push(WabaIneligibility::MetaReportsIneligible {
                status: status.clone(),
            });
        }
    }
    WabaVerdict { reasons }
}

/// Evaluate the portfolio: every WABA, then the portfolio-level rules.
pub fn evaluate(facts: &PortfolioFacts, countries: &CountryPolicy) -> EligibilityVerdict {
    let wabas: BTreeMap<WabaId, WabaVerdict> = facts
        .wabas
        .iter()
        .map(|waba| (waba.waba_id.clone(), evaluate_waba(waba, countries)))
        .collect();
    let mut portfolio_reasons = Vec::new();
    if !facts.enable_offered {
        portfolio_reasons.push(PortfolioIneligibility::EnableNotOffered);
    }
    if !countries.is_supported(facts.business_country) {
        portfolio_reasons.push(PortfolioIneligibility::BusinessCountryNotSupported {
            country: facts.business_country,
        });
    }
    if let Some(subdivision) = &facts.business_subdivision
        && !countries.is_subdivision_supported(subdivision)
    {
        portfolio_reasons.push(PortfolioIneligibility::BusinessRegionNotSupported {
            subdivision: subdivision.clone(),
        });
    }
    if wabas.is_empty() {
        portfolio_reasons.push(PortfolioIneligibility::NoWabas);
    } else if !wabas.values().any(WabaVerdict::is_eligible_after_migration) {
        portfolio_reasons.push(PortfolioIneligibility::NoEligibleWaba);
    }
    EligibilityVerdict {
        portfolio_reasons,
        wabas,
    }
}
