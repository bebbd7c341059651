//! Any bytes as a stored event: the first line its type name, the second its schema version, the rest
//! its payload, as a row of the log holds them. Decoding either fails with an error or gives an event
//! whose stored form decodes to the same event again; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmonboard_domain::OnboardingEvent;
use mmonboard_domain::event::CURRENT_SCHEMA_VERSION;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (Some(event_type), Some(version), Some(payload)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let Ok(version) = version.trim().parse::<u32>() else {
        return;
    };
    if let Ok(event) = OnboardingEvent::decode(event_type, version, payload) {
        let again =
            OnboardingEvent::decode(event.type_name(), CURRENT_SCHEMA_VERSION, &event.encode())
                .expect("an event's current stored form decodes");
        assert_eq!(again, event, "re-encoding changed a decoded event");
    }
});
