//! The config parser and validator on arbitrary text: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Err(e) = nf_app::config::parse("fuzz.toml", s) {
            let _ = e.to_string();
        }
    }
});
