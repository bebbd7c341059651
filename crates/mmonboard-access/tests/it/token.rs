//! Token names, secrets, hashes and lifetimes.

use chrono::TimeDelta;
use mmonboard_access::{AccessError, Role, TokenHash, TokenName, TokenSecret, parse_lifetime};

#[test]
fn names_are_checked() {
    for good in ["alice", "ci-bot", "team.ops_1", "9"] {
        assert_eq!(TokenName::parse(good).expect(good).as_str(), good);
    }
    for (bad, why) in [
        ("", "empty"),
        ("Alice", "character"),
        ("-x", "start"),
        ("a b", "character"),
        ("process-manager", "internal actor"),
        ("meta-webhook", "internal actor"),
    ] {
        match TokenName::parse(bad) {
            Err(error @ AccessError::InvalidName { .. }) => {
                assert!(error.to_string().contains(why), "{bad:?}: {error}")
            }
            other => panic!("{bad:?} was accepted: {other:?}"),
        }
    }
    assert!(TokenName::parse(&"a".repeat(65)).is_err());
}

#[test]
fn secrets_are_prefixed_random_and_never_debug_printed() {
    let one = TokenSecret::generate().expect("a secret");
    let two = TokenSecret::generate().expect("a secret");
    assert_ne!(one, two);
    assert_eq!(one.expose().len(), "mmo_".len() + 64);
    assert!(one.expose().starts_with("mmo_"));
    assert!(!format!("{one:?}").contains(&one.expose()[4..]));
    assert!(one.hash().matches(&TokenHash::of(one.expose())));
    assert!(!one.hash().matches(&two.hash()));
}

#[test]
fn lifetimes_parse_and_bad_ones_are_named() {
    assert_eq!(parse_lifetime("90d").expect("90d"), TimeDelta::days(90));
    assert_eq!(parse_lifetime("12h").expect("12h"), TimeDelta::hours(12));
    assert_eq!(
        parse_lifetime("1d 12h").expect("1d 12h"),
        TimeDelta::hours(36)
    );
    for bad in ["", "0d", "ninety days", "90"] {
        let error = parse_lifetime(bad).expect_err(bad);
        assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
    }
}

#[test]
fn roles_parse_from_their_names_only() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>().expect("a role"), role);
    }
    let error = "root".parse::<Role>().expect_err("no such role");
    assert!(error.to_string().contains("\"root\""), "{error}");
}
