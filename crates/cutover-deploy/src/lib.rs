//! Pure deployment engine: blue/green lifecycle, traffic schedules, alarm
//! evaluation, rolling updates. No IO, injected time.
#![doc = include_str!("../ARCHITECTURE_NOTE.md")]

pub mod alarm;
pub mod bluegreen;
pub mod config;
pub mod rolling;
pub mod schedule;
pub mod time;

pub use bluegreen::{BlueGreen, DeploymentStatus, Effect, Input};
pub use config::{BlueGreenSpec, LifecycleEvent, TrafficRouting};
pub use time::Millis;
