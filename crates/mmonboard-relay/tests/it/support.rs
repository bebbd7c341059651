pub use mmonboard_relay::testing::*;
