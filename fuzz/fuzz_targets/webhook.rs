//! Any bytes as a webhook delivery: the first line is the `X-Hub-Signature-256` header, the rest the body.
//! The signature check never panics and accepts only the body's own HMAC; a body signed with the secret
//! always verifies, in any spelling of its hex digest; parsing and typing the notifications of any body never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmonboard_meta::webhook::{WebhookPayload, sign, verify};

const SECRET: &[u8] = b"fuzz-app-secret";

fuzz_target!(|data: &[u8]| {
    let split = data
        .iter()
        .position(|byte| *byte == b'\n')
        .unwrap_or(data.len());
    let (header, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let genuine = sign(SECRET, body);
    if let Ok(header) = std::str::from_utf8(header) {
        let verdict = verify(SECRET, body, Some(header));
        // The same digest spelt another way (upper-case hex, surrounding spaces) is the same signature.
        let same_digest = header
            .trim()
            .strip_prefix("sha256=")
            .is_some_and(|digest| digest.eq_ignore_ascii_case(&genuine["sha256=".len()..]));
        assert_eq!(
            verdict.is_ok(),
            same_digest,
            "signature {header:?} judged wrongly: {verdict:?}"
        );
    }
    assert!(
        verify(SECRET, body, Some(&genuine)).is_ok(),
        "the genuine signature was refused"
    );
    assert!(
        verify(SECRET, body, None).is_err(),
        "a delivery without a signature was accepted"
    );
    if let Ok(payload) = WebhookPayload::parse(body) {
        let _ = payload.each_notification();
    }
});
