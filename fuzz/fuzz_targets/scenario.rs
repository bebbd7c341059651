//! Any bytes as a simulator scenario file: it is refused with an error or accepted as a scenario that
//! passes its own validation; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmonboard_metasim::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scenario) = Scenario::from_json(text) {
        scenario.validate().expect("an accepted scenario validates");
    }
});
