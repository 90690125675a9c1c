//! CodePipeline V2 pipelines for Cutover.
pub mod catalog;
pub mod cron;
pub mod glob;
pub mod model;
pub mod parse;
pub mod trigger;
mod validate;
pub mod vars;
